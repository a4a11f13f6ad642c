# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of lcoupling.bounds: closed forms, the exact GLS acceptance, the LP optimum.

Statistical tests compare an exact probability with a Monte-Carlo frequency of
``lcoupling.gls_sample`` over ``n`` keys ``fold_in(key, i)`` and require
``|exact - mc| <= 4 * SE`` with ``SE = sqrt(a (1 - a) / n)``: a two-sided
test at significance level ``alpha ~ 6.3e-5`` per comparison (fixed seeds, so
the outcome is deterministic).

Float64 checks run inside ``jax.enable_x64(True)`` (a context manager, so x64
never leaks into other tests).
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

import lcoupling
from lcoupling import bounds

X64 = functools.partial(jax.enable_x64, True)
Z_MAX = 4.0  # standard errors allowed in Monte-Carlo comparisons (alpha ~ 6.3e-5 each)


def _dirichlet(rng, n, alpha=1.0, size=None):
  return rng.dirichlet(np.full(n, alpha), size=size)


def _with_zeros(rng, p, frac):
  p = p.copy()
  p[rng.random(p.shape) < frac] = 0.0
  if p.sum() == 0:
    p[0] = 1.0
  return p / p.sum(axis=-1, keepdims=True)


def _log(p):
  p = np.asarray(p, np.float64)
  return np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -np.inf)


def _lml_bruteforce(p, q, k):
  """The LML exactly as written in docs/method.md §2.1: O(N^2) float64 NumPy."""
  total = 0.0
  for j in range(len(q)):
    if p[j] > 0 and q[j] > 0:
      denom = np.sum(np.maximum(q / q[j], p / p[j]) + (k - 1) * q / q[j])
      total += k / denom
  return total


def _diverse_lml_bruteforce(ps, q):
  k = ps.shape[0]
  total = 0.0
  for j in range(len(q)):
    for p in ps:
      if p[j] > 0 and q[j] > 0:
        total += 1.0 / (np.sum(np.maximum(q / q[j], p / p[j])) + (k - 1) / q[j])
  return total


def _lp_optimum(ps, q):
  """SpecTr's optimal-transport LP: max sum pi(x, y) 1{y in x} with the two marginals."""
  k, n = ps.shape
  tuples = list(itertools.product(range(n), repeat=k))
  nx = len(tuples)
  c = np.zeros(nx * n)
  a_eq = np.zeros((nx + n, nx * n))
  b_eq = np.zeros(nx + n)
  for xi, x in enumerate(tuples):
    a_eq[xi, xi * n:(xi + 1) * n] = 1.0
    b_eq[xi] = np.prod([ps[kk, x[kk]] for kk in range(k)])
    for y in set(x):
      c[xi * n + y] = -1.0
  for y in range(n):
    a_eq[nx + y, y::n] = 1.0
    b_eq[nx + y] = q[y]
  # The last y-marginal equation is implied by the others (both sides sum to 1);
  # dropping it keeps rounding from making the system infeasible.
  res = linprog(c, A_eq=a_eq[:-1], b_eq=b_eq[:-1], bounds=(0, None), method="highs")
  assert res.status == 0, res.message
  return -res.fun


@functools.lru_cache(maxsize=None)
def _mc_fn(num_drafts, n, num_samples):
  def one(key, lp, lq, i):
    return lcoupling.gls_sample(jax.random.fold_in(key, i), lp, lq, num_drafts=num_drafts).accepted

  chunk = min(num_samples, 2**16)  # bounds the [chunk, K, N] race table in memory
  assert num_samples % chunk == 0
  idx = jnp.arange(num_samples, dtype=jnp.uint32).reshape(-1, chunk)

  def run(key, lp, lq):
    hits = jax.lax.map(
        lambda i: jnp.sum(jax.vmap(one, in_axes=(None, None, None, 0))(key, lp, lq, i)), idx)
    return jnp.sum(hits) / num_samples

  return jax.jit(run)


def _monte_carlo(seed, p, q, num_drafts, num_samples):
  lp = jnp.asarray(_log(p), jnp.float32)
  lq = jnp.asarray(_log(q), jnp.float32)
  fn = _mc_fn(num_drafts, q.shape[-1], num_samples)
  return float(fn(jax.random.key(seed), lp, lq))


