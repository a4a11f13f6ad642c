# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the Gaussian compression study (configs/gaussian.py, docs/method.md §5.2)."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from lcoupling import parallel, runner
from lcoupling import results as results_lib
from lcoupling.compression import codec as C
from lcoupling.studies import gaussian as G

REPO = pathlib.Path(__file__).resolve().parent.parent


def _config_module():
  spec = importlib.util.spec_from_file_location("gaussian_config", REPO / "configs" / "gaussian.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def _tiny_config(**kw):
  c = _config_module().get_config("quick")
  c.num_codewords = 256
  c.num_decoders = 2
  c.num_bins = (2, 8)
  c.sigma2_w_given_a_grid = (0.01, 0.003)
  c.num_selection_trials = 12
  c.num_eval_trials = 20
  c.num_repeats = 2
  c.chunk_size = 8
  for k, v in kw.items():
    c[k] = v
  return c


def test_config_variants_and_sweep():
  mod = _config_module()
  full = mod.get_config()
  assert full.num_codewords == 2 ** 15 and full.sigma2_t_given_a == 0.5
  assert tuple(full.num_bins) == (2, 4, 8, 16, 32, 64) and full.num_decoders == 4
  assert len(full.sigma2_w_given_a_grid) == 7
  assert (full.num_selection_trials, full.num_eval_trials, full.num_repeats) == (10_000, 100_000, 10)
  assert full.prng_impl == "threefry2x32"
  assert mod.get_sweep(full) == [{"repeat": r} for r in range(10)]
  G.validate(full)
  G.validate(mod.get_config("quick"))
  with pytest.raises(ValueError, match="unknown variant"):
    mod.get_config("bogus")


@pytest.mark.parametrize("field,value,match", [
    ("num_bins", (2, 6), "power of two"),
    ("num_decoders", 0, "num_decoders"),
    ("num_codewords", 0, "num_codewords"),
    ("sigma2_w_given_a_grid", (0.01, -1.0), "sigma2_w_given_a_grid"),
    ("sigma2_t_given_a", 0.0, "sigma2_t_given_a"),
    ("num_eval_trials", 0, "num_eval_trials"),
    ("prng_impl", "philox", "prng_impl"),
])
def test_validate_errors(field, value, match):
  c = _tiny_config()
  c[field] = value
  with pytest.raises(ValueError, match=match):
    G.validate(c)


def test_closed_forms_match_scipy():
  rng = np.random.default_rng(0)
  u = rng.normal(size=50) * 1.1
  a, t, s2, s2ta = 0.3, -0.2, 0.006, 0.5
  s2w, s2t = 1 + s2, 1 + s2ta
  v = s2w - 1 / s2t
  enc = np.asarray(G.quadratic_log_weight(jnp.asarray(u, jnp.float32), G.encoder_coeffs(a, s2)))
  ref = stats.norm.logpdf(u, a, math.sqrt(s2)) - stats.norm.logpdf(u, 0, math.sqrt(s2w))
  np.testing.assert_allclose(enc - enc[0], ref - ref[0], rtol=2e-4, atol=2e-3)
  dec = np.asarray(G.quadratic_log_weight(jnp.asarray(u, jnp.float32), G.decoder_coeffs(t, s2, s2ta)))
  ref = stats.norm.logpdf(u, t / s2t, math.sqrt(v)) - stats.norm.logpdf(u, 0, math.sqrt(s2w))
  np.testing.assert_allclose(dec - dec[0], ref - ref[0], rtol=2e-4, atol=2e-3)
  info = np.asarray(G.info_bits(jnp.asarray(u, jnp.float32), a, t, s2, s2ta))
  ref = (stats.norm.logpdf(u, a, math.sqrt(s2)) - stats.norm.logpdf(u, t / s2t, math.sqrt(v))) / math.log(2)
  np.testing.assert_allclose(info, ref, rtol=1e-4, atol=1e-2)
  # p_{W|T} is the marginal of W given T: check by simulation of the joint.
  aa = rng.normal(size=200_000)
  w = aa + math.sqrt(s2) * rng.normal(size=aa.size)
  tt = aa + math.sqrt(s2ta) * rng.normal(size=aa.size)
  beta = np.cov(w, tt)[0, 1] / np.var(tt)
  assert beta == pytest.approx(1 / s2t, abs=0.01)
  assert np.var(w - beta * tt) == pytest.approx(v, rel=0.02)
  # MMSE reconstruction: the linear estimator of A from (W, T).
  X = np.stack([w, tt], 1)
  coef = np.linalg.lstsq(X, aa, rcond=None)[0]
  den = s2 * s2ta + s2ta + s2
  np.testing.assert_allclose(coef, [s2ta / den, s2 / den], atol=0.01)


def test_trial_indices_equal_codec_per_cell():
  """The study's blocked trial == the codec with the same key, for every cell.

  Every (scheme, K', L_max, decoder) is compared with ``codec.nested_evaluate``
  (one compilation per sigma2), which test_compression.py's
  ``test_nested_equals_separate_runs`` proves equal to ``encoder_index`` /
  ``decoder_index`` run cell by cell; one cell per sigma2 is also run through
  those directly.
  """
  n, k_max, rates, grid = 256, 2, (2, 64), (0.01, 0.003)
  key = jax.random.fold_in(jax.random.key(7), 3)
  r = G.trial_indices(key, num_codewords=n, max_bins=64, num_decoders=k_max, rates=rates,
                      sigma2_grid=grid, sigma2_t_given_a=0.5, capacity=C.bin_capacity(n, 64))
  ck, a, t = jax.random.fold_in(key, 0), r["a"], r["t"]
  scales = np.asarray(G.codeword_scales(grid))
  for si, s2 in enumerate(grid):
    s2f = jnp.float32(s2)
    prior = functools.partial(G.scaled_normal_prior, scale=float(scales[si]))
    spec = C.CodecSpec(n, k_max, 64, "gls", prior)
    enc = G.encoder_coeffs(a, s2f)
    c1, c2 = G.decoder_coeffs(t, s2f, 0.5)  # decoder d's coefficients: (c1[d], c2)
    res = C.nested_evaluate(ck, spec, G.quadratic_log_weight, enc, G.quadratic_log_weight,
                            (c1, jnp.broadcast_to(c2, c1.shape)), rates=rates)
    np.testing.assert_array_equal(res.gls_encoder, r["gls_enc"][si])
    np.testing.assert_array_equal(res.gls_decoder, r["gls_dec"][si])
    assert int(res.baseline_encoder) == int(r["bl_enc"][si])
    np.testing.assert_array_equal(res.baseline_decoder, r["bl_dec"][si])
    # Directly: GLS with K' = K, the highest rate, the last decoder.
    y, lab = C.encoder_index(ck, spec, G.quadratic_log_weight, enc)
    assert int(y) == int(r["gls_enc"][si, k_max - 1])
    x = C.decoder_index(ck, spec, lab, G.quadratic_log_weight,
                        G.decoder_coeffs(t[k_max - 1], s2f, 0.5), num_bins=rates[-1],
                        decoder=k_max - 1)
    assert int(x) == int(r["gls_dec"][si, k_max - 1, len(rates) - 1, k_max - 1])


def test_evaluate_independent_of_chunking_and_overflow_fallback(monkeypatch):
  c = _tiny_config()
  key = jax.random.key(1)
  ref = G.evaluate_trials(key, c, 13)
  other = G.evaluate_trials(key, _tiny_config(chunk_size=5), 13)
  for f in ("match", "match_prior"):  # same per-trial values; float64 sums in another order
    np.testing.assert_array_equal(ref[f], other[f])
  for f in ("db", "sq", "bound"):
    np.testing.assert_allclose(ref[f], other[f], rtol=1e-12)
  # Vectorising whole chunks (accelerators): same choices, float32 rounding of the errors.
  vec = G.evaluate_trials(key, _tiny_config(chunk_size=5, trial_batch=0), 13)
  for f in ("match", "match_prior"):
    np.testing.assert_array_equal(ref[f], vec[f])
  for f in ("db", "sq", "bound"):
    np.testing.assert_allclose(ref[f], vec[f], rtol=1e-5)
  monkeypatch.setattr(G.codec, "bin_capacity", lambda n, l: 2)  # every trial overflows
  G.trial_fn.cache_clear()
  fallback = G.evaluate_trials(key, c, 13)
  G.trial_fn.cache_clear()
  for f in ("match", "match_prior"):
    np.testing.assert_array_equal(ref[f], fallback[f])
  for f in ("db", "sq", "bound"):
    np.testing.assert_allclose(ref[f], fallback[f], rtol=1e-5)


def test_run_point_summarize_plot_table(tmp_path):
  c = _tiny_config()
  key = jax.random.key(c.seed, impl=c.prng_impl)
  pts = [G.run_point(key, c, p, mesh=parallel.trial_mesh()) for p in _config_module().get_sweep(c)]
  assert len(pts[0]) == 2 * 2 * 2
  assert pts[0][0]["distortion_db"] != pts[1][0]["distortion_db"]  # repeats use other keys
  again = G.run_point(key, c, {"repeat": 1})
  assert [r["distortion_db"] for r in again] == [r["distortion_db"] for r in pts[1]]
  recs = G.summarize(c, pts)
  assert len(recs) == 8
  need = {"scheme", "K", "L_max", "rate_bits", "distortion_db", "mse_db", "match_prob",
          "error_bound", "sigma2_w_given_a", "distortion_db_sem", "mse_db_sem", "match_prob_sem",
          "error_bound_sem", "match_prob_no_si"}
  for r in recs:
    assert need <= set(r)
    assert r["scheme"] in ("gls", "baseline") and 0 <= r["match_prob"] <= 1
    assert r["sigma2_w_given_a"] in c.sigma2_w_given_a_grid
  k1 = {(r["scheme"], r["L_max"]): r for r in recs if r["K"] == 1}
  for lm in (2, 8):  # K = 1: GLS == baseline exactly
    assert k1[("gls", lm)]["distortion_db"] == k1[("baseline", lm)]["distortion_db"]
  res = {"records": recs}
  table = G.markdown_table(res)
  assert "| 2 | 1 | -9.70 |" in table and "GLS K=2" in table
  paths = G.plot(res, tmp_path)
  assert {p.name for p in paths} == {"gaussian_matching.png", "gaussian_matching.pdf",
                                     "gaussian_rd.png", "gaussian_rd.pdf"}


def test_num_repeats_is_a_sweep_field(tmp_path):
  """More repeats on a finished run compute only the new repeats (the same as a direct run)."""
  tiny = {k: v for k, v in _tiny_config().items() if k in (
      "num_codewords", "num_decoders", "num_bins", "sigma2_w_given_a_grid", "num_selection_trials",
      "num_eval_trials", "chunk_size")}
  one = runner.load_experiment("gaussian:quick", {**tiny, "num_repeats": 1})
  assert one.sweep_fields == ("num_repeats",)
  first = runner.run(one, tmp_path, progress=False, figures=False)
  two = runner.load_experiment("gaussian:quick", {**tiny, "num_repeats": 2})
  both = runner.run(two, tmp_path, progress=False, figures=False)
  entries, _ = results_lib.read_jsonl(tmp_path / "results.jsonl")
  assert [e["point"] for e in entries] == [{"repeat": 0}, {"repeat": 1}]  # repeat 0 not recomputed
  key = jax.random.key(two.config.seed, impl=two.config.prng_impl)
  direct = json.loads(results_lib.dumps(G.run_point(key, two.config, {"repeat": 1})))
  untimed = lambda recs: [{k: v for k, v in r.items() if "second" not in k} for r in recs]  # noqa: E731
  assert untimed(entries[1]["records"]) == untimed(direct)
  assert first["records"][0]["num_repeats"] == 1 and both["records"][0]["num_repeats"] == 2


@pytest.mark.slow
def test_quick_run_end_to_end():
  """`:quick`: K = 1 within 0.3 dB of the paper, GLS beats the baseline at K >= 2, L_max = 2."""
  mod = _config_module()
  c = mod.get_config("quick")
  key = jax.random.key(c.seed, impl=c.prng_impl)
  pts = [G.run_point(key, c, p) for p in mod.get_sweep(c)]
  recs = G.summarize(c, pts)
  cell = {(r["scheme"], r["K"], r["L_max"]): r for r in recs}
  for lm, anchor in G.ANCHOR_DB.items():
    assert abs(cell[("gls", 1, lm)]["distortion_db"] - anchor) <= 0.3, (lm, cell[("gls", 1, lm)])
  for k in range(2, c.num_decoders + 1):
    assert cell[("gls", k, 2)]["distortion_db"] < cell[("baseline", k, 2)]["distortion_db"] - 1.0
