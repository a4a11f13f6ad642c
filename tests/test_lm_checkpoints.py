# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Checkpoint loaders (hf:DIR, gguf:PATH) against an independent NumPy reference.

Tiny random Llama (bf16 safetensors, untied head, llama3 rope scaling) and
Qwen2 (q/k/v biases, tied head) checkpoints are written in the real Hugging
Face layout (sharded safetensors + index, tokenizer.json built with
``tokenizers``) and as GGUF files the way llama.cpp's converter writes them
(q/k permuted for ``llama``, Llama-3 scaling as ``rope_freqs.weight``, F32 and
Q8_0 tensors, tokenizer metadata). The loaded models' logits must match the
float64 reference forward pass of tests/lm_helpers.py on the weights the files
hold; the weights are scaled so that attention is sharp and a wrong q/k
layout, rotary scaling or head changes the logits by O(1).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lm_helpers as H
from lcoupling import lm
from lcoupling.lm import gguf_io, hf_io, tokenizer as tokenizer_lib

VOCAB = 336  # > the tokenizer's 320 tokens, as in padded checkpoints (Qwen2.5)
TOKENS = np.array([0, 17, 250, 3, 99, 5, 180, 44, 301, 2, 77, 123, 8, 64, 200, 11])


@pytest.fixture(scope="module")
def tok():
  return H.tiny_tokenizer()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tok):
  """{arch: (hf_dir, gguf_path, config dict, hf weights, gguf-stored weights)}."""
  root = tmp_path_factory.mktemp("ckpt")
  out = {}
  for seed, arch in enumerate(("llama", "qwen2")):
    cfg = H.hf_config(arch, VOCAB)
    weights = H.random_hf_weights(cfg, seed)
    hf_dir = H.write_hf_checkpoint(root / f"{arch}_hf", cfg, weights, tok)
    gguf_path = root / f"{arch}.gguf"
    stored = H.write_gguf(gguf_path, cfg, weights, tok, arch=arch)
    out[arch] = (hf_dir, gguf_path, cfg, weights, stored)
  return out


