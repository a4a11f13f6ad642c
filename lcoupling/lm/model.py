# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""A Llama-family decoder in Flax NNX, with a static-shape KV cache.

One readable file in the spirit of the Flax NNX examples (``examples/gemma``):
RMSNorm, rotary position embeddings (base ``θ`` from the checkpoint; Llama-3
frequency scaling or llama.cpp-style per-frequency factors when the checkpoint
asks for them), grouped-query attention, a SwiGLU MLP, a tied or separate
output head and optional q/k/v biases (Qwen2). SmolLM2, Llama 2/3 and Qwen2.5
checkpoints all map onto :class:`LlamaConfig`.

Each layer's weights are arrays of their own (:class:`LlamaLayer`, in
``model.layers``) and the forward pass is an unrolled loop over layers: a
:func:`jax.lax.scan` over stacked weights would compile faster, but XLA on the
CPU copies each step's slice of the stack, which doubles a decode step's
memory traffic (:func:`decoder_stack` keeps the scan for stacked adapters).
Projection matrices are stored ``[out, in]`` (the layout of Hugging Face,
GGUF and PyTorch checkpoints, loaded without a transpose) and applied by
:func:`dense`, ``x Wᵀ`` with a ``float32`` accumulator: in ``bfloat16`` that is
the layout and the call XLA's CPU backend runs as a fast matrix product for
any number of rows (see :func:`dense`).

The model interface (shared with :class:`lcoupling.lm.MarkovLM` and the
drafters; :class:`LanguageModel` spells it out)::

    cache = model.init_cache(batch_size, max_length)
    logits, cache = model(tokens, cache, positions)   # tokens int32[B, T], positions int32[B]
    logits = model.logits(tokens)                     # cache-free, positions 0..T-1

Row ``b`` of ``tokens`` occupies the absolute positions
``positions[b], ..., positions[b] + T - 1``; its keys and values are written
into the cache at those positions, and its queries attend to every cache
entry at a position ``<=`` their own. Rows therefore carry their own lengths
(no left padding): a batch of prompts of different lengths is prefilled as
right-padded rows, and each row continues from its own length (the padding's
cache entries lie beyond the row's next position and are overwritten before
they are ever attended to). Positions outside ``[0, max_length)`` are not
written (their logits are meaningless): a window that starts before the
prompt can be fed with negative positions. A row's cache is copied or
broadcast with :func:`lcoupling.lm.cache.broadcast_rows` /
:func:`~lcoupling.lm.cache.take_rows` /
:func:`~lcoupling.lm.cache.copy_window`.

Every call has static shapes, so a ``lax.while_loop`` decode loop, K draft
rows and a verification pass of K rows × (L + 1) tokens each compile once.

Numerics: weights and activations in ``config.dtype`` (``float32`` or
``bfloat16``); matrix products accumulate in ``float32``; RMSNorm statistics,
rotary embeddings, attention softmax and the logits in ``float32``.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from flax import nnx
  >>> cfg = LlamaConfig(vocab_size=32, num_layers=2, hidden_size=16, intermediate_size=32,
  ...                   num_heads=4, num_kv_heads=2, head_dim=4)
  >>> model = Llama(cfg, rngs=nnx.Rngs(0))
  >>> tokens = jnp.array([[1, 2, 3, 4]])
  >>> full = model.logits(tokens)
  >>> cache = model.init_cache(1, 8)
  >>> _, cache = model(tokens[:, :3], cache, jnp.array([0]))
  >>> last, cache = model(tokens[:, 3:], cache, jnp.array([3]))
  >>> full.shape, bool(jnp.allclose(last[0, 0], full[0, 3], atol=1e-5))
  ((1, 4, 32), True)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lcoupling.lm import cpu_kernels
from lcoupling.lm.cache import KVCache

__all__ = ["LlamaConfig", "Llama", "LlamaLayer", "LanguageModel", "decoder_stack",
           "rope_inv_freq", "check_tokens", "rms_norm", "dense", "embed_lookup"]

