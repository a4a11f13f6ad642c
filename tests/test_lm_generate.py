# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The plain decode loop (lcoupling.lm.generate): exact distribution, keys, greedy, eos, perplexity."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lm_helpers as H
from lcoupling.lm import LlamaConfig, MarkovLM, generate, sampling, sequence_probabilities

ALPHA = 1e-3


def _chain(seed, v):
  rng = np.random.default_rng(seed)
  return MarkovLM(jnp.asarray(rng.normal(size=(v, v)) * 1.5, jnp.float32))


def _counts(samples, v, n):
  idx = np.ravel_multi_index(np.asarray(samples).T, (v,) * n)
  return np.bincount(idx, minlength=v ** n)


@pytest.mark.parametrize("temperature, top_k, top_p", [(0.8, 3, 1.0), (1.3, 0, 0.8)])
def test_sample_distribution_is_exact(temperature, top_k, top_p, assert_chisquare):
  """Sequences of 3 tokens from a 4-token chain, against the enumerated distribution."""
  lm, v, n, num = _chain(0, 4), 4, 3, 6000
  keys = jax.random.split(jax.random.key(1), num)
  draw = jax.vmap(lambda k: generate.sample(k, lm, jnp.array([2]), max_new_tokens=n,
                                            temperature=temperature, top_k=top_k, top_p=top_p))
  tokens, lengths = draw(keys)
  assert (np.asarray(lengths) == n).all()
  probs = sequence_probabilities(
      lm, 2, n, transform=lambda l: sampling.filter_logits(l, temperature, top_k, top_p))
  assert_chisquare(_counts(tokens, v, n), probs.ravel(), ALPHA, what="sampled sequences")


def test_eos_truncates_and_pads(assert_chisquare):
  """With eos = 3 the output is the chain stopped at its first 3, then padding."""
  lm, v, n, num, eos = _chain(1, 4), 4, 3, 6000, 3
  keys = jax.random.split(jax.random.key(2), num)
  tokens, lengths = jax.vmap(lambda k: generate.sample(k, lm, jnp.array([0]), max_new_tokens=n,
                                                       eos_id=eos))(keys)
  tokens, lengths = np.asarray(tokens), np.asarray(lengths)
  for row, length in zip(tokens[:500], lengths[:500]):
    assert (row[:length - 1] != eos).all()
    assert length == n or row[length - 1] == eos
    assert (row[length:] == eos).all()  # pad_id defaults to the eos id
  p = np.asarray(jax.nn.softmax(lm.transition_logits[...], -1), np.float64)
  p /= p.sum(-1, keepdims=True)
  probs = np.zeros((v,) * n)
  for seq in itertools.product(range(v), repeat=n):
    prob, prev = 1.0, 0
    for i, s in enumerate(seq):
      prob *= p[prev, s]
      prev = s
      if s == eos:  # the rest must be padding (eos): only that completion has mass
        prob *= all(x == eos for x in seq[i + 1:])
        break
    probs[seq] = prob
  assert abs(probs.sum() - 1) < 1e-9
  assert_chisquare(_counts(tokens, v, n), probs.ravel(), ALPHA, what="eos-truncated sequences")


def test_token_t_uses_fold_in_of_t():
  """Each token is categorical(fold_in(key, t), row) -- independent of max_new_tokens."""
  lm, v = _chain(2, 50), 50
  key = jax.random.key(7)
  long, _ = generate.sample(key, lm, jnp.array([5, 9]), max_new_tokens=8, temperature=0.7,
                            top_k=20)
  short, _ = generate.sample(key, lm, jnp.array([5, 9]), max_new_tokens=5, temperature=0.7,
                             top_k=20)
  assert long[:5].tolist() == short.tolist()
  prev = 9
  for t, tok in enumerate(np.asarray(long)):
    row = sampling.filter_logits(lm.transition_logits[prev], 0.7, 20)
    assert int(jax.random.categorical(jax.random.fold_in(key, t), row)) == tok
    prev = tok
  other, _ = generate.sample(jax.random.key(8), lm, jnp.array([5, 9]), max_new_tokens=8,
                             temperature=0.7, top_k=20)
  assert other.tolist() != long.tolist()
  # sample itself is jit-able (traced key, prompt and temperature)
  jitted = jax.jit(lambda k, p, temp: generate.sample(k, lm, p, max_new_tokens=8,
                                                      temperature=temp, top_k=20))
  assert jitted(key, jnp.array([5, 9]), 0.7)[0].tolist() == long.tolist()


