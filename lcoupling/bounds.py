# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Acceptance bounds and exact acceptance probabilities of list-level couplings.

Every function takes *probability vectors* (normalised, non-negative arrays;
zero entries allowed) -- not logits -- and returns a scalar float (``float64``
when ``jax_enable_x64`` is on, ``float32`` otherwise; inputs are cast to that
dtype). All functions are pure, ``jit``-able (``num_drafts`` / ``num_active``
are static) and ``vmap``-able over pairs. Inputs are validated only when they
are concrete arrays (outside ``jit``/``vmap``): NaN, ``inf`` or negative
entries, sums off 1 by more than ``1e-4``, mismatched shapes and
``num_drafts < 1`` raise ``ValueError`` naming the argument.

Notation: alphabet :math:`\Omega = \{0..N-1\}`, proposal (draft) ``p``, target
``q``, list size :math:`K` (``num_drafts``). On the support of ``p`` let

.. math::
   r_i = q_i / p_i, \qquad
   F_j = \sum_i (p_i q_j / p_j - q_i)^+ = \sum_i p_i (r_j - r_i)^+ ,

so that :math:`\sum_i \max(q_i, p_i q_j / p_j) = 1 + F_j`. Sorting ``r`` makes
every :math:`F_j` available in :math:`O(N \log N)` (with
:math:`P_m = p_{(1)} + \dots + p_{(m)}`,
:math:`F_{(m+1)} = F_{(m)} + P_m (r_{(m+1)} - r_{(m)})`).

Bounds and exact values (see docs/method.md §2; formulas marked
*derived* were re-derived and checked by simulation):

* **List matching lemma** (LML; Rowan, Phan & Khisti 2025), a lower bound on
  the acceptance ``Pr[Y in {X_1..X_K}]`` of Gumbel-max list sampling (GLS):

  .. math::
     \Pr[\text{accept}] \ge \sum_{j:\,p_j, q_j > 0}
       \frac{K}{\sum_i \max(q_i/q_j,\ p_i/p_j) + (K-1)\, q_i/q_j}
     = \sum_j \frac{K q_j}{K + F_j} .

  It is exactly the probability that the row that wins the target's race
  drafts the target token; exact for :math:`K = 1`, for ``p = q`` and for a
  point-mass ``p`` (:func:`list_matching_lemma`).
* **Conditional LML**: :math:`\Pr[\text{accept} \mid Y = j] \ge
  (1 + q_j / (K p_j))^{-1}`; averaging with weights :math:`q_j` gives the
  weaker :math:`\sum_j K p_j q_j / (K p_j + q_j)`
  (:func:`conditional_list_matching_lemma`).
* **Different proposals** :math:`p^{(1..K)}` (derived):
  :math:`\sum_j \sum_k [\sum_i \max(q_i/q_j, p^{(k)}_i/p^{(k)}_j) + (K-1)/q_j]^{-1}
  = \sum_j \sum_k q_j / (K + F^{(k)}_j)` (:func:`diverse_list_matching_lemma`).
* **Gumbel coupling, K = 1** (exact): :math:`\Pr[x = y] = \sum_j [\sum_i
  \max(q_i/q_j, p_i/p_j)]^{-1} = \sum_j q_j/(1 + F_j)`
  (:func:`gumbel_match_probability`).
* **Daliri, Musco & Suresh** (arXiv:2408.07978): the Gumbel coupling agrees with
  probability at least :math:`(1-d)/(1+d)`, :math:`d = d_{TV}(p, q)`
  (:func:`daliri_bound`), worst-case optimal without communication; weighted
  MinHash agrees with probability exactly :math:`\sum \min(p,q) / \sum
  \max(p,q)` (:func:`weighted_minhash_match_probability`), never more than
  Gumbel. The maximal coupling (needs communication) attains
  :math:`1 - d_{TV}` (:func:`maximal_coupling_probability`,
  :func:`total_variation`).
* **Optimal multi-draft acceptance** (the optimal-transport LP of SpecTr, Sun
  et al. 2023, arXiv:2310.15141; closed form by max-flow/min-cut): for
  independent drafts :math:`x_k \sim p^{(k)}`,

  .. math::
     \alpha^* = \min_{B \subseteq \Omega}\Big[q(B) + 1 - \prod_k p^{(k)}(B)\Big],
     \qquad \text{i.i.d.: } \alpha^* = 1 + \min_B [q(B) - p(B)^K] ,

  by enumerating all :math:`2^N` subsets, :math:`N \le 16`
  (:func:`optimal_acceptance`). No practical scheme attains it.
* **Strongly invariant variant** (the target's race uses all :math:`K` rows
  although only :math:`J` drafts are alive; derived):
  :math:`\sum_j J q_j / (K + F_j) = (J/K)\,\mathrm{LML}`
  (:func:`strong_invariance_bound`).
