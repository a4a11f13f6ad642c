# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Exponential races, Gumbel-max list sampling (GLS) and reference couplings.

Everything here is a pure, key-first JAX function. Distributions are given as
*logits* (unnormalised log-probabilities; ``-inf`` is zero mass), exactly like
:func:`jax.random.categorical`.

The shared randomness of every scheme is a table of i.i.d. ``Exp(1)`` *race
times* ``S[k, i]`` (row ``k`` = list position / draft / decoder, column ``i`` =
symbol). A party with distribution ``p`` picks the winner of the exponential
race ``argmin_i S[k, i] / p_i``, which is an exact sample from ``p``
(equivalently the Gumbel-max trick with ``G = -log S``).

Race times are *addressable*: the time of ``(row k, symbol i)`` is a pure
function of ``(key, k, i)`` -- it does not depend on the shape of the table it
is generated in. :func:`race_times_at` generates only the times of a sparse set
of symbols (e.g. a top-k support inside a 150k-token vocabulary) and returns
bit-identical values to the dense table of :func:`race_times`. Both read their
bits from one function (the threefry block of counter ``(0, i)`` under the row
key), so they cannot drift apart: not with ``jax_threefry_partitionable`` off
either (with it on, the JAX default, these are the bits of
``jax.random.bits``). Other PRNG implementations fall back to
``jax.random.bits`` for the dense row.

References:
  Rowan, Phan & Khisti, *List-Level Distribution Coupling with Applications to
  Speculative Decoding and Lossy Compression*, NeurIPS 2025, arXiv:2506.05632.
  Daliri, Musco & Suresh, *Coupling without Communication and Drafter-Invariant
  Speculative Decoding*, arXiv:2408.07978.
  Shrivastava, *Simple and Efficient Weighted Minwise Hashing*, NeurIPS 2016.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.extend.random as jex_random
import jax.numpy as jnp
import numpy as np

__all__ = [
    "AUX_STREAM",
    "GLSSample",
    "race_times",
    "race_times_at",
    "log_race_times",
    "race_argmin",
    "gls_sample",
    "gumbel_coupling",
    "weighted_minhash_coupling",
    "maximal_coupling",
    "check_logits",
    "check_num_drafts",
]

#: ``fold_in`` index reserved for auxiliary randomness of a scheme (acceptance
#: uniforms, residual samples). Row ``k`` of the race uses ``fold_in(key, k)``,
#: so any list size below ``2**31 - 1`` never collides with it.
AUX_STREAM = 2**31 - 1


class GLSSample(NamedTuple):
  """Output of :func:`gls_sample`."""

  drafts: jax.Array  #: ``int32[K]``: Alice's list ``X[0..K-1]``.
  target: jax.Array  #: ``int32[]``: Bob's sample ``Y ~ q``.
  accepted: jax.Array  #: ``bool[]``: ``Y in {X[0..K-1]}``.


# --------------------------------------------------------------------------
# Input validation (runs only on concrete values, i.e. outside jit/vmap).
# --------------------------------------------------------------------------


def _is_concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def check_num_drafts(num_drafts, name: str = "num_drafts") -> int:
  """Checks that a list size is a Python int >= 1 and returns it."""
  if isinstance(num_drafts, bool) or not isinstance(num_drafts, (int, np.integer)):
    raise TypeError(f"{name} must be a Python int (a static argument), got {num_drafts!r}")
  if num_drafts < 1:
    raise ValueError(f"{name} must be >= 1, got {num_drafts}")
  return int(num_drafts)


def check_logits(logits, name: str, ndim: tuple[int, ...] = (1,)) -> None:
  """Raises ``ValueError`` naming ``name`` for invalid logits.

  Invalid means: wrong rank, NaN or ``+inf`` entries, or a row whose entries
  are all ``-inf`` (no mass). Tracers (inside ``jit``/``vmap``) are not
  inspected; there an all-``-inf`` row deterministically selects symbol 0 and
  NaN logits give an unspecified symbol.
  """
  if logits.ndim not in ndim:
    raise ValueError(
        f"{name} must have rank {' or '.join(map(str, ndim))}, got shape {tuple(logits.shape)}"
    )
  if logits.shape[-1] < 1:
    raise ValueError(f"{name} has an empty alphabet (shape {tuple(logits.shape)})")
  if not _is_concrete(logits):
    return
  x = np.asarray(logits)
  if np.isnan(x).any():
    raise ValueError(f"{name} contains NaN")
  if np.isposinf(x).any():
    raise ValueError(f"{name} contains +inf (logits are log-probabilities; use -inf for zero mass)")
  dead = np.all(np.isneginf(x), axis=-1)
  if np.any(dead):
    rows = np.flatnonzero(np.atleast_1d(dead)).tolist()
    where = "" if x.ndim == 1 else f" (rows {rows[:8]})"
    raise ValueError(f"{name} has no mass: every entry is -inf{where}")


