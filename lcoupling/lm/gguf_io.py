# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Llama-family GGUF checkpoints (llama.cpp's format): config, weights, tokenizer.

Read with the ``gguf`` package (:class:`gguf.GGUFReader`, a memory map, and
:func:`gguf.quants.dequantize` for the quantised types); the weights are
dequantised to the model's dtype (the model computes in ``float32`` /
``bfloat16``; quantisation only changes the stored values).

Layout conversions (llama.cpp's ``convert_hf_to_gguf.py`` in reverse):

* a GGUF tensor's ``ne = [in, out]`` reads in NumPy as ``[out, in]``, the
  Hugging Face ``nn.Linear`` layout, which :class:`lcoupling.lm.Llama` stores
  as it is (:func:`lcoupling.lm.model.dense`);
* architecture ``llama``: llama.cpp permutes the rows of ``attn_q`` / ``attn_k``
  from Hugging Face's "rotate half" rotary layout to interleaved pairs,
  ``W.reshape(H, 2, D/2, in).swapaxes(1, 2)``; :func:`unpermute_qk` undoes it
  (``qwen2`` files keep the Hugging Face layout: llama.cpp runs them with
  NeoX-style rotary);
* ``rope_freqs.weight`` (Llama 3.1 frequency scaling as per-frequency divisors)
  becomes :attr:`LlamaConfig.rope_freq_factors`; ``output.weight`` present
  means an untied output head.

Example:
  >>> import numpy as np
  >>> w = np.arange(8 * 3).reshape(8, 3)      # 2 heads of dim 4, 3 inputs
  >>> p = permute_qk(w, 2)                    # what llama.cpp's converter stores
  >>> bool(np.array_equal(unpermute_qk(p, 2), w))
  True
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from lcoupling.lm import tokenizer as tokenizer_lib
from lcoupling.lm.model import LlamaConfig

__all__ = ["read_gguf", "read_metadata", "permute_qk", "unpermute_qk", "SUPPORTED_ARCHS"]

SUPPORTED_ARCHS = ("llama", "qwen2")

#: GGUF block tensor -> Llama attribute (same layout: projections ``[out, in]``).
_BLOCK = {"attn_norm.weight": "attn_norm", "ffn_norm.weight": "mlp_norm",
          "attn_q.weight": "wq", "attn_k.weight": "wk", "attn_v.weight": "wv",
          "attn_output.weight": "wo", "ffn_gate.weight": "w_gate", "ffn_up.weight": "w_up",
          "ffn_down.weight": "w_down", "attn_q.bias": "bq", "attn_k.bias": "bk",
          "attn_v.bias": "bv"}


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
  """llama.cpp's q/k row permutation (Hugging Face rotate-half -> interleaved pairs)."""
  return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
      w.shape)


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
  """Inverse of :func:`permute_qk`."""
  return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(
      w.shape)


def _reader_class():
  import gguf

  class Reader(gguf.GGUFReader):
    """``GGUFReader`` parsing through a plain ndarray view of its memory map.

    The reader slices ``self.data`` once per metadata item (~200 000 times for
    a 49 k-token vocabulary with its merges); on an ``np.memmap`` every slice
    pays the subclass's ``__array_finalize__`` (~5 s in all); a base-class
    view of the same mapping makes parsing ~3x faster and reads the same bytes.
    """

    def _get(self, offset, dtype, count=1, override_order=None):
      if type(self.data) is not np.ndarray:
        self.data = self.data.view(np.ndarray)
      return super()._get(offset, dtype, count, override_order)

  return Reader


def _open(path: pathlib.Path):
  if not path.is_file():
    raise FileNotFoundError(f"{path}: GGUF file not found")
  try:
    reader = _reader_class()(path)
  except Exception as e:  # the reader raises ValueError / IndexError / struct errors
    raise ValueError(f"{path}: not a readable GGUF file (truncated or corrupt?): "
                     f"{type(e).__name__}: {e}") from e
  size = path.stat().st_size
  for t in reader.tensors:
    if t.data_offset + t.n_bytes > size or t.data.nbytes != t.n_bytes:
      raise ValueError(f"{path}: truncated GGUF file (tensor {t.name} ends at byte "
                       f"{t.data_offset + t.n_bytes}, the file has {size})")
  return reader


def read_metadata(reader) -> dict[str, Any]:
  """A GGUF file's key/value metadata as Python values (strings, numbers, lists)."""
  out = {}
  for key, field in reader.fields.items():
    if key.startswith("GGUF."):
      continue
    value = field.contents()
    if isinstance(value, np.generic):
      value = value.item()
    out[key] = value
  return out


def _dequantize(path, t, dtype) -> np.ndarray:
  import gguf
  try:
    w = gguf.quants.dequantize(t.data, t.tensor_type)
  except NotImplementedError as e:
    raise ValueError(f"{path}: tensor {t.name} has type {t.tensor_type.name}, which the gguf "
                     f"package cannot dequantise ({e})") from e
  shape = tuple(int(x) for x in reversed(t.shape.tolist()))
  return np.asarray(w, np.float32).reshape(shape).astype(dtype, copy=False)