* **Exact GLS acceptance** (derived; :func:`gls_acceptance_probability`).
  Condition on the winning pair :math:`(k^*, j)` of the target's race at race
  value :math:`t` (density :math:`q_j e^{-Kt}`). Given :math:`t` the rows are
  independent; the winning row drafts :math:`j` with probability
  :math:`a_j(t) = e^{-t F_j}` and any other row with probability

  .. math::
     b_j(t) = p_j \sum_{m \ge m_j} \frac{e^{-t F_{(m)}} - e^{-t F_{(m+1)}}}{P_m},
     \qquad F_{(n+1)} = \infty ,

  (:math:`m_j` the rank of :math:`r_j`), hence

  .. math::
     \Pr[\text{accept}] = \sum_j q_j \sum_{k^*} \frac{1}{K + F^{(k^*)}_j}
       + \sum_j q_j \int_0^\infty e^{-Kt} \sum_{k^*}
         \big(1 - e^{-t F^{(k^*)}_j}\big)
         \Big(1 - \prod_{k \ne k^*} \big(1 - b^{(k)}_j(t)\big)\Big)\, dt .

  The first sum is the (diverse) LML; the integral, the contribution of the
  other rows, is zero for :math:`K = 1`, ``p = q`` and point-mass ``p``. For
  :math:`K = 2` it has a closed form (:func:`gls_acceptance_probability_k2`).

References:
  Rowan, Phan & Khisti, *List-Level Distribution Coupling with Applications to
  Speculative Decoding and Lossy Compression*, NeurIPS 2025, arXiv:2506.05632.
  Daliri, Musco & Suresh, *Coupling without Communication and Drafter-Invariant
  Speculative Decoding*, arXiv:2408.07978.
  Sun, Mendlovic, Leviathan, Aharoni, Beirami, Ro & Suresh, *SpecTr: Fast
  Speculative Decoding via Optimal Transport*, NeurIPS 2023, arXiv:2310.15141.

Example:
  >>> import jax.numpy as jnp
  >>> p = jnp.array([0.5, 0.3, 0.2]); q = jnp.array([0.2, 0.3, 0.5])
  >>> round(float(gumbel_match_probability(p, q)), 4)
  0.6308
  >>> lml = list_matching_lemma(p, q, num_drafts=4)
  >>> exact = gls_acceptance_probability(p, q, num_drafts=4)
  >>> opt = optimal_acceptance(p, q, num_drafts=4)
  >>> bool(lml <= exact <= opt), round(float(exact), 4)
  (True, 0.897)
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling.core import check_num_drafts

__all__ = [
    "list_matching_lemma",
    "conditional_list_matching_lemma",
    "diverse_list_matching_lemma",
    "gumbel_match_probability",
    "daliri_bound",
    "weighted_minhash_match_probability",
    "weighted_jaccard",
    "total_variation",
    "maximal_coupling_probability",
    "optimal_acceptance",
    "strong_invariance_bound",
    "gls_acceptance_probability",
    "gls_acceptance_probability_k2",
    "MAX_SUBSET_SYMBOLS",
    "SUM_TOLERANCE",
]

#: Largest alphabet :func:`optimal_acceptance` enumerates (``2**N`` subsets).
MAX_SUBSET_SYMBOLS = 16
#: Allowed ``|sum(p) - 1|`` of a probability vector (checked outside jit).
SUM_TOLERANCE = 1e-4

# Quadrature in s = log t for the exact GLS acceptance: trapezoid rule on a
# fixed grid s in [s_min, _S_MAX]. The integrand, a finite combination of
# exp(-c e^s), is analytic in the strip |Im s| < pi/2, so the trapezoid error
# decays like exp(-pi^2 / step) (measured: ~1e-15 at step 0.3, ~1e-10 at 0.4);
# truncating at t0 = e^{s_min} costs at most K * t0 in absolute terms.
# float64: step 0.2 on [-36, 4] (201 nodes); float32: step 0.4 on [-24, 4]
# (71 nodes), both far below the dtype's rounding error.
_S_MAX = 4.0
_GRID = {  # dtype -> (default step, s_min)
    "float64": (0.2, -36.0),
    "float32": (0.4, -24.0),
}
# Elements of the largest [nodes, K, N] block evaluated at once.
_BLOCK_ELEMENTS = 2**21


# --------------------------------------------------------------------------
# Validation (concrete arrays only) and dtype.
# --------------------------------------------------------------------------


def _float_dtype():
  """float64 if jax x64 is enabled, else float32."""
  return jax.dtypes.canonicalize_dtype(jnp.float64)


def _is_concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def _as_dist(x, name: str, ndim: tuple[int, ...] = (1,)) -> jax.Array:
  """Casts to the float dtype and validates a probability vector (or rows)."""
  try:
    arr = jnp.asarray(x)
  except TypeError as e:
    raise TypeError(f"{name} must be an array of probabilities, got {type(x).__name__}") from e
  if arr.ndim not in ndim:
    raise ValueError(
        f"{name} must have rank {' or '.join(map(str, ndim))}, got shape {tuple(arr.shape)}"
    )
  if arr.shape[-1] < 1:
    raise ValueError(f"{name} has an empty alphabet (shape {tuple(arr.shape)})")
  if _is_concrete(arr):
    v = np.asarray(arr, dtype=np.float64)
    if np.isnan(v).any():
      raise ValueError(f"{name} contains NaN")
    if np.isinf(v).any():
      raise ValueError(f"{name} contains inf (expected probabilities)")
    if (v < 0).any():
      raise ValueError(f"{name} has negative entries (min {v.min():.3g}); expected probabilities")
    sums = np.atleast_1d(v.sum(axis=-1))
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
      where = "" if v.ndim == 1 else f" (rows {np.flatnonzero(bad)[:8].tolist()})"
      raise ValueError(
          f"{name} must sum to 1 (tolerance {SUM_TOLERANCE:g}), got sum {sums[bad][0]:.6g}{where}"
      )
  return arr.astype(_float_dtype())


