# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The experiment runner: validation, atomic/incremental results, resumption."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from lcoupling import results as results_lib
from lcoupling import runner, studies

ROOT = pathlib.Path(__file__).resolve().parent.parent
DUMMY = str(pathlib.Path(__file__).parent / "dummy_config.py")


@pytest.fixture(autouse=True)
def _dummy_study(monkeypatch):
  monkeypatch.setitem(studies.STUDIES, "dummy", "dummy_study")


def _load(**overrides):
  return runner.load_experiment(DUMMY, overrides)


def test_run_writes_schema_and_figures(tmp_path):
  res = runner.run(_load(), tmp_path, progress=False)
  assert res["schema"] == results_lib.SCHEMA
  assert res["meta"]["complete"] and res["meta"]["seed"] == 3
  assert res["meta"]["config"]["num_trials"] == 20
  assert {"versions", "git_sha", "devices", "created"} <= set(res["meta"])
  assert [r["x"] for r in res["records"]] == list(range(5))
  assert (tmp_path / "figures" / "dummy.png").exists()
  assert (tmp_path / "figures" / "dummy.pdf").exists()
  assert results_lib.load_results(tmp_path) == json.loads((tmp_path / "results.json").read_text())


def test_resume_equals_uninterrupted(tmp_path):
  full = runner.run(_load(), tmp_path / "a", progress=False)
  part = runner.run(_load(), tmp_path / "b", progress=False, max_points=2)
  assert not part["meta"]["complete"] and len(part["records"]) == 2
  resumed = runner.run(_load(), tmp_path / "b", progress=False)
  assert resumed["records"] == full["records"]
  lines = (tmp_path / "b" / "results.jsonl").read_text().splitlines()
  assert len(lines) == 5  # nothing recomputed


def test_crash_keeps_completed_points(tmp_path):
  with pytest.raises(RuntimeError, match="simulated crash"):
    runner.run(_load(crash_at=3), tmp_path, progress=False)
  res = results_lib.load_results(tmp_path)  # valid JSON, the 3 finished points
  assert [r["x"] for r in res["records"]] == [0, 1, 2]
  assert not res["meta"]["complete"]


def test_ctrl_c_after_a_point_is_logged_still_summarizes_it(tmp_path, monkeypatch):
  """Ctrl-C between a point's results.jsonl line and its results.json summary."""
  real = runner.summarize_workdir
  calls = []

  def interrupted_once(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # the summary after the second point
      raise KeyboardInterrupt
    return real(*args, **kwargs)

  monkeypatch.setattr(runner, "summarize_workdir", interrupted_once)
  with pytest.raises(KeyboardInterrupt):
    runner.run(_load(), tmp_path, progress=False)
  assert len(calls) == 3  # the interrupted summary is redone before the interrupt propagates
  res = results_lib.load_results(tmp_path)
  assert [r["x"] for r in res["records"]] == [0, 1] and res["meta"]["num_points_done"] == 2


def test_torn_jsonl_line_is_dropped_on_resume(tmp_path):
  full = runner.run(_load(), tmp_path / "a", progress=False)
  runner.run(_load(), tmp_path / "b", progress=False, max_points=3)
  with open(tmp_path / "b" / "results.jsonl", "ab") as f:
    f.write(b'{"point": {"x": 3}, "reco')  # a write cut by a kill
  with pytest.warns(UserWarning, match="incomplete last line"):
    res = runner.run(_load(), tmp_path / "b", progress=False)
  assert res["records"] == full["records"]


def test_damaged_jsonl_is_an_error(tmp_path):
  runner.run(_load(), tmp_path, progress=False, max_points=2)
  p = tmp_path / "results.jsonl"
  p.write_text("garbage\n" + p.read_text())
  with pytest.raises(ValueError, match="line 1 is not valid JSON"):
    runner.run(_load(), tmp_path, progress=False)


def test_resume_with_other_config_is_refused(tmp_path):
  runner.run(_load(), tmp_path, progress=False, max_points=1)
  before = (tmp_path / "results.jsonl").read_bytes()
  with pytest.raises(ValueError, match=r"config\.num_trials: 20 -> 21"):
    runner.run(_load(num_trials=21), tmp_path, progress=False)
  assert (tmp_path / "results.jsonl").read_bytes() == before
  # chunk_size does not change results: resuming with another one is fine.
  res = runner.run(_load(chunk_size=3), tmp_path, progress=False)
  assert res["meta"]["complete"]


def test_results_do_not_depend_on_chunk_size(tmp_path):
  a = runner.run(_load(chunk_size=1), tmp_path / "a", progress=False, figures=False)
  b = runner.run(_load(chunk_size=64), tmp_path / "b", progress=False, figures=False)
  assert a["records"] == b["records"]


@pytest.mark.parametrize("overrides, match", [
    ({"nonexistent": 1}, r"config\.nonexistent: unknown config field"),
    ({"num_trials": "many"}, r"config\.num_trials"),
    ({"num_trials": 0}, r"config\.num_trials must be >= 1"),
    ({"num_points": 0}, "sweep is empty"),
    ({"prng_impl": "mt19937"}, r"config\.prng_impl"),
    ({"chunk_size": 0}, r"config\.chunk_size must be an int >= 1"),
    ({"study": "nope"}, r"config\.study: unknown study"),
])
def test_bad_config_fails_before_any_work(tmp_path, overrides, match):
  with pytest.raises(ValueError, match=match):
    runner.run(_load(**overrides), tmp_path / "w", progress=False)
  assert not (tmp_path / "w").exists()


def test_unknown_variant():
  with pytest.raises(ValueError, match="unknown variant"):
    runner.load_experiment(DUMMY + ":huge")


def _cli(*args, env=None):
  return subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=ROOT,
                        capture_output=True, text=True, env={**os.environ, **(env or {})},
                        timeout=600)