def _config(path, meta: dict, names: set[str], dtype: str) -> LlamaConfig:
  arch = meta.get("general.architecture")
  if arch not in SUPPORTED_ARCHS:
    raise ValueError(f"{path}: unsupported GGUF architecture general.architecture = {arch!r}; "
                     f"supported: {list(SUPPORTED_ARCHS)}")

  def get(key, default=None, required=True):
    v = meta.get(f"{arch}.{key}", default)
    if v is None and required:
      raise ValueError(f"{path}: GGUF metadata lacks {arch}.{key}")
    return v

  scaling = get("rope.scaling.type", "none", required=False)
  if scaling not in ("none", None):
    raise ValueError(f"{path}: unsupported rotary scaling {arch}.rope.scaling.type = {scaling!r}")
  d, heads = int(get("embedding_length")), int(get("attention.head_count"))
  head_dim = int(get("attention.key_length", d // heads))
  rope_dim = int(get("rope.dimension_count", head_dim))
  if rope_dim != head_dim:
    raise ValueError(f"{path}: partial rotary embeddings ({arch}.rope.dimension_count = "
                     f"{rope_dim} < head_dim {head_dim}) are not supported")
  vocab = get("vocab_size", None, required=False)
  if vocab is None:
    vocab = len(meta.get("tokenizer.ggml.tokens", ())) or None
  if vocab is None:
    raise ValueError(f"{path}: GGUF metadata gives no vocabulary size")
  return LlamaConfig(
      vocab_size=int(vocab), num_layers=int(get("block_count")), hidden_size=d,
      intermediate_size=int(get("feed_forward_length")), num_heads=heads,
      num_kv_heads=int(get("attention.head_count_kv", heads)), head_dim=head_dim,
      rope_theta=float(get("rope.freq_base", 10_000.0)),
      rms_norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-5)),
      tie_embeddings="output.weight" not in names,
      attention_bias="blk.0.attn_q.bias" in names,
      max_position_embeddings=int(get("context_length", 8192)), dtype=dtype)


def read_gguf(path: os.PathLike | str, *, dtype: str = "float32",
              progress: Callable[[str], None] | None = None):
  """Reads a Llama-family GGUF checkpoint.

  Args:
    path: the ``.gguf`` file.
    dtype: ``"float32"`` or ``"bfloat16"``: the dtype of the returned weights.
    progress: optional callback receiving a line of progress text.

  Returns:
    ``(config, params, tokenizer)``: a :class:`LlamaConfig`, a dict of NumPy
    arrays named and shaped like :class:`lcoupling.lm.Llama`'s parameters
    (layers stacked), and the :class:`lcoupling.lm.tokenizer.Tokenizer`.

  Raises:
    FileNotFoundError: no such file.
    ValueError: a truncated or corrupt file, an unsupported architecture,
      tokenizer or tensor type, or unexpected / missing tensors (each named).
  """
  import ml_dtypes
  path = pathlib.Path(path)
  np_dtype = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}[dtype]
  reader = _open(path)
  meta = read_metadata(reader)
  tensors = {t.name: t for t in reader.tensors}
  config = _config(path, meta, set(tensors), dtype)
  tok = tokenizer_lib.from_gguf_metadata(meta)
  if tok.vocab_size > config.vocab_size:
    raise ValueError(f"{path}: the tokenizer has {tok.vocab_size} tokens, the model "
                     f"{config.vocab_size}")
  if "rope_freqs.weight" in tensors:
    factors = _dequantize(path, tensors["rope_freqs.weight"], np.float32).reshape(-1)
    if factors.size != config.head_dim // 2:
      raise ValueError(f"{path}: rope_freqs.weight has {factors.size} entries, expected "
                       f"head_dim / 2 = {config.head_dim // 2}")
    config = config.replace(rope_freq_factors=tuple(float(f) for f in factors))

  arch = meta["general.architecture"]
  n = config.num_layers
  params: dict[str, np.ndarray] = {}
  used = set()

  def take(name):
    if name not in tensors:
      raise ValueError(f"{path}: tensor {name} is missing")
    used.add(name)
    return _dequantize(path, tensors[name], np_dtype)

  params["embed"] = take("token_embd.weight")
  params["final_norm"] = take("output_norm.weight")
  if not config.tie_embeddings:
    params["lm_head"] = take("output.weight")
  if progress:
    progress(f"read embeddings of {path.name}")
  blocks = {k: v for k, v in _BLOCK.items() if config.attention_bias or not k.endswith(".bias")}
  for suffix, attr in blocks.items():
    stacked = None
    for i in range(n):
      w = take(f"blk.{i}.{suffix}")
      if arch == "llama" and suffix.startswith(("attn_q.", "attn_k.")):
        w = unpermute_qk(w, config.num_heads if suffix.startswith("attn_q.") else config.num_kv_heads)
      if stacked is None:
        stacked = np.empty((n,) + w.shape, np_dtype)
      stacked[i] = w
    params[attr] = stacked
  extra = sorted(set(tensors) - used - {"rope_freqs.weight"})
  if extra:
    raise ValueError(f"{path}: unexpected tensors for architecture {arch!r} (not a plain "
                     f"Llama/Qwen2 model?): {extra[:6]}")
  return config, params, tok
