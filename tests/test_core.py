# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Statistical and exactness tests of lcoupling.core (style of JAX's random_lax_test).

Every statistical test states its significance level: chi-square goodness of
fit at ``ALPHA`` and Bernoulli frequencies within ``NUM_SE`` standard errors
(two-sided level about 6e-5 each). Seeds are fixed, so the suite is
deterministic; a correct implementation fails a given test with probability
about its level over the choice of seed.
"""

from __future__ import annotations

import functools
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcoupling import core, parallel

ALPHA = 1e-4  #: chi-square significance level.
NUM_SE = 4.0  #: tolerance of frequency tests, in standard errors.
NUM_KEYS = 200_000  #: keys per distributional test.
REPO = pathlib.Path(__file__).resolve().parents[1]


def _keys(seed, num):
  return jax.random.split(jax.random.key(seed), num)


def _log(p):
  p = np.asarray(p, np.float64)
  with np.errstate(divide="ignore"):
    return jnp.asarray(np.log(p), jnp.float32)


@functools.partial(jax.jit, static_argnames=("num_drafts",))
def _gls_batch(keys, draft_logits, target_logits, num_drafts):
  return jax.vmap(lambda k: core.gls_sample(k, draft_logits, target_logits, num_drafts))(keys)


# --------------------------------------------------------------------------
# Reference formulas of docs/method.md §2, in NumPy (independent of lcoupling).
# --------------------------------------------------------------------------


def lml(p, q, k):
  """List matching lemma: sum_j K / sum_i [max(q_i/q_j, p_i/p_j) + (K-1) q_i/q_j]."""
  p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
  total = 0.0
  for j in np.flatnonzero((p > 0) & (q > 0)):
    total += k / np.sum(np.maximum(q / q[j], p / p[j]) + (k - 1) * q / q[j])
  return total


def lml_diverse(ps, q):
  """sum_j sum_k [sum_i max(q_i/q_j, p^(k)_i/p^(k)_j) + (K-1)/q_j]^-1."""
  ps, q = np.asarray(ps, np.float64), np.asarray(q, np.float64)
  k = len(ps)
  total = 0.0
  for p in ps:
    for j in np.flatnonzero((p > 0) & (q > 0)):
      total += 1.0 / (np.sum(np.maximum(q / q[j], p / p[j])) + (k - 1) / q[j])
  return total


def gumbel_agreement(p, q):
  """K = 1 exact: sum_j 1 / sum_i max(q_i/q_j, p_i/p_j)."""
  return lml(p, q, 1)


def tv(p, q):
  return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum()


# --------------------------------------------------------------------------
# Reference formulas: sanity of the test's own formulas in the exact cases.
# --------------------------------------------------------------------------


def test_reference_lml_exact_cases(random_pair, rng):
  p, q = random_pair(rng, 7)
  assert lml(q, q, 5) == pytest.approx(1.0, rel=1e-12)
  point = np.eye(7)[2]
  assert lml(point, q, 3) == pytest.approx(q[2], rel=1e-12)
  assert lml_diverse([p], q) == pytest.approx(gumbel_agreement(p, q), rel=1e-12)
  assert lml_diverse([p, p, p], q) == pytest.approx(lml(p, q, 3), rel=1e-12)


# --------------------------------------------------------------------------
# GLS marginals.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("num_drafts", [1, 4])
def test_gls_marginals_iid(num_drafts, random_pair, rng, assert_chisquare):
  p, q = random_pair(rng, 8, zeros=2)
  out = _gls_batch(_keys(0, NUM_KEYS), _log(p), _log(q), num_drafts)
  drafts, target = np.asarray(out.drafts), np.asarray(out.target)
  assert drafts.shape == (NUM_KEYS, num_drafts) and drafts.dtype == np.int32
  for k in range(num_drafts):
    assert_chisquare(np.bincount(drafts[:, k], minlength=8), p, ALPHA, what=f"X[{k}]")
  assert_chisquare(np.bincount(target, minlength=8), q, ALPHA, what="Y")
  np.testing.assert_array_equal(np.asarray(out.accepted), (drafts == target[:, None]).any(1))


def test_gls_marginals_diverse(random_pair, rng, assert_chisquare):
  n, k = 7, 3
  ps = np.stack([random_pair(rng, n, zeros=1)[0] for _ in range(k)])
  q = random_pair(rng, n, zeros=2)[1]
  out = _gls_batch(_keys(1, NUM_KEYS), _log(ps), _log(q), k)
  drafts = np.asarray(out.drafts)
  for j in range(k):
    assert_chisquare(np.bincount(drafts[:, j], minlength=n), ps[j], ALPHA, what=f"X[{j}]")
  assert_chisquare(np.bincount(np.asarray(out.target), minlength=n), q, ALPHA, what="Y")


def test_gls_drafts_are_independent(random_pair, rng, assert_chisquare):
  """Pairs (X[0], X[1]) follow p x p: rows are independent races."""
  n = 5
  p, q = random_pair(rng, n)
  out = _gls_batch(_keys(2, NUM_KEYS), _log(p), _log(q), 2)
  d = np.asarray(out.drafts)
  assert_chisquare(np.bincount(d[:, 0] * n + d[:, 1], minlength=n * n), np.outer(p, p).ravel(),
                   ALPHA, what="(X0, X1)")


def test_gls_zero_mass_never_chosen_extreme_logits():
  """-inf symbols never win, even next to huge negative (finite) logits."""
  logits = jnp.array([-jnp.inf, -80.0, -jnp.inf, 0.0, -jnp.inf], jnp.float32)
  target = jnp.array([-jnp.inf, -jnp.inf, -90.0, -jnp.inf, 0.0], jnp.float32)
  out = _gls_batch(_keys(3, 50_000), logits, target, 3)
  assert set(np.unique(np.asarray(out.drafts))) <= {1, 3}
  assert set(np.unique(np.asarray(out.target))) <= {2, 4}


def test_gls_target_exact_with_tiny_mass_tail():
  """A large vocabulary whose tail has total mass 1e-6 is (almost) never sampled.

  With N = 32768 symbols of mass 3e-11 each plus one symbol of mass 1 - 1e-6,
  ``Pr[Y != 0] = 1e-6``; over 1000 samples a count above 1 has probability
  5e-7 (the level of this test). A race-time generator that can return S = 0
  exactly (probability 2**-23 per entry with 23-bit uniforms) makes such a
  symbol win regardless of its mass: about N*K*2**-23 = 3% of the samples.
  """
  n, k, num = 32768, 8, 1000
  logits = np.full(n, np.log(1e-6 / (n - 1)), np.float32)
  logits[0] = 0.0
  logits = jnp.asarray(logits)
  # 262 M race times: bound by running, not compiling, so built with LLVM's optimisations
  # (`make test` compiles at -O0, see the Makefile): 20 s -> 4.4 s.
  sample = jax.jit(lambda keys: jax.lax.map(lambda ks: _gls_batch(ks, logits, logits, k), keys),
                   compiler_options={"xla_backend_optimization_level": 3})
  out = sample(_keys(4, num).reshape(10, -1))
  y_tail = int((np.asarray(out.target) != 0).sum())
  x_tail = int((np.asarray(out.drafts) != 0).sum())
  assert y_tail <= 1, f"Y hit the 1e-6 tail {y_tail} times in {num} samples"
  assert x_tail <= 2, f"X hit the 1e-6 tail {x_tail} times in {num * k} draws"


# --------------------------------------------------------------------------
# GLS acceptance.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("num_drafts", [2, 4, 8])
def test_gls_acceptance_at_least_lml(num_drafts, random_pair, rng, assert_at_least):
  p, q = random_pair(rng, 10, zeros=1)
  acc = np.asarray(_gls_batch(_keys(5, NUM_KEYS), _log(p), _log(q), num_drafts).accepted).mean()
  assert_at_least(acc, lml(p, q, num_drafts), NUM_KEYS, NUM_SE, what=f"GLS K={num_drafts}")


def test_gls_acceptance_at_least_lml_diverse(random_pair, rng, assert_at_least):
  ps = np.stack([random_pair(rng, 9)[0] for _ in range(3)])
  q = random_pair(rng, 9)[1]
  acc = np.asarray(_gls_batch(_keys(6, NUM_KEYS), _log(ps), _log(q), 3).accepted).mean()
  assert_at_least(acc, lml_diverse(ps, q), NUM_KEYS, NUM_SE, what="GLS diverse")


def test_gls_acceptance_exact_k1(random_pair, rng, assert_close_to):
  p, q = random_pair(rng, 10)
  acc = np.asarray(_gls_batch(_keys(7, NUM_KEYS), _log(p), _log(q), 1).accepted).mean()
  assert_close_to(acc, gumbel_agreement(p, q), NUM_KEYS, NUM_SE, what="GLS K=1")


def test_gls_acceptance_p_equals_q(random_pair, rng):
  p, _ = random_pair(rng, 10)
  out = _gls_batch(_keys(8, 20_000), _log(p), _log(p), 4)
  assert np.asarray(out.accepted).all()  # LML = 1: Y is the winner of its own row.


def test_gls_acceptance_point_mass(random_pair, rng, assert_close_to):
  _, q = random_pair(rng, 6)
  p = np.eye(6)[3]
  out = _gls_batch(_keys(9, NUM_KEYS), _log(p), _log(q), 5)
  assert (np.asarray(out.drafts) == 3).all()
  acc = np.asarray(out.accepted).mean()
  assert lml(p, q, 5) == pytest.approx(q[3])
  assert_close_to(acc, q[3], NUM_KEYS, NUM_SE, what="point-mass p")


# --------------------------------------------------------------------------
# Two-party couplings.
# --------------------------------------------------------------------------


def _coupling_batch(fn, seed, p, q, num):
  f = jax.jit(jax.vmap(lambda k: fn(k, _log(p), _log(q))))
  x, y = f(_keys(seed, num))
  return np.asarray(x), np.asarray(y)


def jaccard(p, q):
  return np.minimum(p, q).sum() / np.maximum(p, q).sum()


def rejection_minhash_agreement(p, q):
  """Exact agreement of core.weighted_minhash_coupling (derived for this test).

  The first point of the shared stream under max(p, q) is under both graphs
  with probability sum(min)/sum(max) (then x = y); if it is under p only, at
  symbol i (probability (p_i - m_i)/sum(max)), then x = i and y is a fresh
  sample of q, so it matches with probability q_i; symmetrically for q. Hence

      Pr[x = y] = sum_i m_i (1 + |p_i - q_i|) / sum_i max(p_i, q_i)  >=  Jaccard,

  with m = min(p, q). The weighted-Jaccard value sum(min)/sum(max) stated in
  core's docstring is the probability that both pick the *same point*; the
  symbol can also collide through different points.
  """
  m = np.minimum(p, q)
  return np.sum(m * (1 + np.abs(p - q))) / np.maximum(p, q).sum()


@pytest.mark.parametrize("name, expected", [
    ("gumbel_coupling", gumbel_agreement),
    ("weighted_minhash_coupling", rejection_minhash_agreement),
    ("maximal_coupling", lambda p, q: 1.0 - tv(p, q)),
])
def test_coupling_match_and_marginals(name, expected, random_pair, rng, assert_chisquare,
                                      assert_close_to):
  n, num = 8, 100_000
  p, q = random_pair(rng, n, zeros=1)
  x, y = _coupling_batch(getattr(core, name), 10, p, q, num)
  assert x.dtype == np.int32 and y.dtype == np.int32
  assert_chisquare(np.bincount(x, minlength=n), p, ALPHA, what=f"{name} x")
  assert_chisquare(np.bincount(y, minlength=n), q, ALPHA, what=f"{name} y")
  assert_close_to((x == y).mean(), expected(p, q), num, NUM_SE, what=f"{name} match")


def test_weighted_minhash_at_least_jaccard(random_pair, rng):
  for _ in range(20):
    p, q = random_pair(rng, 10, zeros=2)
    assert rejection_minhash_agreement(p, q) >= jaccard(p, q) - 1e-12


def test_gumbel_coupling_equals_gls_k1_same_key(random_pair, rng):
  """core.gumbel_coupling's docstring: "Equals gls_sample with K = 1" (same key)."""
  p, q = random_pair(rng, 6)
  keys = _keys(11, 1000)
  x, y = jax.vmap(lambda k: core.gumbel_coupling(k, _log(p), _log(q)))(keys)
  out = _gls_batch(keys, _log(p), _log(q), 1)
  np.testing.assert_array_equal(x, out.drafts[:, 0])
  np.testing.assert_array_equal(y, out.target)