def _assert_logits(model, cfg, weights, tol=2e-4):
  got = np.asarray(model.logits(TOKENS[None]))[0]
  ref = H.reference_logits(cfg, weights, TOKENS)
  scale = np.abs(ref).max()
  assert scale > 1.0  # the test has signal
  np.testing.assert_allclose(got, ref, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_hf_checkpoint_matches_reference(checkpoints, arch):
  hf_dir, _, cfg, weights, _ = checkpoints[arch]
  loaded = lm.load(f"hf:{hf_dir}", dtype="float32")
  c = loaded.config
  assert (c.num_layers, c.num_heads, c.num_kv_heads, c.vocab_size) == (2, 4, 2, VOCAB)
  assert c.tie_embeddings == (arch == "qwen2") and c.attention_bias == (arch == "qwen2")
  assert (c.rope_scaling is not None) == (arch == "llama")
  _assert_logits(loaded.model, cfg, weights)
  # the chat template, bos/eos policy and extra eos ids come from the checkpoint's files
  t = loaded.tokenizer
  assert t.add_bos and t.bos_id == 0 and t.eos_ids == (3, 1)
  assert t.apply_chat_template([{"role": "user", "content": "hi"}]) == (
      "<|begin_of_text|><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_hf_bfloat16_weights_and_compute(checkpoints):
  hf_dir, _, cfg, weights, _ = checkpoints["llama"]  # stored as safetensors BF16
  assert str(weights["model.norm.weight"].dtype) == "bfloat16"
  loaded = lm.load(f"hf:{hf_dir}", dtype="bfloat16")
  assert loaded.model.layers[0].wq[...].dtype == np.dtype("bfloat16")
  got = np.asarray(loaded.model.logits(TOKENS[None]))[0]
  ref = H.reference_logits(cfg, weights, TOKENS)
  # bfloat16 activations: ~3 significant digits through 2 layers
  assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()
  assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.85


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_gguf_matches_reference(checkpoints, arch):
  _, gguf_path, cfg, _, stored = checkpoints[arch]
  loaded = lm.load(f"gguf:{gguf_path}")
  c = loaded.config
  assert c.tie_embeddings == (arch == "qwen2") and c.attention_bias == (arch == "qwen2")
  assert (c.rope_freq_factors is not None) == (arch == "llama")
  _assert_logits(loaded.model, cfg, stored)


def test_gguf_tokenizer_equals_trained_tokenizer(checkpoints, tok):
  _, gguf_path, _, _, _ = checkpoints["llama"]
  t = lm.load(f"gguf:{gguf_path}").tokenizer
  texts = H.CORPUS[:4] + ["unseen wörds 9876543210 \u4e2d\u6587 \U0001F600  \t\n x",
                          "<|im_start|>user\nhi<|im_end|>"]
  for text in texts:
    assert t.encode(text) == tok.encode(text).ids, text
    assert t.decode(t.encode(text)) == text
  assert t.encode("<|im_end|>") == [3] and 3 in t.special_ids
  assert not t.add_bos and t.eos_ids == (3,)
  assert t.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=False) == (
      "<|begin_of_text|><|im_start|>user\nx<|im_end|>\n")


def test_gguf_pre_tokenizers_split_digits_as_their_families():
  """llama-bpe groups digits by three, qwen2 and smollm split them singly (tokenizer.json)."""
  split = {pre: [p for p, _ in make().pre_tokenize_str("12345 ab")]
           for pre, (_, make) in tokenizer_lib.GGUF_PRE_TOKENIZERS.items()}
  assert split["llama-bpe"] == ["123", "45", "Ġab"]
  assert split["qwen2"] == ["1", "2", "3", "4", "5", "Ġab"]
  assert split["smollm"] == ["1", "2", "3", "4", "5", "Ġab"]
  assert split["gpt-2"] == ["12345", "Ġab"]


def test_unsupported_checkpoints_are_named(checkpoints, tmp_path):
  hf_dir, gguf_path, cfg, _, _ = checkpoints["llama"]
  bad = dict(cfg, architectures=["MistralForCausalLM"])
  with pytest.raises(ValueError, match="MistralForCausalLM"):
    hf_io.config_from_hf(bad)
  with pytest.raises(ValueError, match="rope_scaling type 'yarn'"):
    hf_io.config_from_hf(dict(cfg, rope_scaling={"rope_type": "yarn", "factor": 4.0}))
  with pytest.raises(ValueError, match="use_sliding_window"):
    hf_io.config_from_hf(dict(H.hf_config("qwen2", VOCAB), use_sliding_window=True))
  with pytest.raises(ValueError, match="tokenizer.ggml.model = 'llama'"):
    tokenizer_lib.from_gguf_metadata({"tokenizer.ggml.model": "llama"})
  with pytest.raises(ValueError, match="tokenizer.ggml.pre = 'deepseek-llm'"):
    tokenizer_lib.from_gguf_metadata({"tokenizer.ggml.model": "gpt2",
                                      "tokenizer.ggml.pre": "deepseek-llm"})
  # a missing shard tensor is named
  d = tmp_path / "broken"
  d.mkdir()
  for f in hf_dir.iterdir():
    (d / f.name).write_bytes(f.read_bytes())
  index = json.loads((d / "model.safetensors.index.json").read_text())
  index["weight_map"]["model.layers.1.mlp.up_proj.weight.missing"] = index["weight_map"].pop(
      "model.layers.1.mlp.up_proj.weight")
  (d / "model.safetensors.index.json").write_text(json.dumps(index))
  with pytest.raises(ValueError, match="model.layers.1.mlp.up_proj.weight is missing"):
    lm.load(f"hf:{d}")


def test_gguf_unsupported_arch_and_truncation(checkpoints, tmp_path):
  import gguf
  path = tmp_path / "phi.gguf"
  w = gguf.GGUFWriter(str(path), "phi3")
  w.add_block_count(1)
  w.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
  w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
  with pytest.raises(ValueError, match="unsupported GGUF architecture.*'phi3'"):
    lm.load(f"gguf:{path}")
  _, gguf_path, _, _, _ = checkpoints["qwen2"]
  data = gguf_path.read_bytes()
  for cut in (len(data) - 100, len(data) // 2, 40):
    short = tmp_path / f"short{cut}.gguf"
    short.write_bytes(data[:cut])
    with pytest.raises(ValueError, match=f"{short}.*(truncated|not a readable GGUF)"):
      gguf_io.read_gguf(short)
  with pytest.raises(FileNotFoundError, match="nothing.gguf"):
    lm.load(f"gguf:{tmp_path / 'nothing.gguf'}")
