# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Hugging Face checkpoint directories (Llama, Qwen2): config, safetensors weights, tokenizer.

A directory as ``huggingface-cli download`` leaves it::

    config.json                      # LlamaForCausalLM or Qwen2ForCausalLM
    model.safetensors                # or model.safetensors.index.json + shards
    tokenizer.json, tokenizer_config.json   # tokenizer, special tokens, chat template
    generation_config.json           # optional: more eos ids

Weights are read with ``safetensors``' NumPy API (no torch; ``BF16`` tensors
come back as ``ml_dtypes.bfloat16``) and converted to the model's dtype.
Hugging Face ``nn.Linear`` weights are ``[out, in]``, the layout
:class:`lcoupling.lm.Llama` stores (:func:`lcoupling.lm.model.dense`). The rotary layout is
Hugging Face's "rotate half" in both, so q/k need no permutation.

Supported: ``LlamaForCausalLM`` (``rope_scaling`` ``rope_type = "llama3"``,
``tie_word_embeddings``) and ``Qwen2ForCausalLM`` (q/k/v biases) -- the
families of the model pairs Llama-3.2-1B / 3.1-8B and Qwen2.5-0.5B / 7B.
Anything else (another architecture, ``rope_scaling`` type, activation,
sliding-window attention, MLP or output biases) is refused with a
``ValueError`` naming the field.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np

from lcoupling.lm import tokenizer as tokenizer_lib
from lcoupling.lm.model import LlamaConfig

__all__ = ["read_hf", "config_from_hf", "SUPPORTED_ARCHITECTURES"]

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM")

#: Hugging Face layer tensor -> Llama attribute (same layout: projections ``[out, in]``).
_LAYER = {"input_layernorm.weight": "attn_norm", "post_attention_layernorm.weight": "mlp_norm",
          "self_attn.q_proj.weight": "wq", "self_attn.k_proj.weight": "wk",
          "self_attn.v_proj.weight": "wv", "self_attn.o_proj.weight": "wo",
          "mlp.gate_proj.weight": "w_gate", "mlp.up_proj.weight": "w_up",
          "mlp.down_proj.weight": "w_down", "self_attn.q_proj.bias": "bq",
          "self_attn.k_proj.bias": "bk", "self_attn.v_proj.bias": "bv"}


def _read_json(path: pathlib.Path) -> dict:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from e


def config_from_hf(cfg: dict[str, Any], *, dtype: str = "float32", where: str = "config.json"
                   ) -> LlamaConfig:
  """The :class:`LlamaConfig` of a Hugging Face ``config.json`` (as a dict)."""
  archs = cfg.get("architectures") or []
  arch = archs[0] if archs else None
  if arch not in SUPPORTED_ARCHITECTURES:
    raise ValueError(f"{where}: unsupported architectures = {archs!r}; supported: "
                     f"{list(SUPPORTED_ARCHITECTURES)}")
  qwen = arch == "Qwen2ForCausalLM"

  def need(key):
    if key not in cfg:
      raise ValueError(f"{where}: missing field {key!r}")
    return cfg[key]

  act = cfg.get("hidden_act", "silu")
  if act != "silu":
    raise ValueError(f"{where}: hidden_act = {act!r} is not supported (SwiGLU with 'silu' only)")
  if cfg.get("mlp_bias"):
    raise ValueError(f"{where}: mlp_bias = true is not supported")
  if not qwen and cfg.get("attention_bias"):
    raise ValueError(f"{where}: attention_bias = true is not supported for Llama (it also "
                     "biases the output projection)")
  if qwen and cfg.get("use_sliding_window"):
    raise ValueError(f"{where}: use_sliding_window = true is not supported")
  scaling = cfg.get("rope_scaling")
  rope_scaling = None
  if scaling:
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "llama3":
      rope_scaling = ("llama3", float(scaling["factor"]), float(scaling["low_freq_factor"]),
                      float(scaling["high_freq_factor"]),
                      float(scaling["original_max_position_embeddings"]))
    elif kind != "default":
      raise ValueError(f"{where}: rope_scaling type {kind!r} is not supported (only 'llama3')")
  heads = int(need("num_attention_heads"))
  d = int(need("hidden_size"))
  head_dim = cfg.get("head_dim") or d // heads
  return LlamaConfig(
      vocab_size=int(need("vocab_size")), num_layers=int(need("num_hidden_layers")),
      hidden_size=d, intermediate_size=int(need("intermediate_size")), num_heads=heads,
      num_kv_heads=int(cfg.get("num_key_value_heads") or heads), head_dim=int(head_dim),
      rope_theta=float(cfg.get("rope_theta", 10_000.0)), rope_scaling=rope_scaling,
      rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6 if qwen else 1e-5)),
      tie_embeddings=bool(cfg.get("tie_word_embeddings", False)), attention_bias=qwen,
      max_position_embeddings=int(cfg.get("max_position_embeddings", 8192)), dtype=dtype)


