# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Token-level multi-draft verification schemes.

A *verifier* is a pair of pure, key-first functions::

    draft(key, draft_logits, num_drafts)                    -> drafts int32[K]
    verify(key, drafts, draft_logits, target_logits)        -> (token int32[], accepted bool[], index int32[])

``draft_logits`` is ``[N]`` (i.i.d. drafts) or ``[K, N]`` (one proposal per
draft, "diverse" drafts); ``target_logits`` is ``[N]``. ``index`` is the
position of the accepted draft (``drafts[index] == token``) or ``-1`` when
every draft was rejected (then ``token`` is a fresh sample). Passing the *same*
``key`` to ``draft`` and ``verify`` is the shared randomness of the two
parties. Every scheme outputs ``token ~ q`` exactly.

Logits, not probabilities: ``draft_logits`` and ``target_logits`` are
unnormalised log-probabilities (``-inf`` = zero mass), as in
:func:`jax.random.categorical`; pass ``jnp.log(p)`` for a probability vector
``p`` (:mod:`lcoupling.bounds` is the one module that takes probabilities). A
concrete argument that looks like a probability vector gets a
:class:`lcoupling.core.ProbabilitiesAsLogitsWarning`; concrete NaN, ``+inf`` or
massless rows raise ``ValueError`` naming the argument. Under ``jit``/``vmap``
values are not inspected and NaN logits give garbage (the first NaN entry wins
every race, so every draft is that symbol, "accepted" when the target's logits
are NaN too); wrap the outermost function with
:func:`lcoupling.core.checked` (``checked(jax.jit(jax.vmap(f)))``) to raise a
clear error there too.

Randomness layout (identical for every scheme, so studies get common random
numbers): draft ``k`` is the winner of row ``k`` of the exponential race
``log_race_times(key, (K, N))`` (:mod:`lcoupling.core`), an exact sample of
``p^(k)``, independent across ``k``. Auxiliary randomness of a verifier uses
``aux = fold_in(key, AUX_STREAM)`` and then ``fold_in(aux, k)`` for draft
``k``: its acceptance uniform is drawn from ``fold_in(fold_in(aux, k), 0)`` and
the residual sample after draft ``k`` was rejected (the last one) from
``fold_in(fold_in(aux, k), 1)``. Nothing depends on call order.

Schemes (:data:`NAMES`), with ``p^(k) = softmax(draft_logits[k])`` and
``q = softmax(target_logits)``:

``gls`` -- Gumbel-max list sampling (Rowan et al. 2025). With ``S`` the race
  times,

  .. math::
     X_k = \arg\min_i S_{k,i} / p^{(k)}_i, \qquad
     Y = \arg\min_i \big(\min_{k<K} S_{k,i}\big) / q_i ,

  the output is ``Y`` and a draft is accepted iff ``Y = X_k`` for some ``k``.
  ``verify`` never reads ``draft_logits`` (only its shape is validated):
  conditionally on the drafts, the output does not depend on the drafter
  (*drafter invariance*). No residual distribution. Acceptance is at least
  the list matching lemma
  :math:`\sum_j K / \sum_i [\max(q_i/q_j, p_i/p_j) + (K-1) q_i/q_j]`.

``gls_strong`` -- the strongly invariant variant: the target race takes the
  min over ``num_rows`` rows (a static argument of ``verify``, default ``K``),
  although only the ``K = len(drafts)`` drafts of rows ``0..K-1`` are alive.
  In sequence-level decoding ``num_rows`` is the original list size and the
  drafts are the survivors, so ``Y`` is a function of ``(key, q, num_rows)``
  alone -- any drafter gives the same token. The acceptance drops to the
  strong-invariance bound
  :math:`\sum_j J / \sum_i [\max(q_i/q_j, p_i/p_j) + (K'-1) q_i/q_j]` with
  ``J = len(drafts)`` alive and ``K' = num_rows``. With ``num_rows = K`` it is
  identical to ``gls``.

``specinfer`` -- recursive rejection sampling (SpecInfer, Miao et al. 2024):
  ``r <- q``; for ``k = 0..K-1`` accept ``X_k`` with probability
  :math:`\min(1, r(X_k)/p^{(k)}(X_k))`, otherwise
  :math:`r \leftarrow (r - p^{(k)})^+ / \lVert (r - p^{(k)})^+\rVert_1`; if all
  are rejected sample ``r``. Order-dependent (favours the first drafts); reads
  the draft probabilities.

