# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The experiment runner: validation, atomic/incremental results, resumption."""

import json
import os
import pathlib
import subprocess
import sys

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
    ({"chunk_size": 0}, r"config\.chunk_size must be >= 1"),
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


def test_cli_toy_end_to_end_and_plot(tmp_path):
  w = tmp_path / "toy"
  out = _cli("--config", "configs/toy.py:quick", "--workdir", str(w), "--noprogress", *_TINY_TOY)
  assert out.returncode == 0, out.stderr
  res = results_lib.load_results(w)
  assert res["meta"]["complete"]
  methods = {r["method"] for r in res["records"] if r["part"] == "acceptance"}
  assert methods == {"gls", "specinfer", "spectr", "gls_exact", "lml", "optimum"}
  for f in ("toy_acceptance", "coupling_vs_dtv"):
    (w / "figures" / f"{f}.png").unlink()
  plot = subprocess.run([sys.executable, "-m", "experiments.plot", str(w)], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  assert plot.returncode == 0, plot.stderr
  assert (w / "figures" / "toy_acceptance.png").exists()
  assert (w / "figures" / "coupling_vs_dtv.png").exists()


def test_toy_results_identical_on_1_and_8_devices(tmp_path):
  recs = []
  for n in (1, 8):
    w = tmp_path / f"d{n}"
    out = _cli("--config", "configs/toy.py:quick", "--workdir", str(w), "--noprogress",
               *_TINY_TOY, "--config.chunk_size=50",
               env={"XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"})
    assert out.returncode == 0, out.stderr
    res = results_lib.load_results(w)
    assert res["meta"]["devices"]["local_device_count"] == n
    recs.append(res["records"])
  assert recs[0] == recs[1]


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