# slow: a subprocess whose case (same command, same line, no workdir made) is the first one of
# test_cli_errors_are_one_line; kept for make test-all.
@pytest.mark.slow
def test_cli_rejects_unknown_field_without_touching_files(tmp_path):
  out = _cli("--config", "configs/toy.py:quick", "--workdir", str(tmp_path / "w"),
             "--config.no_such_field=3", "--noprogress")
  assert out.returncode != 0
  assert "no_such_field" in out.stderr
  assert not (tmp_path / "w").exists()


def test_cli_rejects_invalid_value(tmp_path):
  out = _cli("--config", "configs/toy.py:quick", "--workdir", str(tmp_path / "w"),
             "--config.num_drafts=(0,2)", "--noprogress")
  assert out.returncode != 0
  assert "config.num_drafts" in out.stderr
  assert not (tmp_path / "w").exists()


_TINY_TOY = ["--config.num_pairs=6", "--config.num_drafts=(1,3)", "--config.num_samples=300",
             "--config.num_coupling_pairs=5", "--config.coupling_samples=200",
             "--config.chunk_size=64"]


def _script(name):
  """The installed console script (``lcoupling-run``) if present, else ``python -m module``."""
  exe = pathlib.Path(sys.executable).parent / name
  module = {"lcoupling-run": "experiments.run", "lcoupling-plot": "experiments.plot"}[name]
  return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


@pytest.fixture(scope="module")
def toy_cli_run(tmp_path_factory):
  """One ``lcoupling-run --config toy:quick`` (tiny sizes, 1 device) from outside the checkout,
  shared by the end-to-end test and the device-count test: ``(completed process, cwd, workdir)``."""
  tmp = tmp_path_factory.mktemp("toy_cli")
  cwd = tmp / "elsewhere"
  cwd.mkdir()
  w = tmp / "toy"
  out = subprocess.run([*_script("lcoupling-run"), "--config", "toy:quick", "--workdir", str(w),
                        "--noprogress", *_TINY_TOY], cwd=cwd, capture_output=True, text=True,
                       env={**_env(), "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
                            + " --xla_force_host_platform_device_count=1"},
                       timeout=600)
  return out, cwd, w


def test_cli_toy_end_to_end_from_another_directory(toy_cli_run):
  """``lcoupling-run --config toy:quick`` from outside the checkout; plot; print the tables."""
  out, cwd, w = toy_cli_run
  assert out.returncode == 0, out.stderr
  assert list(cwd.iterdir()) == []
  res = results_lib.load_results(w)
  assert res["meta"]["complete"] and res["meta"]["source"] == "toy:quick"
  methods = {r["method"] for r in res["records"] if r["part"] == "acceptance"}
  assert methods == {"gls", "specinfer", "spectr", "gls_exact", "lml", "optimum"}
  for f in ("toy_acceptance", "coupling_vs_dtv"):
    (w / "figures" / f"{f}.png").unlink()
  plot = subprocess.run([*_script("lcoupling-plot"), str(w)], cwd=cwd, capture_output=True,
                        text=True, env=_env(), timeout=300)
  assert plot.returncode == 0, plot.stderr
  assert (w / "figures" / "toy_acceptance.png").exists()
  assert (w / "figures" / "coupling_vs_dtv.png").exists()
  table = subprocess.run([sys.executable, "-m", "lcoupling.studies.toy", str(w)], cwd=cwd,
                         capture_output=True, text=True, env=_env(), timeout=300)
  assert table.returncode == 0, table.stderr
  assert "| K | GLS (MC) | GLS exact | LML | SpecInfer | SpecTr | optimum α* |" in table.stdout
  assert "| 3 | " in table.stdout and "coupling vs d_TV" in table.stdout
  assert "5 pairs, 200 samples each" in table.stdout


