# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Exponential races, Gumbel-max list sampling (GLS) and reference couplings.

Everything here is a pure, key-first JAX function. Distributions are given as
*logits* (unnormalised log-probabilities; ``-inf`` is zero mass), exactly like
:func:`jax.random.categorical` -- not probabilities, which is what
:mod:`lcoupling.bounds` takes: pass ``jnp.log(p)`` to a sampler.

Input checks (every sampler here and in :mod:`lcoupling.verifiers`):

* Concrete inputs (outside ``jit``/``vmap``, and constants that a jitted
  function closes over) are checked: NaN, ``+inf``, a row with no mass or a
  wrong shape raise ``ValueError`` naming the argument, and an argument that
  looks like a probability vector (entries in ``[0, 1]`` summing to 1, not
  uniform) gets a :class:`ProbabilitiesAsLogitsWarning` (once per call site and
  argument, under Python's default warning filter), because ``softmax(p)``
  rather than ``p`` would be sampled.
* Traced inputs (arguments of a ``jit``/``vmap``-ed function, values computed
  inside it) cannot be inspected: NaN logits silently give garbage -- the first
  NaN entry wins every race, so e.g. ``gls_sample`` with NaN in both arguments
  returns identical drafts and target and ``accepted=True``. Wrap the outermost
  function with :func:`checked` to get a clear error there too:
  ``checked(jax.jit(jax.vmap(f)))(keys, logits)`` raises ``ValueError``
  (``checkify.JaxRuntimeError``) naming the argument.

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

Method: docs/method.md §1 (GLS) and §2 (its bounds).

References:
  Rowan, Phan & Khisti, *List-Level Distribution Coupling with Applications to
  Speculative Decoding and Lossy Compression*, NeurIPS 2025, arXiv:2506.05632.
  Daliri, Musco & Suresh, *Coupling without Communication and Drafter-Invariant
  Speculative Decoding*, arXiv:2408.07978.
  Shrivastava, *Simple and Efficient Weighted Minwise Hashing*, NeurIPS 2016.
"""

from __future__ import annotations

import functools
import sys
import warnings
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
    "safe_log",
    "gls_sample",
    "gumbel_coupling",
    "weighted_minhash_coupling",
    "maximal_coupling",
    "check_logits",
    "check_num_drafts",
    "ProbabilitiesAsLogitsWarning",
    "warn_if_probabilities",
    "checked",
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


class ProbabilitiesAsLogitsWarning(UserWarning):
  """A sampler argument that takes logits got what looks like a probability vector.

  Filter it with ``warnings.filterwarnings("ignore",
  category=lcoupling.ProbabilitiesAsLogitsWarning)`` when such logits are
  intended.
  """


#: Modules whose frames are skipped when a warning names the caller's line.
_SAMPLER_MODULES = frozenset({__name__, "lcoupling.verifiers"})


def _looks_like_probabilities(x) -> bool:
  """Concrete, every row finite in ``[0, 1]``, summing to 1, and not all rows uniform.

  Log-probabilities never qualify (they are <= 0 and sum to at most 0), nor does
  a vector with ``-inf`` entries. A uniform row is excluded because there
  ``softmax(p) == p``: sampling is correct either way. A one-hot vector such as
  ``[1.0, 0.0]`` qualifies: read as probabilities it always gives symbol 0, read
  as logits it gives symbol 0 with probability ``e / (e + 1) = 0.73``.
  """
  if not _is_concrete(x):
    return False
  x = np.asarray(x)
  if x.ndim < 1 or x.shape[-1] < 2 or x.size == 0 or not (
      jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)):
    return False
  rows = x.reshape(-1, x.shape[-1]).astype(np.float64)
  if not np.all(np.isfinite(rows)) or rows.min() < 0 or rows.max() > 1:
    return False
  tol = 1e-2 if x.dtype.itemsize <= 2 else 1e-3
  if not np.all(np.abs(rows.sum(axis=-1) - 1.0) <= tol):
    return False
  return bool(np.any(np.ptp(rows, axis=-1) > 0))


def warn_if_probabilities(logits, name: str) -> None:
  """Warns (:class:`ProbabilitiesAsLogitsWarning`) if ``logits`` looks like probabilities.

  Only concrete values are inspected (never inside ``jit``/``vmap``). The
  warning is attributed to the first caller outside the samplers' modules and
  its text depends only on ``name``, so Python's default filter shows it once
  per call site and argument.

  Example:
    >>> import warnings, jax.numpy as jnp
    >>> with warnings.catch_warnings(record=True) as w:
    ...   warnings.simplefilter("always")
    ...   warn_if_probabilities(jnp.array([0.7, 0.3]), "target_logits")
    ...   warn_if_probabilities(jnp.log(jnp.array([0.7, 0.3])), "target_logits")
    >>> [str(x.message).split(" looks")[0] for x in w]
    ['target_logits']
  """
  if not _looks_like_probabilities(logits):
    return
  level, frame = 1, sys._getframe(0)
  while frame is not None and frame.f_globals.get("__name__") in _SAMPLER_MODULES:
    frame, level = frame.f_back, level + 1
  warnings.warn(
      f"{name} looks like a probability vector (entries in [0, 1] summing to 1), but samplers take "
      f"logits, so softmax({name}) is sampled instead: pass jnp.log({name}) (zero mass becomes "
      f"-inf). If these really are logits, silence this with warnings.filterwarnings('ignore', "
      f"category=lcoupling.ProbabilitiesAsLogitsWarning).",
      ProbabilitiesAsLogitsWarning, stacklevel=level)


def _debug_check_logits(logits, name: str) -> None:
  """Value checks that run only under :func:`checked` (``checkify`` debug checks).

  Without :func:`checked` they are no-ops (nothing is lowered); concrete
  inputs are skipped because :func:`check_logits` already raised for them.
  """
  if _is_concrete(logits):
    return
  from jax.experimental import checkify  # noqa: PLC0415

  checkify.check(~jnp.any(jnp.isnan(logits)), f"{name} contains NaN", debug=True)
  checkify.check(~jnp.any(jnp.isposinf(logits)),
                 f"{name} contains +inf (logits are log-probabilities; use -inf for zero mass)",
                 debug=True)
  checkify.check(jnp.all(jnp.any(~jnp.isneginf(logits), axis=-1)),
                 f"{name} has no mass: every entry of a row is -inf", debug=True)


def checked(fn, *, errors=None):
  """``fn`` with the samplers' value checks switched on, also under ``jit``/``vmap``.

  Under ``jit`` or ``vmap`` the samplers cannot look at values, and NaN logits
  silently give garbage (the first NaN entry wins every race: ``gls_sample``
  with NaN logits returns identical drafts and, if the target's logits are NaN
  too, ``accepted=True``).
  ``checked(fn)`` runs ``fn`` through :func:`jax.experimental.checkify.checkify`,
  which turns the samplers' checks (NaN or ``+inf`` logits, a row without mass)
  into an error raised when ``fn`` returns: a ``ValueError``
  (``checkify.JaxRuntimeError``) whose message names the argument, e.g.
  ``draft_logits contains NaN``. It is a debugging mode: the checks cost a pass
  over the logits and ``fn`` is re-traced on every call.

  ``checked`` must be the outermost transformation -- ``checked(jax.jit(f))``,
  ``checked(jax.jit(jax.vmap(f)))`` -- because the error is raised on the host
  after ``fn`` ran; ``jax.jit(checked(f))`` raises ``TypeError``. Array
  arguments are traced, every other argument (e.g. ``num_drafts=4``) is passed
  as a static value.

  Args:
    fn: any function that calls the samplers (or a sampler itself), or the
      codec's :func:`~lcoupling.compression.encoder_index` /
      :func:`~lcoupling.compression.decoder_index` (non-finite log weights).
    errors: the ``checkify`` error set (default ``checkify.user_checks``, the
      samplers' checks); e.g. ``checkify.user_checks | checkify.nan_checks``
      also reports the first operation that produces a NaN anywhere in ``fn``.

  Returns:
    A function with the signature of ``fn``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> f = jax.jit(jax.vmap(lambda k, logits: gls_sample(k, logits, logits, 2).accepted,
    ...                      in_axes=(0, None)))
    >>> keys = jax.random.split(jax.random.key(0), 3)
    >>> bad = jnp.array([0.0, jnp.nan, -1.0])
    >>> f(keys, bad).tolist()   # silent garbage: symbol 1 wins every race
    [True, True, True]
    >>> checked(f)(keys, bad)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    jax._src.checkify.JaxRuntimeError: draft_logits contains NaN...
  """
  from jax.experimental import checkify  # noqa: PLC0415

  errs = checkify.user_checks if errors is None else errors

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
      raise TypeError(
          "lcoupling.checked(fn) must be the outermost transformation: write "
          "checked(jax.jit(f)) or checked(jax.vmap(f)), not jax.jit(checked(f))")
    dynamic = [isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves]

    def call(*arrays):
      it = iter(arrays)
      full = [next(it) if d else leaf for leaf, d in zip(leaves, dynamic)]
      a, kw = jax.tree_util.tree_unflatten(treedef, full)
      return fn(*a, **kw)

    err, out = checkify.checkify(call, errors=errs)(
        *[leaf for leaf, d in zip(leaves, dynamic) if d])
    err.throw()
    return out

  return wrapper


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


def safe_log(x: jax.Array) -> jax.Array:
  """``log x`` with ``-inf`` where ``x <= 0`` (zero mass), without a NaN gradient or warning:
  how probabilities (residuals, masses) become logits."""
  return jnp.where(x > 0, jnp.log(jnp.where(x > 0, x, 1.0)), -jnp.inf)


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
  warn_if_probabilities(draft_logits, names[0])
  warn_if_probabilities(target_logits, names[1])
  _debug_check_logits(draft_logits, names[0])
  _debug_check_logits(target_logits, names[1])
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

  Inputs are *logits* (``-inf`` = zero mass), not probabilities: for a
  probability vector ``p`` pass ``jnp.log(p)`` (a probability-looking argument
  triggers :class:`ProbabilitiesAsLogitsWarning`). Concrete inputs are checked
  (``ValueError`` naming the argument); under ``jit``/``vmap`` NaN logits are
  not detected and give garbage (the first NaN entry wins every race: every
  draft is that symbol and, with NaN target logits too, ``accepted=True``)
  -- wrap the outermost function with :func:`checked` to raise instead.

  Args:
    key: typed PRNG key (the shared randomness).
    draft_logits: ``[N]`` (i.i.d. drafts) or ``[K, N]`` (one proposal per list
      position) logits of the draft distribution(s) ``p``.
    target_logits: ``[N]`` logits of the target ``q``.
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

  Inputs are *logits* (``-inf`` = zero mass), not probabilities: for a
  probability vector ``p`` pass ``jnp.log(p)`` (a probability-looking argument
  triggers :class:`ProbabilitiesAsLogitsWarning`). Concrete inputs are checked
  (``ValueError`` naming the argument); under ``jit``/``vmap`` NaN logits are
  not detected and give garbage (the first NaN entry wins) -- wrap the outermost
  function with :func:`checked` to raise instead.
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

  Inputs are *logits* (``-inf`` = zero mass), not probabilities: for a
  probability vector ``p`` pass ``jnp.log(p)`` (a probability-looking argument
  triggers :class:`ProbabilitiesAsLogitsWarning`). Concrete inputs are checked
  (``ValueError`` naming the argument); under ``jit``/``vmap`` NaN logits are
  not detected and give garbage -- wrap the outermost function with
  :func:`checked` to raise instead.
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
  same = jax.random.categorical(k_m, safe_log(m))
  x_res = jax.random.categorical(k_p, safe_log(jnp.maximum(p - m, 0.0)))
  y_res = jax.random.categorical(k_q, safe_log(jnp.maximum(q - m, 0.0)))
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
