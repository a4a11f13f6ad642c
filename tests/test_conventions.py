# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Sampler input conventions: probabilities passed as logits warn; NaN under jit is checkable."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lcoupling
from lcoupling import core, verifiers

W = lcoupling.ProbabilitiesAsLogitsWarning
P = jnp.array([0.5, 0.2, 0.2, 0.1])
Q = jnp.array([0.1, 0.2, 0.3, 0.4])
KEY = jax.random.key(0)


def _caught(fn):
  """The ProbabilitiesAsLogitsWarnings of ``fn()`` under Python's default filter."""
  with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("default")
    fn()
  return [x for x in w if issubclass(x.category, W)]


@pytest.mark.parametrize("call, names", [
    (lambda: lcoupling.gls_sample(KEY, P, jnp.log(Q), num_drafts=2), ["draft_logits"]),
    (lambda: lcoupling.gls_sample(KEY, jnp.log(P), Q, num_drafts=2), ["target_logits"]),
    (lambda: lcoupling.gls_sample(KEY, jnp.stack([P, Q]), jnp.log(Q)), ["draft_logits"]),
    (lambda: lcoupling.gumbel_coupling(KEY, P, Q), ["logits_p", "logits_q"]),
    (lambda: lcoupling.weighted_minhash_coupling(KEY, jnp.log(P), Q), ["logits_q"]),
    (lambda: lcoupling.maximal_coupling(KEY, P, jnp.log(Q)), ["logits_p"]),
    (lambda: verifiers.get("specinfer").draft(KEY, P, 2), ["draft_logits"]),
    (lambda: verifiers.get("gls").verify(KEY, jnp.array([0, 1]), jnp.log(P), Q), ["target_logits"]),
    (lambda: verifiers.simulate(KEY, "spectr", P, Q, 2), ["draft_logits", "target_logits"]),
])
def test_probabilities_passed_as_logits_warn(call, names):
  w = _caught(call)
  got = sorted({str(x.message).split(" ")[0] for x in w})
  assert got == sorted(names), [str(x.message) for x in w]
  for x in w:
    assert x.filename == __file__  # attributed to the caller's line, not the library's
    assert "jnp.log(" in str(x.message) and "softmax(" in str(x.message)


def test_warning_is_shown_once_per_call_site_and_argument():
  def loop():
    for _ in range(3):
      lcoupling.gls_sample(KEY, P, Q, num_drafts=2)
  w = _caught(loop)
  assert sorted(str(x.message).split(" ")[0] for x in w) == ["draft_logits", "target_logits"]


@pytest.mark.parametrize("logits", [
    jnp.log(P),                                   # log-probabilities: <= 0, never sum to 1
    jnp.array([0.0, -jnp.inf]),                   # a one-hot logit vector
    jnp.array([0.0, -jnp.inf, -jnp.inf, -jnp.inf]),
    jnp.full((4,), 0.25),                         # uniform: softmax(p) == p, nothing goes wrong
    jnp.array([2.0, -1.0, 0.5, 0.3]),             # ordinary logits
    jnp.array([0.3, 0.3, 0.3, 0.3]),              # in [0, 1] but sums to 1.2
    jnp.array([0.0, 0.0, 0.0, 0.0]),              # all zero: uniform logits
])
def test_logits_do_not_warn(logits):
  assert _caught(lambda: lcoupling.gls_sample(KEY, logits, logits, num_drafts=2)) == []
  assert _caught(lambda: verifiers.simulate(KEY, "gls", logits, logits, 2)) == []


@pytest.mark.parametrize("logits", [
    jnp.array([1.0, 0.0]),                 # one-hot probabilities: as logits, symbol 0 w.p. 0.73
    jnp.array([0.0, 1.0, 0.0]),
    jnp.array([0.7, 0.3], jnp.bfloat16),   # low precision: sums to 1 within 1e-2
    np.array([0.25, 0.25, 0.5]),           # NumPy input
])
def test_probability_edge_cases_warn(logits):
  assert len(_caught(lambda: lcoupling.gls_sample(KEY, jnp.log(jnp.full((logits.shape[-1],), 0.5)),
                                                  logits, num_drafts=1))) == 1


def test_traced_values_are_not_inspected_but_constants_are():
  keys = jax.random.split(KEY, 4)
  f = jax.jit(jax.vmap(lambda k, p, q: lcoupling.gls_sample(k, p, q, 2), in_axes=(0, None, None)))
  assert _caught(lambda: f(keys, P, Q)) == []  # traced: values unknown at trace time
  g = jax.jit(jax.vmap(lambda k: lcoupling.gls_sample(k, P, jnp.log(Q), 2)))
  assert len(_caught(lambda: g(keys))) == 1  # a captured constant is concrete: checked


# --------------------------------------------------------------------------
# NaN logits under jit/vmap: garbage unless checked.
# --------------------------------------------------------------------------