def test_gumbel_beats_minhash_and_daliri_bound(random_pair, rng):
  for _ in range(20):
    p, q = random_pair(rng, 12, zeros=2)
    d = tv(p, q)
    g = gumbel_agreement(p, q)
    assert g >= np.minimum(p, q).sum() / np.maximum(p, q).sum() - 1e-12
    assert g >= (1 - d) / (1 + d) - 1e-12


# --------------------------------------------------------------------------
# Addressable race times.
# --------------------------------------------------------------------------


def _bits(x):
  return np.asarray(x, np.float32).view(np.uint32)


@pytest.mark.parametrize("use_jit", [False, True])
def test_race_times_at_matches_dense(use_jit, rng):
  key = jax.random.key(12)
  k, n = 3, 5000
  dense = np.asarray(core.log_race_times(key, (k, n)))
  at = core.race_times_at
  if use_jit:
    at = jax.jit(core.race_times_at, static_argnames=("num_symbols", "log"))
  for row in range(k):
    idx = np.sort(rng.choice(n, size=50, replace=False)).astype(np.int32)
    got = at(jax.random.fold_in(key, row), jnp.asarray(idx))
    np.testing.assert_array_equal(_bits(got), _bits(dense[row, idx]))
    # any index shape; S rather than log S
    idx2 = idx[:12].reshape(3, 4)
    got2 = at(jax.random.fold_in(key, row), jnp.asarray(idx2), log=False)
    np.testing.assert_array_equal(_bits(got2), _bits(np.asarray(core.race_times(key, (k, n)))[row, idx2]))


