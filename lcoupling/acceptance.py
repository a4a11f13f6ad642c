# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""The acceptance rules of speculative decoding, one home each, and the schemes' metadata.

Every rule is a pure, jit-able function of its randomness (race times or
acceptance uniforms) and of the two distributions. Token-level verification
(:mod:`lcoupling.verifiers`), the sequence-level walk
(:mod:`lcoupling.specdec`) and the studies call these functions, so the
exactness of every scheme rests on one implementation.

Rules, with ``q`` the target's and ``p^(k)`` draft ``k``'s distribution, both
given on one support of ``M`` tokens (the target's; the whole vocabulary in the
dense form):

* :func:`race_token` / :func:`gls_token` -- the exponential race (Gumbel-max)
  and GLS's target race: ``Y = argmin_i min_{k in rows} S[k, i] / q_i``;
* :func:`specinfer` -- SpecInfer's recursive rejection sampling (``sps`` is
  its ``K = 1`` case, :func:`sps`);
* :func:`spectr_rho`, :func:`spectr` -- SpecTr K-SEQ: :math:`\rho^*`, the
  acceptance test and the residual; :func:`spectr_acceptance` is its
  closed-form acceptance :math:`1 - (1 - \beta)^K`;
* :func:`safe_log` -- ``log`` with ``-inf`` at zero mass, how residual
  probabilities become logits.

Scheme metadata: :data:`SCHEMES` (the token-level names), :data:`SINGLE_DRAFT`,
:data:`GLS_FAMILY` (never read the draft probabilities), :data:`DIVERSE`
(allow one proposal per draft row) and :data:`LABELS` (display names).

Example:
  >>> import jax.numpy as jnp
  >>> q = jnp.array([0.2, 0.3, 0.5])
  >>> p = jnp.array([[0.5, 0.3, 0.2]])
  >>> accepts, residual = specinfer(jnp.array([0.9]), p[:, 0], p, q, jnp.array([0]))
  >>> bool(accepts[0]), residual.round(3).tolist()  # 0.9 * 0.5 >= 0.2: rejected
  (False, [0.0, 0.0, 1.0])
  >>> float(spectr_acceptance(jnp.float32(0.5), 2))  # 1 - (1 - 0.5)^2
  0.75
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lcoupling import core

__all__ = ["SCHEMES", "SINGLE_DRAFT", "GLS_FAMILY", "DIVERSE", "LABELS", "safe_log", "race_token",
           "gls_token", "specinfer", "sps", "spectr_rho", "spectr", "spectr_acceptance"]

#: Token-level schemes (:func:`lcoupling.verifiers.get`; sequence level adds ``"autoregressive"``).
SCHEMES = ("gls", "gls_strong", "specinfer", "spectr", "sps", "daliri")
#: Schemes defined for one draft (``num_drafts`` must be 1).
SINGLE_DRAFT = ("sps", "daliri")
#: Schemes whose verification never reads the draft probabilities (drafter invariance).
GLS_FAMILY = ("gls", "gls_strong", "daliri")
#: Schemes that accept a different proposal per draft row ("diverse" drafts).
DIVERSE = ("gls", "gls_strong", "specinfer")
#: Display names of the schemes (tables and plots).
LABELS = {"autoregressive": "autoregressive", "gls": "GLS", "gls_strong": "GLS (strong)",
          "specinfer": "SpecInfer", "spectr": "SpecTr", "sps": "SpS", "daliri": "Daliri"}

#: Fixed number of bisection steps for SpecTr's rho* (float32 converges in ~30).
_BISECTION_STEPS = 40

safe_log = core.safe_log


# --------------------------------------------------------------------------
# Races (GLS, Daliri, the bonus token, residual samples).
# --------------------------------------------------------------------------


def race_token(log_times, ids, logits):
  """Winner of the race ``argmin_m S_m / q_m`` on a support, as a token id ``ids[m]``.

  Args:
    log_times: ``[M]`` log race times at the support's tokens.
    ids: ``int[M]`` token ids of the support.
    logits: ``[M]`` unnormalised log-probabilities (``-inf`` never wins).
  """
  return ids[core.race_argmin(log_times, logits)]


def gls_token(log_times, rows, ids, logits):
  """GLS's target token ``argmin_m min_{k: rows[k]} S[k, m] / q_m`` (:func:`race_token`).

  Args:
    log_times: ``[K, M]`` log race times of the ``K`` draft rows at the support's tokens.
    rows: ``bool[K]``: the rows whose minimum the race takes (the alive drafts for ``gls``,
      all rows for ``gls_strong``).
    ids, logits: the target's support, as in :func:`race_token`.
  """
  return race_token(jnp.min(jnp.where(rows[:, None], log_times, jnp.inf), axis=0), ids, logits)


# --------------------------------------------------------------------------
# SpecInfer (and SpS, its K = 1 case).
# --------------------------------------------------------------------------