NAN = jnp.array([jnp.nan, 0.0, -1.0, -2.0])


def test_nan_under_jit_is_silent_garbage_without_checks():
  """The documented failure mode that `checked` exists for (traced logits)."""
  nan2 = jnp.array([0.0, -1.0, jnp.nan, -2.0])
  f = jax.jit(lambda k, p, q: lcoupling.gls_sample(k, p, q, num_drafts=4))
  out = f(KEY, nan2, nan2)  # the first NaN entry wins every race
  assert bool(out.accepted) and out.drafts.tolist() == [2, 2, 2, 2] and int(out.target) == 2
  with pytest.raises(ValueError, match="draft_logits contains NaN"):  # eager: checked anyway
    lcoupling.gls_sample(KEY, NAN, jnp.log(Q), num_drafts=4)


def test_checked_raises_for_nan_logits_under_jit_and_vmap():
  keys = jax.random.split(KEY, 5)
  f = lambda k, p: lcoupling.gls_sample(k, p, jnp.log(Q), num_drafts=4).accepted
  batch = jnp.stack([jnp.log(P)] * 4 + [NAN])  # one bad row among five
  for wrapped, p in ((jax.vmap(jax.jit(f), in_axes=(0, None)), NAN),
                     (jax.jit(jax.vmap(f)), batch)):
    with pytest.raises(ValueError, match="draft_logits contains NaN"):
      lcoupling.checked(wrapped)(keys, p)
  g = jax.jit(lambda k, q: lcoupling.gls_sample(k, jnp.log(P), q, num_drafts=4).target)
  with pytest.raises(ValueError, match="target_logits contains NaN"):
    lcoupling.checked(g)(KEY, NAN)
  with pytest.raises(ValueError, match="target_logits has no mass"):
    lcoupling.checked(g)(KEY, jnp.full((4,), -jnp.inf))
  h = jax.vmap(lambda k, q: verifiers.simulate(k, "specinfer", jnp.log(P), q, 2)[0],
               in_axes=(0, None))
  with pytest.raises(ValueError, match="target_logits contains NaN"):
    lcoupling.checked(jax.jit(h))(keys, NAN)
  # NaN computed inside the function (e.g. by a model) is caught the same way.
  m = jax.jit(jax.vmap(lambda k: lcoupling.gls_sample(k, jnp.log(P) * jnp.nan,
                                                     jnp.log(Q) * jnp.nan, 2).accepted))
  assert m(keys).all()  # unchecked: traced, so garbage (always "accepted") without an error
  with pytest.raises(ValueError, match="draft_logits contains NaN"):
    lcoupling.checked(m)(keys)


def test_checked_passes_valid_inputs_through_unchanged():
  keys = jax.random.split(KEY, 5)
  f = jax.jit(jax.vmap(lambda k, p: lcoupling.gls_sample(k, p, jnp.log(Q), num_drafts=3),
                       in_axes=(0, None)))
  want = f(keys, jnp.log(P))
  got = lcoupling.checked(f)(keys, jnp.log(P))
  assert all(np.array_equal(a, b) for a, b in zip(want, got))
  # Non-array arguments are static: a sampler can be checked directly.
  out = lcoupling.checked(lcoupling.gls_sample)(KEY, jnp.log(P), jnp.log(Q), num_drafts=3)
  assert np.array_equal(out.drafts, lcoupling.gls_sample(KEY, jnp.log(P), jnp.log(Q), 3).drafts)


def test_checked_must_be_outermost():
  f = lcoupling.checked(lambda k: lcoupling.gls_sample(k, jnp.log(P), jnp.log(Q), 2).target)
  with pytest.raises(TypeError, match=r"outermost.*checked\(jax\.jit\(f\)\)"):
    jax.jit(f)(KEY)


def test_samplers_still_work_inside_control_flow():
  """The checks are no-ops outside `checked`: scan, cond, remat are unaffected."""
  lp, lq = jnp.log(P), jnp.log(Q)

  def body(c, k):
    return c + lcoupling.gls_sample(k, lp, lq, num_drafts=2).accepted, None

  keys = jax.random.split(KEY, 6)
  total, _ = jax.jit(lambda ks: jax.lax.scan(body, jnp.int32(0), ks))(keys)
  want = sum(int(lcoupling.gls_sample(k, lp, lq, 2).accepted) for k in keys)
  assert int(total) == want
  c = jax.jit(lambda k, b: jax.lax.cond(b, lambda: core.gls_sample(k, lp, lq, 2).target,
                                        lambda: jnp.int32(-1)))(KEY, True)
  assert int(c) == int(core.gls_sample(KEY, lp, lq, 2).target)
  r = jax.jit(jax.checkpoint(lambda k: verifiers.simulate(k, "gls", lp, lq, 2)[0]))(KEY)
  assert int(r) == int(verifiers.simulate(KEY, "gls", lp, lq, 2)[0])