# --------------------------------------------------------------------------
# Race times.
# --------------------------------------------------------------------------


def _bits_to_log_exponential(bits: jax.Array) -> jax.Array:
  """uint32 bits -> log of an Exp(1) variate, as float32.

  ``u = (bits + 1/2) / 2**32`` lies in ``(0, 1)`` with full float32 relative
  precision near 0, and ``S = -log1p(-u)``. The small-``S`` end decides every
  race, so it must not be quantised: with 23-bit uniforms (``u = 0`` with
  probability ``2**-23``) ``S = 0`` makes a symbol win whatever its mass, which
  gives a vocabulary of ``N`` symbols a total-variation error of about
  ``K * N * 2**-23`` (7% for ``K = 4``, ``N = 151936``). Here the smallest ``S``
  is ``2**-33``; ``u`` is clamped below 1 (the float32 conversion rounds the top
  128 values up to ``2**32``), so ``S <= 24 log 2`` is always finite.
  """
  u = jnp.minimum((bits.astype(jnp.float32) + 0.5) * jnp.float32(2.0**-32),
                  jnp.float32(1.0 - 2.0**-24))
  return jnp.log(-jnp.log1p(-u))


def _is_threefry(key: jax.Array) -> bool:
  return "threefry" in str(jax.random.key_impl(key))


def _threefry_bits_at(key: jax.Array, symbols: jax.Array) -> jax.Array:
  """The 32 random bits of ``symbols`` in a threefry row: the single source of race-time bits.

  Symbol ``i`` gets ``threefry2x32(key, (0, i))`` with its two output words
  xor-ed -- exactly the bits that ``jax.random.bits(key, (N,), uint32)[i]``
  gives while ``jax_threefry_partitionable`` is on (the JAX default), but
  computed here directly, so the dense rows (:func:`log_race_times`) and the
  sparse look-ups (:func:`race_times_at`) agree bit for bit whatever that
  flag says.
  """
  kd = jax.random.key_data(key)
  ctr = jnp.asarray(symbols).astype(jnp.uint32)
  b1, b2 = jex_random.threefry2x32_p.bind(kd[0], kd[1], jnp.zeros_like(ctr), ctr)
  return b1 ^ b2


def _row_bits(key: jax.Array, num_symbols: int) -> jax.Array:
  if _is_threefry(key):
    return _threefry_bits_at(key, jnp.arange(num_symbols, dtype=jnp.uint32))
  return jax.random.bits(key, (num_symbols,), dtype=jnp.uint32)


def log_race_times(key: jax.Array, shape) -> jax.Array:
  """``log S`` for a table of Exp(1) race times of the given ``shape``.

  The last axis indexes symbols; every leading index ``(a, b, ...)`` selects the
  row key ``fold_in(fold_in(key, a), b)...``. Element ``[..., i]`` depends only
  on the row key and ``i``: ``log_race_times(key, (K, N))[k, :M]`` equals
  ``log_race_times(key, (K, M))[k]`` and
  ``log_race_times(fold_in(key, k), (N,))``.

  Working in log space is what every argmin here uses; ``exp`` of this is
  :func:`race_times`.
  """
  shape = tuple(int(d) for d in shape)
  if not shape:
    raise ValueError("shape must have at least one axis (the symbol axis)")
  if len(shape) == 1:
    return _bits_to_log_exponential(_row_bits(key, shape[0]))
  rows = jnp.arange(shape[0], dtype=jnp.uint32)
  return jax.vmap(lambda r: log_race_times(jax.random.fold_in(key, r), shape[1:]))(rows)


def race_times(key: jax.Array, shape) -> jax.Array:
  """Exp(1) race times ``S`` of the given shape (see :func:`log_race_times`).

  Example:
    >>> import jax
    >>> s = race_times(jax.random.key(0), (2, 5))
    >>> s.shape, bool((s >= 0).all())
    ((2, 5), True)
  """
  return jnp.exp(log_race_times(key, shape))


def race_times_at(key: jax.Array, symbols: jax.Array, *, num_symbols: int | None = None,
                  log: bool = True) -> jax.Array:
  """Race times of a sparse set of symbols, identical to the dense table.

  ``race_times_at(key, idx)`` equals ``log_race_times(key, (N,))[idx]`` bit for
  bit, for any ``N > max(idx)``, but costs ``O(len(idx))`` instead of ``O(N)``.
  For a list row ``k`` pass ``fold_in(key, k)``.

  Args:
    key: a row key (typed PRNG key).
    symbols: integer array of symbol indices, any shape.
    num_symbols: alphabet size. Required only for PRNG implementations other
      than threefry, whose bits are not counter-addressable; then the dense row
      is generated and gathered.
    log: return ``log S`` (default, what the races use) or ``S``.
  """
  symbols = jnp.asarray(symbols)
  if _is_threefry(key):
    out = _bits_to_log_exponential(_threefry_bits_at(key, symbols))
  else:
    if num_symbols is None:
      raise ValueError(
          f"race_times_at needs num_symbols for the {jax.random.key_impl(key)} PRNG (only "
          "threefry is counter-addressable)")
    out = log_race_times(key, (num_symbols,))[symbols]
  return out if log else jnp.exp(out)