def _check_pair(p, q, num_drafts=None, *, allow_rows: bool = False,
                need_num_drafts: bool = True):
  """Validates ``p`` ([N], or [K, N] if ``allow_rows``), ``q`` [N], ``num_drafts``."""
  p = _as_dist(p, "p", ndim=(1, 2) if allow_rows else (1,))
  q = _as_dist(q, "q")
  if p.shape[-1] != q.shape[-1]:
    raise ValueError(
        f"p and q must share the alphabet: shapes {tuple(p.shape)} and {tuple(q.shape)}"
    )
  if p.ndim == 2:
    if num_drafts is None:
      num_drafts = p.shape[0]
    num_drafts = check_num_drafts(num_drafts)
    if p.shape[0] != num_drafts:
      raise ValueError(f"p has {p.shape[0]} rows (proposals) but num_drafts={num_drafts}")
  elif need_num_drafts:
    if num_drafts is None:
      raise ValueError("num_drafts is required when p is one distribution [N]")
    num_drafts = check_num_drafts(num_drafts)
  return p, q, num_drafts


# --------------------------------------------------------------------------
# Sorted race statistics.
# --------------------------------------------------------------------------


class _Sorted(NamedTuple):
  """Per-proposal statistics of ``f(v) = sum_i p_i (v - r_i)^+`` in sorted order.

  Built by :func:`_sort_race`. Symbols outside the support of ``p`` are sorted
  last (tied with the largest ratio, zero mass) so all shapes stay fixed.
  """

  order: jax.Array  #: permutation sorting ``r = q / p`` ascending.
  inv: jax.Array  #: its inverse: ``x_sorted[inv]`` is in symbol order.
  p: jax.Array  #: ``p`` in sorted order.
  q: jax.Array  #: ``q`` in sorted order.
  P: jax.Array  #: prefix sums ``P_m`` (1 where 0, never used there).
  dF: jax.Array  #: ``F_(m+1) - F_(m) = P_m (r_(m+1) - r_(m))``; last = inf.
  F_raw: jax.Array  #: ``F_(m) = f(r_(m))`` at every sorted position.
  F: jax.Array  #: ``F_(m)``, +inf off the support (the winning row never drafts there).

  def unsort(self, x):
    """Sorted-order values -> original symbol order."""
    return x[self.inv]

  def b(self, t):
    """``b_j(t)`` in sorted order, shape ``[N, *t.shape]``: drafting probability of a
    non-winning row given the race value ``t`` (nodes on the minor axes)."""
    t = t[None]
    f, d_f = (x.reshape(x.shape + (1,) * (t.ndim - 1)) for x in (self.F_raw, self.dF))
    inv_p = (1.0 / self.P).reshape(f.shape)
    term = jnp.exp(-t * f) * (-jnp.expm1(-t * d_f)) * inv_p  # >= 0
    suffix = jax.lax.cumsum(term, axis=0, reverse=True)
    return jnp.clip(self.p.reshape(f.shape) * suffix, 0.0, 1.0)


def _sort_race(p, q) -> _Sorted:
  dtype = p.dtype
  support = p > 0
  ratio = q / jnp.where(support, p, 1.0)
  ratio = jnp.minimum(ratio, jnp.asarray(jnp.finfo(dtype).max / 4, dtype))  # no inf - inf
  key = jnp.where(support, ratio, jnp.inf)
  order = jnp.argsort(key, stable=True)
  r = key[order]
  r = jnp.where(jnp.isinf(r), jnp.max(jnp.where(support, ratio, 0.0)), r)
  p_s, q_s, sup_s = p[order], q[order], support[order]
  cum = jnp.cumsum(p_s)
  d_f = cum[:-1] * (r[1:] - r[:-1])
  f_raw = jnp.concatenate([jnp.zeros((1,), dtype), jnp.cumsum(d_f)])
  inv = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0], dtype=order.dtype))
  return _Sorted(
      order=order, inv=inv, p=p_s, q=q_s, P=jnp.where(cum > 0, cum, 1.0),
      dF=jnp.concatenate([d_f, jnp.full((1,), jnp.inf, dtype)]),
      F_raw=f_raw, F=jnp.where(sup_s, f_raw, jnp.inf))


def _lml_terms(p, q, num_drafts):
  """``q_j / (K + F_j)`` in original symbol order (0 off the support of p)."""
  s = _sort_race(p, q)
  return s.unsort(s.q / (num_drafts + s.F))


# --------------------------------------------------------------------------
# Closed-form bounds.
# --------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("num_drafts",))
def _lml(p, q, num_drafts):
  return num_drafts * jnp.sum(_lml_terms(p, q, num_drafts))