# slow: tests/test_core.py::test_independent_of_device_count_and_chunking runs the trials of
# parallel.map_trials on 8 devices and chunk sizes 5-203 against one device (the path the runner's
# points take); this is the same at the results-file level. Kept for make test-all.
@pytest.mark.slow
def test_toy_results_identical_on_1_and_8_devices(toy_cli_run, tmp_path):
  """8 devices and chunks of 50 (not a multiple of 8) give the 1-device run's records (the
  shared run: chunks of 64; results do not depend on chunk_size either)."""
  out, _, w1 = toy_cli_run
  assert out.returncode == 0, out.stderr
  one = results_lib.load_results(w1)
  assert one["meta"]["devices"]["local_device_count"] == 1
  w = tmp_path / "d8"
  out = _cli("--config", "configs/toy.py:quick", "--workdir", str(w), "--noprogress",
             *_TINY_TOY, "--config.chunk_size=50",
             env={"XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
                  + " --xla_force_host_platform_device_count=8"})
  assert out.returncode == 0, out.stderr
  res = results_lib.load_results(w)
  assert res["meta"]["devices"]["local_device_count"] == 8
  assert res["records"] == one["records"]


def test_multi_process_split_points(tmp_path, monkeypatch):
  """Process i of P computes points i, i+P, ...; process 0 writes the summary."""
  import jax
  from jax.experimental import multihost_utils

  full = runner.run(_load(), tmp_path / "single", progress=False, figures=False)
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(multihost_utils, "sync_global_devices", lambda name: None)
  w = tmp_path / "multi"
  monkeypatch.setattr(jax, "process_index", lambda: 1)
  assert runner.run(_load(), w, progress=False, figures=False) == {}
  entries = [json.loads(l) for l in (w / "results.jsonl").read_text().splitlines()]
  assert sorted(e["point"]["x"] for e in entries) == [1, 3]
  assert {e["process"] for e in entries} == {1}
  monkeypatch.setattr(jax, "process_index", lambda: 0)
  res = runner.run(_load(), w, progress=False, figures=False)
  assert res["meta"]["complete"]
  assert res["records"] == full["records"]


# --------------------------------------------------------------------------
# Failed runs, code versions, sweep extension, workdir paths.
# --------------------------------------------------------------------------


def test_failed_run_without_finished_points_accepts_a_new_config(tmp_path):
  """A run that failed before finishing a point (e.g. a wrong path) does not pin its config."""
  with pytest.raises(RuntimeError, match="simulated crash"):
    runner.run(_load(crash_at=0), tmp_path, progress=False)
  assert (tmp_path / "config.json").exists()
  res = runner.run(_load(num_trials=21), tmp_path, progress=False, figures=False)
  assert res["meta"]["complete"]
  assert json.loads((tmp_path / "config.json").read_text())["num_trials"] == 21
  with pytest.raises(ValueError, match=r"config\.num_trials: 21 -> 20"):  # now it has points
    runner.run(_load(), tmp_path, progress=False)


def test_entries_record_the_code_version(tmp_path):
  res = runner.run(_load(), tmp_path, progress=False, figures=False)
  code = results_lib.code_version()
  entries = [json.loads(l) for l in (tmp_path / "results.jsonl").read_text().splitlines()]
  for e in entries:
    assert e["code"] == code
    assert {"git_sha", "git_dirty", "source_digest", "versions"} <= set(e["code"])
    assert e["code"]["versions"]["jax"] == code["versions"]["jax"]
  assert res["meta"]["code_versions"] == [{**code, "num_points": 5}]


