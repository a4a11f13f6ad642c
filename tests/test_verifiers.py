# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of lcoupling.verifiers: exactness, acceptance rates, invariances, errors.

Statistical levels: chi-square at ``ALPHA``; Bernoulli frequencies within
``NUM_SE`` standard errors. Seeds are fixed (deterministic suite).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from lcoupling import verifiers

ALPHA = 1e-4  #: chi-square significance level.
NUM_SE = 4.0  #: tolerance of frequency tests, in standard errors.
NUM_KEYS = 100_000
N = 7
K = 3
SINGLE = ("sps", "daliri")
DIVERSE = tuple(n for n in verifiers.NAMES if verifiers.get(n).supports_diverse)


def _log(p):
  p = np.asarray(p, np.float64)
  with np.errstate(divide="ignore"):
    return jnp.asarray(np.log(p), jnp.float32)


def _keys(seed, num):
  return jax.random.split(jax.random.key(seed), num)


def _dirichlet(rng, n, zeros):
  x = rng.dirichlet(np.ones(n))
  x[rng.permutation(n)[:zeros]] = 0.0
  return x / x.sum()


@functools.lru_cache(maxsize=None)
def _problem(diverse: bool):
  """Fixed (p or ps, q) with some zero-mass symbols."""
  rng = np.random.default_rng(7 + diverse)
  q = _dirichlet(rng, N, 1)
  if diverse:
    return np.stack([_dirichlet(rng, N, 1) for _ in range(K)]), q
  return _dirichlet(rng, N, 1), q


@functools.partial(jax.jit, static_argnames=("name", "num_drafts", "num_rows"))
def _run_jit(keys, name, draft_logits, target_logits, num_drafts, verify_logits, num_rows):
  v = verifiers.get(name)

  def one(key):
    drafts = v.draft(key, draft_logits, num_drafts)
    kw = {} if num_rows is None else {"num_rows": num_rows}
    token, accepted, index = v.verify(key, drafts, verify_logits, target_logits, **kw)
    return drafts, token, accepted, index

  return jax.vmap(one)(keys)


def _run(keys, name, draft_logits, target_logits, num_drafts, verify_logits=None, num_rows=None):
  """vmap over keys of draft + verify (verify may get other draft logits)."""
  verify_logits = draft_logits if verify_logits is None else verify_logits
  return _run_jit(keys, name, draft_logits, target_logits, num_drafts, verify_logits, num_rows)


@functools.lru_cache(maxsize=None)
def _sample(name: str, diverse: bool):
  p, q = _problem(diverse)
  k = 1 if name in SINGLE else K
  seed = verifiers.NAMES.index(name) + 100 * diverse
  out = _run(_keys(seed, NUM_KEYS), name, _log(p), _log(q), k)
  return p, q, tuple(np.asarray(x) for x in out)


# --------------------------------------------------------------------------
# Reference values (NumPy, float64).
# --------------------------------------------------------------------------


def lml(p, q, k, rows=None):
  """LML; with rows = K' > k the strong-invariance bound (J = k alive)."""
  rows = k if rows is None else rows
  return sum(k / np.sum(np.maximum(q / q[j], p / p[j]) + (rows - 1) * q / q[j])
             for j in np.flatnonzero((p > 0) & (q > 0)))


def lml_diverse(ps, q):
  k = len(ps)
  return sum(1.0 / (np.sum(np.maximum(q / q[j], p / p[j])) + (k - 1) / q[j])
             for p in ps for j in np.flatnonzero((p > 0) & (q > 0)))


def spectr_acceptance(p, q, k):
  beta = lambda rho: np.minimum(p, q / rho).sum()
  g = lambda rho: 1 - (1 - beta(rho))**k - rho * beta(rho)
  rho = 1.0 if g(1.0) <= 0 else optimize.brentq(g, 1.0, float(k), xtol=1e-14)
  return 1 - (1 - beta(rho))**k


def tv(p, q):
  return 0.5 * np.abs(p - q).sum()


# --------------------------------------------------------------------------
# Exactness and output consistency.
# --------------------------------------------------------------------------

_ALL_CASES = [(n, False) for n in verifiers.NAMES] + [(n, True) for n in DIVERSE]


@pytest.mark.parametrize("name, diverse", _ALL_CASES)
def test_token_is_exactly_target(name, diverse, assert_chisquare):
  _, q, (_, token, _, _) = _sample(name, diverse)
  assert token.dtype == np.int32
  assert_chisquare(np.bincount(token, minlength=N), q, ALPHA, what=f"{name} token")


