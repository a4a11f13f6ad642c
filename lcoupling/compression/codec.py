# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Importance-sampling lossy compression with ``K`` decoders (GLS and baseline; docs/method.md §5.1).

The shared randomness of one source (derived from one key, see
:func:`shared_randomness`) is

* a codebook of ``N`` codewords ``U_j ~ p_W`` (the marginal of the latent),
* bin labels ``l_j`` uniform on ``0..L-1`` with ``L = max_bins`` (a power of
  two); the label used at rate ``L_max = 2**r <= L`` is ``l_j mod L_max``,
* race times ``S[k, j] ~ Exp(1)``, one row per decoder ``k``
  (:func:`lcoupling.core.log_race_times`; row ``k`` is the same for every K).

With importance weights :math:`\lambda_j \propto p_{W|A}(U_j|a)/p_W(U_j)` and
:math:`\mu^{(k)}_j \propto p_{W|T}(U_j|t_k)/p_W(U_j)` (supplied as *log* weight
functions, so a closed form and a learned density-ratio estimator use the same
code):

.. math::
   Y = \arg\min_j \min_{k<K} S_{k,j} / \lambda_j, \qquad
   \text{message} = l_Y \bmod L_{\max}, \qquad
   X_k = \arg\min_{j:\ l_j \equiv l_Y} S_{k,j} / \mu^{(k)}_j .

``scheme="gls"`` uses one race-time row per decoder (the encoder races the
minimum over the first ``K`` rows); ``scheme="baseline"`` shares row 0 between
the encoder and every decoder. ``K = 1`` of both is the single-decoder
importance matching scheme, bit for bit.

**Codebook order.** The labels are i.i.d. uniform; the codebook is *listed in
label order* (codewords ``cum_b <= j < cum_{b+1}`` carry label ``b``, where
``cum`` are the cumulative counts of the i.i.d. labels). Codewords and race
times are i.i.d. and independent of the labels, so listing them in label
order leaves the joint law of ``{(U_j, l_j, S_{.,j})}`` -- and hence of every
output of the scheme -- unchanged, and it lets the evaluation reduce each bin
as a contiguous block (:func:`bin_minima`). Ties go to the lowest index
everywhere, so the blocked evaluation and the plain masked races of
:func:`encoder_index` / :func:`decoder_index` decide identically.

**Log weights.** Every weight function -- ``log_weight_fn`` of
:func:`encoder_index` / :func:`decoder_index` / :func:`encode` / :func:`decode`,
``enc_fn`` / ``dec_fn`` of :func:`nested_evaluate` -- is called as
``fn(codebook [N, ...], context) -> float[N]`` and must return *log*
importance weights: :math:`\log\lambda_j = \log p_{W|A}(U_j|a) - \log
p_W(U_j)` up to an additive constant (any constant: only differences matter),
the same convention as the logits the samplers take
(:func:`lcoupling.gls_sample`) -- never the weights :math:`\lambda_j`
themselves, which would silently race ``exp(lambda)`` instead. Unlike the
samplers' logits every entry must be finite (no ``-inf``: a codeword of zero
weight is not supported). Non-finite values (NaN, ``+-inf``) raise
``ValueError`` naming the function whenever the codec runs on concrete
values: :func:`encode` and :func:`decode` always (they return bytes, so they
never run under ``jit``), :func:`encoder_index` / :func:`decoder_index` when
called outside ``jit``/``vmap``. Under ``jax.jit`` or ``jax.vmap`` values
cannot be inspected, a NaN weight silently wins the race, and it is reported
only inside :func:`lcoupling.checked`: ``lcoupling.checked(jax.jit(f))(...)``
(or ``lcoupling.checked(encoder_index)(key, spec, fn, a)``) raises a
``ValueError`` (``checkify.JaxRuntimeError``) naming the function, e.g.
``log_weight_fn (encoder) returned non-finite log weights``.

**Messages.** :func:`encode` returns ``bytes``: the labels of a batch of
sources, each a fixed-length code of ``log2 L_max`` bits, packed MSB first
(:func:`pack_labels`). :func:`decode` accepts those bytes.

References:
  Rowan, Phan & Khisti, *List-Level Distribution Coupling with Applications to
  Speculative Decoding and Lossy Compression*, NeurIPS 2025, arXiv:2506.05632.
  Phan, Khisti & Louizos, *Importance Matching Lemma for Lossy Compression with
  Side Information*, AISTATS 2024, arXiv:2401.02609.

Example:
  >>> import functools, jax, jax.numpy as jnp
  >>> spec = CodecSpec(num_codewords=256, num_decoders=2, max_bins=8)
  >>> enc_w = lambda u, a: -0.5 * ((u - a) / 0.3) ** 2 + 0.5 * u ** 2   # N(a, .09) vs N(0, 1)
  >>> keys = jax.random.split(jax.random.key(0), 3)
  >>> msg = encode(keys, spec, enc_w, jnp.array([0.5, -1.0, 0.0]), num_bins=4)
  >>> len(msg)  # 3 sources x 2 bits, packed
  1
  >>> idx = decode(keys, spec, msg, enc_w, jnp.array([0.4, -1.1, 0.1]), num_bins=4, decoder=1)
  >>> idx.shape
  (3,)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling import core, parallel