def _assert_mc(exact, p, q, num_drafts, num_samples, seed):
  freq = _monte_carlo(seed, p, q, num_drafts, num_samples)
  se = np.sqrt(max(exact * (1 - exact), 1e-12) / num_samples)
  assert abs(freq - exact) <= Z_MAX * se, (exact, freq, (freq - exact) / se)


# --------------------------------------------------------------------------
# Optimal acceptance vs the LP.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n,k", [(2, 1), (3, 2), (4, 3), (5, 2), (5, 3)])
def test_optimal_acceptance_matches_lp(n, k):
  rng = np.random.default_rng(100 + 10 * n + k)
  with X64():
    for trial in range(3):
      alpha = (1.0, 0.3, 1.0)[trial]
      p, q = _dirichlet(rng, n, alpha), _dirichlet(rng, n, alpha)
      if trial == 2:
        p, q = _with_zeros(rng, p, 0.3), _with_zeros(rng, q, 0.3)
      iid = float(bounds.optimal_acceptance(p, q, num_drafts=k))
      np.testing.assert_allclose(iid, _lp_optimum(np.stack([p] * k), q), atol=1e-8)
      ps = _dirichlet(rng, n, alpha, size=k)
      div = float(bounds.optimal_acceptance(ps, q))
      np.testing.assert_allclose(div, _lp_optimum(ps, q), atol=1e-8)
      np.testing.assert_allclose(float(bounds.optimal_acceptance(ps, q, num_drafts=k)), div)


def test_optimal_acceptance_k1_is_maximal_coupling():
  rng = np.random.default_rng(1)
  with X64():
    for _ in range(5):
      p, q = _dirichlet(rng, 7), _dirichlet(rng, 7)
      np.testing.assert_allclose(float(bounds.optimal_acceptance(p, q, 1)),
                                 float(bounds.maximal_coupling_probability(p, q)), atol=1e-12)


# --------------------------------------------------------------------------
# Closed-form bounds.
# --------------------------------------------------------------------------


def test_lml_matches_bruteforce_formula():
  rng = np.random.default_rng(2)
  with X64():
    for n, alpha, zeros in [(8, 1.0, 0.0), (8, 0.2, 0.3), (30, 1.0, 0.2)]:
      p = _with_zeros(rng, _dirichlet(rng, n, alpha), zeros)
      q = _with_zeros(rng, _dirichlet(rng, n, alpha), zeros)
      for k in (1, 3, 8):
        np.testing.assert_allclose(float(bounds.list_matching_lemma(p, q, k)),
                                   _lml_bruteforce(p, q, k), rtol=1e-12)
    # Ties in r = q / p.
    p = np.array([0.2, 0.2, 0.1, 0.5])
    q = np.array([0.1, 0.1, 0.05, 0.75])
    np.testing.assert_allclose(float(bounds.list_matching_lemma(p, q, 2)),
                               _lml_bruteforce(p, q, 2), rtol=1e-12)


def test_lml_exact_cases():
  rng = np.random.default_rng(3)
  with X64():
    p, q = _dirichlet(rng, 9), _dirichlet(rng, 9)
    np.testing.assert_allclose(float(bounds.list_matching_lemma(p, q, 1)),
                               float(bounds.gumbel_match_probability(p, q)), rtol=1e-14)
    for k in (1, 2, 5):
      np.testing.assert_allclose(float(bounds.list_matching_lemma(p, p, k)), 1.0, atol=1e-14)
      point = np.eye(9)[0]
      np.testing.assert_allclose(float(bounds.list_matching_lemma(point, q, k)), q[0], atol=1e-14)