``spectr`` -- SpecTr K-SEQ (Sun et al. 2023), i.i.d. drafts only. With
  :math:`\beta(\rho) = \sum_x \min(p(x), q(x)/\rho)`, :math:`\rho^* \in [1, K]`
  solves :math:`1 - (1-\beta)^K = \rho\beta` (found by a fixed number of
  bisection steps, jit-able; the upper end of the final bracket is used, for
  which :math:`c = (1-(1-\beta)^K)/\beta \le \rho`, so the scheme stays exact
  even if the bracket has not fully converged). Draft ``X_i`` is accepted (the
  first one wins) with probability :math:`\min(1, q(X_i)/(\rho p(X_i)))`;
  acceptance :math:`1-(1-\beta)^K`. Residual when all are rejected:
  :math:`p_{res} \propto q - c \min(p, q/\rho)`.
  Diverse drafts raise ``ValueError`` when ``draft_logits`` is concrete and its
  rows differ; under ``jit`` this cannot be checked and row 0 is used as the
  proposal of every draft (in ``draft`` too).

``sps`` -- single-draft speculative sampling (Leviathan et al. 2023; Chen et
  al. 2023): accept ``X`` with probability :math:`\min(1, q(X)/p(X))`, else
  sample :math:`(q-p)^+`. Requires ``K = 1``; acceptance ``1 - d_TV(p, q)``.

``daliri`` -- single-draft Gumbel coupling (Daliri, Musco & Suresh 2024):
  ``X = argmin S/p``, ``Y = argmin S/q`` with the same ``S``; output ``Y``,
  accepted iff ``X = Y``. ``gls`` with ``K = 1``. Requires ``K = 1``.

Method: docs/method.md §3 (token-level verifiers) and §4 (their sequence-level use).

References:
  Rowan, Phan & Khisti, *List-Level Distribution Coupling with Applications to
  Speculative Decoding and Lossy Compression*, NeurIPS 2025, arXiv:2506.05632.
  Miao et al., *SpecInfer: Accelerating Large Language Model Serving with
  Tree-based Speculative Inference and Verification*, ASPLOS 2024,
  arXiv:2305.09781.
  Sun et al., *SpecTr: Fast Speculative Decoding via Optimal Transport*,
  NeurIPS 2023, arXiv:2310.15141.
  Leviathan, Kalman & Matias, *Fast Inference from Transformers via
  Speculative Decoding*, ICML 2023.
  Chen et al., *Accelerating Large Language Model Decoding with Speculative
  Sampling*, arXiv:2302.01318, 2023.
  Daliri, Musco & Suresh, *Coupling without Communication and Drafter-Invariant
  Speculative Decoding*, arXiv:2408.07978.

Example:
  >>> import jax, jax.numpy as jnp
  >>> p = jnp.log(jnp.array([0.5, 0.3, 0.2]))
  >>> q = jnp.log(jnp.array([0.2, 0.3, 0.5]))
  >>> v = get("gls")
  >>> key = jax.random.key(0)
  >>> drafts = v.draft(key, p, 4)
  >>> token, accepted, index = v.verify(key, drafts, p, q)
  >>> drafts.shape, token.dtype, bool(accepted) == bool(index >= 0)
  ((4,), dtype('int32'), True)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling import acceptance, core

__all__ = ["NAMES", "Verifier", "get", "simulate", "spectr_rho"]

#: Names accepted by :func:`get` (:data:`lcoupling.acceptance.SCHEMES`).
NAMES = acceptance.SCHEMES

#: SpecTr's ``(rho*, beta(rho*))`` (:func:`lcoupling.acceptance.spectr_rho`).
spectr_rho = acceptance.spectr_rho


class Verifier(NamedTuple):
  """A token-level verification scheme (see the module docstring)."""

  name: str
  #: ``draft(key, draft_logits, num_drafts=None) -> int32[K]``; ``draft_logits``
  #: are logits (``jnp.log(p)``), not probabilities.
  draft: Callable
  #: ``verify(key, drafts, draft_logits, target_logits) -> (token, accepted, index)``;
  #: logits, not probabilities. NaN logits under ``jit``/``vmap`` are detected
  #: only inside :func:`lcoupling.core.checked`.
  verify: Callable
  #: whether ``[K, N]`` draft logits with different rows are allowed.
  supports_diverse: bool
  #: whether ``verify``'s output, given the drafts, never reads ``draft_logits``.
  drafter_invariant: bool


