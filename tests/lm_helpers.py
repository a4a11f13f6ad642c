# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Test helpers for lcoupling.lm: tiny checkpoints on disk and an independent NumPy reference.

The reference forward pass follows the Hugging Face ``transformers``
conventions (``nn.Linear`` weights ``[out, in]``, "rotate half" rotary
embeddings, ``repeat_kv`` grouping, Llama-3 ``rope_scaling`` as in
``modeling_rope_utils``) written from scratch in float64, so that a layout or
permutation bug in the loaders cannot cancel out against the model.
The GGUF writer follows llama.cpp's ``convert_hf_to_gguf.py`` (q/k row
permutation for the ``llama`` architecture, Llama-3 scaling as
``rope_freqs.weight``).
"""

from __future__ import annotations

import json
import math
import pathlib

import gguf
import ml_dtypes
import numpy as np
import safetensors.numpy
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                 "{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = ["The quick brown fox jumps over the lazy dog. 12345 + 678 = 13023.",
          "def add(a, b):\n    return a + b\n\n\nprint(add(2, 3))",
          "Les élèves étudient à l'école; naïve café — résumé.",
          "    indented    with   runs of   spaces\tand\ttabs\n\n\n"] * 4


def tiny_tokenizer() -> tokenizers.Tokenizer:
  """A byte-level BPE (GPT-2 style) trained on a few lines, with special tokens first."""
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS, show_progress=False,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  tok.train_from_iterator(CORPUS, trainer)
  return tok


def hf_config(arch: str, vocab_size: int) -> dict:
  """config.json of a tiny Llama (bf16, untied, llama3 rope scaling) or Qwen2 (tied, biases)."""
  common = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=64, hidden_act="silu", rms_norm_eps=1e-5,
                bos_token_id=0, eos_token_id=1)
  if arch == "llama":
    return dict(common, architectures=["LlamaForCausalLM"], model_type="llama", rope_theta=100.0,
                rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                  high_freq_factor=4.0, original_max_position_embeddings=16),
                tie_word_embeddings=False, torch_dtype="bfloat16")
  return dict(common, architectures=["Qwen2ForCausalLM"], model_type="qwen2", rope_theta=1000.0,
              tie_word_embeddings=True, use_sliding_window=False, torch_dtype="float32")


def random_hf_weights(cfg: dict, seed: int) -> dict[str, np.ndarray]:
  """Random weights in Hugging Face names and layouts, large enough for sharp attention."""
  rng = np.random.default_rng(seed)
  d, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
  hd = d // cfg["num_attention_heads"]
  q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
  qwen = cfg["architectures"][0].startswith("Qwen2")

  def mat(out, inp, scale=1.0):
    return (rng.standard_normal((out, inp)) * scale / math.sqrt(inp)).astype(np.float32)

  w = {"model.embed_tokens.weight": rng.standard_normal((v, d)).astype(np.float32),
       "model.norm.weight": (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)}
  if not cfg["tie_word_embeddings"]:
    w["lm_head.weight"] = mat(v, d, 2.0)
  for i in range(cfg["num_hidden_layers"]):
    p = f"model.layers.{i}."
    w[p + "input_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)
    w[p + "post_attention_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(d)).astype(
        np.float32)
    w[p + "self_attn.q_proj.weight"] = mat(q, d, 3.0)
    w[p + "self_attn.k_proj.weight"] = mat(kv, d, 3.0)
    w[p + "self_attn.v_proj.weight"] = mat(kv, d)
    w[p + "self_attn.o_proj.weight"] = mat(d, q)
    w[p + "mlp.gate_proj.weight"] = mat(f, d)
    w[p + "mlp.up_proj.weight"] = mat(f, d)
    w[p + "mlp.down_proj.weight"] = mat(d, f)
    if qwen:
      for name, n in (("q", q), ("k", kv), ("v", kv)):
        w[p + f"self_attn.{name}_proj.bias"] = rng.standard_normal(n).astype(np.float32)
  if cfg.get("torch_dtype") == "bfloat16":
    w = {k: a.astype(ml_dtypes.bfloat16) for k, a in w.items()}
  return w


def write_hf_checkpoint(directory: pathlib.Path, cfg: dict, weights: dict, tok, *,
                        num_shards: int = 2) -> pathlib.Path:
  """The Hugging Face layout: config.json, sharded safetensors + index, tokenizer files."""
  directory.mkdir(parents=True, exist_ok=True)
  (directory / "config.json").write_text(json.dumps(cfg, indent=1))
  names = sorted(weights)
  weight_map = {}
  for s in range(num_shards):
    fname = f"model-{s + 1:05d}-of-{num_shards:05d}.safetensors"
    part = {n: weights[n] for n in names[s::num_shards]}
    safetensors.numpy.save_file(part, str(directory / fname), metadata={"format": "pt"})
    weight_map.update({n: fname for n in part})
  (directory / "model.safetensors.index.json").write_text(json.dumps(
      {"metadata": {"total_size": int(sum(a.nbytes for a in weights.values()))},
       "weight_map": weight_map}, indent=1))
  tok.save(str(directory / "tokenizer.json"))
  (directory / "tokenizer_config.json").write_text(json.dumps(
      {"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|im_end|>"},
       "add_bos_token": True, "chat_template": CHAT_TEMPLATE}))
  (directory / "generation_config.json").write_text(json.dumps({"eos_token_id": [1, 3]}))
  return directory


# ----------------------------------------------------------------------------
# The independent reference forward pass (float64, Hugging Face conventions).
# ----------------------------------------------------------------------------


def hf_inv_freq(cfg: dict) -> np.ndarray:
  """transformers' default / llama3 rotary inverse frequencies."""
  d = cfg["hidden_size"] // cfg["num_attention_heads"]
  inv = 1.0 / cfg["rope_theta"] ** (np.arange(0, d, 2, dtype=np.float64) / d)
  rs = cfg.get("rope_scaling")
  if rs:
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    inv_llama = np.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    inv = np.where(medium, smoothed, inv_llama)
  return inv