def test_two_party_orderings():
  rng = np.random.default_rng(4)
  with X64():
    for n, alpha in [(2, 1.0), (5, 1.0), (10, 0.3), (40, 2.0)]:
      for _ in range(10):
        p = _with_zeros(rng, _dirichlet(rng, n, alpha), 0.1)
        q = _with_zeros(rng, _dirichlet(rng, n, alpha), 0.1)
        d = float(bounds.total_variation(p, q))
        gumbel = float(bounds.gumbel_match_probability(p, q))
        np.testing.assert_allclose(d, 0.5 * np.abs(p - q).sum(), rtol=1e-12)
        np.testing.assert_allclose(float(bounds.maximal_coupling_probability(p, q)), 1 - d,
                                   atol=1e-12)
        daliri = float(bounds.daliri_bound(p, q))
        np.testing.assert_allclose(daliri, (1 - d) / (1 + d), rtol=1e-12)
        jaccard = float(bounds.weighted_jaccard(p, q))
        np.testing.assert_allclose(jaccard, np.minimum(p, q).sum() / np.maximum(p, q).sum(),
                                   rtol=1e-12)
        np.testing.assert_allclose(jaccard, daliri, rtol=1e-12)
        minhash = float(bounds.weighted_minhash_match_probability(p, q))
        m = np.minimum(p, q)
        np.testing.assert_allclose(minhash, (m * (1 + np.abs(p - q))).sum() / np.maximum(p, q).sum(),
                                   rtol=1e-12)
        assert jaccard <= minhash + 1e-12
        assert daliri <= gumbel + 1e-12
        assert minhash <= gumbel + 1e-12
        assert gumbel <= 1 - d + 1e-12


def test_conditional_lml():
  with X64():
    p = np.array([0.5, 0.3, 0.2, 0.0, 0.0])
    q = np.array([0.25, 0.0, 0.25, 0.5, 0.0])
    c = np.asarray(bounds.conditional_list_matching_lemma(p, q, 2))
    np.testing.assert_allclose(c, [1.0 / 1.25, 1.0, 0.4 / 0.65, 0.0, 0.0], rtol=1e-14)
    rng = np.random.default_rng(5)
    for k in (1, 4):
      p, q = _dirichlet(rng, 8), _dirichlet(rng, 8)
      c = np.asarray(bounds.conditional_list_matching_lemma(p, q, k))
      np.testing.assert_allclose(c, 1.0 / (1.0 + q / (k * p)), rtol=1e-13)
      # Averaged, it is weaker than the LML.
      assert np.sum(q * c) <= float(bounds.list_matching_lemma(p, q, k)) + 1e-12


def test_diverse_lml_and_strong_invariance():
  rng = np.random.default_rng(6)
  with X64():
    q = _dirichlet(rng, 10)
    ps = _with_zeros(rng, _dirichlet(rng, 10, size=3), 0.2)
    np.testing.assert_allclose(float(bounds.diverse_list_matching_lemma(ps, q)),
                               _diverse_lml_bruteforce(ps, q), rtol=1e-12)
    p = ps[0]
    same = np.stack([p] * 3)
    np.testing.assert_allclose(float(bounds.diverse_list_matching_lemma(same, q)),
                               float(bounds.list_matching_lemma(p, q, 3)), rtol=1e-12)
    lml = float(bounds.list_matching_lemma(p, q, 4))
    np.testing.assert_allclose(float(bounds.strong_invariance_bound(p, q, 4, 4)), lml, rtol=1e-14)
    np.testing.assert_allclose(float(bounds.strong_invariance_bound(p, q, 4, 1)), lml / 4,
                               rtol=1e-14)


# --------------------------------------------------------------------------
# Exact GLS acceptance.
# --------------------------------------------------------------------------


def test_gls_exact_special_cases():
  rng = np.random.default_rng(7)
  with X64():
    p, q = _dirichlet(rng, 8), _dirichlet(rng, 8)
    np.testing.assert_allclose(float(bounds.gls_acceptance_probability(p, q, 1)),
                               float(bounds.gumbel_match_probability(p, q)), rtol=1e-14)
    for k in (1, 2, 8):
      np.testing.assert_allclose(float(bounds.gls_acceptance_probability(p, p, k)), 1.0, atol=1e-13)
      point = np.eye(8)[3]
      np.testing.assert_allclose(float(bounds.gls_acceptance_probability(point, q, k)), q[3],
                                 atol=1e-13)
    # p = q with zero-mass symbols.
    pz = _with_zeros(rng, p, 0.4)
    np.testing.assert_allclose(float(bounds.gls_acceptance_probability(pz, pz, 8)), 1.0, atol=1e-13)