def test_race_times_at_vmapped_rows(rng):
  key = jax.random.key(13)
  k, n = 4, 3000
  idx = jnp.asarray(rng.choice(n, size=(k, 20)).astype(np.int32))
  rows = jnp.arange(k, dtype=jnp.uint32)
  got = jax.jit(jax.vmap(lambda r, i: core.race_times_at(jax.random.fold_in(key, r), i)))(rows, idx)
  dense = np.asarray(core.log_race_times(key, (k, n)))
  np.testing.assert_array_equal(_bits(got), _bits(np.take_along_axis(dense, np.asarray(idx), 1)))


@pytest.mark.parametrize("partitionable", [True, False])
def test_dense_and_sparse_race_times_share_bits_whatever_the_threefry_flag(partitionable, rng):
  """One source of bits: the dense row equals race_times_at with jax_threefry_partitionable on or
  off, and equals today's jax.random.bits row (the default flag) -- results do not move."""
  key = jax.random.key(16)
  n = 4000
  with jax.threefry_partitionable(True):
    reference = np.asarray(core.log_race_times(key, (2, n)))
    bits = jax.random.bits(jax.random.fold_in(key, 1), (n,), dtype=jnp.uint32)
    np.testing.assert_array_equal(_bits(reference[1]),
                                  _bits(core._bits_to_log_exponential(bits)))
  idx = jnp.asarray(np.sort(rng.choice(n, size=64, replace=False)).astype(np.int32))
  with jax.threefry_partitionable(partitionable):
    dense = np.asarray(core.log_race_times(key, (2, n)))
    dense_jit = np.asarray(jax.jit(core.log_race_times, static_argnums=1)(key, (2, n)))
    sparse = np.asarray(jax.jit(core.race_times_at)(jax.random.fold_in(key, 1), idx))
  np.testing.assert_array_equal(_bits(dense), _bits(reference))
  np.testing.assert_array_equal(_bits(dense_jit), _bits(reference))
  np.testing.assert_array_equal(_bits(sparse), _bits(reference[1, np.asarray(idx)]))