@pytest.fixture(scope="module")
def tiny():
  cfg = LlamaConfig(vocab_size=64, num_layers=2, hidden_size=32, intermediate_size=48,
                    num_heads=4, num_kv_heads=2, head_dim=8, rope_theta=100.0,
                    tie_embeddings=False, max_position_embeddings=16)
  return H.random_llama(cfg, seed=3)


def test_greedy_is_argmax_of_cache_free_logits(tiny):
  prompt = np.array([3, 17, 42])
  tokens, length = generate.sample(jax.random.key(0), tiny, prompt, max_new_tokens=6,
                                   greedy=True)
  assert int(length) == 6
  seq = np.r_[prompt, np.asarray(tokens)]
  logits = np.asarray(tiny.logits(jnp.asarray(seq[None])))[0]
  np.testing.assert_array_equal(logits[2:-1].argmax(-1), np.asarray(tokens))
  assert len(set(tokens.tolist())) > 1  # not a degenerate repetition


def test_perplexity_chunked_equals_full(tiny):
  ids = np.random.default_rng(0).integers(0, 64, 10)
  full = generate.token_log_probs(tiny, ids)
  chunked = generate.token_log_probs(tiny, ids, chunk_size=4)
  assert full.shape == (9,)
  np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-4)
  logits = np.asarray(tiny.logits(jnp.asarray(ids[None])), np.float64)[0]
  logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
      - logits.max(-1, keepdims=True)
  np.testing.assert_allclose(full, logp[np.arange(9), ids[1:]], atol=1e-4)
  assert generate.perplexity(tiny, ids) == pytest.approx(np.exp(-full.mean()), rel=1e-6)


def test_markov_log_probs_exact():
  lm = _chain(3, 6)
  ids = np.array([0, 5, 2, 2, 4])
  p = np.asarray(jax.nn.log_softmax(lm.transition_logits[...], -1))
  np.testing.assert_allclose(generate.token_log_probs(lm, ids), p[ids[:-1], ids[1:]], atol=1e-6)


def test_bad_input(tiny):
  key = jax.random.key(0)
  with pytest.raises(ValueError, match=r"prompt \(12 tokens\) \+ max_new_tokens \(5\) = 17 "
                                       "exceeds the model's context length 16"):
    generate.sample(key, tiny, np.arange(12), max_new_tokens=5)
  with pytest.raises(ValueError, match=r"prompt_ids: token ids must lie in \[0, 64\)"):
    generate.sample(key, tiny, np.array([1, 64]), max_new_tokens=2)
  with pytest.raises(ValueError, match="at least one token"):
    generate.sample(key, tiny, np.zeros(0, np.int32), max_new_tokens=2)
  with pytest.raises(ValueError, match="top_k = 65 is larger than the vocabulary"):
    generate.sample(key, tiny, np.array([1]), max_new_tokens=2, top_k=65)
  with pytest.raises(ValueError, match="max_new_tokens must be an int >= 1"):
    generate.sample(key, tiny, np.array([1]), max_new_tokens=0)
  with pytest.raises(ValueError, match="17 tokens, more than the model's context length 16"):
    generate.perplexity(tiny, np.zeros(17, np.int32))
  with pytest.raises(ValueError, match="at least 2 tokens"):
    generate.perplexity(tiny, np.array([1]))