@pytest.mark.parametrize("name, diverse", _ALL_CASES)
def test_drafts_follow_proposals(name, diverse, assert_chisquare):
  p, _, (drafts, _, _, _) = _sample(name, diverse)
  assert drafts.dtype == np.int32 and drafts.shape[1] == (1 if name in SINGLE else K)
  for k in range(drafts.shape[1]):
    pk = p[k] if diverse else p
    assert_chisquare(np.bincount(drafts[:, k], minlength=N), pk, ALPHA, what=f"{name} X[{k}]")


@pytest.mark.parametrize("name, diverse", _ALL_CASES)
def test_index_consistency(name, diverse):
  _, _, (drafts, token, accepted, index) = _sample(name, diverse)
  assert accepted.dtype == np.bool_ and index.dtype == np.int32
  np.testing.assert_array_equal(accepted, index >= 0)
  assert (index >= -1).all() and (index < drafts.shape[1]).all()
  rows = np.flatnonzero(accepted)
  np.testing.assert_array_equal(drafts[rows, index[rows]], token[rows])
  # index is the first accepted position for the schemes whose output is a draft.
  assert accepted.any() and (~accepted).any()


@pytest.mark.parametrize("name", ["gls", "gls_strong", "daliri"])
def test_gls_family_accepts_iff_token_in_list(name):
  _, _, (drafts, token, accepted, index) = _sample(name, False)
  np.testing.assert_array_equal(accepted, (drafts == token[:, None]).any(1))
  first = np.argmax(drafts == token[:, None], axis=1)
  np.testing.assert_array_equal(index[accepted], first[accepted])


# --------------------------------------------------------------------------
# Acceptance rates.
# --------------------------------------------------------------------------


def test_spectr_acceptance(assert_close_to):
  p, q, (_, _, accepted, _) = _sample("spectr", False)
  assert_close_to(accepted.mean(), spectr_acceptance(p, q, K), NUM_KEYS, NUM_SE, what="SpecTr")


def test_spectr_rho_matches_reference():
  p, q = _problem(False)
  for k in (1, 2, 5, 8):
    rho, beta = verifiers.spectr_rho(jnp.asarray(p, jnp.float32), jnp.asarray(q, jnp.float32), k)
    total = 1 - (1 - float(beta))**k
    assert 1.0 <= float(rho) <= k
    assert total == pytest.approx(spectr_acceptance(p, q, k), abs=2e-6)
    assert total <= float(rho) * float(beta) + 1e-6  # the side that keeps the residual >= 0


@pytest.mark.parametrize("name", ["specinfer", "sps", "spectr"])
def test_single_draft_rejection_schemes_accept_one_minus_tv(name, assert_close_to):
  p, q = _problem(False)
  out = _run(_keys(40, NUM_KEYS), name, _log(p), _log(q), 1)
  assert_close_to(np.asarray(out[2]).mean(), 1 - tv(p, q), NUM_KEYS, NUM_SE, what=name)


def test_daliri_acceptance_is_gumbel_agreement(assert_close_to):
  p, q, (_, _, accepted, _) = _sample("daliri", False)
  assert_close_to(accepted.mean(), lml(p, q, 1), NUM_KEYS, NUM_SE, what="daliri")


@pytest.mark.parametrize("diverse", [False, True])
def test_gls_acceptance_at_least_lml(diverse, assert_at_least):
  p, q, (_, _, accepted, _) = _sample("gls", diverse)
  bound = lml_diverse(p, q) if diverse else lml(p, q, K)
  assert_at_least(accepted.mean(), bound, NUM_KEYS, NUM_SE, what="GLS")


def test_gls_strong_fewer_alive_drafts(assert_at_least, assert_chisquare):
  """J = 2 alive drafts, target race over num_rows = 5: exact q, strong bound."""
  p, q = _problem(False)
  out = _run(_keys(41, NUM_KEYS), "gls_strong", _log(p), _log(q), 2, num_rows=5)
  token, accepted = np.asarray(out[1]), np.asarray(out[2])
  assert_chisquare(np.bincount(token, minlength=N), q, ALPHA, what="gls_strong token")
  assert_at_least(accepted.mean(), lml(p, q, 2, rows=5), NUM_KEYS, NUM_SE, what="strong")
  # and it costs acceptance compared with the plain J = 2 list (strictly, here)
  plain = np.asarray(_run(_keys(41, NUM_KEYS), "gls", _log(p), _log(q), 2)[2]).mean()
  assert accepted.mean() < plain