# --------------------------------------------------------------------------
# Validation (static shapes always; values only when concrete).
# --------------------------------------------------------------------------


def _check_draft_args(name, draft_logits, num_drafts):
  draft_logits = jnp.asarray(draft_logits)
  core.check_logits(draft_logits, "draft_logits", ndim=(1, 2))
  core.warn_if_probabilities(draft_logits, "draft_logits")
  core._debug_check_logits(draft_logits, "draft_logits")
  if num_drafts is None:
    if draft_logits.ndim != 2:
      raise ValueError(f"{name}: num_drafts is required when draft_logits is one distribution [N]")
    num_drafts = draft_logits.shape[0]
  num_drafts = core.check_num_drafts(num_drafts)
  if draft_logits.ndim == 2 and draft_logits.shape[0] != num_drafts:
    raise ValueError(
        f"{name}: draft_logits has {draft_logits.shape[0]} rows but num_drafts={num_drafts}")
  return draft_logits, num_drafts


def _check_verify_args(name, drafts, draft_logits, target_logits):
  drafts = jnp.asarray(drafts)
  draft_logits = jnp.asarray(draft_logits)
  target_logits = jnp.asarray(target_logits)
  if drafts.ndim != 1:
    raise ValueError(f"{name}: drafts must have shape [K], got {tuple(drafts.shape)}")
  if not jnp.issubdtype(drafts.dtype, jnp.integer):
    raise TypeError(f"{name}: drafts must be an integer array, got dtype {drafts.dtype}")
  num_drafts = core.check_num_drafts(drafts.shape[0], "len(drafts)")
  core.check_logits(target_logits, "target_logits", ndim=(1,))
  core.check_logits(draft_logits, "draft_logits", ndim=(1, 2))
  core.warn_if_probabilities(draft_logits, "draft_logits")
  core.warn_if_probabilities(target_logits, "target_logits")
  core._debug_check_logits(draft_logits, "draft_logits")
  core._debug_check_logits(target_logits, "target_logits")
  n = target_logits.shape[-1]
  if draft_logits.shape[-1] != n:
    raise ValueError(
        f"{name}: draft_logits and target_logits must share the alphabet: shapes "
        f"{tuple(draft_logits.shape)} and {tuple(target_logits.shape)}")
  if draft_logits.ndim == 2 and draft_logits.shape[0] != num_drafts:
    raise ValueError(
        f"{name}: draft_logits has {draft_logits.shape[0]} rows but drafts has {num_drafts} entries")
  if core._is_concrete(drafts):
    d = np.asarray(drafts)
    if d.size and (d.min() < 0 or d.max() >= n):
      raise ValueError(f"{name}: drafts must lie in [0, {n}), got {d.tolist()}")
  return drafts.astype(jnp.int32), draft_logits, target_logits, num_drafts


def _check_single(name, num_drafts):
  if num_drafts != 1:
    raise ValueError(
        f"{name} is a single-draft scheme: num_drafts must be 1, got {num_drafts}")


def _check_iid(name, draft_logits):
  """SpecTr needs i.i.d. drafts: all rows of [K, N] logits must be identical."""
  if draft_logits.ndim == 2 and core._is_concrete(draft_logits):
    x = np.asarray(draft_logits)
    if not np.array_equal(x, np.broadcast_to(x[:1], x.shape)):
      raise ValueError(
          f"{name} does not support diverse drafts: the rows of draft_logits differ. SpecTr "
          "K-SEQ is defined for i.i.d. drafts only; pass one distribution [N] (or use "
          "'specinfer' / 'gls').")


# --------------------------------------------------------------------------
# Shared pieces.
# --------------------------------------------------------------------------


def _aux_key(key, k, what):
  """Auxiliary key of draft ``k``: 0 = acceptance uniform, 1 = residual sample."""
  aux = jax.random.fold_in(key, core.AUX_STREAM)
  return jax.random.fold_in(jax.random.fold_in(aux, k), what)


def _first_index(mask):
  """Position of the first True entry of a bool[K] vector, or -1."""
  idx = jnp.argmax(mask).astype(jnp.int32)
  return jnp.where(mask[idx], idx, jnp.int32(-1))