def test_resume_under_another_code_version_is_refused(tmp_path, monkeypatch):
  runner.run(_load(), tmp_path, progress=False, max_points=2)
  before = (tmp_path / "results.jsonl").read_bytes()
  real = results_lib.code_version()
  other = {**real, "versions": {**real["versions"], "jax": "0.0.1"}}
  monkeypatch.setattr(results_lib, "code_version", lambda: other)
  with pytest.raises(ValueError, match=r"2 of the 2 finished points .*another code version "
                                       r"\(jax .* -> 0\.0\.1\).*--allow_version_change"):
    runner.run(_load(), tmp_path, progress=False)
  assert (tmp_path / "results.jsonl").read_bytes() == before
  res = runner.run(_load(), tmp_path, progress=False, figures=False, allow_version_change=True)
  assert res["meta"]["complete"]
  assert res["meta"]["code_versions"] == [{**real, "num_points": 2}, {**other, "num_points": 3}]
  full = runner.run(_load(), tmp_path / "fresh", progress=False, figures=False)
  assert res["records"] == full["records"]


def test_extending_the_sweep_computes_only_the_new_points(tmp_path):
  w = tmp_path / "w"
  small = runner.run(_load(num_points=3), w, progress=False, figures=False)
  assert [r["x"] for r in small["records"]] == [0, 1, 2]
  res = runner.run(_load(num_points=5), w, progress=False, figures=False)
  lines = (w / "results.jsonl").read_text().splitlines()
  assert [json.loads(l)["point"]["x"] for l in lines] == [0, 1, 2, 3, 4]  # 0..2 not recomputed
  full = runner.run(_load(num_points=5), tmp_path / "full", progress=False, figures=False)
  assert res["records"] == full["records"] and res["meta"]["complete"]
  assert json.loads((w / "config.json").read_text())["num_points"] == 5
  shrunk = runner.run(_load(num_points=2), w, progress=False, figures=False)
  assert [r["x"] for r in shrunk["records"]] == [0, 1] and shrunk["meta"]["complete"]
  # A changed field that is not a sweep field is still refused, with or without a sweep change.
  with pytest.raises(ValueError, match=r"config\.num_trials: 20 -> 21"):
    runner.run(_load(num_points=6, num_trials=21), w, progress=False)
  assert len((w / "results.jsonl").read_text().splitlines()) == 5


def test_sweep_fields_must_be_config_fields(tmp_path):
  cfg = tmp_path / "bad_sweep.py"
  cfg.write_text(pathlib.Path(DUMMY).read_text().replace('SWEEP_FIELDS = ("num_points",)',
                                                           'SWEEP_FIELDS = ("num_pointz",)'))
  with pytest.raises(ValueError, match=r"config\.num_pointz: unknown config field; did you mean "
                                       r"config\.num_points"):
    runner.load_experiment(str(cfg))


def test_workdir_placeholder_puts_outputs_in_the_workdir(tmp_path, monkeypatch):
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  monkeypatch.chdir(elsewhere)
  runner.run(_load(num_points=2), "w", progress=False, figures=False)
  assert sorted(p.name for p in (elsewhere / "w" / "scratch").iterdir()) == ["x0.txt", "x1.txt"]
  assert sorted(p.name for p in elsewhere.iterdir()) == ["w"]  # nothing else in the cwd
  # config.json keeps the placeholder, so the workdir can move and resume from anywhere.
  assert json.loads((elsewhere / "w" / "config.json").read_text())["scratch_dir"] == \
      "{workdir}/scratch"
  (elsewhere / "w").rename(tmp_path / "moved")
  monkeypatch.chdir(tmp_path)
  res = runner.run(_load(num_points=3), tmp_path / "moved", progress=False, figures=False)
  assert res["meta"]["complete"]
  assert (tmp_path / "moved" / "scratch" / "x2.txt").exists()


def test_workdir_that_is_a_file_is_an_error(tmp_path):
  f = tmp_path / "file"
  f.write_text("x")
  with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
    runner.run(_load(), f, progress=False)


def test_builtin_configs_load_by_name_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  exp = runner.load_experiment("toy:quick", {"num_pairs": 4})
  assert exp.config.name == "toy_quick" and exp.config.num_pairs == 4
  assert exp.sweep_fields == ("num_drafts",)
  assert runner.load_experiment("toy.py").config.name == "toy"
  assert {"toy", "gaussian", "mnist"} <= set(runner.builtin_configs())
  with pytest.raises(FileNotFoundError, match=r"'nope' not found.*toy.*--config toy:quick"):
    runner.load_experiment("nope:quick")
  with pytest.raises(FileNotFoundError, match=r"'configs/toy\.py' not found \(relative to"):
    runner.load_experiment("configs/toy.py")  # a path stays a path


# --------------------------------------------------------------------------
# Command-line errors: one line with the fix, never a traceback.
# --------------------------------------------------------------------------