def reference_logits(cfg: dict, weights: dict, tokens) -> np.ndarray:
  """Logits ``float64 [T, V]`` of one sequence (positions 0..T-1)."""
  w = {k: np.asarray(a, np.float64) for k, a in weights.items()}
  tokens = np.asarray(tokens)
  t = len(tokens)
  h, hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
  d = cfg["hidden_size"] // h
  eps = cfg["rms_norm_eps"]
  angles = np.arange(t)[:, None] * hf_inv_freq(cfg)[None]
  emb = np.concatenate([angles, angles], axis=-1)
  cos, sin = np.cos(emb)[:, None], np.sin(emb)[:, None]  # [T, 1, D]

  def rotate_half(x):
    x1, x2 = x[..., :d // 2], x[..., d // 2:]
    return np.concatenate([-x2, x1], axis=-1)

  def norm(x, g):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g

  def linear(x, name):
    y = x @ w[name + ".weight"].T
    return y + w[name + ".bias"] if name + ".bias" in w else y

  x = w["model.embed_tokens.weight"][tokens]
  causal = np.tril(np.ones((t, t), bool))
  for i in range(cfg["num_hidden_layers"]):
    p = f"model.layers.{i}."
    a = norm(x, w[p + "input_layernorm.weight"])
    q = linear(a, p + "self_attn.q_proj").reshape(t, h, d)
    k = linear(a, p + "self_attn.k_proj").reshape(t, hkv, d)
    v = linear(a, p + "self_attn.v_proj").reshape(t, hkv, d)
    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    k, v = np.repeat(k, h // hkv, axis=1), np.repeat(v, h // hkv, axis=1)  # repeat_kv
    s = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(d)
    s = np.where(causal[None], s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    o = np.einsum("hqk,khd->qhd", s, v).reshape(t, h * d)
    x = x + linear(o, p + "self_attn.o_proj")
    m = norm(x, w[p + "post_attention_layernorm.weight"])
    g = linear(m, p + "mlp.gate_proj")
    x = x + linear(g / (1 + np.exp(-g)) * linear(m, p + "mlp.up_proj"), p + "mlp.down_proj")
  x = norm(x, w["model.norm.weight"])
  head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
  return x @ head.T


# ----------------------------------------------------------------------------
# GGUF, as llama.cpp's converter writes it.
# ----------------------------------------------------------------------------


def llama_cpp_permute(weights: np.ndarray, n_head: int, n_head_kv: int | None = None):
  """``LlamaModel.permute`` of convert_hf_to_gguf.py (rotate-half rows -> interleaved)."""
  if n_head_kv is not None and n_head != n_head_kv:
    n_head = n_head_kv
  return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
          .swapaxes(1, 2).reshape(weights.shape))


def llama3_rope_factors(cfg: dict) -> np.ndarray:
  """convert_hf_to_gguf.py's ``rope_freqs`` for llama3 scaling (divisors of the frequencies)."""
  rs = cfg["rope_scaling"]
  d = cfg["hidden_size"] // cfg["num_attention_heads"]
  freqs = 1.0 / cfg["rope_theta"] ** (np.arange(0, d, 2, dtype=np.float64) / d)
  factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
  old = rs["original_max_position_embeddings"]
  low_wavelen, high_wavelen = old / low, old / high
  out = []
  for freq in freqs:
    wavelen = 2 * math.pi / freq
    if wavelen < high_wavelen:
      out.append(1.0)
    elif wavelen > low_wavelen:
      out.append(factor)
    else:
      smooth = (old / wavelen - low) / (high - low)
      out.append(1 / ((1 - smooth) / factor + smooth))
  return np.asarray(out, np.float32)


_GGUF_NAMES = {"input_layernorm.weight": "attn_norm.weight",
               "post_attention_layernorm.weight": "ffn_norm.weight",
               "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
               "self_attn.v_proj.weight": "attn_v.weight",
               "self_attn.o_proj.weight": "attn_output.weight",
               "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
               "self_attn.v_proj.bias": "attn_v.bias",
               "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
               "mlp.down_proj.weight": "ffn_down.weight"}


def tokenizer_gguf_fields(tok: tokenizers.Tokenizer) -> tuple[list[str], list[str], list[int]]:
  """(tokens in id order, merges "a b", token types) of a trained byte-level BPE."""
  model = json.loads(tok.to_str())["model"]
  vocab = model["vocab"]
  tokens = [None] * len(vocab)
  for t, i in vocab.items():
    tokens[i] = t
  merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
  types = [3 if t in SPECIALS else 1 for t in tokens]
  return tokens, merges, types


def write_gguf(path: pathlib.Path, cfg: dict, weights: dict, tok, *, arch: str,
               quantize: tuple[str, ...] = ("ffn_", "token_embd")) -> dict[str, np.ndarray]:
  """Writes ``weights`` (Hugging Face names) as llama.cpp would; returns the stored HF weights.

  Tensors whose GGUF name contains one of ``quantize`` are stored as Q8_0; the
  returned dict holds the values the file really stores (dequantised, in
  Hugging Face layout), the weights a correct loader must reproduce.
  """
  h, hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
  w = gguf.GGUFWriter(str(path), arch)
  w.add_context_length(cfg["max_position_embeddings"])
  w.add_embedding_length(cfg["hidden_size"])
  w.add_block_count(cfg["num_hidden_layers"])
  w.add_feed_forward_length(cfg["intermediate_size"])
  w.add_head_count(h)
  w.add_head_count_kv(hkv)
  w.add_rope_freq_base(cfg["rope_theta"])
  w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
  w.add_rope_dimension_count(cfg["hidden_size"] // h)
  w.add_vocab_size(cfg["vocab_size"])
  tokens, merges, types = tokenizer_gguf_fields(tok)
  tokens += [f"<|pad_{i}|>" for i in range(cfg["vocab_size"] - len(tokens))]
  types += [3] * (cfg["vocab_size"] - len(types))
  w.add_tokenizer_model("gpt2")
  w.add_tokenizer_pre("gpt-2")
  w.add_token_list(tokens)
  w.add_token_merges(merges)
  w.add_token_types(types)
  w.add_bos_token_id(0)
  w.add_eos_token_id(3)
  w.add_add_bos_token(False)
  w.add_chat_template(CHAT_TEMPLATE)
  stored = {}

  def put(gguf_name, hf_name, file_array, hf_array=None):
    """Stores ``file_array``; records the value a loader must recover for ``hf_name``.

    Q8_0 quantises blocks of 32 within a row and llama.cpp's permutation only
    reorders rows, so the recovered value is ``dequantize(quantize(hf_array))``.
    """
    file_array = np.asarray(file_array, np.float32)
    hf_array = file_array if hf_array is None else np.asarray(hf_array, np.float32)
    if any(s in gguf_name for s in quantize):
      q8 = gguf.GGMLQuantizationType.Q8_0
      w.add_tensor(gguf_name, gguf.quants.quantize(file_array, q8), raw_dtype=q8)
      hf_array = gguf.quants.dequantize(gguf.quants.quantize(hf_array, q8), q8).reshape(
          hf_array.shape)
    else:
      w.add_tensor(gguf_name, file_array)
    stored[hf_name] = hf_array

  put("token_embd.weight", "model.embed_tokens.weight", weights["model.embed_tokens.weight"])
  put("output_norm.weight", "model.norm.weight", weights["model.norm.weight"])
  if "lm_head.weight" in weights and not cfg["tie_word_embeddings"]:
    put("output.weight", "lm_head.weight", weights["lm_head.weight"])
  if cfg.get("rope_scaling"):
    w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg))
  for i in range(cfg["num_hidden_layers"]):
    for suffix, gname in _GGUF_NAMES.items():
      name = f"model.layers.{i}.{suffix}"
      if name not in weights:
        continue
      a = np.asarray(weights[name], np.float32)
      stored_a = a
      if arch == "llama" and suffix.startswith("self_attn.q_proj"):
        stored_a = llama_cpp_permute(a, h, h)
      elif arch == "llama" and suffix.startswith("self_attn.k_proj"):
        stored_a = llama_cpp_permute(a, h, hkv)
      put(f"blk.{i}.{gname}", name, stored_a, a)
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()
  return stored


# ----------------------------------------------------------------------------
# Random models in lcoupling.lm.Llama's own layout.
# ----------------------------------------------------------------------------


def random_llama(config, seed: int = 0, qk_scale: float = 3.0):
  """A :class:`lcoupling.lm.Llama` with random weights scaled for sharp attention.

  ``nnx`` initialisation (std 0.02) gives near-uniform attention, under which
  cache or position bugs barely show; here q/k projections have gain
  ``qk_scale`` and embeddings unit variance.
  """
  from lcoupling.lm import build_llama
  c = config
  rng = np.random.default_rng(seed)
  n, d, f = c.num_layers, c.hidden_size, c.intermediate_size
  q, kv = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim

  def mat(*shape, gain=1.0):  # drawn [in, out], stored [out, in] (the model's layout)
    w = rng.standard_normal(shape) * gain / math.sqrt(shape[-2])
    return np.ascontiguousarray(w.swapaxes(-1, -2)).astype(np.float32)

  p = {"embed": rng.standard_normal((c.vocab_size, d)).astype(np.float32),
       "final_norm": (1 + 0.1 * rng.standard_normal(d)).astype(np.float32),
       "attn_norm": (1 + 0.1 * rng.standard_normal((n, d))).astype(np.float32),
       "mlp_norm": (1 + 0.1 * rng.standard_normal((n, d))).astype(np.float32),
       "wq": mat(n, d, q, gain=qk_scale), "wk": mat(n, d, kv, gain=qk_scale),
       "wv": mat(n, d, kv), "wo": mat(n, q, d), "w_gate": mat(n, d, f), "w_up": mat(n, d, f),
       "w_down": mat(n, f, d)}
  if not c.tie_embeddings:
    p["lm_head"] = mat(d, c.vocab_size, gain=2.0)
  if c.attention_bias:
    p.update(bq=rng.standard_normal((n, q)).astype(np.float32),
             bk=rng.standard_normal((n, kv)).astype(np.float32),
             bv=rng.standard_normal((n, kv)).astype(np.float32))
  return build_llama(c, p)