# --------------------------------------------------------------------------
# Invariances.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gls", "gls_strong", "daliri"])
def test_gls_verify_ignores_draft_logits(name):
  """Drafter invariance: given the drafts, verify never reads draft_logits."""
  p, q = _problem(False)
  k = 1 if name in SINGLE else K
  other = _log(np.random.default_rng(3).dirichlet(np.ones(N)))
  keys = _keys(42, 5000)
  a = _run(keys, name, _log(p), _log(q), k)
  b = _run(keys, name, _log(p), _log(q), k, verify_logits=other)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)


def test_specinfer_reads_draft_logits():
  """The same replacement changes SpecInfer's output (the invariance test has teeth)."""
  p, q = _problem(False)
  other = _log(np.random.default_rng(3).dirichlet(np.ones(N)))
  keys = _keys(42, 5000)
  a = _run(keys, "specinfer", _log(p), _log(q), K)
  b = _run(keys, "specinfer", _log(p), _log(q), K, verify_logits=other)
  assert (np.asarray(a[1]) != np.asarray(b[1])).any()


def test_gls_strong_token_independent_of_drafter():
  """Same key, different draft distributions (and number alive) -> same token."""
  ps, q = _problem(True)
  keys = _keys(43, 5000)
  ref = np.asarray(_run(keys, "gls_strong", _log(ps[0]), _log(q), K)[1])
  for draft_logits, k in [(_log(ps[1]), K), (_log(ps), K), (_log(ps[2]), 2), (_log(ps[1]), 1)]:
    out = _run(keys, "gls_strong", draft_logits, _log(q), k, num_rows=K)
    np.testing.assert_array_equal(np.asarray(out[1]), ref)
  # the drafts themselves did change
  assert (np.asarray(_run(keys, "gls_strong", _log(ps[1]), _log(q), K)[0])
          != np.asarray(_run(keys, "gls_strong", _log(ps[0]), _log(q), K)[0])).any()


def test_gls_strong_defaults_to_gls():
  ps, q = _problem(True)
  keys = _keys(44, 2000)
  a = _run(keys, "gls", _log(ps), _log(q), K)
  b = _run(keys, "gls_strong", _log(ps), _log(q), K)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)


def test_draft_row_k_is_race_winner():
  """Drafts of every scheme are the row winners of log_race_times(key, (K, N))."""
  from lcoupling import core
  ps, q = _problem(True)
  key = jax.random.key(45)
  want = core.race_argmin(core.log_race_times(key, (K, N)), _log(ps))
  for name in ("gls", "gls_strong", "specinfer"):
    np.testing.assert_array_equal(verifiers.get(name).draft(key, _log(ps), K), want)


def test_specinfer_is_order_dependent(assert_close_to):
  """With diverse drafts SpecInfer favours the first draft: swapping rows changes index stats."""
  ps, q = _problem(True)
  a = _run(_keys(46, 20_000), "specinfer", _log(ps), _log(q), K)
  b = _run(_keys(46, 20_000), "specinfer", _log(ps[::-1]), _log(q), K)
  ia, ib = np.asarray(a[3]), np.asarray(b[3])
  assert (ia == 0).mean() > (ia == K - 1).mean()
  assert (ia == 0).mean() != (ib == 0).mean()


# --------------------------------------------------------------------------
# jit / vmap / determinism.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", verifiers.NAMES)
def test_simulate_jit_vmap_and_determinism(name):
  p, q = _problem(False)
  k = 1 if name in SINGLE else K
  keys = _keys(47, 64)
  batched = _run(keys, name, _log(p), _log(q), k)[1:]
  eager = verifiers.simulate(keys[5], name, _log(p), _log(q), k)
  sim = jax.jit(verifiers.simulate, static_argnames=("verifier", "num_drafts"))
  jitted = sim(keys[5], verifier=verifiers.get(name), draft_logits=_log(p), target_logits=_log(q),
               num_drafts=k)
  for a, b, c in zip(eager, jitted, batched):
    assert a.shape == () and int(a) == int(b) == int(c[5])
  again = _run(keys, name, _log(p), _log(q), k)[1:]
  for a, b in zip(again, batched):
    np.testing.assert_array_equal(a, b)


def test_registry():
  assert set(verifiers.NAMES) == {"gls", "gls_strong", "specinfer", "spectr", "sps", "daliri"}
  for name in verifiers.NAMES:
    v = verifiers.get(name)
    assert isinstance(v, verifiers.Verifier) and v.name == name
  assert verifiers.get("gls").drafter_invariant and not verifiers.get("specinfer").drafter_invariant
  assert not verifiers.get("spectr").supports_diverse and verifiers.get("specinfer").supports_diverse
  with pytest.raises(ValueError, match="unknown verifier"):
    verifiers.get("medusa")
  with pytest.raises(AttributeError):
    verifiers.get("gls").name = "x"