def _env():
  return {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout, from any directory


def _assert_one_line_error(out, *needles, status=None):
  assert out.returncode != 0 and (status is None or out.returncode == status), out
  assert "Traceback" not in out.stderr, out.stderr
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
  for n in needles:
    assert n in lines[0], (n, lines[0])


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
  """The first two cases as processes (``python -m experiments.run``: exit status and stderr of
  the real command), the rest through the same ``main`` in this process (~1.5 s less each)."""
  subproc = lambda *a: subprocess.run([sys.executable, "-m", "experiments.run", *a], cwd=tmp_path,
                                      capture_output=True, text=True, env=_env(), timeout=300)
  from experiments import run as run_cli  # noqa: PLC0415

  def run(*a):
    capsys.readouterr()
    status = run_cli.main(["lcoupling-run", *a])
    return subprocess.CompletedProcess(a, status, *capsys.readouterr())

  monkeypatch.chdir(tmp_path)
  w = str(tmp_path / "w")
  _assert_one_line_error(subproc("--config", "toy:quick", "--workdir", w,
                                 "--config.no_such_field=3"),
                         "config.no_such_field: unknown config field", status=2)
  _assert_one_line_error(subproc("--config", "toy:quick", "--workdir", w, "--config.num_pair=3"),
                         "did you mean config.num_pairs")
  _assert_one_line_error(run("--workdir", w), "--config is required", "--config toy:quick",
                         status=2)
  _assert_one_line_error(run("--config", "toy:quick"), "--workdir is required", status=2)
  _assert_one_line_error(run("--config", "nope/missing.py", "--workdir", w),
                         "'nope/missing.py' not found", "toy:quick")
  _assert_one_line_error(run("--config", "toy:huge", "--workdir", w), "unknown variant 'huge'")
  _assert_one_line_error(run("--config", "toy:quick", "--workdir", w, "--bogus"),
                         "Unknown command line flag 'bogus'", status=2)
  (tmp_path / "afile").write_text("x")
  _assert_one_line_error(run("--config", "toy:quick", "--workdir", str(tmp_path / "afile")),
                         "is a file, not a directory")
  assert not (tmp_path / "w").exists()
  # A work directory holding another config's finished point.
  exp = runner.load_experiment("toy:quick")
  (tmp_path / "w").mkdir()
  cfg = {**results_lib.to_jsonable(exp.config), "num_pairs": 7}
  (tmp_path / "w" / "config.json").write_text(json.dumps(cfg))
  results_lib.append_jsonl(tmp_path / "w" / "results.jsonl",
                           {"point": {"part": "coupling"}, "records": [], "seconds": 0.0})
  _assert_one_line_error(run("--config", "toy:quick", "--workdir", w),
                         "holds results of a different config", "config.num_pairs: 7 -> 40",
                         "new --workdir")


def test_plot_errors_are_one_line(tmp_path):
  plot = lambda *a: subprocess.run([sys.executable, "-m", "experiments.plot", *a], cwd=tmp_path,
                                   capture_output=True, text=True, env=_env(), timeout=300)
  (tmp_path / "empty").mkdir()
  _assert_one_line_error(plot(str(tmp_path / "empty")), "empty/results.json not found",
                         "run the experiment first")
  (tmp_path / "trunc").mkdir()
  (tmp_path / "trunc" / "results.json").write_text('{"schema": "lcoupling.results/1", "na')
  _assert_one_line_error(plot(str(tmp_path / "trunc")), "trunc/results.json is not valid JSON",
                         "truncated")
  _assert_one_line_error(plot(), "usage", status=2)


def test_cli_ctrl_c_says_how_to_resume(tmp_path):
  w = tmp_path / "w"
  # `python -m experiments.run` with Python's Ctrl-C handler installed first (see
  # test_ctrl_c._start: a suite started in the background inherits an ignored SIGINT)
  args = [sys.executable, "-c", "import runpy, signal; signal.signal(signal.SIGINT, "
          "signal.default_int_handler); runpy.run_module('experiments.run', run_name='__main__', "
          "alter_sys=True)", "--config", "toy:quick", "--workdir", str(w),
          "--noprogress", "--config.num_pairs=4", "--config.num_samples=2000",
          "--config.chunk_size=500", "--config.num_drafts=" + str(tuple(range(1, 41)))]
  proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 240
  while not (w / "results.jsonl").exists() and proc.poll() is None and time.monotonic() < deadline:
    time.sleep(0.1)
  assert proc.poll() is None, proc.communicate()
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err
  assert "Traceback" not in err, err
  assert err.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
  done = results_lib.load_results(w)["meta"]["num_points_done"]
  assert 1 <= done < 41