def test_race_times_at_other_impl_needs_num_symbols():
  key = jax.random.key(14, impl="rbg")
  with pytest.raises(ValueError, match="num_symbols"):
    core.race_times_at(key, jnp.arange(3))
  got = core.race_times_at(key, jnp.array([0, 7, 2]), num_symbols=10)
  np.testing.assert_array_equal(_bits(got), _bits(np.asarray(core.log_race_times(key, (10,)))[[0, 7, 2]]))


@pytest.mark.parametrize("impl", ["threefry2x32"])
def test_log_race_times_prefix_property(impl):
  key = jax.random.key(15, impl=impl)
  k, n, m = 3, 1000, 137
  full = np.asarray(core.log_race_times(key, (k, n)))
  short = np.asarray(core.log_race_times(key, (k, m)))
  for row in range(k):
    np.testing.assert_array_equal(_bits(full[row, :m]), _bits(short[row]))
    np.testing.assert_array_equal(
        _bits(full[row]), _bits(core.log_race_times(jax.random.fold_in(key, row), (n,))))
  three = np.asarray(core.log_race_times(key, (2, k, m)))
  np.testing.assert_array_equal(
      _bits(three[1, 2]), _bits(core.log_race_times(jax.random.fold_in(jax.random.fold_in(key, 1), 2), (m,))))


