# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Command-line usage errors: exit status 2 for the config, one-line messages, the printer hint.

In-process (``experiments.run.main`` / ``experiments.plot.main``): nothing here runs a
sweep.
"""

from __future__ import annotations

import json

import pytest

from experiments import plot as plot_cli
from experiments import run as run_cli
from lcoupling import runner


def _one_line(capsys):
  err = capsys.readouterr().err
  lines = [l for l in err.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: "), err
  assert "Traceback" not in err
  return lines[0]


@pytest.mark.parametrize("argv, needles", [
    (["--config.num_drafts=abc"], ["config.num_drafts must be a tuple", "got 'abc'"]),
    (["--config.num_pairs=abc"], ["config.num_pairs must be an int (e.g. 40), got 'abc'"]),
    (["--config.no_such_field=3"], ["config.no_such_field: unknown config field"]),
    (["--config.num_pairs=0"], ["config.num_pairs"]),  # refused by the study's validation
])
def test_config_errors_exit_2_without_ml_collections_internals(argv, needles, tmp_path, capsys):
  code = run_cli.main(["run", "--config", "toy:quick", "--workdir", str(tmp_path / "w"), *argv])
  line = _one_line(capsys)
  assert code == 2, line
  for n in needles:
    assert n in line, line
  for internal in ("Could not override", "original type", "casted", "<class"):
    assert internal not in line
  assert not (tmp_path / "w").exists()


def test_missing_config_exits_2(tmp_path, capsys):
  assert run_cli.main(["run", "--config", "nope/missing.py", "--workdir", str(tmp_path)]) == 2
  assert "'nope/missing.py' not found" in _one_line(capsys)


def test_override_type_messages():
  exp_cfg = runner.load_experiment("toy:quick").config.unlock()
  with pytest.raises(ValueError, match=r"^config.seed must be an int \(e.g. 0\), got 'x'$"):
    runner.apply_overrides(exp_cfg, {"seed": "x"})


def test_plot_missing_directory_names_it(tmp_path, capsys):
  missing = tmp_path / "runs" / "nothing_here"
  assert plot_cli.main(["plot", str(missing)]) == 1
  line = _one_line(capsys)
  assert f"{missing}: no such work directory" in line
  assert f"--workdir {missing}" in line and f"--workdir {missing.parent} " not in line + " "


def test_end_of_run_names_the_printer(tmp_path, capsys, monkeypatch):
  fake = {"meta": {"complete": True, "num_points_done": 1, "num_points": 1, "wall_seconds": 1.0,
                   "study": "toy"}, "records": [{}]}
  monkeypatch.setattr(runner, "run", lambda *a, **k: fake)
  w = tmp_path / "w"
  assert run_cli.main(["run", "--config", "toy:quick", "--workdir", str(w), "--noprogress"]) == 0
  out = capsys.readouterr().out
  assert f"[lcoupling] tables: python -m lcoupling.studies.toy {w}\n" in out
  assert run_cli.printer_command("no_such_study", "w") is None


def test_jsonl_prompts_without_the_field_refused_in_validation(tmp_path):
  path = tmp_path / "prompts.jsonl"
  path.write_text(json.dumps({"text": "a"}) + "\n" + json.dumps({"prompt": "b"}) + "\n")
  with pytest.raises(ValueError, match=r"config\.prompts \(config\.prompt_field='text'\): .* line "
                                       r"2: no field 'text'"):
    runner.load_experiment("specdec_iid:quick", {"prompts": f"jsonl:{path}",
                                                 "prompt_field": "text"})
  with pytest.raises(ValueError, match=r"no field 'prompt'"):  # the default field
    runner.load_experiment("specdec_iid:quick", {"prompts": f"jsonl:{path}"})
  path.write_text(json.dumps({"text": "a"}) + "\n")
  exp = runner.load_experiment("specdec_iid:quick", {"prompts": f"jsonl:{path}",
                                                     "prompt_field": "text"})
  assert exp.config.prompts == f"jsonl:{path}"