def race_argmin(log_times: jax.Array, logits: jax.Array, axis: int = -1) -> jax.Array:
  """Winner of the exponential race ``argmin_i S_i / p_i`` (in log space).

  ``-inf`` logits (zero mass) never win; ties go to the lowest index
  (:func:`jnp.argmin`), so every party decides identically.
  """
  score = jnp.where(jnp.isneginf(logits), jnp.inf, log_times - logits)
  return jnp.argmin(score, axis=axis).astype(jnp.int32)


# --------------------------------------------------------------------------
# Gumbel-max list sampling.
# --------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("num_drafts",))
def _gls_sample(key, draft_logits, target_logits, num_drafts):
  n = target_logits.shape[-1]
  log_s = log_race_times(key, (num_drafts, n))
  drafts = race_argmin(log_s, jnp.broadcast_to(draft_logits, (num_drafts, n)))
  target = race_argmin(jnp.min(log_s, axis=0), target_logits)
  return GLSSample(drafts, target, jnp.any(drafts == target))


def _check_pair(draft_logits, target_logits, num_drafts, names=("draft_logits", "target_logits")):
  draft_logits = jnp.asarray(draft_logits)
  target_logits = jnp.asarray(target_logits)
  check_logits(target_logits, names[1], ndim=(1,))
  check_logits(draft_logits, names[0], ndim=(1, 2) if names[0] == "draft_logits" else (1,))
  if draft_logits.shape[-1] != target_logits.shape[-1]:
    raise ValueError(
        f"{names[0]} and {names[1]} must share the alphabet: shapes {tuple(draft_logits.shape)}"
        f" and {tuple(target_logits.shape)}"
    )
  if num_drafts is None:
    if draft_logits.ndim != 2:
      raise ValueError("num_drafts is required when draft_logits is one distribution [N]")
    num_drafts = draft_logits.shape[0]
  num_drafts = check_num_drafts(num_drafts)
  if draft_logits.ndim == 2 and draft_logits.shape[0] != num_drafts:
    raise ValueError(
        f"draft_logits has {draft_logits.shape[0]} rows but num_drafts={num_drafts}"
    )
  return draft_logits, target_logits, num_drafts


def gls_sample(key: jax.Array, draft_logits: jax.Array, target_logits: jax.Array,
               num_drafts: int | None = None) -> GLSSample:
  r"""Gumbel-max list sampling: a list of ``K`` drafts coupled with one target.

  With race times ``S = race_times(key, (K, N))``:

  .. math::
     X_k = \arg\min_i S_{k,i} / p^{(k)}_i, \qquad
     Y = \arg\min_i \big(\min_k S_{k,i}\big) / q_i .

  Each ``X_k ~ p^(k)`` and ``Y ~ q`` exactly; ``Y``'s rule never reads ``p``.
  The acceptance ``Pr[Y in X]`` is at least the list matching lemma
  (:func:`lcoupling.bounds.list_matching_lemma`) and is given exactly by
  :func:`lcoupling.bounds.gls_acceptance_probability`.

  Args:
    key: typed PRNG key (the shared randomness).
    draft_logits: ``[N]`` (i.i.d. drafts) or ``[K, N]`` (one proposal per list
      position).
    target_logits: ``[N]``.
    num_drafts: list size ``K`` (static); may be omitted for ``[K, N]`` drafts.

  Returns:
    :class:`GLSSample` ``(drafts int32[K], target int32[], accepted bool[])``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> p = jnp.log(jnp.array([0.5, 0.3, 0.2]))
    >>> q = jnp.log(jnp.array([0.2, 0.3, 0.5]))
    >>> out = gls_sample(jax.random.key(0), p, q, num_drafts=4)
    >>> out.drafts.shape, out.target.dtype
    ((4,), dtype('int32'))
  """
  draft_logits, target_logits, num_drafts = _check_pair(draft_logits, target_logits, num_drafts)
  return _gls_sample(key, draft_logits, target_logits, num_drafts)


# --------------------------------------------------------------------------
# Two-party (K = 1) couplings.
# --------------------------------------------------------------------------


@jax.jit
def _gumbel_coupling(key, logits_p, logits_q):
  log_s = log_race_times(key, (1,) + logits_p.shape)[0]  # row 0, as gls_sample with K = 1
  return race_argmin(log_s, logits_p), race_argmin(log_s, logits_q)