__all__ = [
    "SCHEMES",
    "CODEBOOK_STREAM",
    "LABEL_STREAM",
    "RACE_STREAM",
    "CodecSpec",
    "SharedRandomness",
    "NestedResult",
    "standard_normal_prior",
    "check_num_bins",
    "check_rates",
    "bin_counts",
    "labels_from_counts",
    "shared_randomness",
    "encoder_index",
    "decoder_index",
    "pack_labels",
    "unpack_labels",
    "encode",
    "decode",
    "bin_capacity",
    "padded_layout",
    "argmin_lowest",
    "bin_minima",
    "coset_argmin",
    "coset_winners",
    "RaceLayout",
    "race_layout",
    "nested_decisions",
    "exact_on_overflow",
    "iterate_trials_exact",
    "nested_evaluate",
    "error_bound_terms",
    "error_bound",
]

#: The two schemes: one race-time row per decoder (GLS) or one shared row.
SCHEMES = ("gls", "baseline")
#: ``fold_in`` indices of the three parts of the shared randomness.
CODEBOOK_STREAM, LABEL_STREAM, RACE_STREAM = 0, 1, 2


def standard_normal_prior(key: jax.Array, num_codewords: int) -> jax.Array:
  """Default ``p_W``: ``N(0, 1)`` codewords, ``float32[num_codewords]``."""
  return jax.random.normal(key, (num_codewords,), jnp.float32)


def _is_power_of_two(x) -> bool:
  return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 1 and (x & (x - 1)) == 0


def check_num_bins(num_bins, name: str = "num_bins", max_bins: int | None = None) -> int:
  """Checks that ``L_max`` is a power of two (``>= 1``, ``<= max_bins``)."""
  if not _is_power_of_two(num_bins):
    raise ValueError(f"{name} (L_max) must be a power of two >= 1, got {num_bins!r}")
  if max_bins is not None and num_bins > max_bins:
    raise ValueError(f"{name} (L_max) = {num_bins} exceeds max_bins = {max_bins}")
  return int(num_bins)


def check_rates(rates, name: str = "rates") -> tuple[int, ...]:
  """Checks a study's list of rates ``L_max`` (e.g. ``config.num_bins``); returns it as ints.

  Non-empty, distinct powers of two ``>= 2``, at most ``2**16``; ``ValueError``
  naming ``name`` otherwise.

  Example:
    >>> check_rates([4, 16], "config.num_bins")
    (4, 16)
    >>> check_rates([4, 6], "config.num_bins")
    Traceback (most recent call last):
    ...
    ValueError: config.num_bins: every L_max must be a power of two >= 2, got 6
  """
  rates = tuple(rates or ())
  if not rates:
    raise ValueError(f"{name} (L_max values) must not be empty")
  for r in rates:
    if not (_is_power_of_two(r) and r >= 2):
      raise ValueError(f"{name}: every L_max must be a power of two >= 2, got {r!r}")
  if len(set(rates)) != len(rates):
    raise ValueError(f"{name} has duplicates: {rates}")
  if max(rates) > 2**16:
    raise ValueError(f"{name}: L_max at most 2**16, got {max(rates)}")
  return tuple(int(r) for r in rates)


@dataclasses.dataclass(frozen=True)
class CodecSpec:
  """Static description of a codec (hashable; a static argument under jit).

  Attributes:
    num_codewords: ``N >= 1``, codebook size.
    num_decoders: ``K >= 1``. The GLS encoder races the first ``K`` rows.
    max_bins: ``L`` (power of two): labels are drawn on ``0..L-1``; every rate
      ``L_max = 2**r <= L`` uses ``label mod L_max``.
    scheme: ``"gls"`` (row ``k`` for decoder ``k``) or ``"baseline"`` (row 0
      shared by all).
    sample_prior: ``sample_prior(key, N) -> [N, ...]`` draws ``N`` codewords from
      ``p_W``; must be hashable (a module-level function or a
      ``functools.partial`` of one).
  """

  num_codewords: int
  num_decoders: int = 1
  max_bins: int = 64
  scheme: str = "gls"
  sample_prior: Callable[[jax.Array, int], jax.Array] = standard_normal_prior

  def __post_init__(self):
    n = self.num_codewords
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
      raise ValueError(f"num_codewords (N) must be an int >= 1, got {n!r}")
    core.check_num_drafts(self.num_decoders, "num_decoders (K)")
    check_num_bins(self.max_bins, "max_bins")
    if self.scheme not in SCHEMES:
      raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
    if not callable(self.sample_prior):
      raise TypeError(f"sample_prior must be callable, got {self.sample_prior!r}")

  @property
  def num_rows(self) -> int:
    """Race-time rows the scheme uses: ``K`` (GLS) or 1 (baseline)."""
    return self.num_decoders if self.scheme == "gls" else 1