def list_matching_lemma(p, q, num_drafts: int) -> jax.Array:
  r"""List matching lemma: lower bound on the GLS acceptance with ``K`` i.i.d. drafts.

  .. math::
     \mathrm{LML} = \sum_{j:\,p_j,q_j>0}
       \frac{K}{\sum_i \max(q_i/q_j,\ p_i/p_j) + (K-1)\, q_i/q_j}
     = \sum_j \frac{K q_j}{K + F_j},\quad F_j = \sum_i (p_i q_j/p_j - q_i)^+ .

  Exact for ``K = 1`` (:func:`gumbel_match_probability`), ``p = q`` (value 1)
  and point-mass ``p`` (value ``q`` at that point). Cost ``O(N log N)``.

  Args:
    p: proposal ``[N]``.
    q: target ``[N]``.
    num_drafts: list size ``K >= 1`` (static).

  Example:
    >>> import jax.numpy as jnp
    >>> p = jnp.array([0.5, 0.3, 0.2]); q = jnp.array([0.2, 0.3, 0.5])
    >>> round(float(list_matching_lemma(p, q, num_drafts=2)), 4)
    0.7466
  """
  p, q, num_drafts = _check_pair(p, q, num_drafts)
  return _lml(p, q, num_drafts)


def conditional_list_matching_lemma(p, q, num_drafts: int) -> jax.Array:
  r"""Conditional LML: for every ``j``, a lower bound on ``Pr[accept | Y = j]``.

  .. math::
     \Pr[\text{accept} \mid Y = j] \ge \Big(1 + \frac{q_j}{K p_j}\Big)^{-1}
       = \frac{K p_j}{K p_j + q_j} .

  Returns the vector over ``j`` (shape ``[N]``). Conventions: ``0`` where
  ``p_j = 0`` (symbol ``j`` is never drafted; also when ``q_j = 0``); ``1``
  where ``q_j = 0 < p_j`` (the formula's value; the event ``Y = j`` has
  probability zero there). ``sum(q * result)`` is the averaged closed form
  :math:`\sum_j K p_j q_j / (K p_j + q_j)`, weaker than the LML.

  Example:
    >>> import jax.numpy as jnp
    >>> c = conditional_list_matching_lemma(jnp.array([0.5, 0.5, 0.0]),
    ...                                     jnp.array([0.5, 0.0, 0.5]), num_drafts=1)
    >>> [round(float(x), 4) for x in c]
    [0.5, 1.0, 0.0]
  """
  p, q, num_drafts = _check_pair(p, q, num_drafts)
  kp = num_drafts * p
  return jnp.where(p > 0, kp / jnp.where(p > 0, kp + q, 1.0), 0.0)


@jax.jit
def _diverse_lml(ps, q):
  num_drafts = ps.shape[0]
  terms = jax.vmap(lambda p: _lml_terms(p, q, num_drafts))(ps)
  return jnp.sum(terms)


def diverse_list_matching_lemma(ps, q) -> jax.Array:
  r"""LML for ``K`` different proposals ``ps[k] = p^(k)`` (one per list position).

  .. math::
     \sum_j \sum_k \Big[\sum_i \max\big(q_i/q_j,\ p^{(k)}_i/p^{(k)}_j\big)
       + (K-1)/q_j\Big]^{-1} = \sum_j \sum_k \frac{q_j}{K + F^{(k)}_j}

  (terms with ``p^(k)_j = 0`` or ``q_j = 0`` are zero). Identical rows give
  :func:`list_matching_lemma`.

  Args:
    ps: ``[K, N]`` proposals.
    q: ``[N]`` target.

  Example:
    >>> import jax.numpy as jnp
    >>> ps = jnp.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    >>> round(float(diverse_list_matching_lemma(ps, jnp.array([0.2, 0.3, 0.5]))), 4)
    0.8733
  """
  ps = _as_dist(ps, "ps", ndim=(2,))
  q = _as_dist(q, "q")
  if ps.shape[-1] != q.shape[-1]:
    raise ValueError(
        f"ps and q must share the alphabet: shapes {tuple(ps.shape)} and {tuple(q.shape)}"
    )
  return _diverse_lml(ps, q)


def gumbel_match_probability(p, q) -> jax.Array:
  r"""Exact agreement ``Pr[x = y]`` of the Gumbel (exponential race) coupling, ``K = 1``.

  .. math::
     \Pr[x = y] = \sum_{j} \Big[\sum_i \max(q_i/q_j,\ p_i/p_j)\Big]^{-1}
       = \sum_j \frac{q_j}{1 + F_j} .

  Example:
    >>> import jax.numpy as jnp
    >>> round(float(gumbel_match_probability(jnp.array([0.6, 0.4]), jnp.array([0.4, 0.6]))), 4)
    0.8
  """
  p, q, _ = _check_pair(p, q, need_num_drafts=False)
  return _lml(p, q, 1)


def total_variation(p, q) -> jax.Array:
  r"""Total-variation distance :math:`d_{TV}(p, q) = \tfrac12 \sum_i |p_i - q_i|`.

  Example:
    >>> import jax.numpy as jnp
    >>> round(float(total_variation(jnp.array([0.6, 0.4]), jnp.array([0.4, 0.6]))), 4)
    0.2
  """
  p, q, _ = _check_pair(p, q, need_num_drafts=False)
  return 0.5 * jnp.sum(jnp.abs(p - q))


