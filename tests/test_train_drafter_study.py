# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""configs/train_drafter.py end to end through the runner, on a tiny Hugging Face checkpoint."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

import lm_helpers
from lcoupling import lm, runner
from lcoupling.lm import distill
from lcoupling.studies import train_drafter

PROMPTS = ["def add(a, b):\n    return", "print(add(2, 3))", "The quick brown fox",
           "    indented with spaces", "12345 + 678 =", "def sub(a, b):", "Les élèves",
           "return a + b"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  d = tmp_path_factory.mktemp("tiny")
  tok = lm_helpers.tiny_tokenizer()
  cfg = dict(lm_helpers.hf_config("qwen2", tok.get_vocab_size()), max_position_embeddings=256,
             num_hidden_layers=3)
  lm_helpers.write_hf_checkpoint(d / "model", cfg, lm_helpers.random_hf_weights(cfg, 0), tok)
  (d / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
  return d


@pytest.mark.slow  # ~1 min: the study's pieces are test_drafters' fast tests; the runner path is
# covered by the other studies' end-to-end tests (make test-all runs this one)
def test_train_drafter_end_to_end(tiny, tmp_path):
  """Two drafters, then the sweep extended by a third: the three kinds (soft bigram, linear and
  block adapters), the corpus cache, the tables, the figure and the saved drafters."""
  overrides = {
      "target": f"hf:{tiny / 'model'}", "prompts": f"jsonl:{tiny / 'prompts.jsonl'}",
      "train_prompts": (0, 5), "heldout_prompts": (5, 8), "num_new_tokens": 6,
      "corpus_batch_size": 4, "drafters": ("soft_bigram", "early_exit_block:2"),
      "window": 32, "train.steps": 6, "train.batch_size": 2, "train.save_every": 3,
      "train.warmup_steps": 2, "draft_length": 2, "num_seeds": 2, "max_new_tokens": 6,
      "timing_steps": 2}
  exp = runner.load_experiment("train_drafter:quick", overrides)
  res = runner.run(exp, tmp_path, progress=False)
  assert [r["drafter"] for r in res["records"]] == ["soft_bigram", "early_exit_block_m2"]
  assert (tmp_path / "figures" / "drafters.png").is_file()
  # the block adapter's training log and checkpoints are under the workdir
  assert (tmp_path / "drafters" / "early_exit_block_m2" / "train_log.jsonl").is_file()
  # the corpus is cached: a new drafter in the sweep reuses it (extending the sweep)
  corpus_file = tmp_path / "drafters" / "corpus.json"
  mtime = corpus_file.stat().st_mtime_ns
  overrides["drafters"] = overrides["drafters"] + ("early_exit_linear:1",)
  res = runner.run(runner.load_experiment("train_drafter:quick", overrides), tmp_path,
                   progress=False)
  assert corpus_file.stat().st_mtime_ns == mtime
  recs = res["records"]
  assert [r["drafter"] for r in recs] == ["soft_bigram", "early_exit_block_m2",
                                          "early_exit_linear_m1"]
  llm = lm.load(overrides["target"])
  seq = json.loads(corpus_file.read_text())["heldout"]
  for r in recs:
    assert 0.0 <= r["alpha"] <= 1.0 and 0.0 <= r["alpha_full"] <= 1.0
    assert 1.0 <= r["block_efficiency"] <= 3.0  # L + 1 = 3
    assert r["cost_ratio"] > 0
    # the saved drafter loads by its spec and is the one that was measured
    d = distill.load_drafter(r["spec"], llm.model)
    a = distill.acceptance(d, llm.model, [e["tokens"] for e in seq],
                           [e["prompt_length"] for e in seq], top_k=50)
    assert a == pytest.approx(r["alpha"], rel=1e-6)
  table = train_drafter.tables(res)
  assert "early_exit_linear_m1" in table and table.count("\n") == 4


@pytest.mark.parametrize("field, value, match", [
    ("drafters", ("bigram",), "config.drafters: unknown drafter 'bigram'"),
    ("drafters", ("block:0",), "config.drafters: unknown drafter 'block:0'"),
    ("heldout_prompts", (100, 120), "overlap: the held-out prompts must be unseen"),
    ("train.steps", 0, "config.train.steps must be an int >= 1"),
    ("temperature", 0.0, "config.temperature must be a finite number > 0"),
])
def test_bad_config_names_the_field(field, value, match):
  with pytest.raises(ValueError, match=match):
    runner.load_experiment("train_drafter:quick", {field: value})


def test_old_drafter_spellings_give_the_same_sweep():
  new = runner.load_experiment("train_drafter:quick", {})
  assert tuple(new.config.drafters) == ("soft_bigram", "early_exit_linear:4", "early_exit_block:4")
  with pytest.warns(FutureWarning, match="is deprecated") as caught:
    old = runner.load_experiment("train_drafter:quick",
                                 {"drafters": ("soft_bigram", "linear:4", "block:4")})
  assert old.sweep == new.sweep
  messages = {str(w.message) for w in caught}
  assert "drafter spec 'linear:4' is deprecated: write 'early_exit_linear:4'" in messages
  assert "drafter spec 'block:4' is deprecated: write 'early_exit_block:4'" in messages


def test_model_drafter_point(tiny, tmp_path):
  """``model:SPEC`` in config.drafters: another checkpoint, loaded (not built or saved), measured
  on the held-out prompts only (the corpus holds no training part); the record's spec loads it."""
  overrides = {
      "target": f"hf:{tiny / 'model'}", "prompts": f"jsonl:{tiny / 'prompts.jsonl'}",
      "train_prompts": (0, 5), "heldout_prompts": (5, 8), "num_new_tokens": 6,
      "corpus_batch_size": 3, "drafters": (f"model:hf:{tiny / 'model'}",), "draft_length": 2,
      "num_seeds": 2, "max_new_tokens": 6, "timing_steps": 2}
  exp = runner.load_experiment("train_drafter:quick", overrides)
  assert list(exp.sweep) == [{"drafter": "model", "spec": f"hf:{tiny / 'model'}"}]
  res = runner.run(exp, tmp_path, progress=False)
  (rec,) = res["records"]
  assert rec["drafter"].startswith("model_hf_") and "/" not in rec["drafter"]
  assert rec["spec"] == f"model:hf:{tiny / 'model'}" and rec["path"] is None
  # the target drafting for itself: every draft is accepted
  assert rec["alpha"] == pytest.approx(1.0, abs=1e-5) and rec["block_efficiency"] == 3.0
  corpus = json.loads((tmp_path / "drafters" / "corpus.json").read_text())
  assert "train" not in corpus and len(corpus["heldout"]) == 3
  assert not (tmp_path / "drafters" / rec["drafter"]).exists()


def test_qwen_quick_variant():
  exp = runner.load_experiment("train_drafter:qwen_quick", {})
  assert exp.config.target == "qwen2.5-coder-1.5b" and exp.config.dtype == "bfloat16"
  assert list(exp.sweep) == [{"drafter": "model", "spec": "qwen2.5-coder-0.5b"}]
  assert train_drafter.drafter_name(exp.sweep[0]) == "model_qwen2.5-coder-0.5b"