# --------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------


def test_spectr_refuses_diverse_drafts():
  ps, q = _problem(True)
  v = verifiers.get("spectr")
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="spectr does not support diverse drafts"):
    v.draft(key, _log(ps), K)
  drafts = jnp.zeros(K, jnp.int32)
  with pytest.raises(ValueError, match="spectr does not support diverse drafts"):
    v.verify(key, drafts, _log(ps), _log(q))
  same = jnp.broadcast_to(_log(ps[0]), (K, N))  # identical rows are i.i.d.: allowed
  d = v.draft(key, same, K)
  np.testing.assert_array_equal(v.verify(key, d, same, _log(q))[0],
                                v.verify(key, d, _log(ps[0]), _log(q))[0])


@pytest.mark.parametrize("name", SINGLE)
def test_single_draft_schemes_refuse_lists(name):
  p, q = _problem(False)
  v = verifiers.get(name)
  key = jax.random.key(0)
  with pytest.raises(ValueError, match=f"{name} is a single-draft scheme"):
    v.draft(key, _log(p), 2)
  with pytest.raises(ValueError, match=f"{name} is a single-draft scheme"):
    v.verify(key, jnp.zeros(2, jnp.int32), _log(p), _log(q))
  assert v.draft(key, _log(p)).shape == (1,)  # num_drafts defaults to 1


@pytest.mark.parametrize("name", verifiers.NAMES)
def test_validation(name):
  p, q = _problem(False)
  v = verifiers.get(name)
  key = jax.random.key(0)
  d = jnp.zeros(1, jnp.int32)
  with pytest.raises(ValueError, match="target_logits contains NaN"):
    v.verify(key, d, _log(p), _log(q).at[1].set(jnp.nan))
  with pytest.raises(ValueError, match=r"draft_logits contains \+inf"):
    v.verify(key, d, _log(p).at[1].set(jnp.inf), _log(q))
  with pytest.raises(ValueError, match="draft_logits has no mass"):
    v.draft(key, jnp.full(N, -jnp.inf), 1)
  with pytest.raises(ValueError, match="alphabet"):
    v.verify(key, d, _log(p)[:-1], _log(q))
  with pytest.raises(ValueError, match="drafts must lie in"):
    v.verify(key, jnp.array([N], jnp.int32), _log(p), _log(q))
  with pytest.raises(TypeError, match="drafts must be an integer array"):
    v.verify(key, jnp.zeros(1, jnp.float32), _log(p), _log(q))
  with pytest.raises(ValueError, match="num_drafts must be >= 1"):
    v.draft(key, _log(p), 0)
  with pytest.raises(TypeError, match="num_drafts"):
    v.draft(key, _log(p), 1.0)
  with pytest.raises(ValueError, match="rows but num_drafts"):
    v.draft(key, jnp.stack([_log(p)] * 2), 1)


def test_gls_strong_num_rows_validation():
  p, q = _problem(False)
  v = verifiers.get("gls_strong")
  with pytest.raises(ValueError, match="num_rows must be >= len"):
    v.verify(jax.random.key(0), jnp.zeros(3, jnp.int32), _log(p), _log(q), num_rows=2)


# --------------------------------------------------------------------------
# Large vocabulary (slow).
# --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", verifiers.NAMES)
def test_full_vocabulary_runs_and_is_exact_on_head(name, assert_chisquare):
  """N = 151936 (Qwen2.5 vocabulary), 16 heavy symbols + a tail of total mass 1e-3."""
  n, num = 151_936, 2000
  rng = np.random.default_rng(5)
  k = 1 if name in SINGLE else 4
  def make():
    x = np.full(n, 1e-3 / (n - 16))
    x[:16] = (1 - 1e-3) * rng.dirichlet(np.ones(16))
    return x
  p, q = make(), make()
  out = jax.lax.map(lambda ks: _run(ks, name, _log(p), _log(q), k), _keys(48, num).reshape(8, -1))
  token = np.asarray(out[1]).ravel()
  counts = np.bincount(np.minimum(token, 16), minlength=17)
  probs = np.append(q[:16], q[16:].sum())
  assert_chisquare(counts, probs, ALPHA, what=f"{name} token (head + tail bin)")
