# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""benchmarks/specdec.py's interleaved speed-up table (what --json writes), on tiny models."""

from __future__ import annotations

import importlib.util
import pathlib

import jax.numpy as jnp
import pytest
from flax import nnx

from lcoupling.lm import Llama, LlamaConfig

_PATH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "specdec.py"
_spec = importlib.util.spec_from_file_location("bench_specdec", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

CFG = LlamaConfig(vocab_size=64, num_layers=2, hidden_size=16, intermediate_size=32, num_heads=4,
                  num_kv_heads=2, head_dim=4, max_position_embeddings=128)


def test_speedup_table_rows():
  """The drafter is the target itself: every draft is accepted, so the block efficiency of sps,
  SpecInfer and GLS is exactly L + 1 (10 tokens = 2 blocks of 5) and autoregressive's is 1;
  strong GLS races dropped rows too, so it may stop a block early even then."""
  target = Llama(CFG, rngs=nnx.Rngs(0))
  prompt = jnp.arange(1, 9, dtype=jnp.int32)
  lines = []
  schemes = ("autoregressive", "sps", "specinfer", "gls", "gls_strong")
  rows = bench.speedup_table(target, target, prompt, schemes=schemes, num_drafts=2,
                             draft_length=4, max_new_tokens=10, seeds=(0, 1), top_k=0,
                             log=lines.append)
  assert [r["scheme"] for r in rows] == list(schemes)
  for r in rows:
    assert set(r) >= {"scheme", "K", "L", "tokens_per_s", "speedup_vs_autoregressive",
                      "block_efficiency"}
    assert r["tokens"] == 20 and r["tokens_per_s"] > 0
    if r["scheme"] == "autoregressive":
      assert (r["K"], r["L"], r["block_efficiency"], r["speedup_vs_autoregressive"]) == (1, 0, 1, 1)
    else:
      assert r["K"] == (1 if r["scheme"] == "sps" else 2) and r["L"] == 4
      if r["scheme"] == "gls_strong":
        assert 1.0 < r["block_efficiency"] <= 5.0
      else:
        assert r["block_efficiency"] == 5.0
  assert any("compiled gls" in line for line in lines)
  with pytest.raises(ValueError, match="must include 'autoregressive'"):
    bench.speedup_table(target, target, prompt, schemes=("sps",))


def test_speedup_table_several_k_and_the_flag():
  """``num_drafts=(1, 2)``: one row per K for the multi-draft schemes, one for the others;
  ``--num_drafts 2,4`` parses to (2, 4) and bad values are usage errors."""
  target = Llama(CFG, rngs=nnx.Rngs(0))
  prompt = jnp.arange(1, 9, dtype=jnp.int32)
  # (the shapes of test_speedup_table_rows: in one process only gls K = 1 compiles anew)
  rows = bench.speedup_table(target, target, prompt, schemes=("autoregressive", "sps", "gls"),
                             num_drafts=(1, 2), draft_length=4, max_new_tokens=10, seeds=(0,),
                             top_k=0, log=lambda _: None)
  assert [(r["scheme"], r["K"]) for r in rows] == [("autoregressive", 1), ("sps", 1), ("gls", 1),
                                                   ("gls", 2)]
  assert all(r["block_efficiency"] == 5.0 for r in rows[1:])  # the target drafts for itself
  assert bench._ints("2,4") == (2, 4) and bench._ints("3") == (3,)
  assert bench._schemes("autoregressive,gls, sps") == ("autoregressive", "gls", "sps")
  for bad in ("gls,sps", "autoregressive,glss"):
    with pytest.raises(Exception, match="includes autoregressive"):
      bench._schemes(bad)
  for bad in ("0", "2,x", ""):
    with pytest.raises(Exception, match="expected"):
      bench._ints(bad)


def test_draft_sharing_counts_identical_drafts_and_tree_rows():
  """A point-mass drafter drafts the same tokens in every row: every block's K drafts are
  identical, and the tree has 1 + L rows. A uniform drafter over 64 tokens rarely repeats a
  row: K = 2 blocks share a prefix of 0 tokens nearly always, and the mean tree size is the
  one the histogram of shared prefixes gives (1 + 2 L - shared)."""
  import jax
  from lcoupling.lm import MarkovLM
  v, length = 64, 3
  target = MarkovLM(jax.random.normal(jax.random.key(0), (v, v)))
  point = MarkovLM(jnp.where(jnp.roll(jnp.eye(v, dtype=bool), 1, axis=1), 0.0, -1e9))
  prompt = jnp.array([3, 5], jnp.int32)
  out = bench.draft_sharing(target, point, prompt, num_drafts=3, draft_length=length,
                            max_new_tokens=12, seeds=(0, 1), top_k=0)
  assert out["identical"] == 1.0 and out["tree_rows"] == 1 + length
  assert out["pass_rows"] == 3 * (length + 1)
  assert out["shared_prefix"] == [0] * length + [out["blocks"]] and out["blocks"] >= 2
  uniform = MarkovLM(jnp.zeros((v, v)))
  out = bench.draft_sharing(target, uniform, prompt, num_drafts=2, draft_length=length,
                            max_new_tokens=12, seeds=(0, 1, 2), top_k=0)
  hist = out["shared_prefix"]
  assert sum(hist) == out["blocks"] >= 3 * 12 // (length + 1)  # uniform drafts: rarely accepted
  assert hist[0] >= 0.8 * out["blocks"] and out["identical"] < 0.1
  mean_rows = sum(c * (1 + 2 * length - d) for d, c in enumerate(hist)) / out["blocks"]
  assert out["tree_rows"] == pytest.approx(mean_rows)
