# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""SmolLM2-135M-Instruct end to end: chat answer, perplexity, KV cache, tokenizer.

The model (``make lm``) is loaded once per session (conftest ``smollm2``);
these tests skip, saying so, only when it has not been fetched.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcoupling.lm import build_llama, generate

#: A fixed English paragraph (written for this test).
PARAGRAPH = (
    "The water cycle describes how water moves between the oceans, the atmosphere and the land. "
    "Heat from the sun evaporates water from the surface of the sea, and the vapour rises, cools "
    "and condenses into clouds. When the droplets grow heavy enough, they fall back to the ground "
    "as rain or snow. Some of this water flows into rivers and lakes, some soaks into the soil, "
    "and some is taken up by plants. About 97 percent of the water on Earth is salt water in the "
    "oceans, and only 3 percent is fresh water; most of that is frozen in ice caps and glaciers.")

#: Perplexity threshold. Measured 6.39 (float32, 122 tokens) on the 2-core CPU; float32
#: reduction order on other machines moves it by far less than 1 %. Broken variants measured
#: on the same text: rotary base 10 000 instead of 100 000 -> 7.03; q/k rows left in llama.cpp's
#: permuted layout -> 32; layers in a shuffled order -> 2e6; random initialisation -> 6e4.
#: A tight threshold (+3 %) is what separates the first of these.
PPL_THRESHOLD = 6.6

LAYER_PARAMS = ("attn_norm", "wq", "wk", "wv", "wo", "mlp_norm", "w_gate", "w_up", "w_down")


def _params(model):
  params = {n: np.asarray(a) for n, a in model.layer_params().items()}
  assert set(params) == set(LAYER_PARAMS)
  return dict(params, **{n: np.asarray(getattr(model, n)[...]) for n in ("embed", "final_norm")})


def test_chat_answer_contains_paris(smollm2):
  model, tok = smollm2.model, smollm2.tokenizer
  ids = tok.encode_chat([{"role": "user", "content": "What is the capital of France?"}])
  tokens, length = generate.sample(jax.random.key(0), model, ids, max_new_tokens=12,
                                   greedy=True, eos_id=tok.eos_ids)
  n = int(length)
  reply = tok.decode(np.asarray(tokens[:n]), skip_special_tokens=True)
  assert "Paris" in reply, reply
  assert n < 12 and int(tokens[n - 1]) == tok.eos_id  # it stopped at <|im_end|>


def test_perplexity_of_english_paragraph(smollm2):
  ids = smollm2.tokenizer.encode(PARAGRAPH)
  assert len(ids) == 122
  ppl = generate.perplexity(smollm2.model, ids)
  assert ppl < PPL_THRESHOLD, ppl
  # the same computation with broken weights is far above it (one compilation: same shapes)
  params = _params(smollm2.model)
  perm = np.random.default_rng(0).permutation(smollm2.config.num_layers)
  shuffled = build_llama(smollm2.config, {n: (a[perm] if n in LAYER_PARAMS else a)
                                          for n, a in params.items()})
  assert generate.perplexity(shuffled, ids) > 100 * PPL_THRESHOLD
  # random weights as Llama's initialisation draws them, N(0, 0.02^2) with unit norms (drawn
  # in NumPy: an eager Llama(config, rngs) takes 4-9 s on 2 cores for 135 M parameters)
  rng = np.random.default_rng(0)
  random_init = build_llama(smollm2.config, {
      n: np.ones_like(a) if n.endswith("norm") else
      (0.02 * rng.standard_normal(a.shape, np.float32)).astype(a.dtype)
      for n, a in params.items()})
  assert generate.perplexity(random_init, ids) > 1000 * PPL_THRESHOLD


def test_kv_cache_equals_cache_free(smollm2):
  """Two right-padded rows of different lengths, prefill then two more tokens each.

  The model's first 4 of 30 blocks, with their real weights: every block reads and writes its
  cache by the same code, and 4 blocks compile in a fraction of the time of 30."""
  tok, params = smollm2.tokenizer, _params(smollm2.model)
  model = build_llama(smollm2.config.replace(num_layers=4),
                      {n: a[:4] if n in LAYER_PARAMS else a for n, a in params.items()})
  a = tok.encode("The capital of France is Paris, and the capital of Italy is")
  b = tok.encode("def fibonacci(n):\n    return n")
  seqs = [a[:10], b[:10]]
  assert len(b) >= 7
  lengths = np.array([8, 5])
  batch = np.zeros((2, 8), np.int32)
  for r in range(2):
    batch[r, :lengths[r]] = seqs[r][:lengths[r]]
  full = np.asarray(jax.jit(lambda m, t: m.logits(t))(model, jnp.asarray(
      [s + [0] * (10 - len(s)) for s in seqs])), np.float64)
  call = jax.jit(lambda m, t, c, p: m(t, c, p))
  cache = model.init_cache(2, 16)
  logits, cache = call(model, jnp.asarray(batch), cache, jnp.zeros(2, jnp.int32))
  step = np.stack([seqs[r][lengths[r]:lengths[r] + 2] for r in range(2)])
  logits2, _ = call(model, jnp.asarray(step), cache, jnp.asarray(lengths, jnp.int32))
  tol = 2e-4 * np.abs(full).max()
  for r in range(2):
    n = lengths[r]
    np.testing.assert_allclose(np.asarray(logits[r, :n]), full[r, :n], rtol=0, atol=tol)
    np.testing.assert_allclose(np.asarray(logits2[r]), full[r, n:n + 2], rtol=0, atol=tol)


TEXTS = ["Hello, world!", "In 1969, 12345 people paid 678.90 dollars for 2024 tickets.",
         "def f(x):\n    return x ** 2  # square\n\n\n\tprint(f(3))",
         "naïve café, Straße, Ελληνικά, 中文, 日本語, emoji \U0001F680\U0001F600",
         "   leading and    multiple   spaces   \n\n\n  trailing  ", "a\r\nb\u00a0c\u200bd"]


def test_tokenizer_round_trip_and_special_tokens(smollm2):
  tok = smollm2.tokenizer
  for text in TEXTS:
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(0 <= i < tok.vocab_size for i in ids)
  assert tok.encode("2024") == [tok.token_to_id(c) for c in "2024"]  # single digits
  assert not tok.add_bos and tok.bos_id == 1 and tok.eos_ids == (2,)
  controls = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<file_sep>",
              "<jupyter_code>", "<empty_output>"]
  for t in controls:
    assert tok.encode(t) == [tok.token_to_id(t)] and tok.token_to_id(t) in tok.special_ids
  assert tok.encode("x<|im_end|>y") == [tok.encode("x")[0], 2, tok.encode("y")[0]]
  assert tok.decode([1, 2], skip_special_tokens=True) == ""


def test_chat_template(smollm2):
  tok = smollm2.tokenizer
  system = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
            "Hugging Face<|im_end|>\n")
  assert tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}]
                                 ) == (system + "<|im_start|>user\nWhat is the capital of "
                                       "France?<|im_end|>\n<|im_start|>assistant\n")
  conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
          {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]
  assert tok.apply_chat_template(conv, add_generation_prompt=False) == (
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
      "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n")
  ids = tok.encode_chat(conv[1:2])
  assert ids[0] == 1 and ids.count(1) == 3 and ids.count(2) == 2  # im_start / im_end as single ids
  with pytest.raises(ValueError, match=r"messages\[0\] must be a mapping with 'role'"):
    tok.apply_chat_template([{"content": "x"}])