def maximal_coupling_probability(p, q) -> jax.Array:
  r"""Agreement of the maximal coupling, :math:`1 - d_{TV} = \sum_i \min(p_i, q_i)`.

  The best any coupling can do (it needs both ``p`` and ``q`` at one party).

  Example:
    >>> import jax.numpy as jnp
    >>> round(float(maximal_coupling_probability(jnp.array([0.6, 0.4]), jnp.array([0.4, 0.6]))), 4)
    0.8
  """
  p, q, _ = _check_pair(p, q, need_num_drafts=False)
  return jnp.sum(jnp.minimum(p, q))


def daliri_bound(p, q) -> jax.Array:
  r"""Daliri--Musco--Suresh lower bound :math:`(1 - d)/(1 + d)`, :math:`d = d_{TV}(p, q)`.

  A lower bound on :func:`gumbel_match_probability`; worst-case optimal among
  communication-free couplings (arXiv:2408.07978).

  Example:
    >>> import jax.numpy as jnp
    >>> round(float(daliri_bound(jnp.array([0.6, 0.4]), jnp.array([0.4, 0.6]))), 4)
    0.6667
  """
  p, q, _ = _check_pair(p, q, need_num_drafts=False)
  d = 0.5 * jnp.sum(jnp.abs(p - q))
  return (1.0 - d) / (1.0 + d)


def weighted_jaccard(p, q) -> jax.Array:
  r"""Weighted Jaccard similarity :math:`J = \sum_i \min(p_i,q_i) / \sum_i \max(p_i,q_i)`.

  Since :math:`\sum_i \min = 1 - d` and :math:`\sum_i \max = 1 + d`, this is
  identically :func:`daliri_bound`. It is the probability that the two parties
  of :func:`lcoupling.weighted_minhash_coupling` stop at the *same point* of
  their shared stream (Shrivastava 2016).

  Example:
    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.6, 0.4]), jnp.array([0.4, 0.6])
    >>> round(float(weighted_jaccard(p, q)), 4)
    0.6667
  """
  p, q, _ = _check_pair(p, q, need_num_drafts=False)
  return jnp.sum(jnp.minimum(p, q)) / jnp.sum(jnp.maximum(p, q))


def weighted_minhash_match_probability(p, q) -> jax.Array:
  r"""Exact agreement of :func:`lcoupling.weighted_minhash_coupling`.

  .. math::
     \Pr[x = y] = \frac{\sum_i m_i \,(1 + |p_i - q_i|)}{\sum_i \max(p_i, q_i)},
     \qquad m = \min(p, q).

  The first point of the shared stream under :math:`\max(p, q)` is under both
  histograms with probability :func:`weighted_jaccard`; if it is under ``p``
  only (symbol ``i``), ``y`` is a fresh sample of ``q`` and still equals ``i``
  with probability ``q_i`` (symmetrically for ``q`` only). So the symbol-level
  agreement is at least the weighted Jaccard similarity ``(1 - d)/(1 + d)``; it
  is never larger than :func:`gumbel_match_probability` (checked in the tests
  on random pairs, not proved here).

  Example:
    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.6, 0.4]), jnp.array([0.4, 0.6])
    >>> round(float(weighted_minhash_match_probability(p, q)), 4)
    0.8
  """
  p, q, _ = _check_pair(p, q, need_num_drafts=False)
  m = jnp.minimum(p, q)
  return jnp.sum(m * (1 + jnp.abs(p - q))) / jnp.sum(jnp.maximum(p, q))


def strong_invariance_bound(p, q, num_drafts: int, num_active: int) -> jax.Array:
  r"""LML of the strongly invariant variant: ``J`` live drafts, race over all ``K`` rows.

  .. math::
     \sum_j \frac{J}{\sum_i \max(q_i/q_j,\ p_i/p_j) + (K-1)\, q_i/q_j}
     = \frac{J}{K}\,\mathrm{LML}_K(p, q) .

  Args:
    p: proposal ``[N]``.
    q: target ``[N]``.
    num_drafts: ``K``, rows of the target's race (static).
    num_active: ``J``, drafts still alive, ``1 <= J <= K`` (static).

  Example:
    >>> import jax.numpy as jnp
    >>> p = jnp.array([0.5, 0.3, 0.2]); q = jnp.array([0.2, 0.3, 0.5])
    >>> round(float(strong_invariance_bound(p, q, num_drafts=4, num_active=2)), 4)
    0.4214
  """
  p, q, num_drafts = _check_pair(p, q, num_drafts)
  num_active = check_num_drafts(num_active, "num_active")
  if num_active > num_drafts:
    raise ValueError(f"num_active must be <= num_drafts={num_drafts}, got {num_active}")
  return (num_active / num_drafts) * _lml(p, q, num_drafts)