def test_race_times_are_exponential():
  """Kolmogorov-Smirnov of S against Exp(1) at level ALPHA, and E[S] within 4 SE."""
  from scipy import stats
  s = np.asarray(core.race_times(jax.random.key(16), (4, 50_000)), np.float64).ravel()
  assert stats.kstest(s, "expon").pvalue > ALPHA
  assert abs(s.mean() - 1.0) <= NUM_SE / np.sqrt(s.size)


# --------------------------------------------------------------------------
# Determinism: keys, batch size, device count.
# --------------------------------------------------------------------------


def test_same_key_same_result(random_pair, rng):
  p, q = random_pair(rng, 20)
  a = core.gls_sample(jax.random.key(17), _log(p), _log(q), 6)
  b = core.gls_sample(jax.random.key(17), _log(p), _log(q), 6)
  c = _gls_batch(jax.random.key(17)[None], _log(p), _log(q), 6)
  np.testing.assert_array_equal(a.drafts, b.drafts)
  np.testing.assert_array_equal(a.drafts, c.drafts[0])
  assert int(a.target) == int(b.target) == int(c.target[0])


def test_independent_of_vmap_batch_size(random_pair, rng):
  p, q = random_pair(rng, 50)
  keys = _keys(18, 1000)
  full = _gls_batch(keys, _log(p), _log(q), 4)
  for size in (1, 7, 100, 333):
    parts = [_gls_batch(keys[i:i + size], _log(p), _log(q), 4) for i in range(0, 1000, size)]
    np.testing.assert_array_equal(np.concatenate([x.drafts for x in parts]), full.drafts)
    np.testing.assert_array_equal(np.concatenate([x.target for x in parts]), full.target)
  times = jax.vmap(lambda k: core.log_race_times(k, (2, 50)))(keys)
  times_chunk = jax.vmap(lambda k: core.log_race_times(k, (2, 50)))(keys[100:107])
  np.testing.assert_array_equal(_bits(times[100:107]), _bits(times_chunk))


_DEVICE_SCRIPT = textwrap.dedent("""
    import sys
    import jax, jax.numpy as jnp, numpy as np
    from lcoupling import core, parallel

    P = jnp.log(jnp.array([0.1, 0.2, 0.3, 0.05, 0.35], jnp.float32))
    Q = jnp.log(jnp.array([0.3, 0.1, 0.1, 0.25, 0.25], jnp.float32))

    def trial(key, t):
      s = core.gls_sample(key, P, Q, 4)
      return s.drafts, s.target, core.log_race_times(key, (2, 3))

    def run(chunk):
      return parallel.map_trials(trial, jax.random.key(19), 203, chunk_size=chunk)

    if __name__ == "__main__":
      out = {"ndev": np.array(jax.device_count())}
      for c in (5, 16, 64, 203):
        d, t, s = run(c)
        out[f"d{c}"], out[f"t{c}"], out[f"s{c}"] = d, t, s
      np.savez(sys.argv[1], **out)
""")