#: Finite mask value: a query with no visible key attends uniformly instead of producing NaN.
_MASK_VALUE = -1e30


@runtime_checkable
class LanguageModel(Protocol):
  """What the decoding engines need from a model (Llama, MarkovLM, drafters)."""

  @property
  def vocab_size(self) -> int: ...

  def init_cache(self, batch_size: int, max_length: int) -> Any: ...

  def __call__(self, tokens: jax.Array, cache: Any, positions: jax.Array
               ) -> tuple[jax.Array, Any]: ...

  def logits(self, tokens: jax.Array) -> jax.Array: ...


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
  """Architecture of a Llama-family decoder (hashable: a static jit argument).

  Attributes:
    vocab_size: number of tokens ``V``.
    num_layers: transformer blocks.
    hidden_size: model width ``d``.
    intermediate_size: SwiGLU width.
    num_heads: query heads.
    num_kv_heads: key/value heads (grouped-query attention; divides ``num_heads``).
    head_dim: per-head width (``d / num_heads`` in most checkpoints).
    rope_theta: rotary base ``θ``.
    rope_scaling: ``None`` or ``("llama3", factor, low_freq_factor,
      high_freq_factor, original_max_position_embeddings)``.
    rope_freq_factors: ``None`` or one factor per rotary frequency that divides
      it (how GGUF files store Llama-3 scaling, tensor ``rope_freqs.weight``).
    rms_norm_eps: RMSNorm epsilon.
    tie_embeddings: the output head is the transposed token embedding.
    attention_bias: q/k/v projections have biases (Qwen2).
    max_position_embeddings: context length of the checkpoint.
    dtype: ``"float32"`` or ``"bfloat16"`` (weights and activations).
  """

  vocab_size: int
  num_layers: int
  hidden_size: int
  intermediate_size: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  rope_theta: float = 10_000.0
  rope_scaling: tuple | None = None
  rope_freq_factors: tuple | None = None
  rms_norm_eps: float = 1e-5
  tie_embeddings: bool = True
  attention_bias: bool = False
  max_position_embeddings: int = 8192
  dtype: str = "float32"

  def __post_init__(self):
    for name in ("vocab_size", "num_layers", "hidden_size", "intermediate_size", "num_heads",
                 "num_kv_heads", "head_dim"):
      v = getattr(self, name)
      if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"LlamaConfig.{name} must be an int >= 1, got {v!r}")
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"LlamaConfig.num_heads ({self.num_heads}) must be a multiple of "
                       f"num_kv_heads ({self.num_kv_heads})")
    if self.head_dim % 2:
      raise ValueError(f"LlamaConfig.head_dim must be even (rotary pairs), got {self.head_dim}")
    if self.dtype not in ("float32", "bfloat16"):
      raise ValueError(f"LlamaConfig.dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
    if self.rope_scaling is not None and (len(self.rope_scaling) != 5
                                          or self.rope_scaling[0] != "llama3"):
      raise ValueError("LlamaConfig.rope_scaling must be None or ('llama3', factor, "
                       f"low_freq_factor, high_freq_factor, original_max_positions), got "
                       f"{self.rope_scaling!r}")
    if self.rope_freq_factors is not None and len(self.rope_freq_factors) != self.head_dim // 2:
      raise ValueError(f"LlamaConfig.rope_freq_factors needs head_dim / 2 = {self.head_dim // 2} "
                       f"entries, got {len(self.rope_freq_factors)}")

  @property
  def jnp_dtype(self):
    return jnp.dtype(self.dtype)

  @property
  def num_parameters(self) -> int:
    d, f, v, n = self.hidden_size, self.intermediate_size, self.vocab_size, self.num_layers
    q, kv = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
    per_layer = 2 * d + d * q + 2 * d * kv + q * d + 3 * d * f
    if self.attention_bias:
      per_layer += q + 2 * kv
    return v * d * (1 if self.tie_embeddings else 2) + n * per_layer + d

  def replace(self, **changes) -> LlamaConfig:
    return dataclasses.replace(self, **changes)


def rope_inv_freq(config: LlamaConfig) -> np.ndarray:
  """Rotary inverse frequencies ``θ^(-2i/D)``, with the checkpoint's scaling (float64)."""
  d = config.head_dim
  inv = 1.0 / config.rope_theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
  if config.rope_scaling is not None:  # Llama 3.1: piecewise rescaling by wavelength
    _, factor, low, high, old = config.rope_scaling
    wavelen = 2 * math.pi / inv
    low_wavelen, high_wavelen = old / low, old / high
    scaled = np.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    inv = np.where(medium, smoothed, scaled)
  if config.rope_freq_factors is not None:
    inv = inv / np.asarray(config.rope_freq_factors, np.float64)
  return inv


def check_tokens(tokens, vocab_size: int, name: str = "tokens") -> None:
  """Raises ``ValueError`` naming ``name`` for concrete token ids outside ``[0, vocab_size)``."""
  if isinstance(tokens, jax.core.Tracer):
    return
  t = np.asarray(tokens)
  if not np.issubdtype(t.dtype, np.integer):
    raise TypeError(f"{name} must be integer token ids, got dtype {t.dtype}")
  if t.size and (t.min() < 0 or t.max() >= vocab_size):
    bad = t[(t < 0) | (t >= vocab_size)]
    raise ValueError(f"{name}: token ids must lie in [0, {vocab_size}), got {bad[:8].tolist()}")


def rms_norm(x, weight, eps):
  x32 = x.astype(jnp.float32)
  x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
  return (x32 * weight.astype(jnp.float32)).astype(x.dtype)


rms_norm.__doc__ = """RMSNorm of ``x [..., d]`` with gain ``weight [d]``, computed in ``float32``, cast back."""
_rms_norm = rms_norm  # the name the blocks below use


def dense(x: jax.Array, w: jax.Array, out_dtype=None) -> jax.Array:
  """``x [..., in]`` times the transpose of ``w [out, in]``: ``[..., out]``.

  Accumulates in ``float32`` and returns ``out_dtype`` (default ``x.dtype``).
  On an x86 CPU with AMX-BF16 or AVX512-BF16, 1 to 48 ``bfloat16`` rows go
  through :func:`lcoupling.lm.cpu_kernels.matmul_t`, which streams the weights
  near memory bandwidth where XLA's own product is 1.1-2.8x slower
  (``benchmarks/dense.py``); elsewhere, and on GPUs and TPUs, XLA's product
  runs. For XLA's CPU backend the ``[out, in]`` layout with a ``float32``
  accumulator is what turns into its fast ``bfloat16`` matrix product (the
  ``[in, out]`` layout, or a ``bfloat16`` accumulator, falls back to a kernel
  several times slower); a single ``bfloat16`` row also falls back (a
  matrix-vector kernel about 9x slower), and two rows stream the weights 12 %
  slower than four, so there one or two ``bfloat16`` rows are computed as
  :data:`BF16_MIN_ROWS` (zeros added) and the first kept. Under ``jax.vmap`` the
  batch axis joins the rows (a ``custom_vmap`` rule), so a vmapped decode runs
  the same 2-D product instead of XLA copying every weight into ``[in, out]``
  (:func:`_rows_2d`).
  ``benchmarks/lm.py`` measures each pass against its memory-bandwidth floor.

  >>> import jax.numpy as jnp
  >>> dense(jnp.ones((2, 3)), jnp.arange(12.0).reshape(4, 3)).tolist()
  [[3.0, 12.0, 21.0, 30.0], [3.0, 12.0, 21.0, 30.0]]
  """
  out_dtype = x.dtype if out_dtype is None else out_dtype
  lead = x.shape[:-1]
  y = _rows_times_wt(x.reshape(-1, x.shape[-1]), w)
  return y.reshape(*lead, w.shape[0]).astype(out_dtype)


#: In XLA's product (:func:`xla_rows_2d`), one or two ``bfloat16`` rows are padded to this many:
#: ``python benchmarks/dense.py`` (28 layers of the 1.5B model's projections, 2.6 GB) measured
#: 138 / 135 ms for 1 / 2 rows computed as 2, 119 / 120 ms padded to 4, 121 ms for 3 or 4 rows,
#: 122 ms for 1 row padded to 8 and 129 ms padded to 16.
BF16_MIN_ROWS = 4


@jax.custom_batching.custom_vmap
def _rows_2d(rows: jax.Array, w: jax.Array) -> jax.Array:
  """``float32[R, out]``: ``rows [R, in]`` times ``w [out, in]`` transposed, a 2-D product.

  Under ``jax.vmap`` the batch axis is merged into the rows, so the product stays
  2-D: batched, XLA's CPU backend made the ``[B, R, in]`` product canonical by
  copying every weight matrix into ``[in, out]`` (the whole model again in
  memory, then the slow kernel, see :func:`dense`). One or two ``bfloat16`` rows
  (after that merge) are computed as :data:`BF16_MIN_ROWS`.
  """
  if cpu_kernels.supports(rows, w) and cpu_kernels.matmul_isa():  # 1-48 bf16 rows, a kernel here
    return jax.lax.platform_dependent(rows, w, cpu=cpu_kernels.matmul_t, default=xla_rows_2d)
  return xla_rows_2d(rows, w)


def xla_rows_2d(rows: jax.Array, w: jax.Array) -> jax.Array:
  """:func:`_rows_2d` by XLA's own product (one or two ``bfloat16`` rows computed as four)."""
  r = rows.shape[0]
  pad = BF16_MIN_ROWS - r if rows.dtype == jnp.bfloat16 and r < BF16_MIN_ROWS - 1 else 0
  y = jax.lax.dot_general(jnp.pad(rows, ((0, pad), (0, 0))), w, (((1,), (1,)), ((), ())),
                          preferred_element_type=jnp.float32)
  return y[:r]


@_rows_2d.def_vmap
def _rows_2d_vmap(axis_size, in_batched, rows, w):
  rows_batched, w_batched = in_batched
  if w_batched:  # one weight matrix per batch element (not a model's decode): a batched product
    rows = rows if rows_batched else jnp.broadcast_to(rows, (axis_size, *rows.shape))
    return jax.lax.dot_general(rows, w, (((2,), (2,)), ((0,), (0,))),
                               preferred_element_type=jnp.float32), True
  b, r, k = rows.shape
  return _rows_2d(rows.reshape(b * r, k), w).reshape(b, r, w.shape[0]), True


@jax.custom_vjp
def _rows_times_wt(rows: jax.Array, w: jax.Array) -> jax.Array:
  """:func:`_rows_2d` with its gradients (``custom_vmap`` has no reverse mode of its own)."""
  return _rows_2d(rows, w)


def _rows_times_wt_fwd(rows, w):
  return _rows_2d(rows, w), (rows, w)


def _rows_times_wt_bwd(res, g):
  rows, w = res
  d_rows = jax.lax.dot_general(g, w, (((1,), (0,)), ((), ())), preferred_element_type=jnp.float32)
  d_w = jax.lax.dot_general(g, rows, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)
  return d_rows.astype(rows.dtype), d_w.astype(w.dtype)


_rows_times_wt.defvjp(_rows_times_wt_fwd, _rows_times_wt_bwd)


def _cache_write(cache: jax.Array, index, update: jax.Array) -> jax.Array:
  """``cache.at[index].set(update)``, out-of-range positions dropped.

  A ``bfloat16`` cache is written as its ``uint16`` bit patterns (the same
  values): XLA's CPU backend has no ``bfloat16`` scatter, so it converts the
  whole stacked cache ``[layers, B, S, ...]`` to ``float32`` and back around
  every layer's write -- for Qwen2.5-Coder-1.5B with 8 rows that is 5 GB of
  traffic per decode step, more than the weights (``benchmarks/lm.py``).
  """
  update = update.astype(cache.dtype)
  if cache.dtype != jnp.bfloat16:
    return cache.at[index].set(update, mode="drop")
  bits = jax.lax.bitcast_convert_type(cache, jnp.uint16)
  bits = bits.at[index].set(jax.lax.bitcast_convert_type(update, jnp.uint16), mode="drop")
  return jax.lax.bitcast_convert_type(bits, jnp.bfloat16)


def embed_lookup(table: jax.Array, tokens: jax.Array) -> jax.Array:
  """The rows ``table[tokens]`` of an embedding table ``[V, d]``: ``[*tokens.shape, d]``.

  XLA's CPU backend converts a ``bfloat16`` table to ``float32`` before a
  gather, and in a decoding loop hoists the conversion out of the loop: a
  ``float32`` copy of the whole table (0.9 GB for Qwen2.5-Coder-1.5B) made on
  every call. Gathered as its ``uint16`` bit patterns instead, the table is
  still copied once per call (the hoisted bit cast, 0.47 GB, 80 ms). So on the
  CPU a ``bfloat16`` table goes through :func:`lcoupling.lm.cpu_kernels.take_rows`
  (a gather XLA cannot see into, reading only the rows it needs; token ids are
  clipped to the table) where that is built; otherwise it is gathered as bits.

  >>> import jax.numpy as jnp
  >>> table = jnp.arange(6.0, dtype=jnp.bfloat16).reshape(3, 2)
  >>> embed_lookup(table, jnp.array([[2, 0]])).tolist()
  [[[4.0, 5.0], [0.0, 1.0]]]
  """
  if table.dtype == jnp.bfloat16 and cpu_kernels.built():
    return jax.lax.platform_dependent(table, tokens, cpu=cpu_kernels.take_rows, default=_take_bits)
  return _take_bits(table, tokens)


def _take_bits(table: jax.Array, tokens: jax.Array) -> jax.Array:
  if table.dtype == jnp.bfloat16:
    bits = jax.lax.bitcast_convert_type(table, jnp.uint16)
    return jax.lax.bitcast_convert_type(jnp.take(bits, tokens, axis=0), jnp.bfloat16)
  return jnp.take(table, tokens, axis=0)


def _rope(x, cos, sin):
  """Rotates ``x [B, T, H, D]`` (Hugging Face "rotate half" layout) by angles ``[B, T, D/2]``."""
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  c, s = cos[:, :, None, :], sin[:, :, None, :]
  return jnp.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1).astype(x.dtype)