class SharedRandomness(NamedTuple):
  """The common randomness of one source (see :func:`shared_randomness`)."""

  codebook: jax.Array  #: ``[N, ...]`` codewords ``U_j ~ p_W`` (in label order).
  counts: jax.Array  #: ``int32[L]`` codewords per fine label.
  labels: jax.Array  #: ``int32[N]`` fine label of codeword ``j`` (non-decreasing).
  log_times: jax.Array  #: ``float32[R, N]`` ``log S`` (R race rows).


class NestedResult(NamedTuple):
  """Indices of one source for every ``K' <= K`` and every rate (both schemes).

  ``rates`` are the ``L_max`` values, in the order given. GLS decoder ``k`` is
  only meaningful for ``K' > k`` (entries with ``k >= K'`` are still computed:
  decoder ``k`` decoding the ``K'``-encoder's message).
  """

  gls_encoder: jax.Array  #: ``int32[K]``: encoder's index for ``K' = 1..K``.
  gls_decoder: jax.Array  #: ``int32[K, R, K]``: ``[K'-1, rate, k]``.
  baseline_encoder: jax.Array  #: ``int32[]``: does not depend on ``K'``.
  baseline_decoder: jax.Array  #: ``int32[R, K]``.


# --------------------------------------------------------------------------
# Shared randomness.
# --------------------------------------------------------------------------


