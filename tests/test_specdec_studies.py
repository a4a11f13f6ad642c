# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The four speculative-decoding studies end to end on a tiny checkpoint with a real tokenizer.

Each test goes through the real code path: config file -> runner -> results.json ->
figures -> table printer, on a 2-layer Llama written as a Hugging Face checkpoint
(``tests/lm_helpers.py``; loaded through ``lcoupling.lm.load("hf:DIR")``), prompts from a
JSONL file the test writes, and an ``early_exit_linear:1`` drafter built from those
prompts. The studies share one drafter cache and (K = 2, L = 2, 8 new tokens, one
prompt buffer) compilations, so the four runs compile each decoder once.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lm_helpers
from lcoupling import results as results_lib
from lcoupling import runner
from lcoupling.studies import (specdec_common, specdec_consistency, specdec_diverse,
                               specdec_iid, specdec_matching)

PROMPTS = ["def add(a, b):", "The quick brown", "print(add(2,", "Les élèves", "12345 + 678",
           "    return a"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """Overrides that point every study at the tiny checkpoint and the test's prompts."""
  d = tmp_path_factory.mktemp("specdec_studies")
  tok = lm_helpers.tiny_tokenizer()
  cfg = lm_helpers.hf_config("llama", 320)
  lm_helpers.write_hf_checkpoint(d / "model", cfg, lm_helpers.random_hf_weights(cfg, 0), tok)
  with open(d / "prompts.jsonl", "w", encoding="utf-8") as f:
    for p in PROMPTS:
      f.write(json.dumps({"text": p}) + "\n")
  return d, {
      "target": f"hf:{d / 'model'}", "prompts": f"jsonl:{d / 'prompts.jsonl'}",
      "prompt_field": "text", "prompt_indices": (0, 1, 2, 3),
      "drafter": "early_exit_linear:1", "drafter_corpus": f"jsonl:{d / 'prompts.jsonl'}",
      "drafter_corpus_indices": (), "drafter_cache_dir": str(d / "drafters"),
      "top_k": 16, "num_seeds": 2, "max_new_tokens": 8, "batch_size": 8,
      "prompt_pad_multiple": 16,
  }


def _run(config, overrides, workdir):
  exp = runner.load_experiment(config, overrides)
  res = runner.run(exp, workdir, progress=False)
  assert res["meta"]["complete"]
  assert results_lib.load_results(workdir)["records"] == json.loads(json.dumps(
      results_lib.to_jsonable(res["records"])))
  return res


def _printed(module, workdir, capsys):
  assert module.main([str(workdir)]) == 0
  return capsys.readouterr().out


def test_iid_study(tiny, capsys):
  d, common = tiny
  overrides = dict(common, schemes=("autoregressive", "sps", "gls", "gls_strong"),
                   num_drafts=(1, 2), draft_length=2, timing_prompts=(4, 5), timing_seeds=2)
  res = _run("configs/specdec_iid.py:quick", overrides, d / "iid")
  recs = {(r["scheme"], r["K"]): r for r in res["records"]}
  # K = 1 of the multi-draft schemes is not a point (it would repeat sps / daliri)
  assert sorted(recs) == [("autoregressive", 1), ("gls", 2), ("gls_strong", 2), ("sps", 1)]
  for (scheme, k), r in recs.items():
    assert r["L"] == 2 and r["num_prompts"] == 4 and r["num_seeds"] == 2
    assert 1.0 <= r["block_efficiency"] <= r["L"] + 1
    assert len(r["token_rate_per_seed"]) == 2 and r["token_rate"] > 0
    assert r["token_rate_sem"] is not None
    for phase in ("draft", "target", "verify"):
      assert r[f"{phase}_ms_per_token"] >= 0
  assert recs[("autoregressive", 1)]["block_efficiency"] == 1.0
  assert recs[("autoregressive", 1)]["draft_ms_per_token"] == 0.0
  assert recs[("sps", 1)]["speedup_vs_sps"] == 1.0  # per-seed ratios of the same numbers
  assert recs[("gls", 2)]["block_efficiency"] > 1.0  # some drafts are accepted
  hist = recs[("gls", 2)]["accepted_length_histogram"]
  assert len(hist) == 3 and sum(hist) > 0
  figs = sorted(p.name for p in (d / "iid" / "figures").iterdir())
  assert figs == ["specdec_iid.pdf", "specdec_iid.png"]
  out = _printed(specdec_iid, d / "iid", capsys)
  assert "| GLS (strong) | 2 | 2 |" in out and "4 prompts x 2 seeds" in out


def test_diverse_study(tiny, capsys):
  d, common = tiny
  pairs = ((0.5, 1.0), (1.0, 0.5))
  overrides = dict(common, schemes=("gls", "specinfer"), temperature_pairs=pairs,
                   draft_length=2, temperature=2.0, timing_prompts=())
  res = _run("configs/specdec_diverse.py:quick", overrides, d / "diverse")
  recs = res["records"]
  assert {(r["scheme"], tuple(r["draft_temperatures"])) for r in recs} == {
      ("gls", pairs[0]), ("gls", pairs[1]), ("specinfer", pairs[0]), ("specinfer", pairs[1]),
      ("sps", (1.0,))}
  for r in recs:
    assert 1.0 <= r["block_efficiency"] <= 3.0
    assert r["token_rate"] is None and r["speedup_vs_sps"] is None  # no timing prompts
  gaps = specdec_diverse.order_gaps(res)
  assert {g["scheme"] for g in gaps} == {"gls", "specinfer"}
  by = {(r["scheme"], tuple(r["draft_temperatures"])): r for r in recs}
  g = [g for g in gaps if g["scheme"] == "gls"][0]
  a, b = by[("gls", tuple(g["pair"]))], by[("gls", tuple(reversed(g["pair"])))]
  assert g["gap"] == pytest.approx(a["block_efficiency"] - b["block_efficiency"])
  assert (d / "diverse" / "figures" / "specdec_diverse.png").is_file()
  out = _printed(specdec_diverse, d / "diverse", capsys)
  assert "| (0.5, 1.0) |" in out and "draft-order sensitivity" in out


def test_matching_study(tiny, capsys):
  d, common = tiny
  overrides = dict(common, num_drafts=(2, 3), num_mc_samples=4000)
  res = _run("configs/specdec_matching.py:quick", overrides, d / "matching")
  recs = res["records"]
  assert [r["K"] for r in recs] == [2, 3]
  for r in recs:
    assert sum(r["num_positions_per_seed"]) >= 2 * 4  # at least one token per sequence
    se = r["gls_matching_mc_stderr"]
    assert 0 < se < 0.01
    # the Monte-Carlo matching estimates the exact acceptance; the LML lower-bounds both
    assert abs(r["gls_matching"] - r["gls_exact"]) <= 4 * se, r
    assert r["gls_exact"] >= r["lml"] - 1e-5
    assert r["gls_matching"] >= r["lml"] - 4 * se
    assert abs(r["spectr_acceptance"] - r["spectr_exact"]) <= 4 * r["spectr_acceptance_mc_stderr"]
    assert 0 < r["single_draft"] <= 1 and 0 < r["specinfer_acceptance"] <= 1
  assert recs[1]["gls_exact"] > recs[0]["gls_exact"]  # a third draft helps
  assert (d / "matching" / "figures" / "specdec_matching.png").is_file()
  out = _printed(specdec_matching, d / "matching", capsys)
  assert "| 3 |" in out and "Monte Carlo" in out


def test_matching_study_diverse_drafts(tiny, capsys):
  """Diverse draft rows: Monte Carlo of GLS and SpecInfer against their exact values, the
  diverse LML below GLS; SpecInfer depends on the row order, GLS does not."""
  d, common = tiny
  overrides = dict(common, num_drafts=(), draft_temperature_pairs=((0.5, 1.0), (1.0, 0.5)),
                   temperature=1.5, num_mc_samples=4000)
  res = _run("configs/specdec_matching.py:diverse_quick", overrides, d / "matching_diverse")
  recs = res["records"]
  assert [r["draft_temperatures"] for r in recs] == [[0.5, 1.0], [1.0, 0.5]]
  for r in recs:
    assert r["K"] == 2
    for measured, exact in (("gls_matching", "gls_exact"),
                            ("specinfer_acceptance", "specinfer_exact")):
      se = r[measured + "_mc_stderr"]
      assert 0 < se < 0.01 and abs(r[measured] - r[exact]) <= 4 * se, (measured, r)
    assert r["gls_exact"] >= r["lml"] - 1e-5
  a, b = recs
  np.testing.assert_allclose(a["gls_exact"], b["gls_exact"], rtol=1e-5)  # symmetric in rows
  np.testing.assert_allclose(a["specinfer_exact"], b["specinfer_exact_swapped"], rtol=1e-6)
  assert abs(a["specinfer_exact"] - b["specinfer_exact"]) > 1e-3  # the order matters
  figs = sorted(p.name for p in (d / "matching_diverse" / "figures").iterdir())
  assert figs == ["specdec_matching_diverse.pdf", "specdec_matching_diverse.png"]
  out = _printed(specdec_matching, d / "matching_diverse", capsys)
  assert "| (0.5, 1.0) |" in out and "| K |" not in out


def test_consistency_study(tiny, capsys):
  d, common = tiny
  overrides = dict(common, draft_length=2)
  res = _run("configs/specdec_consistency.py:quick", overrides, d / "consistency")
  recs = {r["scheme"]: r for r in res["records"]}
  assert list(recs) == ["specinfer", "gls", "gls_strong"]
  for r in recs.values():
    assert r["num_pairs"] == 8
    for m in specdec_consistency.METRICS:
      assert 0.0 <= r[m] <= 1.0
  strong = recs["gls_strong"]
  # strong invariance: the drafter's temperature cannot change the text (no float flip here)
  assert strong["num_identical"] == strong["num_pairs"] and strong["exact_match"] == 1.0
  assert strong["rouge1"] == strong["rouge2"] == strong["rougeL"] == 1.0
  # the drafter temperature did reach the decoder: SpecInfer's text changes (measured: 1 of 8 equal)
  assert recs["specinfer"]["exact_match"] < 1.0
  assert recs["gls"]["exact_match"] <= strong["exact_match"]
  be = strong["block_efficiency_per_run"]
  assert be[0] != be[1]  # same text, different drafts accepted
  assert (d / "consistency" / "figures" / "specdec_consistency.png").is_file()
  out = _printed(specdec_consistency, d / "consistency", capsys)
  assert "| GLS (strong) | 1.000 ± 0.000 |" in out and "8 / 8" in out


@pytest.mark.parametrize("config, overrides, match", [
    ("specdec_iid", {"schemes": ("gls", "medusa")}, r"config\.schemes: unknown \['medusa'\]"),
    ("specdec_iid", {"num_drafts": (1,)}, r"config\.num_drafts needs a K >= 2"),
    ("specdec_iid", {"draft_length": 0}, r"config\.draft_length must be an int >= 1"),
    ("specdec_iid", {"prompt_format": "json"}, r"config\.prompt_format must be one of"),
    ("specdec_iid", {"prompts": "mbpp"}, r"config\.prompts must be 'humaneval' or 'jsonl:PATH'"),
    ("specdec_iid", {"drafter": "tiny"}, r"config\.drafter: unknown drafter spec"),
    ("specdec_iid", {"drafter": "early_exit_block:4"}, r"config\.drafter: .* is trained by"),
    ("specdec_iid", {"target": "llama-7b"}, r"config\.target: unknown model spec"),
    ("specdec_iid", {"timing_seeds": 3}, r"config\.timing_seeds \(3\) must be <="),
    ("specdec_iid", {"prng_impl": "rbg"}, r"config\.prng_impl must be 'threefry2x32'"),
    ("specdec_diverse", {"schemes": ("spectr",)}, r"config\.schemes: \['spectr'\] not allowed"),
    ("specdec_diverse", {"temperature_pairs": ((1.0,),)}, r"config\.temperature_pairs: every"),
    ("specdec_diverse", {"temperature_pairs": ((1.0, -1.0),)},
     r"config\.temperature_pairs must be a finite number > 0"),
    ("specdec_matching", {"top_k": 0}, r"config\.top_k must be in \[1, 512\]"),
    ("specdec_matching", {"num_drafts": ()}, r"config\.num_drafts and config\.draft_temperatu"),
    ("specdec_matching", {"draft_temperature_pairs": ((1.0,),)}, r"draft_temperature_pairs: every"),
    ("specdec_matching", {"num_mc_samples": 0}, r"config\.num_mc_samples must be an int >= 1"),
    ("specdec_consistency", {"drafter_temperatures": (1.0,)},
     r"config\.drafter_temperatures must hold two"),
    ("specdec_consistency", {"prompt_indices": (1, 1)}, r"config\.prompt_indices has duplicates"),
])
def test_bad_config_names_the_field(config, overrides, match):
  with pytest.raises(ValueError, match=match):
    runner.load_experiment(f"configs/{config}.py:quick", overrides)


def test_missing_prompt_file_and_out_of_range_indices(tiny, tmp_path):
  _, common = tiny
  with pytest.raises(FileNotFoundError, match=r"config\.prompts: prompt file .*nope\.jsonl"):
    runner.load_experiment("configs/specdec_iid.py:quick",
                           dict(common, prompts=f"jsonl:{tmp_path / 'nope.jsonl'}"))
  exp = runner.load_experiment("configs/specdec_consistency.py:quick",
                               dict(common, prompt_indices=(0, 9)))
  with pytest.raises(ValueError, match=r"config\.prompt_indices: indices \[9\] out of range; "
                                       r".* has 6 prompts"):
    runner.run(exp, tmp_path / "w", progress=False)


def test_printer_refuses_other_studies_results(tiny, capsys):
  d, _ = tiny
  if not (d / "iid" / "results.json").is_file():
    pytest.skip("needs test_iid_study's results")
  assert specdec_matching.main([str(d / "iid")]) == 1
  assert "holds results of the 'specdec_iid' study" in capsys.readouterr().err


def test_sequence_keys_do_not_depend_on_the_scheme():
  import jax
  key = jax.random.key(0)
  a = specdec_common.sequence_key(key, 1, 7)
  b = jax.random.fold_in(jax.random.fold_in(key, 1), 7)
  np.testing.assert_array_equal(jax.random.key_data(a), jax.random.key_data(b))


@pytest.mark.parametrize("name", ["specdec_iid", "specdec_diverse", "specdec_matching",
                                  "specdec_consistency"])
def test_qwen_variants(name):
  """Every speculative-decoding config has :qwen_quick and :qwen on the Qwen2.5-Coder pair,
  validated with its sweep; the quick variant is the small one, :qwen the paper's protocol."""
  quick = runner.load_experiment(f"{name}:qwen_quick")
  full = runner.load_experiment(f"{name}:qwen")
  smol = runner.load_experiment(f"{name}:quick")
  for exp in (quick, full):
    assert exp.config.target == specdec_common.QWEN_TARGET == "qwen2.5-coder-1.5b"
    assert exp.config.drafter == specdec_common.QWEN_DRAFTER == "model:qwen2.5-coder-0.5b"
    assert exp.sweep
  assert smol.config.target == "smollm2-135m"
  # the same study and fields (so the same printers), other sizes
  assert set(quick.config.keys()) == set(smol.config.keys()) == set(full.config.keys())
  assert quick.config.prompt_indices == (114, 131, 140) and quick.config.max_new_tokens == 32
  assert full.config.prompt_indices == () and full.config.num_seeds == 5
  assert full.config.max_new_tokens == 128
  # bfloat16 on the CPU (the fast dtype with bfloat16 matrix units), "auto" (bfloat16) on a GPU
  assert quick.config.dtype == "bfloat16" and full.config.dtype == "auto"
  assert quick.config.name == f"{name}_qwen_quick" and full.config.name == f"{name}_qwen"