def gumbel_coupling(key: jax.Array, logits_p: jax.Array, logits_q: jax.Array):
  """Communication-free Gumbel (exponential race) coupling ``(x ~ p, y ~ q)``.

  Both parties race the same times, ``x = argmin S/p``, ``y = argmin S/q``;
  ``Pr[x = y] = sum_j 1 / sum_i max(q_i/q_j, p_i/p_j) >= (1-d)/(1+d)`` with
  ``d = d_TV(p, q)`` (Daliri et al.). Equals ``gls_sample`` with ``K = 1``.
  """
  _check_pair(logits_p, logits_q, 1, names=("logits_p", "logits_q"))
  return _gumbel_coupling(key, jnp.asarray(logits_p), jnp.asarray(logits_q))


def _first_true(mask, values, fill):
  idx = jnp.argmax(mask)
  return jnp.where(mask[idx], values[idx], fill)


@functools.partial(jax.jit, static_argnames=("block",))
def _weighted_minhash(key, logits_p, logits_q, block):
  p = jax.nn.softmax(logits_p)
  q = jax.nn.softmax(logits_q)
  n = p.shape[-1]

  def propose(b):
    kb = jax.random.fold_in(key, b)
    sym = jax.random.randint(jax.random.fold_in(kb, 0), (block,), 0, n)
    height = jax.random.uniform(jax.random.fold_in(kb, 1), (block,))
    return sym, height

  def cond(state):
    _, x, y = state
    return (x < 0) | (y < 0)

  def body(state):
    b, x, y = state
    sym, h = propose(b)
    x = jnp.where(x < 0, _first_true(h < p[sym], sym, -1), x)
    y = jnp.where(y < 0, _first_true(h < q[sym], sym, -1), y)
    return b + 1, x, y

  init = (jnp.uint32(0), jnp.int32(-1), jnp.int32(-1))
  _, x, y = jax.lax.while_loop(cond, body, init)
  return x, y


def weighted_minhash_coupling(key: jax.Array, logits_p: jax.Array, logits_q: jax.Array):
  """Weighted MinHash coupling (rejection sampling under the density).

  A shared stream of points ``(i_t, h_t)``, ``i_t`` uniform on the alphabet and
  ``h_t ~ U[0, 1)``; each party outputs the symbol of the first point under its
  own histogram (``h_t < p_{i_t}``). The output is exactly ``p`` (resp. ``q``).
  Both parties pick the *same point* with probability the weighted Jaccard
  similarity ``J = sum_i m_i / sum_i max(p_i, q_i)``, ``m = min(p, q)``
  (Shrivastava 2016); the symbols can also collide through different points:
  ``Pr[x = y] = sum_i m_i (1 + |p_i - q_i|) / sum_i max(p_i, q_i) >= J``.

  The loop runs until both parties have accepted (an exact, jit-able
  ``while_loop`` over blocks of proposals).
  """
  _check_pair(logits_p, logits_q, 1, names=("logits_p", "logits_q"))
  logits_p, logits_q = jnp.asarray(logits_p), jnp.asarray(logits_q)
  block = int(max(16, 4 * logits_p.shape[-1]))
  return _weighted_minhash(key, logits_p, logits_q, block)


@jax.jit
def _maximal_coupling(key, logits_p, logits_q):
  p = jax.nn.softmax(logits_p)
  q = jax.nn.softmax(logits_q)
  m = jnp.minimum(p, q)
  overlap = jnp.sum(m)
  k_u, k_m, k_p, k_q = (jax.random.fold_in(key, i) for i in range(4))
  log = lambda a: jnp.where(a > 0, jnp.log(jnp.where(a > 0, a, 1.0)), -jnp.inf)
  same = jax.random.categorical(k_m, log(m))
  x_res = jax.random.categorical(k_p, log(jnp.maximum(p - m, 0.0)))
  y_res = jax.random.categorical(k_q, log(jnp.maximum(q - m, 0.0)))
  together = jax.random.uniform(k_u) < overlap
  x = jnp.where(together, same, x_res).astype(jnp.int32)
  y = jnp.where(together, same, y_res).astype(jnp.int32)
  return x, y


def maximal_coupling(key: jax.Array, logits_p: jax.Array, logits_q: jax.Array):
  """The maximal coupling: ``Pr[x = y] = 1 - d_TV(p, q)`` (needs both p and q).

  With probability ``sum_i min(p_i, q_i)`` both output one sample of
  ``min(p, q)``; otherwise each samples its own residual ``(p - min)+`` /
  ``(q - min)+`` (disjoint supports). The reference a communication-free scheme
  cannot reach.
  """
  _check_pair(logits_p, logits_q, 1, names=("logits_p", "logits_q"))
  return _maximal_coupling(key, jnp.asarray(logits_p), jnp.asarray(logits_q))