def test_independent_of_device_count_and_chunking(tmp_path):
  script = tmp_path / "devices.py"
  script.write_text(_DEVICE_SCRIPT)
  # the caller's XLA_FLAGS kept (`make test` compiles at -O0), 8 host devices added
  flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
  env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu",
             PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  res = subprocess.run([sys.executable, str(script), str(tmp_path / "out8.npz")], env=env,
                       cwd=REPO, capture_output=True, text=True, timeout=300)
  assert res.returncode == 0, res.stderr[-3000:]
  eight = np.load(tmp_path / "out8.npz")
  assert int(eight["ndev"]) == 8
  # The same trials on this process's devices (1 on a plain CPU run), plain vmap.
  ns = {}
  exec(compile(_DEVICE_SCRIPT, "devices", "exec"), ns)
  keys = parallel.trial_keys(jax.random.key(19), np.arange(203))
  d, t, s = jax.vmap(ns["trial"])(keys, jnp.arange(203))
  for c in (5, 16, 64, 203):
    np.testing.assert_array_equal(eight[f"d{c}"], d)
    np.testing.assert_array_equal(eight[f"t{c}"], t)
    np.testing.assert_array_equal(eight[f"s{c}"].view(np.uint32), _bits(s))
    d1, t1, s1 = ns["run"](c)
    np.testing.assert_array_equal(d1, d)
    np.testing.assert_array_equal(t1, t)
    np.testing.assert_array_equal(_bits(s1), _bits(s))


# --------------------------------------------------------------------------
# Validation.
# --------------------------------------------------------------------------

_GOOD = jnp.log(jnp.array([0.5, 0.25, 0.25]))


@pytest.mark.parametrize("bad, what", [
    (jnp.array([0.0, jnp.nan, 0.0]), "NaN"),
    (jnp.array([0.0, jnp.inf, 0.0]), r"\+inf"),
    (jnp.full(3, -jnp.inf), "no mass"),
    (jnp.zeros((2, 2, 3)), "rank"),
])
def test_validation_bad_logits(bad, what):
  with pytest.raises(ValueError, match=f"target_logits.*{what}|target_logits must have rank"):
    core.gls_sample(jax.random.key(0), _GOOD, bad, 2)
  with pytest.raises(ValueError, match=f"draft_logits.*{what}|draft_logits must have rank"):
    core.gls_sample(jax.random.key(0), bad, _GOOD, 2)


def test_validation_dead_row_of_diverse_drafts():
  bad = jnp.stack([_GOOD, jnp.full(3, -jnp.inf)])
  with pytest.raises(ValueError, match=r"draft_logits has no mass.*rows \[1\]"):
    core.gls_sample(jax.random.key(0), bad, _GOOD)


def test_validation_shapes_and_num_drafts():
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="alphabet"):
    core.gls_sample(key, _GOOD, jnp.zeros(4), 2)
  with pytest.raises(ValueError, match="num_drafts"):
    core.gls_sample(key, jnp.zeros((3, 3)), _GOOD, 2)
  with pytest.raises(ValueError, match="num_drafts must be >= 1"):
    core.gls_sample(key, _GOOD, _GOOD, 0)
  with pytest.raises(TypeError, match="num_drafts"):
    core.gls_sample(key, _GOOD, _GOOD, 2.0)
  with pytest.raises(TypeError, match="num_drafts"):
    core.gls_sample(key, _GOOD, _GOOD, True)
  with pytest.raises(ValueError, match="num_drafts is required"):
    core.gls_sample(key, _GOOD, _GOOD)
  with pytest.raises(ValueError, match="shape"):
    core.log_race_times(key, ())


@pytest.mark.parametrize("fn", [core.gumbel_coupling, core.weighted_minhash_coupling,
                                core.maximal_coupling])
def test_validation_couplings_name_their_arguments(fn):
  key = jax.random.key(0)
  nan = jnp.array([0.0, jnp.nan, 0.0])
  with pytest.raises(ValueError, match="logits_p"):
    fn(key, nan, _GOOD)
  with pytest.raises(ValueError, match="logits_q"):
    fn(key, _GOOD, nan)


def test_validation_skipped_under_jit_but_shapes_checked():
  f = jax.jit(lambda k, p, q: core.gls_sample(k, p, q, 2))
  f(jax.random.key(0), _GOOD, _GOOD)  # traced values are not inspected
  with pytest.raises(ValueError, match="alphabet"):
    f(jax.random.key(0), _GOOD, jnp.zeros(5))
