# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The one-command accelerator job (scripts/gpu_full.sh = make gpu-paper), on tiny sizes on the CPU."""

from __future__ import annotations

import csv
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow  # three runs and both benchmarks, tiny: a few minutes on 2 cores
def test_gpu_full_script_plumbing(tmp_path):
  if not (REPO / "data" / "tfds" / "lcoupling_mnist").is_dir():
    pytest.skip("MNIST not found: run `make data`")
  out = tmp_path / "gpu"
  env = dict(os.environ, PYTHON=sys.executable, DATA_DIR=str(REPO / "data"), JAX_PLATFORMS="cpu",
             PYTHONPATH=str(REPO))
  proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_full.sh"), "--tiny", str(out)], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=1800)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  with open(out / "times.tsv") as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
  assert [r["step"] for r in rows] == ["data", "mnist", "gaussian", "bench_coupling", "bench_gaussian",
                                       "lm", "bench_lm", "bench_specdec", "lm_qwen",
                                       "specdec_iid_qwen", "specdec_diverse_qwen",
                                       "specdec_matching_qwen", "specdec_consistency_qwen",
                                       "bench_lm_qwen", "bench_specdec_qwen"]
  assert all(r["exit"] == "0" and float(r["seconds"]) > 0 for r in rows)
  mnist = json.loads((out / "mnist" / "results.json").read_text())
  assert mnist["meta"]["complete"] and mnist["meta"]["config"]["name"] == "mnist_gpu"
  cfg = mnist["meta"]["config"]
  assert cfg["checkpoint_dir"] == "{workdir}/checkpoints"  # the VAEs live in the work directory
  assert any((out / "mnist" / "checkpoints").glob("*/beta=0.15/model.json"))
  assert cfg["train"]["joint_betas"] and cfg["train"]["steps_per_call"] == 1000  # the :gpu variant
  trained = [r for r in mnist["records"] if r["kind"] == "training"]
  assert sorted(r["beta"] for r in trained) == [0.15, 0.55]
  assert sum(r["train_seconds"] > 0 for r in trained) == 1  # both betas trained in one vmapped run
  gauss = json.loads((out / "gaussian" / "results.json").read_text())
  assert gauss["meta"]["complete"] and gauss["meta"]["config"]["trial_batch"] == 0
  assert "GLS K=4" in (out / "mnist_tables.md").read_text()
  assert "GLS K=4" in (out / "gaussian_tables.md").read_text()
  assert "cpu" in (out / "devices.txt").read_text().lower()
  for s in ("specdec_iid", "specdec_diverse", "specdec_matching", "specdec_consistency"):
    res = json.loads((out / f"{s}_qwen" / "results.json").read_text())
    assert res["meta"]["complete"] and res["meta"]["config"]["name"] == f"{s}_qwen"
    assert (out / f"{s}_qwen_tables.md").read_text().strip()
  speed = json.loads((out / "speedup_qwen.json").read_text())
  assert {r["scheme"] for r in speed["rows"]} >= {"autoregressive", "sps", "gls"}


def test_gpu_full_script_runs_only_the_selected_steps(tmp_path):
  """STEPS (for a short accelerator lease) runs the named steps and their tables, nothing else:
  here the check of the fetched language model alone (--tiny: SmolLM2's checksum; seconds)."""
  if not (REPO / "data" / "lm" / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file():
    pytest.skip("SmolLM2 not found: run `make lm`")
  out = tmp_path / "gpu"
  env = dict(os.environ, PYTHON=sys.executable, DATA_DIR=str(REPO / "data"), JAX_PLATFORMS="cpu",
             PYTHONPATH=str(REPO), STEPS="lm_qwen")
  proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_full.sh"), "--tiny", str(out)], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  with open(out / "times.tsv") as f:
    assert [r["step"] for r in csv.DictReader(f, delimiter="\t")] == ["lm_qwen"]
  for step in ("data", "mnist", "gaussian", "bench_lm", "specdec_iid_qwen", "bench_specdec_qwen"):
    assert f"== {step}: not in STEPS, skipped" in proc.stdout
  assert sorted(p.name for p in out.iterdir()) == ["devices.txt", "lm_qwen.log", "times.tsv"]  # no tables