class _Shards:
  """Tensor name -> safetensors file, for a single file or an index + shards."""

  def __init__(self, d: pathlib.Path):
    from safetensors import safe_open
    self._open = safe_open
    self.dir = d
    index, single = d / "model.safetensors.index.json", d / "model.safetensors"
    if index.is_file():
      weight_map = _read_json(index).get("weight_map")
      if not isinstance(weight_map, dict):
        raise ValueError(f"{index}: no 'weight_map'")
      self.files = {name: d / f for name, f in weight_map.items()}
    elif single.is_file():
      self.files = {name: single for name in self._keys(single)}
    else:
      raise FileNotFoundError(f"{d}: no model.safetensors or model.safetensors.index.json")
    for f in set(self.files.values()):
      if not f.is_file():
        raise FileNotFoundError(f"{f}: safetensors shard not found (named in {index})")
    self._handles = {}

  def _keys(self, f):
    try:
      with self._open(f, framework="np") as h:
        return list(h.keys())
    except Exception as e:  # safetensors raises SafetensorError
      raise ValueError(f"{f}: not a readable safetensors file ({e})") from e

  def get(self, name: str) -> np.ndarray:
    if name not in self.files:
      raise ValueError(f"{self.dir}: tensor {name} is missing from the checkpoint")
    f = self.files[name]
    try:
      if f not in self._handles:
        self._handles[f] = self._open(f, framework="np").__enter__()
      return self._handles[f].get_tensor(name)
    except Exception as e:
      raise ValueError(f"{f}: cannot read tensor {name} (truncated or corrupt?): {e}") from e

  def close(self):
    for h in self._handles.values():
      h.__exit__(None, None, None)
    self._handles = {}


def read_hf(directory: os.PathLike | str, *, dtype: str = "float32",
            progress: Callable[[str], None] | None = None):
  """Reads a Hugging Face Llama / Qwen2 checkpoint directory.

  Args:
    directory: the checkpoint directory.
    dtype: ``"float32"`` or ``"bfloat16"``: the dtype of the returned weights.
    progress: optional callback receiving a line of progress text.

  Returns:
    ``(config, params, tokenizer)`` as :func:`lcoupling.lm.gguf_io.read_gguf`.
  """
  import ml_dtypes
  d = pathlib.Path(directory)
  if not d.is_dir():
    raise FileNotFoundError(f"{d}: Hugging Face checkpoint directory not found")
  cfg_path = d / "config.json"
  if not cfg_path.is_file():
    raise FileNotFoundError(f"{cfg_path}: not found (a Hugging Face checkpoint directory needs "
                            "config.json)")
  raw = _read_json(cfg_path)
  config = config_from_hf(raw, dtype=dtype, where=str(cfg_path))
  eos = []
  gen_path = d / "generation_config.json"
  for source in (raw, _read_json(gen_path) if gen_path.is_file() else {}):
    e = source.get("eos_token_id")
    eos += [] if e is None else ([e] if isinstance(e, int) else list(e))
  tok = tokenizer_lib.from_hf_dir(d, extra_eos_ids=eos)
  if tok.vocab_size > config.vocab_size:
    raise ValueError(f"{d}: the tokenizer has {tok.vocab_size} tokens, config.json's vocab_size "
                     f"is {config.vocab_size}")
  np_dtype = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}[dtype]
  shards = _Shards(d)
  n = config.num_layers
  params: dict[str, np.ndarray] = {}
  used = set()

  def take(name, shape):
    w = shards.get(name)
    used.add(name)
    if w.shape != shape:
      raise ValueError(f"{d}: tensor {name} has shape {w.shape}, config.json implies {shape}")
    return w.astype(np_dtype, copy=False)

  c = config
  q, kv = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim
  shapes = {"input_layernorm.weight": (c.hidden_size,),
            "post_attention_layernorm.weight": (c.hidden_size,),
            "self_attn.q_proj.weight": (q, c.hidden_size),
            "self_attn.k_proj.weight": (kv, c.hidden_size),
            "self_attn.v_proj.weight": (kv, c.hidden_size),
            "self_attn.o_proj.weight": (c.hidden_size, q),
            "mlp.gate_proj.weight": (c.intermediate_size, c.hidden_size),
            "mlp.up_proj.weight": (c.intermediate_size, c.hidden_size),
            "mlp.down_proj.weight": (c.hidden_size, c.intermediate_size),
            "self_attn.q_proj.bias": (q,), "self_attn.k_proj.bias": (kv,),
            "self_attn.v_proj.bias": (kv,)}
  try:
    params["embed"] = take("model.embed_tokens.weight", (c.vocab_size, c.hidden_size))
    params["final_norm"] = take("model.norm.weight", (c.hidden_size,))
    if not c.tie_embeddings:
      params["lm_head"] = take("lm_head.weight", (c.vocab_size, c.hidden_size))
    for suffix, attr in _LAYER.items():
      if suffix.endswith(".bias") and not c.attention_bias:
        continue
      stacked = None
      for i in range(n):
        w = take(f"model.layers.{i}.{suffix}", shapes[suffix])
        if stacked is None:
          stacked = np.empty((n,) + w.shape, np_dtype)
        stacked[i] = w
      params[attr] = stacked
      if progress:
        progress(f"read {suffix} of {n} layers")
  finally:
    shards.close()
  ignored = {"lm_head.weight"} if c.tie_embeddings else set()
  extra = sorted(k for k in set(shards.files) - used - ignored if "rotary_emb.inv_freq" not in k)
  if extra:
    raise ValueError(f"{d}: unexpected tensors (not a plain {raw['architectures'][0]}?): "
                     f"{extra[:6]}")
  return config, params, tok