#: Attention of at most this many ``queries x kv heads`` per row uses the
#: block-diagonal formulation of :func:`_attend` (decoding, verification passes).
_BLOCK_DIAGONAL_MAX = 16


def _attend(q, k, v, q_pos, k_pos, num_kv_heads):
  """Grouped-query attention of ``q [B, T, Hq, D]`` on ``k, v [B, S, Hkv, D]``.

  Query ``t`` of row ``b`` sees key ``s`` iff ``0 <= k_pos[b, s] <= q_pos[b, t]``.

  Two equal formulations. Long query blocks (prefill, scoring) use a matmul
  batched over (row, kv head). Short ones (``T x Hkv <=`` :data:`_BLOCK_DIAGONAL_MAX`:
  a decode step, a verification pass) multiply each row's keys and values in
  the cache's own ``[S, Hkv * D]`` layout by a block-diagonal query matrix
  (zero outside a query's own kv head): ``Hkv`` times the attention FLOPs,
  which are negligible at small ``T``, but no per-layer transposed copy of the
  cache, which on CPU costs more than the whole attention.
  """
  b, t, hq, d = q.shape
  s = k.shape[1]
  g = hq // num_kv_heads
  q = q.reshape(b, t, num_kv_heads, g, d)
  visible = (k_pos[:, None, :] <= q_pos[:, :, None]) & (k_pos[:, None, :] >= 0)  # [B, T, S]
  scale = 1.0 / math.sqrt(d)
  if t * num_kv_heads <= _BLOCK_DIAGONAL_MAX:
    eye = jnp.eye(num_kv_heads, dtype=q.dtype)
    q_block = jnp.einsum("btkgd,kj->bjdtkg", q, eye).reshape(b, num_kv_heads * d, t * hq)
    scores = jnp.einsum("bsc,bcn->bsn", k.reshape(b, s, num_kv_heads * d), q_block,
                        preferred_element_type=jnp.float32) * scale  # [B, S, T * Hq]
    mask = jnp.broadcast_to(jnp.swapaxes(visible, 1, 2)[..., None], (b, s, t, hq))
    scores = jnp.where(mask.reshape(b, s, t * hq), scores, _MASK_VALUE)
    probs = jax.nn.softmax(scores, axis=1).astype(v.dtype)
    out = jnp.einsum("bsn,bsc->bnc", probs, v.reshape(b, s, num_kv_heads * d),
                     preferred_element_type=jnp.float32)  # [B, T * Hq, Hkv * D]
    out = jnp.einsum("btkgjd,kj->btkgd", out.reshape(b, t, num_kv_heads, g, num_kv_heads, d),
                     eye.astype(out.dtype))
    return out.reshape(b, t, hq * d).astype(v.dtype)
  scores = jnp.einsum("btkgd,bskd->bkgts", q, k, preferred_element_type=jnp.float32)
  scores = scores * scale
  scores = jnp.where(visible[:, None, None], scores, _MASK_VALUE)
  probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
  out = jnp.einsum("bkgts,bskd->btkgd", probs, v, preferred_element_type=jnp.float32)
  return out.reshape(b, t, hq * d).astype(v.dtype)


