# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""A Markov-chain language model with an enumerable sequence distribution.

:class:`MarkovLM` implements the same interface as the Llama decoder
(:class:`lcoupling.lm.LanguageModel`: ``init_cache``, cached ``__call__``,
cache-free ``logits``), but its next-token logits depend only on the previous
token: ``logits(x_t | x_{<t}) = transition_logits[x_{t-1}]``. The probability
of a continuation ``y_1..y_n`` of a prompt ending in ``x`` is therefore

.. math:: \Pr[y_{1:n}] = \prod_{t=1}^{n} P(y_t \mid y_{t-1}), \qquad y_0 = x,

after any temperature / top-k filtering of each row, which
:func:`sequence_probabilities` enumerates for small vocabularies. Exactness
tests of decoding schemes compare their empirical output distribution with it;
users build exact experiments (e.g. drafter / target pairs with a known
acceptance) the same way.

Example:
  >>> import jax, jax.numpy as jnp
  >>> t = jnp.log(jnp.array([[0.9, 0.1], [0.5, 0.5]]))
  >>> lm = MarkovLM(t)
  >>> lm.logits(jnp.array([[0, 1]])).shape
  (1, 2, 2)
  >>> probs = sequence_probabilities(lm, prompt_last=0, length=2)
  >>> probs.shape, round(float(probs[0, 1]), 3)  # P(y1 = 0, y2 = 1) = 0.9 * 0.1
  ((2, 2), 0.09)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lcoupling import core
from lcoupling.lm.model import check_tokens

__all__ = ["MarkovLM", "sequence_probabilities"]


class PreviousTokenLM(nnx.Module):
  """Base of models whose next-token logits depend on the previous token only.

  Subclasses define ``vocab_size`` and ``logits(tokens)``; the cached interface
  of the Llama decoder needs no cache for them (``init_cache`` returns ``()``,
  ``model(tokens, cache, positions)`` is ``logits(tokens)``).
  """

  def init_cache(self, batch_size: int, max_length: int):
    del batch_size, max_length
    return ()

  def __call__(self, tokens, cache, positions):
    del positions
    return self.logits(tokens), cache


class MarkovLM(PreviousTokenLM):
  """Next-token logits ``transition_logits[previous token]`` (``[V, V]``, ``-inf`` = zero mass).

  Stateless: its cache is the empty tuple, so every cache operation of
  :mod:`lcoupling.lm.cache` is a no-op on it.
  """

  def __init__(self, transition_logits):
    transition_logits = jnp.asarray(transition_logits, jnp.float32)
    if transition_logits.ndim != 2 or transition_logits.shape[0] != transition_logits.shape[1]:
      raise ValueError(f"transition_logits must have shape [V, V], got "
                       f"{tuple(transition_logits.shape)}")
    core.check_logits(transition_logits, "transition_logits", ndim=(2,))
    self.transition_logits = nnx.Param(transition_logits)

  @property
  def vocab_size(self) -> int:
    return int(self.transition_logits.shape[0])

  def logits(self, tokens):
    check_tokens(tokens, self.vocab_size)
    return jnp.take(self.transition_logits[...], jnp.asarray(tokens), axis=0)


def sequence_probabilities(model: MarkovLM, prompt_last: int, length: int, *,
                           transform=None) -> np.ndarray:
  """Exact probabilities of every continuation of ``length`` tokens (float64 ``[V] * length``).

  Args:
    model: the chain.
    prompt_last: the prompt's last token (the chain's state before ``y_1``).
    length: number of new tokens (``V ** length`` sequences).
    transform: optional ``logits [V, V] -> logits [V, V]`` applied to the
      transition rows before normalising (e.g. temperature and top-k
      filtering, :func:`lcoupling.lm.sampling.filter_logits`).
  """
  logits = model.transition_logits[...]
  if transform is not None:
    logits = transform(logits)
  p = np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=-1), np.float64)
  p /= p.sum(axis=-1, keepdims=True)
  out = p[prompt_last]
  for _ in range(length - 1):
    out = out[..., :, None] * p  # [.., V_prev] x [V_prev, V_next]
  return out
