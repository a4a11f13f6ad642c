# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""One entry point for every checkpoint: :func:`load`.

Model specs::

    "smollm2-135m"     SmolLM2-135M-Instruct (GGUF Q4_1) under DATA_DIR/lm/, fetched by
                       `make lm` (= python -m lcoupling.lm fetch --data_dir data); the offline default
    "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"
                       Qwen2.5-Coder-0.5B / 1.5B-Instruct (GGUF, same tokenizer: the paper's
                       drafter/target family) under DATA_DIR/lm/, fetched by `make lm-qwen`
                       (= python -m lcoupling.lm fetch --data_dir data --models qwen2.5-coder)
    "gguf:PATH"        any Llama / Qwen2 GGUF file (lcoupling.lm.gguf_io)
    "hf:DIR"           a Hugging Face LlamaForCausalLM / Qwen2ForCausalLM directory (lcoupling.lm.hf_io)

``dtype=None`` computes in ``float32`` on CPU and ``bfloat16`` on GPU/TPU (the
weights are converted on load, whatever their stored type). GGUF weights are
dequantised once and cached beside the file (:mod:`lcoupling.lm.weight_cache`):
the second load of the Qwen2.5-Coder 1.5B model is a file read instead of
a minute and a half of dequantisation.

Example (a tiny random model, no checkpoint; :func:`build_llama` is what the
loaders call once they have the weights):

  >>> import numpy as np
  >>> from lcoupling.lm.model import LlamaConfig
  >>> cfg = LlamaConfig(vocab_size=8, num_layers=1, hidden_size=4, intermediate_size=8,
  ...                   num_heads=2, num_kv_heads=1, head_dim=2)
  >>> shapes = {"embed": (8, 4), "attn_norm": (1, 4), "mlp_norm": (1, 4), "final_norm": (4,),
  ...           "wq": (1, 4, 4), "wk": (1, 2, 4), "wv": (1, 2, 4), "wo": (1, 4, 4),
  ...           "w_gate": (1, 8, 4), "w_up": (1, 8, 4), "w_down": (1, 4, 8)}
  >>> model = build_llama(cfg, {k: np.ones(s, np.float32) for k, s in shapes.items()})
  >>> model.logits(np.array([[1, 2]])).shape
  (1, 2, 8)
  >>> load("llama-7b")  # doctest: +ELLIPSIS
  Traceback (most recent call last):
  ...
  ValueError: unknown model spec 'llama-7b'; use 'smollm2-135m', 'qwen2.5-coder-0.5b', 'qwen2.5-coder-1.5b', 'gguf:PATH' or 'hf:DIR'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lcoupling.lm import assets, gguf_io, hf_io, weight_cache
from lcoupling.lm.model import Llama, LlamaConfig
from lcoupling.lm.tokenizer import Tokenizer

__all__ = ["LoadedLM", "load", "build_llama", "parse_spec", "default_dtype", "architecture",
           "MODEL_NAMES", "ARCHITECTURES"]

#: Named models: spec -> asset name (see :mod:`lcoupling.lm.assets`).
MODEL_NAMES = {"smollm2-135m": "smollm2", "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b",
               "qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b"}


_EPS_1E6, _EPS_1E5 = float(np.float32(1e-6)), float(np.float32(1e-5))  # as GGUF stores them
#: The architecture of each named model, as :func:`load` reads it from the file (checked against
#: the files where they are fetched, ``tests/test_lm_qwen_assets.py``): for random-weight
#: benchmarks where the files are not (an accelerator that cannot reach the package index).
ARCHITECTURES = {
    "smollm2-135m": dict(vocab_size=49152, num_layers=30, hidden_size=576, intermediate_size=1536,
                         num_heads=9, num_kv_heads=3, head_dim=64, rope_theta=100000.0,
                         rms_norm_eps=_EPS_1E5, tie_embeddings=True, attention_bias=False,
                         max_position_embeddings=8192),
    "qwen2.5-coder-0.5b": dict(vocab_size=151936, num_layers=24, hidden_size=896,
                               intermediate_size=4864, num_heads=14, num_kv_heads=2, head_dim=64,
                               rope_theta=1000000.0, rms_norm_eps=_EPS_1E6, tie_embeddings=False,
                               attention_bias=True, max_position_embeddings=32768),
    "qwen2.5-coder-1.5b": dict(vocab_size=151936, num_layers=28, hidden_size=1536,
                               intermediate_size=8960, num_heads=12, num_kv_heads=2, head_dim=128,
                               rope_theta=1000000.0, rms_norm_eps=_EPS_1E6, tie_embeddings=False,
                               attention_bias=True, max_position_embeddings=32768),
}


def architecture(name: str, dtype: str = "float32") -> LlamaConfig:
  """The :class:`~lcoupling.lm.model.LlamaConfig` of a named model, without its file.

  ``Llama(architecture(name, dtype), rngs=nnx.Rngs(0))`` is that model with random weights: the
  same shapes, bytes and FLOPs (what a roofline benchmark needs), not its outputs.

  >>> architecture("qwen2.5-coder-1.5b", "bfloat16").num_layers
  28
  >>> architecture("llama-7b")
  Traceback (most recent call last):
  ...
  ValueError: architecture: unknown model 'llama-7b'; known: smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b
  """
  if name not in ARCHITECTURES:
    raise ValueError(f"architecture: unknown model {name!r}; known: {', '.join(ARCHITECTURES)}")
  return LlamaConfig(**ARCHITECTURES[name], dtype=dtype)