def test_gls_matches_k2_closed_form():
  rng = np.random.default_rng(8)
  with X64():
    for n, alpha, zeros in [(8, 1.0, 0.0), (8, 0.1, 0.0), (8, 1.0, 0.3), (200, 0.5, 0.1)]:
      p = _with_zeros(rng, _dirichlet(rng, n, alpha), zeros)
      q = _with_zeros(rng, _dirichlet(rng, n, alpha), zeros)
      for a, b in [(p, q), (p, 0.9 * p + 0.1 * q)]:
        np.testing.assert_allclose(float(bounds.gls_acceptance_probability(a, b, 2)),
                                   float(bounds.gls_acceptance_probability_k2(a, b)), atol=1e-13)


def test_gls_quadrature_converged():
  rng = np.random.default_rng(9)
  with X64():
    p, q = _dirichlet(rng, 8, 0.2), _dirichlet(rng, 8, 0.2)
    ref = float(bounds.gls_acceptance_probability(p, q, 8, step=0.1))
    np.testing.assert_allclose(float(bounds.gls_acceptance_probability(p, q, 8)), ref, atol=1e-13)
    ps = _dirichlet(rng, 8, 0.2, size=3)
    ref = float(bounds.gls_acceptance_probability(ps, q, step=0.1))
    np.testing.assert_allclose(float(bounds.gls_acceptance_probability(ps, q)), ref, atol=1e-13)
  # float32 default grid (coarser) vs a fine grid.
  p32, q32 = np.float32(p), np.float32(q)
  np.testing.assert_allclose(float(bounds.gls_acceptance_probability(p32, q32, 8)),
                             float(bounds.gls_acceptance_probability(p32, q32, 8, step=0.1)),
                             atol=1e-6)


def test_gls_between_lml_and_optimum():
  rng = np.random.default_rng(10)
  with X64():
    n = 8
    for alpha in (1.0, 0.3, 2.0):
      for _ in range(4):
        p = _with_zeros(rng, _dirichlet(rng, n, alpha), 0.1)
        q = _with_zeros(rng, _dirichlet(rng, n, alpha), 0.1)
        for k in (2, 8):
          exact = float(bounds.gls_acceptance_probability(p, q, k))
          assert float(bounds.list_matching_lemma(p, q, k)) <= exact + 1e-13
          assert exact <= float(bounds.optimal_acceptance(p, q, k)) + 1e-12
        ps = _with_zeros(rng, _dirichlet(rng, n, alpha, size=3), 0.1)
        exact = float(bounds.gls_acceptance_probability(ps, q))
        assert float(bounds.diverse_list_matching_lemma(ps, q)) <= exact + 1e-13
        assert exact <= float(bounds.optimal_acceptance(ps, q)) + 1e-12


@pytest.mark.parametrize("k", [1, 2, 3, 12])  # 12: the associative-scan path (K > 8)
def test_gls_diverse_identical_rows_equal_iid(k):
  rng = np.random.default_rng(11 + k)
  with X64():
    p = _with_zeros(rng, _dirichlet(rng, 8, 0.5), 0.2)
    q = _with_zeros(rng, _dirichlet(rng, 8, 0.5), 0.2)
    np.testing.assert_allclose(float(bounds.gls_acceptance_probability(np.stack([p] * k), q)),
                               float(bounds.gls_acceptance_probability(p, q, k)), atol=1e-13)


def test_gls_zero_mass_is_continuous():
  """Zero entries are masked correctly: the value is the limit of tiny masses."""
  rng = np.random.default_rng(12)
  with X64():
    p, q = _dirichlet(rng, 9), _dirichlet(rng, 9)
    p[[1, 4, 5]] = 0.0  # in q's support only
    q[[2, 5, 7]] = 0.0  # in p's support only; symbol 5 in neither
    p, q = p / p.sum(), q / q.sum()
    eps = 1e-13
    pe, qe = (p + eps) / (1 + 9 * eps), (q + eps) / (1 + 9 * eps)
    for k in (2, 8):
      np.testing.assert_allclose(float(bounds.gls_acceptance_probability(p, q, k)),
                                 float(bounds.gls_acceptance_probability(pe, qe, k)), atol=1e-9)
      ps = np.stack([p, np.roll(p, 1), np.roll(p, 2)])
      pse = np.stack([pe, np.roll(pe, 1), np.roll(pe, 2)])
      np.testing.assert_allclose(float(bounds.gls_acceptance_probability(ps, q)),
                                 float(bounds.gls_acceptance_probability(pse, qe)), atol=1e-9)
    # A symbol in neither support can be dropped.
    keep = np.arange(9) != 5
    np.testing.assert_allclose(float(bounds.gls_acceptance_probability(p, q, 8)),
                               float(bounds.gls_acceptance_probability(p[keep], q[keep], 8)),
                               atol=1e-14)