# --------------------------------------------------------------------------
# Optimal acceptance (min-cut of the SpecTr transport LP).
# --------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("num_drafts",))
def _optimal(ps, q, num_drafts):
  n = q.shape[-1]
  masks = ((jnp.arange(2**n, dtype=jnp.int32)[:, None] >> jnp.arange(n, dtype=jnp.int32)) & 1)
  masks = masks.astype(q.dtype)
  hi = jax.lax.Precision.HIGHEST
  q_b = jnp.dot(masks, q, precision=hi)
  p_b = jnp.dot(masks, ps.T, precision=hi)  # [2^N, rows]
  if ps.shape[0] == 1:
    prod = p_b[:, 0] ** num_drafts
  else:
    prod = jnp.prod(p_b, axis=1)
  return jnp.clip(jnp.min(q_b + 1.0 - prod), 0.0, 1.0)


def optimal_acceptance(p, q, num_drafts: int | None = None) -> jax.Array:
  r"""Best acceptance of any verifier with ``K`` independent drafts (SpecTr's LP optimum).

  The optimal-transport LP (Sun et al. 2023) maximises ``Pr[Y in {x_1..x_K}]``
  over couplings of the draft tuple (law :math:`\prod_k p^{(k)}(x_k)`) with
  ``Y ~ q``. By max-flow/min-cut its value is

  .. math::
     \alpha^* = \min_{B \subseteq \Omega}\Big[q(B) + 1 - \prod_k p^{(k)}(B)\Big]
     \quad(\text{i.i.d.: } 1 + \min_B [q(B) - p(B)^K]),

  evaluated by enumerating all ``2**N`` subsets (vectorised, jit-able).
  ``K = 1`` gives ``1 - d_TV``.

  Args:
    p: proposal ``[N]`` (i.i.d. drafts; ``num_drafts`` required) or ``[K, N]``
      (draft ``k`` from ``p[k]``; ``num_drafts`` optional, must equal ``K``).
    q: target ``[N]``.
    num_drafts: ``K`` (static).

  Raises:
    ValueError: if ``N > 16`` (``MAX_SUBSET_SYMBOLS``), or invalid inputs.

  Example:
    >>> import jax.numpy as jnp
    >>> p = jnp.array([0.5, 0.3, 0.2]); q = jnp.array([0.2, 0.3, 0.5])
    >>> round(float(optimal_acceptance(p, q, num_drafts=2)), 4)
    0.86
  """
  p, q, num_drafts = _check_pair(p, q, num_drafts, allow_rows=True)
  n = q.shape[-1]
  if n > MAX_SUBSET_SYMBOLS:
    raise ValueError(
        f"optimal_acceptance enumerates 2**N subsets: q has N={n} symbols, the limit is "
        f"N <= {MAX_SUBSET_SYMBOLS}"
    )
  ps = p[None] if p.ndim == 1 else p
  return _optimal(ps, q, num_drafts)


# --------------------------------------------------------------------------
# Exact GLS acceptance.
# --------------------------------------------------------------------------


def _nodes(step: float | None, dtype):
  """Nodes ``t = e^s`` and weights ``w`` with ``int_0^inf g dt ~ sum w g(t)``."""
  default_step, s_min = _GRID.get(jnp.dtype(dtype).name, _GRID["float32"])
  step = default_step if step is None else step
  num = int(math.ceil((_S_MAX - s_min) / step - 1e-9)) + 1
  s = s_min + step * np.arange(num, dtype=np.float64)
  t = np.exp(s)
  w = np.full(num, step)
  w[0] = w[-1] = step / 2
  # Tail t < e^{s_0}: the integrand is ~ c t there, i.e. ~ c e^{2s} in s.
  w[0] += 0.5
  return jnp.asarray(t, dtype), jnp.asarray(w * t, dtype)