def _first_accepted_or_residual(key, drafts, accepts, residual_probs):
  """``(token, accepted, index)``: the first accepted draft, else a sample of the residual.

  The residual sample uses the auxiliary key of the last draft (``k = K - 1``,
  sub-stream 1), so it does not depend on which draft (if any) was accepted.
  """
  index = _first_index(accepts)
  k_drafts = drafts.shape[0]
  residual = jax.random.categorical(_aux_key(key, k_drafts - 1, 1),
                                    acceptance.safe_log(residual_probs)).astype(jnp.int32)
  accepted = index >= 0
  token = jnp.where(accepted, drafts[jnp.maximum(index, 0)], residual)
  return token, accepted, index


@functools.partial(jax.jit, static_argnames=("num_drafts",))
def _race_drafts(key, draft_logits, num_drafts):
  n = draft_logits.shape[-1]
  log_s = core.log_race_times(key, (num_drafts, n))
  return core.race_argmin(log_s, jnp.broadcast_to(draft_logits, (num_drafts, n)))


# --------------------------------------------------------------------------
# GLS (and Daliri = GLS with K = 1).
# --------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("num_rows",))
def _gls_verify(key, drafts, target_logits, num_rows):
  n = target_logits.shape[-1]
  log_s = core.log_race_times(key, (num_rows, n))
  token = acceptance.gls_token(log_s, jnp.ones((num_rows,), bool), jnp.arange(n, dtype=jnp.int32),
                               target_logits)
  index = _first_index(drafts == token)
  return token, index >= 0, index


def _gls_draft(key, draft_logits, num_drafts=None):
  draft_logits, num_drafts = _check_draft_args("gls", draft_logits, num_drafts)
  return _race_drafts(key, draft_logits, num_drafts)


def _gls_verify_public(key, drafts, draft_logits, target_logits):
  drafts, _, target_logits, k = _check_verify_args("gls", drafts, draft_logits, target_logits)
  return _gls_verify(key, drafts, target_logits, k)


def _gls_strong_verify(key, drafts, draft_logits, target_logits, num_rows=None):
  """GLS verify whose target race spans ``num_rows >= len(drafts)`` rows.

  The alive drafts are those of rows ``0..len(drafts)-1``; ``num_rows``
  (static, default ``len(drafts)``) is the original list size. The token is a
  function of ``(key, target_logits, num_rows)`` only.
  """
  drafts, _, target_logits, k = _check_verify_args("gls_strong", drafts, draft_logits,
                                                   target_logits)
  num_rows = k if num_rows is None else core.check_num_drafts(num_rows, "num_rows")
  if num_rows < k:
    raise ValueError(f"gls_strong: num_rows must be >= len(drafts) = {k}, got {num_rows}")
  return _gls_verify(key, drafts, target_logits, num_rows)


def _gls_strong_draft(key, draft_logits, num_drafts=None):
  draft_logits, num_drafts = _check_draft_args("gls_strong", draft_logits, num_drafts)
  return _race_drafts(key, draft_logits, num_drafts)


def _single_draft(name, key, draft_logits, num_drafts=None):
  """``draft`` of the single-draft schemes (``sps``, ``daliri``): K must be 1."""
  if num_drafts is None and jnp.ndim(draft_logits) == 1:
    num_drafts = 1
  draft_logits, num_drafts = _check_draft_args(name, draft_logits, num_drafts)
  _check_single(name, num_drafts)
  return _race_drafts(key, draft_logits, 1)


_daliri_draft = functools.partial(_single_draft, "daliri")


def _daliri_verify(key, drafts, draft_logits, target_logits):
  drafts, _, target_logits, k = _check_verify_args("daliri", drafts, draft_logits, target_logits)
  _check_single("daliri", k)
  return _gls_verify(key, drafts, target_logits, 1)


# --------------------------------------------------------------------------
# SpecInfer (recursive rejection sampling; sps = SpecInfer with K = 1).
# --------------------------------------------------------------------------


@jax.jit
def _specinfer_verify(key, drafts, draft_logits, target_logits):
  k_drafts = drafts.shape[0]
  n = target_logits.shape[-1]
  p_all = jax.nn.softmax(jnp.broadcast_to(draft_logits, (k_drafts, n)), axis=-1)
  q = jax.nn.softmax(target_logits)
  ks = jnp.arange(k_drafts, dtype=jnp.uint32)
  u = jax.vmap(lambda k: jax.random.uniform(_aux_key(key, k, 0)))(ks)
  p_x = jnp.take_along_axis(p_all, drafts[:, None], axis=1)[:, 0]
  accepts, r = acceptance.specinfer(u, p_x, p_all, q, drafts)
  return _first_accepted_or_residual(key, drafts, accepts, r)