_MC_CASES = [  # (n, k, diverse, zeros)
    (5, 1, False, 0.0),
    (5, 3, False, 0.0),
    (6, 2, True, 0.0),
    (7, 4, False, 0.3),
    (6, 3, True, 0.3),
]


@pytest.mark.parametrize("case", range(len(_MC_CASES)))
def test_gls_matches_monte_carlo(case):
  n, k, diverse, zeros = _MC_CASES[case]
  rng = np.random.default_rng(13 + case)
  p = _with_zeros(rng, _dirichlet(rng, n, size=k if diverse else None), zeros)
  q = _with_zeros(rng, _dirichlet(rng, n), zeros)
  with X64():
    exact = float(bounds.gls_acceptance_probability(p, q, k))
  _assert_mc(exact, p, q, k, num_samples=2**18, seed=case)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_gls_matches_monte_carlo_large(seed):
  rng = np.random.default_rng(1000 + seed)
  n = int(rng.integers(3, 30))
  k = int(rng.integers(2, 9))
  alpha = float(rng.choice([0.2, 1.0, 3.0]))
  q = _with_zeros(rng, _dirichlet(rng, n, alpha), 0.15)
  for diverse in (False, True):
    p = _with_zeros(rng, _dirichlet(rng, n, alpha, size=k if diverse else None), 0.15)
    with X64():
      exact = float(bounds.gls_acceptance_probability(p, q, k))
    _assert_mc(exact, p, q, k, num_samples=2**21, seed=100 + seed)


def test_jit_and_vmap():
  rng = np.random.default_rng(14)
  p = np.float32(_dirichlet(rng, 9, size=4))
  q = np.float32(_dirichlet(rng, 9, size=4))
  eager = np.array([float(bounds.gls_acceptance_probability(p[i], q[i], 3)) for i in range(4)])
  jitted = jax.jit(bounds.gls_acceptance_probability, static_argnames="num_drafts")
  np.testing.assert_allclose(float(jitted(p[0], q[0], num_drafts=3)), eager[0], rtol=1e-6)
  batched = jax.jit(jax.vmap(lambda a, b: bounds.gls_acceptance_probability(a, b, 3)))(p, q)
  np.testing.assert_allclose(np.asarray(batched), eager, rtol=1e-6)
  # Diverse proposals, vmapped over pairs.
  ps = np.float32(_dirichlet(rng, 9, size=(4, 2)))
  eager = np.array([float(bounds.gls_acceptance_probability(ps[i], q[i])) for i in range(4)])
  np.testing.assert_allclose(np.asarray(jax.vmap(bounds.gls_acceptance_probability)(ps, q)), eager,
                             rtol=1e-6)
  # The closed forms too.
  for fn in (bounds.gumbel_match_probability, bounds.daliri_bound,
             bounds.gls_acceptance_probability_k2,
             lambda a, b: bounds.list_matching_lemma(a, b, 3),
             lambda a, b: bounds.optimal_acceptance(a, b, 3)):
    eager = np.array([float(fn(p[i], q[i])) for i in range(4)])
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(fn))(p, q)), eager, rtol=1e-6)


def test_dtypes():
  p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
  assert bounds.gls_acceptance_probability(p, q, 2).dtype == jnp.float32
  assert bounds.list_matching_lemma(p, q, 2).dtype == jnp.float32
  with X64():
    assert bounds.gls_acceptance_probability(np.float32(p), q, 2).dtype == jnp.float64
    assert bounds.optimal_acceptance(p, q, 2).dtype == jnp.float64
    assert bounds.conditional_list_matching_lemma(p, q, 2).dtype == jnp.float64