def specinfer(u, p_x, p, q, x_pos, alive=None):
  r"""SpecInfer's recursive rejection sampling over the drafts in order.

  ``r <- q``; for each (alive) draft ``k`` in order, accept ``X_k`` iff
  :math:`u_k < \min(1, r(X_k) / p^{(k)}(X_k))`; otherwise
  :math:`r \leftarrow (r - p^{(k)})^+ / \lVert (r - p^{(k)})^+\rVert_1` (a
  rejection with zero residual mass has probability zero; ``r`` is kept then).
  After the first acceptance nothing changes.

  Args:
    u: ``[K]`` acceptance uniforms.
    p_x: ``[K]`` ``p^(k)(X_k)``, each draft's probability under its own proposal.
    p: ``[K, M]`` the proposals on ``q``'s support.
    q: ``[M]`` the target distribution.
    x_pos: ``int[K]`` position of ``X_k`` in ``q``'s support, ``-1`` off it (``r(X_k) = 0``).
    alive: optional ``bool[K]``: only these drafts take part (default all).

  Returns:
    ``(accepts bool[K], r [M])``: at most one ``True`` (the first accepted draft); ``r`` is
    the residual distribution to sample when none is accepted.
  """
  if alive is None:
    alive = jnp.ones(u.shape, bool)

  def step(carry, inputs):
    r, done = carry
    live, pos, uk, pxk, pk = inputs
    act = live & ~done
    r_x = jnp.where(pos >= 0, r[jnp.maximum(pos, 0)], 0.0)
    accept = act & (uk * pxk < r_x)  # u < min(1, r(x) / p(x))
    res = jnp.maximum(r - pk, 0.0)
    mass = jnp.sum(res)
    update = act & ~accept & (mass > 0)
    r = jnp.where(update, res / jnp.where(mass > 0, mass, 1.0), r)
    return (r, done | accept), accept

  (r, _), accepts = jax.lax.scan(step, (q, jnp.bool_(False)), (alive, x_pos, u, p_x, p))
  return accepts, r


def sps(u, p_x, p, q, x_pos):
  r"""Single-draft speculative sampling (Leviathan et al.; Chen et al.): :func:`specinfer`
  with one draft -- accept iff :math:`u < \min(1, q(X)/p(X))`, else sample
  :math:`(q - p)^+` (normalised). Shapes as :func:`specinfer` with ``K = 1``."""
  return specinfer(u, p_x, p, q, x_pos)


# --------------------------------------------------------------------------
# SpecTr K-SEQ.
# --------------------------------------------------------------------------


def spectr_rho(p: jax.Array, q: jax.Array, num_drafts) -> tuple[jax.Array, jax.Array]:
  r"""SpecTr's :math:`(\rho^*, \beta(\rho^*))` for probabilities ``p``, ``q``.

  :math:`\beta(\rho) = \sum_x \min(p(x), q(x)/\rho)`; bisection on
  :math:`g(\rho) = 1 - (1-\beta(\rho))^K - \rho\beta(\rho)`, which is
  non-increasing on ``[1, K]`` with ``g(K) <= 0``; returns the upper end of
  the final bracket (``g <= 0`` there, so :math:`c = (1-(1-\beta)^K)/\beta
  \le \rho` and the scheme stays exact even if the bracket has not fully
  converged). jit-able; ``num_drafts`` may be traced.
  """
  k = num_drafts

  def beta(rho):
    return jnp.sum(jnp.minimum(p, q / rho))

  def g(rho):
    b = beta(rho)
    return -jnp.expm1(k * jnp.log1p(-jnp.minimum(b, 1.0))) - rho * b

  def body(_, bracket):
    lo, hi = bracket
    mid = 0.5 * (lo + hi)
    pos = g(mid) > 0
    return jnp.where(pos, mid, lo), jnp.where(pos, hi, mid)

  one = jnp.float32(1.0)
  _, hi = jax.lax.fori_loop(0, _BISECTION_STEPS, body, (one, jnp.float32(k)))
  rho = jnp.where(g(one) <= 0, one, hi)
  return rho, beta(rho)


def spectr_acceptance(beta, num_drafts):
  r"""SpecTr's acceptance probability :math:`1 - (1 - \beta)^K` (``beta`` at :math:`\rho^*`)."""
  return -jnp.expm1(num_drafts * jnp.log1p(-jnp.minimum(beta, 1.0)))


def spectr(u, p_x, q_x, p, q, num_drafts, alive=None):
  r"""SpecTr K-SEQ with ``num_drafts`` i.i.d. drafts of the proposal ``p``.

  Draft ``X_k`` is accepted (the first one wins) iff
  :math:`u_k < \min(1, q(X_k) / (\rho^* p(X_k)))`; the residual when all are
  rejected is :math:`(q - c \min(p, q/\rho^*))^+` with
  :math:`c = (1 - (1-\beta)^K)/\beta`.

  Args:
    u: ``[K]`` acceptance uniforms.
    p_x, q_x: ``[K]`` ``p(X_k)`` and ``q(X_k)``.
    p, q: ``[M]`` the common proposal and the target on one support.
    num_drafts: ``K`` of the test (the number of alive drafts; may be traced).
    alive: optional ``bool[K]``: only these drafts can be accepted (default all).

  Returns:
    ``(accepts bool[K], residual [M])`` (every passing draft is ``True``; the first wins;
    the residual is unnormalised).
  """
  rho, beta = spectr_rho(p, q, num_drafts)
  accepts = u * rho * p_x < q_x  # u < min(1, q(x) / (rho p(x)))
  if alive is not None:
    accepts = alive & accepts
  total = spectr_acceptance(beta, num_drafts)
  c = jnp.where(beta > 0, total / jnp.where(beta > 0, beta, 1.0), 0.0)
  return accepts, jnp.maximum(q - c * jnp.minimum(p, q / rho), 0.0)
