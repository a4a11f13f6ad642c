# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Plain autoregressive sampling and teacher-forced perplexity.

:func:`sample` is the reference decoder that speculative decoding must match
in distribution: prefill the prompt once, then a :func:`jax.lax.while_loop`
of one-token steps over a static-shape KV cache, stopping at an
end-of-sequence token or after ``max_new_tokens``. The token at output
position ``t`` is drawn with the key ``fold_in(key, t)``, so a sample
depends on the key and the position only, never on how many random numbers
were drawn before (greedy decoding uses no randomness). :func:`prefill` and
:func:`decode` are its two halves (the CLI times them separately).

:func:`token_log_probs` / :func:`perplexity` score a text teacher-forced:

.. math:: \mathrm{PPL}(x_{1:T}) = \exp\Bigl(-\frac{1}{T-1}\sum_{t=2}^{T}\log p(x_t\mid x_{<t})\Bigr),

cache-free when the text fits in one chunk, otherwise chunk by chunk through
the KV cache (same values, bounded memory).

Example (a Markov chain: the next token's distribution depends on the previous one):
  >>> import jax, jax.numpy as jnp
  >>> from lcoupling.lm import MarkovLM
  >>> lm = MarkovLM(jnp.log(jnp.array([[0.1, 0.9], [0.9, 0.1]])))
  >>> tokens, length = sample(jax.random.key(0), lm, jnp.array([0]), max_new_tokens=4,
  ...                         greedy=True)
  >>> tokens.tolist(), int(length)
  ([1, 0, 1, 0], 4)
  >>> round(perplexity(lm, jnp.array([0, 1, 0, 1])), 4)  # exp(-log 0.9)
  1.1111
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling.lm import sampling
from lcoupling.lm.model import check_tokens

__all__ = ["sample", "prefill", "decode", "token_log_probs", "perplexity", "check_length"]


def _context_length(model) -> int | None:
  config = getattr(model, "config", None)
  return getattr(config, "max_position_embeddings", None)


def check_length(model, prompt_length: int, max_new_tokens: int) -> int:
  """Cache length ``prompt_length + max_new_tokens``; ``ValueError`` if it exceeds the context."""
  if prompt_length < 1:
    raise ValueError("the prompt must hold at least one token (e.g. the bos token)")
  if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or (
      max_new_tokens < 1):
    raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
  total = int(prompt_length) + int(max_new_tokens)
  context = _context_length(model)
  if context is not None and total > context:
    raise ValueError(f"prompt ({prompt_length} tokens) + max_new_tokens ({max_new_tokens}) = "
                     f"{total} exceeds the model's context length {context}; shorten the prompt "
                     "or lower max_new_tokens")
  return total


def _eos_tuple(eos_id) -> tuple[int, ...]:
  if eos_id is None:
    return ()
  if isinstance(eos_id, (int, np.integer)):
    return (int(eos_id),)
  return tuple(int(e) for e in eos_id)


def _check_prompt(model, prompt_ids):
  if prompt_ids.ndim != 1:
    raise ValueError(f"prompt_ids must be 1-D int token ids [P], got shape {prompt_ids.shape}")
  check_tokens(prompt_ids, model.vocab_size, "prompt_ids")


@functools.partial(jax.jit, static_argnames=("max_length",))
def prefill(model, prompt_ids: jax.Array, *, max_length: int):
  """Runs the prompt ``int32[P]`` through a fresh cache of ``max_length`` positions.

  Returns:
    ``(logits float32[V], cache)``: the next-token logits after the prompt.
  """
  _check_prompt(model, prompt_ids)
  cache = model.init_cache(1, max_length)
  logits, cache = model(prompt_ids[None].astype(jnp.int32), cache, jnp.zeros((1,), jnp.int32))
  return logits[0, -1], cache


@functools.partial(jax.jit, static_argnames=("max_new_tokens", "top_k", "top_p", "greedy",
                                             "eos_id", "pad_id"))
def decode(key: jax.Array, model, logits: jax.Array, cache, prompt_length, *,
           max_new_tokens: int, temperature=1.0, top_k: int = 0, top_p: float = 1.0,
           greedy: bool = False, eos_id: int | Sequence[int] | None = None,
           pad_id: int | None = None):
  """Samples ``max_new_tokens`` tokens after a :func:`prefill` (see :func:`sample`).

  ``temperature`` is a traced argument here (one compilation for every
  value), so it cannot be checked inside: :func:`sample` and the command line
  check it on the host (:func:`lcoupling.lm.sampling.check_sampling_args`)
  before calling this; do the same when calling it directly.
  """
  eos = _eos_tuple(eos_id)
  pad = (eos[0] if eos else 0) if pad_id is None else pad_id
  sampling.check_sampling_args(temperature, top_k, top_p, model.vocab_size)

  def pick(t, row):
    if greedy:
      return sampling.greedy(row)
    filtered = sampling.filter_logits(row, temperature, top_k, top_p)
    return jax.random.categorical(jax.random.fold_in(key, t), filtered).astype(jnp.int32)

  def is_eos(tok):
    return jnp.any(tok == jnp.asarray(eos, jnp.int32)) if eos else jnp.bool_(False)

  first = pick(0, logits)
  tokens = jnp.full((max_new_tokens,), pad, jnp.int32).at[0].set(first)

  def cond(state):
    t, _, _, _, done = state
    return (t < max_new_tokens) & ~done

  def body(state):
    t, tok, cache, tokens, _ = state
    pos = jnp.reshape(prompt_length + t - 1, (1,)).astype(jnp.int32)
    step_logits, cache = model(tok.reshape(1, 1), cache, pos)
    tok = pick(t, step_logits[0, 0])
    return t + 1, tok, cache, tokens.at[t].set(tok), is_eos(tok)

  t, _, _, tokens, _ = jax.lax.while_loop(cond, body,
                                          (jnp.int32(1), first, cache, tokens, is_eos(first)))
  return tokens, t


def sample(key: jax.Array, model, prompt_ids, *, max_new_tokens: int, temperature=1.0,
           top_k: int = 0, top_p: float = 1.0, greedy: bool = False,
           eos_id: int | Sequence[int] | None = None, pad_id: int | None = None
           ) -> tuple[jax.Array, jax.Array]:
  """Samples a continuation of one prompt (temperature / top-k / top-p, or greedy).

  Args:
    key: a JAX PRNG key; output position ``t`` uses ``fold_in(key, t)``.
    model: a :class:`lcoupling.lm.LanguageModel`.
    prompt_ids: ``int[P]`` token ids (``P >= 1``).
    max_new_tokens: static number of tokens to produce.
    temperature, top_k, top_p: the sampling distribution
      (:func:`lcoupling.lm.sampling.filter_logits`); ignored when ``greedy`` (but
      still validated). ``temperature`` must be finite and > 0: ``0`` is refused,
      greedy decoding is ``greedy=True``. The values are checked on the host when
      they are concrete (Python numbers, NumPy or concrete JAX scalars); a
      temperature traced by the caller's own ``jit`` / ``vmap`` cannot be
      inspected and is not checked, so validate it before tracing
      (:func:`lcoupling.lm.sampling.check_sampling_args`).
    greedy: take the most likely token at every step.
    eos_id: an id or ids that end the sequence (included in the output).
    pad_id: fills the positions after the end (default: the first eos id, else 0).

  Returns:
    ``(tokens int32[max_new_tokens], length int32)``: ``tokens[:length]`` is
    the continuation; the rest is ``pad_id``.

  Raises:
    ValueError: prompt plus ``max_new_tokens`` longer than the model's context,
      token ids outside the vocabulary, an invalid sampling setting (temperature
      not a finite number > 0, top_k < 0 or above the vocabulary, top_p outside
      ``(0, 1]``), before anything is traced.
  """
  sampling.check_sampling_args(temperature, top_k, top_p, model.vocab_size)
  prompt_ids = jnp.asarray(prompt_ids)
  _check_prompt(model, prompt_ids)
  max_length = check_length(model, prompt_ids.shape[0], max_new_tokens)
  logits, cache = prefill(model, prompt_ids, max_length=max_length)
  return decode(key, model, logits, cache, prompt_ids.shape[0], max_new_tokens=max_new_tokens,
                temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                eos_id=_eos_tuple(eos_id) or None, pad_id=pad_id)


@jax.jit
def _chunk_log_probs(model, cache, chunk, start, targets):
  logits, cache = model(chunk[None], cache, start[None])
  logp = jax.nn.log_softmax(logits[0], axis=-1)
  return jnp.take_along_axis(logp, targets[:, None], axis=-1)[:, 0], cache


@jax.jit
def _full_log_probs(model, token_ids):
  logp = jax.nn.log_softmax(model.logits(token_ids[None])[0, :-1], axis=-1)
  return jnp.take_along_axis(logp, token_ids[1:, None], axis=-1)[:, 0]


def token_log_probs(model, token_ids, *, chunk_size: int = 1024) -> np.ndarray:
  """``log p(x_t | x_<t)`` for ``t = 1..T-1`` of ``token_ids int[T]`` (float32 ``[T-1]``).

  Args:
    model: a :class:`lcoupling.lm.LanguageModel`.
    token_ids: the text's ids (``T >= 2``; include the bos token if the model expects one).
    chunk_size: texts longer than this are fed in chunks of this many tokens
      through the KV cache (one compilation for all chunks).
  """
  ids = np.asarray(token_ids)
  if ids.ndim != 1 or ids.shape[0] < 2:
    raise ValueError(f"token_ids must be 1-D with at least 2 tokens, got shape {ids.shape}")
  check_tokens(ids, model.vocab_size, "token_ids")
  t = ids.shape[0]
  context = _context_length(model)
  if context is not None and t > context:
    raise ValueError(f"the text has {t} tokens, more than the model's context length {context}")
  ids = ids.astype(np.int32)
  if t <= chunk_size:
    return np.asarray(_full_log_probs(model, jnp.asarray(ids)))
  n_chunks = -(-t // chunk_size)
  padded = np.zeros(n_chunks * chunk_size + 1, np.int32)
  padded[:t] = ids
  cache = model.init_cache(1, n_chunks * chunk_size)
  out = []
  for i in range(n_chunks):
    lo = i * chunk_size
    lp, cache = _chunk_log_probs(model, cache, jnp.asarray(padded[lo:lo + chunk_size]),
                                 jnp.int32(lo), jnp.asarray(padded[lo + 1:lo + chunk_size + 1]))
    out.append(np.asarray(lp))
  return np.concatenate(out)[:t - 1]


def perplexity(model, token_ids, *, chunk_size: int = 1024) -> float:
  """Teacher-forced perplexity ``exp(-mean log p(x_t | x_<t))`` (module docstring)."""
  return float(np.exp(-np.mean(token_log_probs(model, token_ids, chunk_size=chunk_size),
                               dtype=np.float64)))