class LoadedLM(NamedTuple):
  """What :func:`load` returns."""

  model: Llama
  tokenizer: Tokenizer
  config: LlamaConfig
  spec: str


def default_dtype() -> str:
  """``"float32"`` on CPU, ``"bfloat16"`` on an accelerator."""
  return "float32" if jax.default_backend() == "cpu" else "bfloat16"


def parse_spec(spec: str) -> tuple[str, str]:
  """``(kind, argument)`` of a model spec: ``("name", "smollm2-135m")``, ``("gguf", path)``, ..."""
  if not isinstance(spec, str):
    raise TypeError(f"model spec must be a str, got {type(spec).__name__}")
  if spec in MODEL_NAMES:
    return "name", spec
  for kind in ("gguf", "hf"):
    if spec.startswith(kind + ":") and len(spec) > len(kind) + 1:
      return kind, spec[len(kind) + 1:]
  names = ", ".join(repr(n) for n in MODEL_NAMES)
  raise ValueError(f"unknown model spec {spec!r}; use {names}, 'gguf:PATH' or 'hf:DIR'")


def build_llama(config: LlamaConfig, params: Mapping[str, np.ndarray]) -> Llama:
  """A :class:`Llama` holding ``params``.

  ``params`` are named like :meth:`Llama.layer_params` (per-layer weights
  stacked ``[num_layers, ...]``) plus ``embed``, ``final_norm`` and, untied,
  ``lm_head``. The model is built abstractly (:func:`flax.nnx.eval_shape`, no
  random initialisation) and every parameter is replaced, layer by layer; a
  missing, unexpected or misshapen array raises ``ValueError`` naming it. On the
  CPU an aligned array of the model's dtype (as :mod:`lcoupling.lm.weight_cache`
  reads them) is used in place, without a copy.
  """
  model = nnx.eval_shape(lambda: Llama(config, rngs=nnx.Rngs(0)))
  n = config.num_layers
  expected = {name: (n,) + tuple(getattr(model.layers[0], name).shape)
              for name in model.layer_names()}
  for name in ("embed", "final_norm") + (() if config.tie_embeddings else ("lm_head",)):
    expected[name] = tuple(getattr(model, name).shape)
  missing, extra = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
  if missing or extra:
    raise ValueError(f"build_llama: parameters missing {missing}, unexpected {extra}")

  def put(value):
    if isinstance(value, np.ndarray) and value.dtype == config.jnp_dtype:
      return nnx.Param(jax.device_put(value))  # in place on the CPU when aligned
    return nnx.Param(jnp.asarray(value, config.jnp_dtype))

  for name, shape in expected.items():
    value = params[name]
    if tuple(value.shape) != shape:
      raise ValueError(f"build_llama: parameter {name} has shape {tuple(value.shape)}, the "
                       f"config implies {shape}")
    if name in model.layer_names():
      for i in range(n):
        setattr(model.layers[i], name, put(value[i]))
    else:
      setattr(model, name, put(value))
  return model


def load(spec: str, *, dtype: str | None = None, data_dir: os.PathLike | str = "data",
         progress: Callable[[str], None] | None = None, cache: bool = True) -> LoadedLM:
  """Loads a model and its tokenizer.

  Args:
    spec: a name of :data:`MODEL_NAMES`, ``"gguf:PATH"`` or ``"hf:DIR"`` (module docstring).
    dtype: ``"float32"``, ``"bfloat16"`` or ``None`` (:func:`default_dtype`).
    data_dir: where ``make lm`` / ``make lm-qwen`` put the named models (``DATA_DIR/lm``).
    progress: optional callback receiving a line of progress text.
    cache: read GGUF weights through the dequantised cache beside the file
      (:func:`lcoupling.lm.weight_cache.read_gguf_cached`); ``False``
      dequantises every time and writes nothing.

  Returns:
    A :class:`LoadedLM` ``(model, tokenizer, config, spec)``.

  Raises:
    ValueError: an unknown spec or dtype; an unsupported or inconsistent checkpoint.
    FileNotFoundError / lcoupling.lm.assets.AssetError: a missing or corrupt
      file (the message names it, and for named models the fetch command).
  """
  kind, arg = parse_spec(spec)
  dtype = default_dtype() if dtype is None else dtype
  if dtype not in ("float32", "bfloat16"):
    raise ValueError(f"dtype must be 'float32', 'bfloat16' or None, got {dtype!r}")
  if kind in ("name", "gguf"):
    sha256 = None
    if kind == "name":
      name = MODEL_NAMES[arg]
      path, sha256 = assets.asset_path(name, data_dir), assets.pinned_sha256(name)
    else:
      path = os.path.expanduser(arg)
    if cache:
      config, params, tok = weight_cache.read_gguf_cached(path, dtype=dtype, sha256=sha256,
                                                          progress=progress)
    else:
      config, params, tok = gguf_io.read_gguf(path, dtype=dtype, progress=progress)
  else:
    config, params, tok = hf_io.read_hf(os.path.expanduser(arg), dtype=dtype, progress=progress)
  model = build_llama(config, params)
  return LoadedLM(model, tok, config, spec)