class Llama(nnx.Module):
  """Llama-family decoder-only transformer (see the module docstring).

  Args:
    config: the architecture.
    rngs: initialisation randomness (``nnx.Rngs``); loaders overwrite the
      weights with a checkpoint's.
  """

  def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
    self.config = config
    c, dt = config, config.jnp_dtype
    n, d, f = c.num_layers, c.hidden_size, c.intermediate_size
    q, kv = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim
    init = nnx.initializers.normal(0.02)

    def param(shape, zeros=False, ones=False):
      if ones:
        return nnx.Param(jnp.ones(shape, dt))
      if zeros:
        return nnx.Param(jnp.zeros(shape, dt))
      return nnx.Param(init(rngs.params(), shape, dt))

    self.embed = param((c.vocab_size, d))
    # Drawn stacked ([num_layers, ...], the order and values of a scan-layout
    # initialisation, projections drawn [in, out] and stored [out, in]), held
    # one array per layer (see _blocks).
    def proj(shape):
      return nnx.Param(jnp.swapaxes(param(shape)[...], -1, -2))

    stacked = {"attn_norm": param((n, d), ones=True)}
    stacked["wq"], stacked["wk"], stacked["wv"] = proj((n, d, q)), proj((n, d, kv)), proj((n, d, kv))
    if c.attention_bias:
      stacked["bq"], stacked["bk"], stacked["bv"] = (param((n, q), zeros=True),
                                                     param((n, kv), zeros=True),
                                                     param((n, kv), zeros=True))
    stacked["wo"] = proj((n, q, d))
    stacked["mlp_norm"] = param((n, d), ones=True)
    stacked["w_gate"], stacked["w_up"], stacked["w_down"] = (proj((n, d, f)), proj((n, d, f)),
                                                             proj((n, f, d)))
    self.layers = nnx.List([LlamaLayer({k: nnx.Param(v[...][i]) for k, v in stacked.items()})
                            for i in range(n)])
    self.final_norm = param((d,), ones=True)
    if not c.tie_embeddings:
      self.lm_head = proj((d, c.vocab_size))

  # -- the interface ----------------------------------------------------------

  @property
  def vocab_size(self) -> int:
    return self.config.vocab_size

  def init_cache(self, batch_size: int, max_length: int) -> KVCache:
    """An empty cache for ``batch_size`` rows of up to ``max_length`` positions."""
    c = self.config
    if max_length > c.max_position_embeddings:
      raise ValueError(f"max_length {max_length} exceeds the model's context length "
                       f"{c.max_position_embeddings}")
    shape = (c.num_layers, batch_size, max_length, c.num_kv_heads, c.head_dim)
    return KVCache(jnp.zeros(shape, c.jnp_dtype), jnp.zeros(shape, c.jnp_dtype))

  def __call__(self, tokens: jax.Array, cache: KVCache, positions: jax.Array
               ) -> tuple[jax.Array, KVCache]:
    """Logits ``float32[B, T, V]`` of ``tokens [B, T]`` at ``positions[b] + t``; the updated cache."""
    x, cache = self.trunk(tokens, cache, positions)
    return self.head(x), cache

  def logits(self, tokens: jax.Array) -> jax.Array:
    """Cache-free logits ``float32[B, T, V]`` (positions ``0..T-1``), for tests and scoring."""
    check_tokens(tokens, self.config.vocab_size)
    b, t = tokens.shape
    pos = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    return self.head(self._blocks(tokens, pos, None, pos)[0])

  def trunk(self, tokens: jax.Array, cache: KVCache, positions: jax.Array
            ) -> tuple[jax.Array, KVCache]:
    """The residual stream after the last block (before the final norm) and the updated cache.

    ``model(tokens, cache, positions)`` is ``model.head(x)`` of this ``x``; early-exit
    drafters (:mod:`lcoupling.lm.drafters`) reuse the two halves.
    """
    check_tokens(tokens, self.config.vocab_size)
    b, t = tokens.shape
    q_pos = jnp.asarray(positions, jnp.int32)[:, None] + jnp.arange(t, dtype=jnp.int32)
    k_pos = jnp.broadcast_to(jnp.arange(cache.k.shape[2], dtype=jnp.int32), (b, cache.k.shape[2]))
    return self._blocks(tokens, q_pos, cache, k_pos)

  def head(self, x: jax.Array) -> jax.Array:
    """Final RMSNorm and output head: residual stream ``[..., d]`` -> ``float32`` logits ``[..., V]``."""
    c = self.config
    x = _rms_norm(x, self.final_norm[...], c.rms_norm_eps)
    w = self.embed[...] if c.tie_embeddings else self.lm_head[...]  # [V, d]
    return dense(x, w, jnp.float32)

  # -- the computation --------------------------------------------------------

  #: Names of the per-layer weights (plus ``bq, bk, bv`` with ``attention_bias``).
  LAYER_PARAMS = ("attn_norm", "wq", "wk", "wv", "wo", "mlp_norm", "w_gate", "w_up", "w_down")

  def layer_names(self) -> tuple[str, ...]:
    """:data:`LAYER_PARAMS`, with the q/k/v biases when the config has them."""
    return self.LAYER_PARAMS + (("bq", "bk", "bv") if self.config.attention_bias else ())

  def per_layer_params(self) -> tuple[dict[str, jax.Array], ...]:
    """One ``{name: array}`` per layer: the weights as the model holds them (no copy)."""
    return tuple({name: getattr(layer, name)[...] for name in self.layer_names()}
                 for layer in self.layers)

  def layer_params(self) -> dict[str, jax.Array]:
    """The per-layer weights stacked ``{name: [num_layers, ...]}`` (a copy; what
    :func:`decoder_stack` scans and the early-exit drafters slice)."""
    layers = self.per_layer_params()
    return {name: jnp.stack([p[name] for p in layers]) for name in self.layer_names()}

  def _blocks(self, tokens, q_pos, cache, k_pos):
    x = embed_lookup(self.embed[...], tokens)
    return decoder_stack(self.per_layer_params(), self.config, x, q_pos, cache, k_pos)