def _integrate(block_fn, t, w, per_node: int):
  """``sum_n w[n] block_fn(t)[n]`` over fixed blocks of nodes (``jax.lax.map``).

  ``block_fn`` maps a ``[B]`` block of nodes to ``[B]`` values; ``B`` is chosen
  so that a block touches about ``_BLOCK_ELEMENTS`` elements of ``per_node``
  each. Padding nodes get weight 0.
  """
  num = t.shape[0]
  size = int(max(1, min(num, _BLOCK_ELEMENTS // max(1, per_node))))
  blocks = -(-num // size)
  pad = blocks * size - num
  t = jnp.pad(t, (0, pad), constant_values=1.0).reshape(blocks, size)
  w = jnp.pad(w, (0, pad)).reshape(blocks, size)
  vals = jax.lax.map(block_fn, t)
  return jnp.sum(w * vals)


# "Union" algebra for 1 - prod(1 - b) without cancellation: a pair (c, d) with
# d = prod(1 - b) and c = 1 - d; (c1, d1) o (c2, d2) = (c1 + d1 c2, d1 d2) is
# associative and only adds and multiplies non-negative numbers.
def _union(x, y):
  return x[0] + x[1] * y[0], x[1] * y[1]


def _union_power(b, m: int):
  """``1 - (1 - b)^m`` for a static ``m >= 0`` by repeated squaring."""
  result = (jnp.zeros_like(b), jnp.ones_like(b))
  base = (b, 1.0 - b)
  while m:
    if m & 1:
      result = _union(result, base)
    m >>= 1
    if m:
      base = _union(base, base)
  return result[0]


def _union_exclusive(b):
  """``1 - prod_{k' != k} (1 - b[k'])`` for every row ``k`` of ``b`` ([K, ...])."""
  k = b.shape[0]
  pairs = (b, 1.0 - b)
  if k > 8:
    inc = jax.lax.associative_scan(_union, pairs, axis=0)
    rinc = jax.lax.associative_scan(lambda x, y: _union(y, x), pairs, axis=0, reverse=True)
    ident = (jnp.zeros_like(b[:1]), jnp.ones_like(b[:1]))
    pre = tuple(jnp.concatenate([i, x[:-1]]) for i, x in zip(ident, inc))
    suf = tuple(jnp.concatenate([x[1:], i]) for i, x in zip(ident, rinc))
    return _union(pre, suf)[0]
  ident = (jnp.zeros_like(b[0]), jnp.ones_like(b[0]))
  pre = [ident]
  for i in range(k - 1):
    pre.append(_union(pre[-1], (pairs[0][i], pairs[1][i])))
  suf = [ident]
  for i in range(k - 1, 0, -1):
    suf.append(_union((pairs[0][i], pairs[1][i]), suf[-1]))
  return jnp.stack([_union(pre[i], suf[k - 1 - i])[0] for i in range(k)])


@functools.partial(jax.jit, static_argnames=("num_drafts", "step"))
def _gls_iid(p, q, num_drafts, step):
  k = num_drafts
  s = _sort_race(p, q)
  lml = k * jnp.sum(s.q / (k + s.F))
  if k == 1:
    return jnp.clip(lml, 0.0, 1.0)
  t, w = _nodes(step, p.dtype)

  def block(tb):  # [B] nodes -> [B] integrand values
    miss_own = -jnp.expm1(-tb * s.F[:, None])  # 1 - a_j(t); = 1 off the support
    hit_other = _union_power(s.b(tb), k - 1)  # 1 - (1 - b_j(t))^(K-1)
    return jnp.sum(s.q[:, None] * miss_own * hit_other, axis=0)

  extra = k * _integrate(block, t, w * jnp.exp(-k * t), p.shape[-1])
  return jnp.clip(lml + extra, 0.0, 1.0)


@functools.partial(jax.jit, static_argnames=("step",))
def _gls_diverse(ps, q, step):
  k, n = ps.shape
  rows = jax.vmap(lambda p: _sort_race(p, q))(ps)
  f = jax.vmap(lambda st: st.unsort(st.F))(rows)  # [K, N], inf off the supports
  lml = jnp.sum(q / (k + f))
  if k == 1:
    return jnp.clip(lml, 0.0, 1.0)
  t, w = _nodes(step, q.dtype)
  flat_inv = (rows.inv + n * jnp.arange(k, dtype=rows.inv.dtype)[:, None]).reshape(-1)

  def block(tb):  # [B] nodes -> [B] integrand values
    b_sorted = jax.vmap(lambda st: st.b(tb))(rows)  # [K, N, B], row k in its own order
    b = b_sorted.reshape(k * n, -1)[flat_inv].reshape(k, n, -1)  # symbol order
    hit_other = _union_exclusive(b)  # 1 - prod_{k' != k*} (1 - b^(k'))
    miss_own = -jnp.expm1(-tb * f[..., None])  # 1 - a^(k*)_j(t)
    return jnp.sum(q[:, None] * jnp.sum(miss_own * hit_other, axis=0), axis=0)

  extra = _integrate(block, t, w * jnp.exp(-k * t), k * n)
  return jnp.clip(lml + extra, 0.0, 1.0)


def gls_acceptance_probability(p, q, num_drafts: int | None = None, *,
                               step: float | None = None) -> jax.Array:
  r"""Exact acceptance ``Pr[Y in {X_1..X_K}]`` of Gumbel-max list sampling.

  With the notation of the module docstring (``F``, ``b`` per proposal),

  .. math::
     \Pr[\text{accept}] = \sum_j q_j \sum_{k^*} \frac{1}{K + F^{(k^*)}_j}
       + \sum_j q_j \int_0^\infty e^{-Kt} \sum_{k^*}
         \big(1 - e^{-t F^{(k^*)}_j}\big)
         \Big(1 - \prod_{k \ne k^*} \big(1 - b^{(k)}_j(t)\big)\Big)\, dt ,

  the first term being the LML (closed form), the integral the contribution of
  the rows that did not win the target's race.

  Numerics. The integral is evaluated with ``t = e^s`` by the trapezoid rule
  on a fixed grid of ``s`` (fixed shapes, so it jits and vmaps): float64 uses
  step 0.2 on ``s in [-36, 4]`` (201 nodes), float32 step 0.4 on
  ``[-24, 4]`` (71 nodes); ``step`` overrides the step. A tail weight covers
  ``t < e^{s_min}`` (where the integrand is ``~ c t``; that region contributes
  at most ``K e^{s_min}``). The integrand is a combination of
  ``exp(-c e^s)``, analytic in ``|Im s| < pi/2``, so the trapezoid error decays
  like ``exp(-pi^2 / step)``: measured ~1e-15 at step 0.3, ~1e-10 at 0.4,
  ~1e-9 at 0.5. Every summed term is non-negative: ``b`` is a suffix sum of
  ``e^{-t F_(m)} (1 - e^{-t dF_m}) / P_m`` (``expm1``), ``1 - a = -expm1(-t F)``,
  and ``1 - prod (1 - b)`` is accumulated with the pair algebra
  ``(c, d) o (c', d') = (c + d c', d d')`` (``d`` = the product, ``c = 1 - d``),
  as exclusive prefix/suffix products over the rows for different proposals
  (``1 - b`` may be 0) and by repeated squaring for i.i.d. drafts. Symbols
  outside a support are masked. Cost ``O(N log N + N M)`` per proposal (``M``
  nodes; ``O(K N M)`` for ``K`` different proposals); memory is bounded by
  evaluating fixed blocks of nodes with :func:`jax.lax.map`.

  Accuracy (measured; ``tests/test_bounds.py`` checks each):

  * float64: the default grid agrees with ``step=0.1`` and with the extended
    range ``s in [-60, 6]`` to < 1e-15, and with the ``K = 2`` closed form
    :func:`gls_acceptance_probability_k2` to ~2e-16 (``N`` up to 1e3,
    Dirichlet(0.05..1) pairs); Monte Carlo with :func:`lcoupling.gls_sample`
    (``2^18``-``2^21`` samples, identical and different proposals, zero-mass
    symbols) agrees within 4 standard errors (observed ``|z| <= 2.0``).
  * float32 vs float64: ``|difference| <= 1.2e-7`` over Dirichlet(0.01..1)
    pairs with 5% zero-mass symbols, ``N`` in {1e3, 1e5}, ``K`` in {2, 8}, and
    softmax-of-Gaussian-logit pairs (also top-50 truncated) at
    ``N = 151936``; the tests assert ``1e-6``.

  Args:
    p: proposal ``[N]`` (``K`` i.i.d. drafts; ``num_drafts`` required) or
      ``[K, N]`` (draft ``k`` from ``p[k]``; ``num_drafts`` optional, must
      equal ``K``).
    q: target ``[N]``.
    num_drafts: ``K`` (static).
    step: quadrature step in ``log t`` (static); default 0.2 in float64,
      0.4 in float32.

  Example:
    >>> import jax.numpy as jnp
    >>> p = jnp.array([0.5, 0.3, 0.2]); q = jnp.array([0.2, 0.3, 0.5])
    >>> round(float(gls_acceptance_probability(p, q, num_drafts=2)), 4)
    0.774
    >>> round(float(gls_acceptance_probability(jnp.stack([p, p]), q)), 4)
    0.774
  """
  p, q, num_drafts = _check_pair(p, q, num_drafts, allow_rows=True)
  if step is not None:
    step = float(step)
    if not 0.0 < step <= 1.0:
      raise ValueError(f"step must be in (0, 1] (or None for the default), got {step}")
  if p.ndim == 2:
    return _gls_diverse(p, q, step)
  return _gls_iid(p, q, num_drafts, step)


@jax.jit
def _gls_k2(p, q):
  s = _sort_race(p, q)
  f_j = s.F[:, None]  # winner's symbol j (rows), interval m (columns)
  f_m = s.F_raw[None, :]
  d_f = s.dF[None, :]

  def g(c):  # 1/c - 1/(c + dF), exact for dF = inf
    return jnp.where(jnp.isinf(d_f), 1.0 / c, d_f / (c * (c + d_f)))

  n = p.shape[-1]
  upper = jnp.arange(n)[None, :] >= jnp.arange(n)[:, None]  # m >= m_j
  bracket = jnp.where(upper & jnp.isfinite(f_j), g(2.0 + f_m) - g(2.0 + f_j + f_m), 0.0)
  extra = 2.0 * s.p * jnp.sum(bracket / s.P[None, :], axis=1)
  return jnp.clip(jnp.sum(s.q * (2.0 / (2.0 + s.F) + extra)), 0.0, 1.0)


def gls_acceptance_probability_k2(p, q) -> jax.Array:
  r"""Exact GLS acceptance for ``K = 2`` i.i.d. drafts, in closed form.

  .. math::
     \sum_j q_j \Big[\frac{2}{2 + F_j} + 2 p_j \sum_{m \ge m_j} \frac{1}{P_m}
       \Big(\frac{1}{2+F_{(m)}} - \frac{1}{2+F_{(m+1)}}
            - \frac{1}{2+F_j+F_{(m)}} + \frac{1}{2+F_j+F_{(m+1)}}\Big)\Big]

  (``F_(n+1) = inf``). An independent check of
  :func:`gls_acceptance_probability` (no quadrature). Cost and memory
  ``O(N^2)``: for small alphabets only.

  Example:
    >>> import jax.numpy as jnp
    >>> p = jnp.array([0.5, 0.3, 0.2]); q = jnp.array([0.2, 0.3, 0.5])
    >>> round(float(gls_acceptance_probability_k2(p, q)), 4)
    0.774
  """
  p, q, _ = _check_pair(p, q, need_num_drafts=False)
  return _gls_k2(p, q)
