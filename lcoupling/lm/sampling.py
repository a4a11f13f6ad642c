# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Logits transforms for sampling: temperature, top-k, top-p (nucleus), greedy.

Pure, jit-able functions on logits ``[..., V]`` (the last axis is the
vocabulary). A filter returns logits with ``-inf`` outside the kept set, so the
result is itself a distribution in logit form that any sampler (or any race of
:mod:`lcoupling.core`) can use. :func:`filter_logits` composes them in the
usual order: temperature, then top-k, then top-p.

:func:`top_k_support` is the sparse form of top-k: the ids and the logits of
the ``k`` kept tokens, so that a sampler draws its random numbers only on the
support (:func:`lcoupling.core.race_times_at`).

Ties at the top-k threshold: exactly ``k`` tokens are kept, the lower ids
first (the order of :func:`jax.lax.top_k`); :func:`top_k_filter` and
:func:`top_k_support` keep the same set.

Example:
  >>> import jax.numpy as jnp
  >>> logits = jnp.log(jnp.array([0.5, 0.3, 0.15, 0.05]))
  >>> top_k_filter(logits, 2)
  Array([-0.6931472, -1.2039728,       -inf,       -inf], dtype=float32)
  >>> ids, vals = top_k_support(logits, 2)
  >>> ids
  Array([0, 1], dtype=int32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["apply_temperature", "top_k_filter", "top_k_support", "top_p_filter",
           "filter_logits", "greedy", "check_sampling_args"]


def check_sampling_args(temperature=1.0, top_k: int = 0, top_p: float = 1.0,
                        vocab_size: int | None = None) -> None:
  """Raises ``ValueError`` naming the argument for an invalid sampling setting.

  The check runs on the host: call it (or an API that calls it, such as
  :func:`lcoupling.lm.sample`) with concrete values. A temperature that is a
  JAX tracer (inside a ``jit`` / ``vmap`` of the caller's) cannot be inspected
  and is *not* checked: validate it before tracing.

  ``temperature = 0`` is refused (the limit is greedy decoding, which is a
  separate switch: ``greedy=True``, ``--greedy``), as are negative, NaN and
  infinite temperatures, ``top_k < 0`` or larger than the vocabulary, and
  ``top_p`` outside ``(0, 1]``.

  Args:
    temperature: a number > 0 (finite); a scalar array is accepted.
    top_k: an int >= 0 (0 = keep every token).
    top_p: a number in ``(0, 1]`` (1 = no nucleus filtering).
    vocab_size: if given, ``top_k`` must not exceed it.

  Example:
    >>> check_sampling_args(temperature=0)
    Traceback (most recent call last):
    ...
    ValueError: temperature must be a finite number > 0, got 0.0 (for greedy decoding use greedy=True / --greedy instead of temperature 0)
  """
  if not isinstance(temperature, jax.core.Tracer):
    if isinstance(temperature, (bool, str, bytes)) or np.ndim(temperature) != 0:
      raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    t = float(np.asarray(temperature, np.float64))
    if not (np.isfinite(t) and t > 0):
      hint = (" (for greedy decoding use greedy=True / --greedy instead of temperature 0)"
              if t == 0 else "")
      raise ValueError(f"temperature must be a finite number > 0, got {t}{hint}")
  if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
    raise ValueError(f"top_k must be an int >= 0 (0 = no top-k filtering), got {top_k!r}")
  if vocab_size is not None and top_k > vocab_size:
    raise ValueError(f"top_k = {top_k} is larger than the vocabulary ({vocab_size} tokens)")
  if (isinstance(top_p, (bool, str, bytes)) or isinstance(top_p, jax.core.Tracer)
      or np.ndim(top_p) != 0 or not 0 < float(top_p) <= 1):
    raise ValueError(f"top_p must be a number in (0, 1] (1 = no nucleus filtering), got {top_p!r}")


def apply_temperature(logits: jax.Array, temperature) -> jax.Array:
  """``logits / temperature`` (``-inf`` stays ``-inf``)."""
  return jnp.asarray(logits, jnp.float32) / jnp.asarray(temperature, jnp.float32)


def top_k_filter(logits: jax.Array, k: int) -> jax.Array:
  """Keeps the ``k`` largest logits of each row (static ``k``; 0 keeps all)."""
  if k == 0 or k >= logits.shape[-1]:
    return logits
  ids, _ = top_k_support(logits, k)
  keep = jnp.zeros(logits.shape, bool)
  keep = jnp.put_along_axis(keep, ids, True, axis=-1, inplace=False)
  return jnp.where(keep, logits, -jnp.inf)


def top_k_support(logits: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """``(ids int32[..., k], logits[..., k])`` of the ``k`` largest logits, best first."""
  vals, ids = jax.lax.top_k(logits, k)
  return ids.astype(jnp.int32), vals


def top_p_filter(logits: jax.Array, p: float) -> jax.Array:
  """Keeps the smallest set of most likely tokens whose mass reaches ``p`` (nucleus)."""
  if p >= 1.0:
    return logits
  order = jnp.argsort(-logits, axis=-1)
  sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
  probs = jax.nn.softmax(sorted_logits, axis=-1)
  mass_before = jnp.cumsum(probs, axis=-1) - probs
  keep_sorted = mass_before < p  # the top token is always kept
  keep = jnp.put_along_axis(jnp.zeros(logits.shape, bool), order, keep_sorted, axis=-1,
                            inplace=False)
  return jnp.where(keep, logits, -jnp.inf)


def filter_logits(logits: jax.Array, temperature=1.0, top_k: int = 0, top_p: float = 1.0
                  ) -> jax.Array:
  """Temperature, then top-k, then top-p: the distribution a sampler draws from."""
  return top_p_filter(top_k_filter(apply_temperature(logits, temperature), top_k), top_p)


def greedy(logits: jax.Array) -> jax.Array:
  """The most likely token of each row (``int32``; ties go to the lowest id)."""
  return jnp.argmax(logits, axis=-1).astype(jnp.int32)