class LlamaLayer(nnx.Module):
  """One transformer block's weights (``attn_norm, wq, ..., w_down`` as attributes)."""

  def __init__(self, params: dict[str, nnx.Param]):
    for name, value in params.items():
      setattr(self, name, value)


def decoder_stack(params, config: LlamaConfig, x: jax.Array,
                  q_pos: jax.Array, cache: KVCache | None, k_pos: jax.Array
                  ) -> tuple[jax.Array, KVCache | None]:
  """Runs transformer blocks on the residual stream ``x [B, T, d]``.

  ``params`` is either a sequence of per-block ``{name: array}`` dicts
  (:meth:`Llama.per_layer_params`), run as an unrolled loop, or one dict of
  ``[num_blocks, ...]`` stacked weights named as :meth:`Llama.layer_params`
  (any number of blocks: a slice of a Llama's, or an adapter's), run as a
  :func:`jax.lax.scan`. The two compute the same function. The loop is what a
  model's own forward pass uses: a scan hands each step a slice of the stacked
  weights, which XLA on the CPU materialises as a copy -- at batch 1, where a
  step streams every weight once, that copy alone doubles the memory traffic.
  ``config`` gives the head geometry, rotary embedding and norm epsilon.
  Query ``t`` of row ``b`` is at absolute position ``q_pos[b, t]`` and sees the
  keys at positions ``0 <= k_pos[b, s] <= q_pos[b, t]``: those of ``cache``
  (``[num_blocks, B, S, ...]``, written at ``q_pos`` first) or, with
  ``cache=None``, the block's own.
  """
  c = config
  per_layer = isinstance(params, (list, tuple))
  b, t = x.shape[:2]
  angles = q_pos[..., None].astype(jnp.float32) * jnp.asarray(rope_inv_freq(c), jnp.float32)
  cos, sin = jnp.cos(angles), jnp.sin(angles)
  bias = "bq" in (params[0] if per_layer else params)

  def attention_inputs(x, p):
    h = _rms_norm(x, p["attn_norm"], c.rms_norm_eps)
    q, k, v = dense(h, p["wq"]), dense(h, p["wk"]), dense(h, p["wv"])
    if bias:
      q, k, v = q + p["bq"], k + p["bk"], v + p["bv"]
    q = _rope(q.reshape(b, t, c.num_heads, c.head_dim), cos, sin)
    k = _rope(k.reshape(b, t, c.num_kv_heads, c.head_dim), cos, sin)
    return q, k, v.reshape(b, t, c.num_kv_heads, c.head_dim)

  def rest(x, attn, p):
    x = x + dense(attn, p["wo"])
    h = _rms_norm(x, p["mlp_norm"], c.rms_norm_eps)
    return x + dense(jax.nn.silu(dense(h, p["w_gate"])) * dense(h, p["w_up"]), p["w_down"])

  if cache is None:
    def block(x, p):
      q, k, v = attention_inputs(x, p)
      return rest(x, _attend(q, k, v, q_pos, k_pos, c.num_kv_heads), p), None

    if per_layer:
      for p in params:
        x = block(x, p)[0]
      return x, None
    x, _ = jax.lax.scan(block, x, params)
    return x, None
  # The whole cache is carried through the scan and written in place at
  # (layer, row, position); positions outside [0, S) index S and are dropped.
  s = cache.k.shape[2]
  where = jnp.where((q_pos < 0) | (q_pos >= s), s, q_pos)
  rows = jnp.broadcast_to(jnp.arange(b, dtype=jnp.int32)[:, None], (b, t))

  def cached_block(carry, layer):
    x, k_cache, v_cache = carry
    p, i = layer
    q, k, v = attention_inputs(x, p)
    k_cache = _cache_write(k_cache, (i, rows, where), k)
    v_cache = _cache_write(v_cache, (i, rows, where), v)
    keys = jax.lax.dynamic_index_in_dim(k_cache, i, keepdims=False)
    values = jax.lax.dynamic_index_in_dim(v_cache, i, keepdims=False)
    x = rest(x, _attend(q, keys, values, q_pos, k_pos, c.num_kv_heads), p)
    return (x, k_cache, v_cache), None

  if per_layer:
    carry = (x, cache.k, cache.v)
    for i, p in enumerate(params):
      carry = cached_block(carry, (p, i))[0]
    x, k_new, v_new = carry
    return x, KVCache(k_new, v_new)
  layers = jnp.arange(cache.k.shape[0], dtype=jnp.int32)
  (x, k_new, v_new), _ = jax.lax.scan(cached_block, (x, cache.k, cache.v), (params, layers))
  return x, KVCache(k_new, v_new)