def bin_counts(key: jax.Array, num_codewords: int, max_bins: int) -> jax.Array:
  """Counts of ``N`` i.i.d. uniform labels on ``0..L-1`` (``int32[L]``).

  Labels are packed ``floor(32 / log2 L)`` to a 32-bit word, so the labels of
  ``N`` codewords cost ``N / 5`` words for ``L = 64``.
  """
  bits_per_label = max(int(max_bins).bit_length() - 1, 0)
  if bits_per_label == 0:
    return jnp.full((1,), num_codewords, jnp.int32)
  per_word = 32 // bits_per_label
  words = jax.random.bits(key, (-(-num_codewords // per_word),), jnp.uint32)
  shifts = jnp.arange(per_word, dtype=jnp.uint32) * bits_per_label
  labels = ((words[:, None] >> shifts) & jnp.uint32(max_bins - 1)).reshape(-1)[:num_codewords]
  return jnp.bincount(labels.astype(jnp.int32), length=max_bins).astype(jnp.int32)


def labels_from_counts(counts: jax.Array, num_codewords: int) -> jax.Array:
  """Label of codeword ``j`` when the codebook is listed in label order."""
  ends = jnp.cumsum(counts)
  j = jnp.arange(num_codewords, dtype=jnp.int32)
  return jnp.searchsorted(ends, j, side="right").astype(jnp.int32)


def shared_randomness(key: jax.Array, spec: CodecSpec, num_rows: int | None = None
                      ) -> SharedRandomness:
  """Codebook, labels and race times from one key (the shared seed).

  ``codebook = sample_prior(fold_in(key, 0), N)``, label counts from
  ``fold_in(key, 1)``, race rows ``k`` from ``fold_in(fold_in(key, 2), k)``.
  ``num_rows`` defaults to ``spec.num_rows``; row ``k`` never depends on it.
  """
  n = spec.num_codewords
  rows = spec.num_rows if num_rows is None else int(num_rows)
  codebook = spec.sample_prior(jax.random.fold_in(key, CODEBOOK_STREAM), n)
  counts = bin_counts(jax.random.fold_in(key, LABEL_STREAM), n, spec.max_bins)
  log_times = core.log_race_times(jax.random.fold_in(key, RACE_STREAM), (rows, n))
  return SharedRandomness(codebook, counts, labels_from_counts(counts, n), log_times)


def _log_weights(fn, codebook, context, name):
  w = jnp.asarray(fn(codebook, context))
  if w.shape != (codebook.shape[0],):
    raise ValueError(f"{name} must return one log weight per codeword, shape "
                     f"({codebook.shape[0]},), got {tuple(w.shape)}")
  _debug_check_log_weights(w, name)
  return w


def _debug_check_log_weights(w, name):
  """A ``checkify`` debug check: reported only under :func:`lcoupling.checked` (a no-op otherwise).

  Concrete values are skipped: the eager entry points check them themselves
  (:func:`_raise_if_not_finite`).
  """
  if not isinstance(w, jax.core.Tracer):
    return
  from jax.experimental import checkify  # noqa: PLC0415

  checkify.check(jnp.all(jnp.isfinite(w)),
                 f"{name} returned non-finite log weights (NaN or +-inf)", debug=True)


# --------------------------------------------------------------------------
# One encoder / one decoder (plain masked races).
# --------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("spec", "log_weight_fn"))
def _encoder_index(key, spec, log_weight_fn, source):
  shared = shared_randomness(key, spec)
  logw = _log_weights(log_weight_fn, shared.codebook, source, "log_weight_fn (encoder)")
  y = core.race_argmin(jnp.min(shared.log_times, axis=0), logw)
  return y, shared.labels[y], jnp.all(jnp.isfinite(logw))


def _raise_if_not_finite(finite, name):
  finite = np.asarray(finite)
  if not finite.all():
    raise ValueError(f"{name} returned non-finite log weights (NaN or +-inf) for "
                     f"{int((~finite).sum())} of {finite.size} sources")


def encoder_index(key: jax.Array, spec: CodecSpec, log_weight_fn, source) -> tuple[jax.Array, jax.Array]:
  r"""The encoder's choice ``Y`` and its fine label ``l_Y`` (``int32`` each).

  .. math:: Y = \arg\min_j \min_{k<K} S_{k,j} / \lambda_j
  (baseline: row 0 only). The message at rate ``L_max`` is ``l_Y mod L_max``.

  Args:
    key: the shared seed of this source (typed PRNG key).
    spec: :class:`CodecSpec`.
    log_weight_fn: ``fn(codebook [N, ...], source) -> float[N]``, the log
      importance weights ``log p_{W|A}(u|a) - log p_W(u)`` (constants are free;
      logs, as the samplers' logits, not the weights), hashable (a static
      argument). Non-finite values raise ``ValueError`` outside ``jit``/``vmap``;
      inside them only under :func:`lcoupling.checked` (module docstring).
    source: the source ``a`` (any array / pytree ``fn`` accepts).

  Returns:
    ``(Y, l_Y)``.
  """
  y, label, finite = _encoder_index(key, spec, log_weight_fn, source)
  if not isinstance(finite, jax.core.Tracer):
    _raise_if_not_finite(finite, "log_weight_fn (encoder)")
  return y, label


@functools.partial(jax.jit, static_argnames=("spec", "log_weight_fn"))
def _decoder_index(key, spec, label, log_weight_fn, side_info, num_bins, decoder):
  # num_bins and decoder are traced (checked on the host by the callers): one compilation per
  # (spec, log_weight_fn, shapes) serves every rate and every decoder. Row k's race times come
  # from its own row key, equal to row k of shared_randomness's table (core.log_race_times).
  shared = shared_randomness(key, spec, num_rows=0)  # codebook and labels; the row below
  row = jnp.asarray(decoder if spec.scheme == "gls" else 0, jnp.uint32)
  log_times = core.log_race_times(jax.random.fold_in(jax.random.fold_in(key, RACE_STREAM), row),
                                  (spec.num_codewords,))
  logw = _log_weights(log_weight_fn, shared.codebook, side_info, "log_weight_fn (decoder)")
  mask = jnp.asarray(num_bins, jnp.int32) - 1
  in_bin = (shared.labels & mask) == (label & mask)
  x = core.race_argmin(log_times, jnp.where(in_bin, logw, -jnp.inf))
  return x, jnp.all(jnp.isfinite(logw))


def _check_decoder(spec, decoder):
  if isinstance(decoder, bool) or not isinstance(decoder, (int, np.integer)):
    raise TypeError(f"decoder must be a Python int, got {decoder!r}")
  if not 0 <= decoder < spec.num_decoders:
    raise ValueError(f"decoder must be in 0..{spec.num_decoders - 1} (num_decoders = "
                     f"{spec.num_decoders}), got {decoder}")
  return int(decoder)


def decoder_index(key: jax.Array, spec: CodecSpec, label, log_weight_fn, side_info, *,
                  num_bins: int, decoder: int = 0) -> jax.Array:
  r"""Decoder ``k``'s choice ``X_k`` given the message ``label`` (``int32``).

  .. math:: X_k = \arg\min_{j:\ l_j \equiv \text{label} \ (\mathrm{mod}\ L_{\max})}
            S_{k,j} / \mu^{(k)}_j

  with row ``k`` (GLS) or row 0 (baseline). ``label`` may be the fine label or
  the message (only its low ``log2 L_max`` bits are read). ``num_bins`` and
  ``decoder`` are checked on the host and then traced: one compilation serves
  every rate and every decoder of a spec.

  ``log_weight_fn(codebook, side_info) -> float[N]`` returns decoder ``k``'s log
  importance weights ``log p_{W|T}(u|t_k) - log p_W(u)`` (up to a constant; logs,
  not weights). Non-finite values raise ``ValueError`` outside ``jit``/``vmap``;
  inside them only under :func:`lcoupling.checked` (module docstring).
  """
  check_num_bins(num_bins, "num_bins", spec.max_bins)
  decoder = _check_decoder(spec, decoder)
  x, finite = _decoder_index(key, spec, jnp.asarray(label, jnp.int32), log_weight_fn, side_info,
                             num_bins, decoder)
  if not isinstance(finite, jax.core.Tracer):
    _raise_if_not_finite(finite, "log_weight_fn (decoder)")
  return x


# --------------------------------------------------------------------------
# Messages as bytes.
# --------------------------------------------------------------------------


def pack_labels(labels, num_bins: int) -> bytes:
  """Packs labels (``mod num_bins``) into ``ceil(B log2 L / 8)`` bytes, MSB first.

  Example:
    >>> pack_labels([3, 0, 1, 2], 4).hex()
    'c6'
  """
  num_bins = check_num_bins(num_bins)
  bits = num_bins.bit_length() - 1
  labels = np.asarray(labels, dtype=np.int64).reshape(-1) & (num_bins - 1)
  if bits == 0:
    return b""
  shifts = np.arange(bits - 1, -1, -1)
  bitarr = ((labels[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)
  return np.packbits(bitarr).tobytes()


def message_length(count: int, num_bins: int) -> int:
  """Bytes of a message holding ``count`` labels at ``L_max = num_bins``."""
  return -(-count * (check_num_bins(num_bins).bit_length() - 1) // 8)


def unpack_labels(data: bytes, num_bins: int, count: int) -> np.ndarray:
  """Inverse of :func:`pack_labels`; raises ``ValueError`` on a wrong length."""
  num_bins = check_num_bins(num_bins)
  if not isinstance(data, (bytes, bytearray, memoryview)):
    raise TypeError(f"message must be bytes, got {type(data).__name__}")
  expected = message_length(count, num_bins)
  if len(data) != expected:
    raise ValueError(f"message has {len(data)} bytes but {count} labels at L_max = {num_bins} "
                     f"need exactly {expected}")
  bits = num_bins.bit_length() - 1
  if bits == 0:
    return np.zeros(count, np.int32)
  bitarr = np.unpackbits(np.frombuffer(bytes(data), np.uint8))
  tail = bitarr[count * bits:]
  if tail.any():
    raise ValueError("message has non-zero padding bits: not a message of this length/rate")
  bitarr = bitarr[:count * bits].reshape(count, bits).astype(np.int64)
  return (bitarr << np.arange(bits - 1, -1, -1)).sum(axis=1).astype(np.int32)


def _check_keys(keys):
  if not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key) or keys.ndim != 1:
    raise ValueError(f"keys must be a 1-D array of typed PRNG keys (one per source), got "
                     f"dtype {keys.dtype} shape {tuple(keys.shape)}")


def encode(keys: jax.Array, spec: CodecSpec, log_weight_fn, sources, *, num_bins: int) -> bytes:
  """Encodes a batch of sources into one packed message (``bytes``).

  Args:
    keys: ``[B]`` typed keys, the shared seed of each source.
    spec: :class:`CodecSpec`.
    log_weight_fn: ``fn(codebook, source) -> float[N]``, log importance weights of
      one source (as for :func:`encoder_index`); non-finite ones raise
      ``ValueError`` (always: ``encode`` runs eagerly).
    sources: ``[B, ...]`` sources.
    num_bins: ``L_max`` (power of two, ``<= spec.max_bins``): ``log2 L_max`` bits
      per source.
  """
  num_bins = check_num_bins(num_bins, "num_bins", spec.max_bins)
  _check_keys(keys)
  sources = jnp.asarray(sources)
  if sources.shape[0] != keys.shape[0]:
    raise ValueError(f"sources has {sources.shape[0]} rows but keys has {keys.shape[0]}")
  _, labels, finite = jax.vmap(lambda k, a: _encoder_index(k, spec, log_weight_fn, a))(keys, sources)
  _raise_if_not_finite(finite, "log_weight_fn (encoder)")
  return pack_labels(np.asarray(labels), num_bins)


def decode(keys: jax.Array, spec: CodecSpec, message: bytes, log_weight_fn, side_info, *,
           num_bins: int, decoder: int = 0) -> np.ndarray:
  """Decodes a packed message: decoder ``k``'s indices ``int32[B]``.

  ``side_info`` is ``[B, ...]`` (this decoder's side information per source);
  ``log_weight_fn(codebook, side_info[b]) -> float[N]`` returns log importance
  weights (as for :func:`decoder_index`); non-finite ones raise ``ValueError``
  (always: ``decode`` runs eagerly).
  """
  num_bins = check_num_bins(num_bins, "num_bins", spec.max_bins)
  decoder = _check_decoder(spec, decoder)
  _check_keys(keys)
  labels = jnp.asarray(unpack_labels(message, num_bins, keys.shape[0]))
  side_info = jnp.asarray(side_info)
  if side_info.shape[0] != keys.shape[0]:
    raise ValueError(f"side_info has {side_info.shape[0]} rows but keys has {keys.shape[0]}")
  out, finite = jax.vmap(
      lambda k, l, t: _decoder_index(k, spec, l, log_weight_fn, t, num_bins, decoder))(
          keys, labels, side_info)
  _raise_if_not_finite(finite, "log_weight_fn (decoder)")
  return np.asarray(out)


# --------------------------------------------------------------------------
# Blocked evaluation: every K' <= K and every rate in one pass.
# --------------------------------------------------------------------------


def bin_capacity(num_codewords: int, max_bins: int) -> int:
  """Static width of the padded ``[L, C]`` bin layout used by :func:`padded_layout`.

  ``C = N/L + 10 sqrt(N/L) + 16`` rounded up to a multiple of 8 (at most ``N``);
  a bin holds more than ``C`` codewords with probability below ``1e-20`` for
  ``N = 2**15, L = 64``. Overflow is detected (``padded_layout`` returns a flag)
  and the caller re-runs the trial with ``capacity = N`` (always exact).
  """
  mean = num_codewords / max_bins
  c = int(math.ceil(mean + 10.0 * math.sqrt(mean) + 16))
  c = -(-c // 8) * 8
  return int(min(c, num_codewords))


def padded_layout(counts: jax.Array, num_codewords: int, capacity: int):
  """Gather indices of the ``[L, C]`` bin layout.

  Returns ``(index int32[L, C], valid bool[L, C], overflow bool[])``: slot
  ``(b, c)`` holds codeword ``cum_b + c`` when ``c < counts_b``. ``overflow``
  is true when some bin has more than ``capacity`` codewords (then the layout
  misses codewords and the trial must be recomputed with ``capacity = N``).
  """
  starts = jnp.cumsum(counts) - counts
  c = jnp.arange(capacity, dtype=jnp.int32)
  index = jnp.minimum(starts[:, None] + c, num_codewords - 1).astype(jnp.int32)
  valid = c < counts[:, None]
  return index, valid, jnp.any(counts > capacity)


def argmin_lowest(x: jax.Array, axis: int = -1) -> jax.Array:
  """``jnp.argmin`` (lowest index among ties) as two vectorisable reductions."""
  m = jnp.min(x, axis=axis, keepdims=True)
  n = x.shape[axis]
  iota = jax.lax.broadcasted_iota(jnp.int32, x.shape, x.ndim + axis if axis < 0 else axis)
  return jnp.min(jnp.where(x == m, iota, n), axis=axis)


def bin_minima(log_times_pad: jax.Array, log_weights_pad: jax.Array, index: jax.Array):
  """Per-bin race minimum and winner on the padded layout.

  ``log_times_pad`` is ``+inf`` at invalid slots. Returns ``(minimum float[L],
  winner int32[L])``: ``winner[b]`` is the (canonical) index of
  ``argmin_{j in bin b} log S_j - log w_j`` (lowest index among ties; an empty
  bin has minimum ``+inf``).
  """
  score = log_times_pad - log_weights_pad
  m = jnp.min(score, axis=-1)
  c = argmin_lowest(score, axis=-1)
  win = jnp.take_along_axis(index, jnp.minimum(c, index.shape[-1] - 1)[..., None], axis=-1)[..., 0]
  return m, win


def coset_argmin(minima: jax.Array, winners: jax.Array, label: jax.Array, num_bins: int):
  """Decoder's winner for message ``label mod num_bins`` from the per-bin minima.

  The union of fine bins ``b = label (mod L_max)``; ties go to the lowest fine
  bin, i.e. the lowest codeword index (bins are listed in label order).
  """
  fine = minima.shape[-1]
  b = jnp.arange(fine, dtype=jnp.int32)
  in_coset = (b & (num_bins - 1)) == (label & (num_bins - 1))
  masked = jnp.where(in_coset, minima, jnp.inf)
  return winners[argmin_lowest(masked)]


class RaceLayout(NamedTuple):
  """The race times of one draw of the shared randomness, laid out for :func:`nested_decisions`."""

  prefix: jax.Array  #: ``float32[K, N]``: ``min`` of rows ``0..k`` (the GLS encoder of ``K' = k+1``).
  padded: jax.Array  #: ``float32[K, L, C]``: row ``k`` on the padded bin layout (``+inf`` at empty slots).
  index: jax.Array  #: ``int32[L, C]``: codeword of each slot (:func:`padded_layout`).
  ends: jax.Array  #: ``int32[L]``: cumulative label counts (label of ``j`` = ``searchsorted(ends, j, 'right')``).
  overflow: jax.Array  #: ``bool[]``: some bin holds more than ``C`` codewords.


def race_layout(log_times: jax.Array, counts: jax.Array, capacity: int) -> RaceLayout:
  """Prefix minima and the padded ``[K, L, C]`` layout of ``log_times [K, N]`` (labels ``counts``)."""
  n = log_times.shape[-1]
  index, valid, overflow = padded_layout(counts, n, capacity)
  return RaceLayout(prefix=jax.lax.cummin(log_times, axis=0),
                    padded=jnp.where(valid, log_times[:, index], jnp.inf),
                    index=index, ends=jnp.cumsum(counts), overflow=overflow)


def coset_winners(minima: jax.Array, winners: jax.Array, label: jax.Array, rates: tuple[int, ...]
                  ) -> jax.Array:
  """Winners of the message ``label mod L_max`` at every rate: ``[..., L]`` minima -> ``[..., R]``.

  Entry ``r`` is :func:`coset_argmin` at ``L_max = rates[r]`` (the union of the
  fine bins ``b = label (mod L_max)``; ties to the lowest fine bin).
  """
  fine = minima.shape[-1]
  b = jnp.arange(fine, dtype=jnp.int32)
  masks = jnp.stack([(b & (r - 1)) == (label & (r - 1)) for r in rates])  # [R, L]
  masked = jnp.where(masks, minima[..., None, :], jnp.inf)  # [..., R, L]
  sel = argmin_lowest(masked, axis=-1)
  return jnp.take_along_axis(winners[..., None, :], sel[..., None], axis=-1)[..., 0]


def nested_decisions(layout: RaceLayout, enc_log_weights: jax.Array, dec_log_weights: jax.Array,
                     rates: tuple[int, ...]) -> NestedResult:
  r"""The nested codec kernel: both schemes, every ``K' <= K`` and every rate, one draw.

  Args:
    layout: :func:`race_layout` of the draw's ``K`` race rows.
    enc_log_weights: ``float[N]`` encoder log weights :math:`\log\lambda_j`.
    dec_log_weights: ``float[K, L, C]`` decoder ``k``'s log weights
      :math:`\log\mu^{(k)}` of the codewords on the padded layout
      (``weights[k][layout.index]``).
    rates: the ``L_max`` values.

  Returns:
    :class:`NestedResult`. The GLS encoder of ``K'`` races the prefix minimum of
    rows ``< K'``; decoder ``k`` races row ``k`` (GLS) or row 0 (baseline) over
    its message's coset. Per-bin minima are computed once per decoder and
    shared by every ``K'`` and rate (:func:`bin_minima`, :func:`coset_winners`).
    Ties go to the lowest index, so the decisions equal :func:`encoder_index` /
    :func:`decoder_index` run cell by cell with the same shared randomness.
  """
  gls_enc = jax.vmap(lambda s: core.race_argmin(s, enc_log_weights))(layout.prefix)  # [K']
  g_min, g_win = jax.vmap(bin_minima, in_axes=(0, 0, None))(layout.padded, dec_log_weights,
                                                          layout.index)  # [K, L]
  b_min, b_win = jax.vmap(bin_minima, in_axes=(None, 0, None))(layout.padded[0], dec_log_weights,
                                                             layout.index)
  labels = jnp.searchsorted(layout.ends, gls_enc, side="right").astype(jnp.int32)  # [K']

  def decode_all(minima, winners, label):  # -> [R, k]
    return jnp.swapaxes(coset_winners(minima, winners, label, rates), 0, 1)

  gls_dec = jax.vmap(lambda lab: decode_all(g_min, g_win, lab))(labels)  # [K', R, k]
  return NestedResult(gls_enc, gls_dec, gls_enc[0], decode_all(b_min, b_win, labels[0]))


@functools.partial(jax.jit, static_argnames=("spec", "enc_fn", "dec_fn", "rates", "capacity"))
def _nested(key, spec, enc_fn, source, dec_fn, side_info, rates, capacity):
  shared = shared_randomness(key, spec, num_rows=spec.num_decoders)
  layout = race_layout(shared.log_times, shared.counts, capacity)
  lam = _log_weights(enc_fn, shared.codebook, source, "enc_fn")
  cb_pad = shared.codebook[layout.index.reshape(-1)]
  mu = jax.vmap(lambda t: dec_fn(cb_pad, t).reshape(layout.index.shape))(side_info)  # [K, L, C]
  _debug_check_log_weights(mu, "dec_fn")
  return nested_decisions(layout, lam, mu, rates), layout.overflow


def exact_on_overflow(run: Callable[[int], tuple[Any, Any]], capacity: int, num_codewords: int):
  """``run(capacity)``, repeated with ``capacity = N`` if its layout overflowed.

  ``run(c) -> (outputs, overflow)``; the padded layout of width ``c < N`` misses
  codewords when some bin holds more than ``c`` (probability below ``1e-20`` at
  :func:`bin_capacity`); width ``N`` never overflows.
  """
  out, overflow = run(capacity)
  if bool(np.any(np.asarray(overflow))) and capacity < num_codewords:
    out, _ = run(num_codewords)
  return out


def iterate_trials_exact(trial_fn_at: Callable[[bool], Callable], key: jax.Array, num_trials: int,
                         *, chunk_size: int, mesh=None, args: tuple = (), start: int = 0):
  """:func:`lcoupling.parallel.iterate_trials` of a blocked codec evaluation, made exact.

  ``trial_fn_at(exact)`` returns the per-trial function (a stable, cached
  object) at the default bin capacity (``exact=False``) or at capacity ``N``
  (``exact=True``); its output must hold ``"overflow"`` (one flag, or one per
  sub-evaluation, per trial). Yields the chunks of NumPy outputs in trial
  order, each trial whose layout overflowed replaced by its exact
  recomputation (same trial key ``fold_in(key, t)``); probability below
  ``1e-20`` per trial at :func:`bin_capacity`, so this costs nothing in
  practice and keeps every result exact.
  """
  fn = trial_fn_at(False)
  done = start
  for out in parallel.iterate_trials(fn, key, num_trials, chunk_size=chunk_size, start=start,
                                     mesh=mesh, args=args):
    flags = np.asarray(out["overflow"]).reshape(len(out["overflow"]), -1).any(axis=1)
    if flags.any():
      out = {f: np.array(v) for f, v in out.items()}  # writable copies
      exact = trial_fn_at(True)
      for i in np.flatnonzero(flags):
        fix = next(parallel.iterate_trials(exact, key, 1, chunk_size=1, start=done + int(i),
                                           mesh=mesh, args=args))
        for f in out:
          out[f][i] = fix[f][0]
    done += len(flags)
    yield out


def nested_evaluate(key: jax.Array, spec: CodecSpec, enc_fn, source, dec_fn, side_info, *,
                    rates: tuple[int, ...], capacity: int | None = None) -> NestedResult:
  """Both schemes, every ``K' <= spec.num_decoders`` and every rate, in one pass.

  One draw of the shared randomness (``key``) serves all of them (common random
  numbers); the result equals running :func:`encoder_index` /
  :func:`decoder_index` separately for every ``(scheme, K', L_max)`` with the
  same key (a property the tests check).

  Args:
    key, spec: as for :func:`encoder_index` (``spec.scheme`` is ignored).
    enc_fn, source: encoder log weights ``enc_fn(codebook, source)``.
    dec_fn, side_info: decoder ``k``'s log weights ``dec_fn(codebook,
      side_info[k])``; ``side_info`` has a leading axis of size ``K``. Both
      return log importance weights (module docstring); non-finite ones are
      reported only under :func:`lcoupling.checked` (the kernel of a study's
      jitted trial function).
    rates: the ``L_max`` values (powers of two ``<= spec.max_bins``).
    capacity: width of the padded bin layout (default :func:`bin_capacity`).
      On overflow the evaluation is repeated with ``capacity = N``.
  """
  rates = tuple(check_num_bins(r, "rates", spec.max_bins) for r in rates)
  cap = bin_capacity(spec.num_codewords, spec.max_bins) if capacity is None else int(capacity)
  return exact_on_overflow(
      lambda c: _nested(key, spec, enc_fn, source, dec_fn, side_info, rates, c), cap,
      spec.num_codewords)


# --------------------------------------------------------------------------
# Error-probability bound.
# --------------------------------------------------------------------------


def error_bound_terms(info_bits: jax.Array, num_decoders, num_bins) -> jax.Array:
  r"""Per-sample success term :math:`(1 + 2^{i(W;A|T)}/(K L_{\max}))^{-1}`.

  Computed as ``sigmoid(log(K L) - i ln 2)`` (stable for large ``|i|``).
  """
  x = jnp.log(jnp.asarray(num_decoders, jnp.float32) * num_bins) - jnp.asarray(info_bits) * math.log(2.0)
  return jax.nn.sigmoid(x)


def error_bound(info_bits, num_decoders: int, num_bins: int) -> float:
  r"""Bound on the probability that no decoder recovers the encoder's choice.

  .. math::
     \Pr[\text{no match}] \le 1 - \mathbb{E}\Big[\Big(1 +
       \frac{2^{i(W;A|T)}}{K L_{\max}}\Big)^{-1}\Big],\qquad
     i(w;a|t) = \log_2 \frac{p_{W|A}(w|a)}{p_{W|T}(w|t)} ,

  the expectation estimated by the mean over the samples ``info_bits`` of
  ``i(W;A|T)`` (in bits) with ``W ~ p_{W|A}(.|A)``. ``K`` decoders act like
  ``log2 K`` extra bits. With importance sampling it holds up to a ``(1 + eps)``
  factor for large ``N``.

  Example:
    >>> round(error_bound([0.0], 1, 1), 3)  # i = 0, one bin: 1 - 1/2
    0.5
  """
  core.check_num_drafts(num_decoders, "num_decoders (K)")
  check_num_bins(num_bins)
  terms = np.asarray(error_bound_terms(np.asarray(info_bits, np.float32), num_decoders, num_bins))
  return float(1.0 - np.mean(terms, dtype=np.float64))