def test_float32_large_alphabet_matches_float64():
  """float32, N = 1e5, K = 8: |f32 - f64| <= 1e-6 (measured max ~1.2e-7)."""
  rng = np.random.default_rng(15)
  n = 100_000
  for alpha, mix in [(1.0, None), (0.05, 0.1)]:
    p = _with_zeros(rng, _dirichlet(rng, n, alpha), 0.05)
    q = _dirichlet(rng, n, alpha)
    if mix is not None:
      q = (1 - mix) * p + mix * q
    with X64():
      v64 = float(bounds.gls_acceptance_probability(p, q, 8))
    v32 = float(bounds.gls_acceptance_probability(np.float32(p), np.float32(q), 8))
    assert abs(v32 - v64) <= 1e-6, (v32, v64)


@pytest.mark.slow
def test_float32_large_alphabet_diverse_matches_float64():
  rng = np.random.default_rng(16)
  n = 100_000
  ps = _with_zeros(rng, _dirichlet(rng, n, 0.3, size=2), 0.05)
  q = 0.8 * ps[0] + 0.2 * _dirichlet(rng, n, 0.3)
  with X64():
    v64 = float(bounds.gls_acceptance_probability(ps, q))
  v32 = float(bounds.gls_acceptance_probability(np.float32(ps), np.float32(q)))
  assert abs(v32 - v64) <= 1e-6, (v32, v64)


# --------------------------------------------------------------------------
# Validation.
# --------------------------------------------------------------------------


def test_validation_errors_name_the_argument():
  p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
  with pytest.raises(ValueError, match="^p has negative"):
    bounds.list_matching_lemma(np.array([1.5, -0.5]), q, 2)
  with pytest.raises(ValueError, match="^q contains NaN"):
    bounds.gumbel_match_probability(p, np.array([np.nan, 1.0]))
  with pytest.raises(ValueError, match="^q must sum to 1"):
    bounds.total_variation(p, np.array([0.5, 0.6]))
  with pytest.raises(ValueError, match="^p must sum to 1"):
    bounds.gls_acceptance_probability(np.array([[0.5, 0.5], [0.5, 0.4]]), q)
  with pytest.raises(ValueError, match="^p and q must share the alphabet"):
    bounds.daliri_bound(p, np.array([0.2, 0.3, 0.5]))
  with pytest.raises(ValueError, match="^num_drafts must be >= 1, got 0"):
    bounds.gls_acceptance_probability(p, q, 0)
  with pytest.raises(TypeError, match="^num_drafts must be a Python int"):
    bounds.list_matching_lemma(p, q, 2.0)
  with pytest.raises(ValueError, match="num_drafts is required"):
    bounds.gls_acceptance_probability(p, q)
  with pytest.raises(ValueError, match="^p has 2 rows .* num_drafts=3"):
    bounds.optimal_acceptance(np.stack([p, p]), q, 3)
  with pytest.raises(ValueError, match="^p must have rank 1"):
    bounds.list_matching_lemma(np.stack([p, p]), q, 2)
  with pytest.raises(ValueError, match="^q must have rank 1"):
    bounds.gls_acceptance_probability(p, np.stack([q, q]), 2)
  with pytest.raises(ValueError, match="^ps must have rank 2"):
    bounds.diverse_list_matching_lemma(p, q)
  with pytest.raises(ValueError, match="^num_active must be <= num_drafts"):
    bounds.strong_invariance_bound(p, q, 2, 3)
  with pytest.raises(ValueError, match="^num_active must be >= 1"):
    bounds.strong_invariance_bound(p, q, 2, 0)
  with pytest.raises(ValueError, match="^step must be in"):
    bounds.gls_acceptance_probability(p, q, 2, step=0.0)
  big = np.full(17, 1 / 17)
  with pytest.raises(ValueError, match="N=17 symbols, the limit is N <= 16"):
    bounds.optimal_acceptance(big, big, 2)
  # Sums within the tolerance are accepted.
  float(bounds.list_matching_lemma(p * (1 + 5e-5), q, 2))
