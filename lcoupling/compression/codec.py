# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Importance-sampling lossy compression with ``K`` decoders (GLS and baseline).

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

from lcoupling import core

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
  return w


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
      density ratio ``log p_{W|A}(u|a) - log p_W(u)`` (constants are free).
      Non-finite values raise ``ValueError`` (outside ``jit``).
    source: the source ``a`` (any array / pytree ``fn`` accepts).
  """
  y, label, finite = _encoder_index(key, spec, log_weight_fn, source)
  if not isinstance(finite, jax.core.Tracer):
    _raise_if_not_finite(finite, "log_weight_fn (encoder)")
  return y, label


@functools.partial(jax.jit, static_argnames=("spec", "log_weight_fn", "num_bins", "decoder"))
def _decoder_index(key, spec, label, log_weight_fn, side_info, num_bins, decoder):
  row = decoder if spec.scheme == "gls" else 0
  shared = shared_randomness(key, spec, num_rows=row + 1)
  logw = _log_weights(log_weight_fn, shared.codebook, side_info, "log_weight_fn (decoder)")
  in_bin = (shared.labels & (num_bins - 1)) == (label & (num_bins - 1))
  x = core.race_argmin(shared.log_times[row], jnp.where(in_bin, logw, -jnp.inf))
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
  the message (only its low ``log2 L_max`` bits are read).
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
    log_weight_fn: ``fn(codebook, source) -> float[N]`` (one source).
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

  ``side_info`` is ``[B, ...]`` (this decoder's side information per source).
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


@functools.partial(jax.jit, static_argnames=("spec", "enc_fn", "dec_fn", "rates", "capacity"))
def _nested(key, spec, enc_fn, source, dec_fn, side_info, rates, capacity):
  k_max, n = spec.num_decoders, spec.num_codewords
  shared = shared_randomness(key, spec, num_rows=k_max)
  index, valid, overflow = padded_layout(shared.counts, n, capacity)
  # Encoder: prefix minimum over rows, one race per K'.
  lam = _log_weights(enc_fn, shared.codebook, source, "enc_fn")
  prefix = jax.lax.cummin(shared.log_times, axis=0)
  gls_enc = jax.vmap(lambda s: core.race_argmin(s, lam))(prefix)
  bl_enc = gls_enc[0]
  # Decoders: per-bin minima on the padded layout, shared by every K' and rate.
  cb_pad = shared.codebook[index.reshape(-1)]
  ls_pad = jnp.where(valid, shared.log_times[:, index], jnp.inf)

  def dec_weights(t):
    return dec_fn(cb_pad, t).reshape(index.shape)

  mu = jax.vmap(dec_weights)(side_info)  # [K, L, C]
  gls_min, gls_win = jax.vmap(bin_minima, in_axes=(0, 0, None))(ls_pad, mu, index)
  bl_min, bl_win = jax.vmap(bin_minima, in_axes=(None, 0, None))(ls_pad[0], mu, index)

  def decode_all(minima, winners, enc_index):
    lab = shared.labels[enc_index]
    return jnp.stack([jax.vmap(lambda m, w, r=r: coset_argmin(m, w, lab, r))(minima, winners)
                      for r in rates])  # [R, K]

  gls_dec = jax.vmap(lambda y: decode_all(gls_min, gls_win, y))(gls_enc)
  bl_dec = decode_all(bl_min, bl_win, bl_enc)
  return NestedResult(gls_enc, gls_dec, bl_enc, bl_dec), overflow


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
      side_info[k])``; ``side_info`` has a leading axis of size ``K``.
    rates: the ``L_max`` values (powers of two ``<= spec.max_bins``).
    capacity: width of the padded bin layout (default :func:`bin_capacity`).
      On overflow the evaluation is repeated with ``capacity = N``.
  """
  rates = tuple(check_num_bins(r, "rates", spec.max_bins) for r in rates)
  cap = bin_capacity(spec.num_codewords, spec.max_bins) if capacity is None else int(capacity)
  out, overflow = _nested(key, spec, enc_fn, source, dec_fn, side_info, rates, cap)
  if bool(overflow) and cap < spec.num_codewords:
    out, _ = _nested(key, spec, enc_fn, source, dec_fn, side_info, rates, spec.num_codewords)
  return out


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