def _specinfer_draft(key, draft_logits, num_drafts=None):
  draft_logits, num_drafts = _check_draft_args("specinfer", draft_logits, num_drafts)
  return _race_drafts(key, draft_logits, num_drafts)


def _specinfer_verify_public(key, drafts, draft_logits, target_logits):
  drafts, draft_logits, target_logits, _ = _check_verify_args(
      "specinfer", drafts, draft_logits, target_logits)
  return _specinfer_verify(key, drafts, draft_logits, target_logits)


_sps_draft = functools.partial(_single_draft, "sps")


def _sps_verify(key, drafts, draft_logits, target_logits):
  drafts, draft_logits, target_logits, k = _check_verify_args(
      "sps", drafts, draft_logits, target_logits)
  _check_single("sps", k)
  return _specinfer_verify(key, drafts, draft_logits, target_logits)


# --------------------------------------------------------------------------
# SpecTr K-SEQ.
# --------------------------------------------------------------------------


@jax.jit
def _spectr_verify(key, drafts, draft_logits, target_logits):
  k_drafts = drafts.shape[0]
  logits_p = draft_logits if draft_logits.ndim == 1 else draft_logits[0]
  p = jax.nn.softmax(logits_p)
  q = jax.nn.softmax(target_logits)
  ks = jnp.arange(k_drafts, dtype=jnp.uint32)
  u = jax.vmap(lambda k: jax.random.uniform(_aux_key(key, k, 0)))(ks)
  accepts, res = acceptance.spectr(u, p[drafts], q[drafts], p, q, k_drafts)
  return _first_accepted_or_residual(key, drafts, accepts, res)


def _spectr_draft(key, draft_logits, num_drafts=None):
  draft_logits, num_drafts = _check_draft_args("spectr", draft_logits, num_drafts)
  _check_iid("spectr", draft_logits)
  logits_p = draft_logits if draft_logits.ndim == 1 else draft_logits[0]
  return _race_drafts(key, logits_p, num_drafts)


def _spectr_verify_public(key, drafts, draft_logits, target_logits):
  drafts, draft_logits, target_logits, _ = _check_verify_args(
      "spectr", drafts, draft_logits, target_logits)
  _check_iid("spectr", draft_logits)
  return _spectr_verify(key, drafts, draft_logits, target_logits)


# --------------------------------------------------------------------------
# Registry.
# --------------------------------------------------------------------------

_FUNCTIONS = {
    "gls": (_gls_draft, _gls_verify_public),
    "gls_strong": (_gls_strong_draft, _gls_strong_verify),
    "specinfer": (_specinfer_draft, _specinfer_verify_public),
    "spectr": (_spectr_draft, _spectr_verify_public),
    "sps": (_sps_draft, _sps_verify),
    "daliri": (_daliri_draft, _daliri_verify),
}
_VERIFIERS = {name: Verifier(name, *_FUNCTIONS[name], name in acceptance.DIVERSE,
                             name in acceptance.GLS_FAMILY) for name in NAMES}


def get(name: str) -> Verifier:
  """The :class:`Verifier` registered under ``name`` (one of :data:`NAMES`)."""
  if name not in _VERIFIERS:
    raise ValueError(f"unknown verifier {name!r}; known: {list(NAMES)}")
  return _VERIFIERS[name]


def simulate(key: jax.Array, verifier: Verifier | str, draft_logits: jax.Array,
             target_logits: jax.Array, num_drafts: int | None = None):
  """Runs ``verifier.draft`` then ``verifier.verify`` with the same ``key``.

  jit-able (``verifier`` and ``num_drafts`` static) and vmap-able over keys.
  ``draft_logits`` and ``target_logits`` are logits (``jnp.log(p)``), not
  probabilities; under ``jit``/``vmap`` NaN logits give garbage unless the
  outermost function is wrapped with :func:`lcoupling.core.checked`.

  Returns:
    ``(token int32[], accepted bool[], index int32[])``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> p = jnp.log(jnp.array([0.5, 0.3, 0.2]))
    >>> q = jnp.log(jnp.array([0.2, 0.3, 0.5]))
    >>> keys = jax.random.split(jax.random.key(0), 1000)
    >>> tok, acc, idx = jax.vmap(lambda k: simulate(k, "spectr", p, q, 2))(keys)
    >>> tok.shape
    (1000,)
  """
  v = get(verifier) if isinstance(verifier, str) else verifier
  drafts = v.draft(key, draft_logits, num_drafts)
  return v.verify(key, drafts, draft_logits, target_logits)
