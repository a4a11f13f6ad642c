# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Static-shape key/value caches and the row operations the decoders need.

A cache is any pytree whose leaves have the layout ``[layers, batch, positions,
...]`` (:data:`BATCH_AXIS` = 1, :data:`SEQ_AXIS` = 2). :class:`KVCache` is the
Llama decoder's; a model without state (e.g. :class:`lcoupling.lm.MarkovLM`)
uses an empty pytree, on which every operation here is a no-op. So the
decoding engines handle every model the same way:

* :func:`broadcast_rows` -- one prefilled prompt row shared by K draft rows;
* :func:`take_rows` -- gather rows (reorder, select, duplicate);
* :func:`copy_window` -- after a verification pass, make every row hold row
  ``src``'s entries in a window of positions (cheaper than copying the whole
  cache: only the freshly written positions differ between rows).

Example:
  >>> import jax.numpy as jnp
  >>> c = KVCache(jnp.arange(2 * 1 * 4 * 1 * 1.).reshape(2, 1, 4, 1, 1),
  ...             jnp.zeros((2, 1, 4, 1, 1)))
  >>> broadcast_rows(c, 3).k.shape
  (2, 3, 4, 1, 1)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["KVCache", "BATCH_AXIS", "SEQ_AXIS", "broadcast_rows", "take_rows", "copy_window"]

BATCH_AXIS = 1
SEQ_AXIS = 2


class KVCache(NamedTuple):
  """Keys and values of every layer: ``k, v [layers, batch, max_length, kv_heads, head_dim]``."""

  k: jax.Array
  v: jax.Array


def broadcast_rows(cache: Any, batch_size: int) -> Any:
  """Repeats a one-row cache to ``batch_size`` rows."""

  def one(x):
    if x.shape[BATCH_AXIS] != 1:
      raise ValueError(f"broadcast_rows needs a one-row cache, got batch {x.shape[BATCH_AXIS]}")
    shape = x.shape[:BATCH_AXIS] + (batch_size,) + x.shape[BATCH_AXIS + 1:]
    return jnp.broadcast_to(x, shape)

  return jax.tree.map(one, cache)


def take_rows(cache: Any, rows: jax.Array) -> Any:
  """The cache whose row ``i`` is the input's row ``rows[i]``."""
  return jax.tree.map(lambda x: jnp.take(x, rows, axis=BATCH_AXIS), cache)


def copy_window(cache: Any, src_row: jax.Array, start: jax.Array, size: int) -> Any:
  """Every row gets row ``src_row``'s entries at positions ``start .. start + size - 1``.

  ``size`` is static, ``src_row`` and ``start`` may be traced. The window must
  lie inside the cache (``0 <= start <= max_length - size``); XLA would clamp
  it otherwise, so callers size their caches with that slack.
  """

  def one(x):
    window = jax.lax.dynamic_slice_in_dim(x, start, size, axis=SEQ_AXIS)
    src = jax.lax.dynamic_index_in_dim(window, src_row, axis=BATCH_AXIS, keepdims=True)
    return jax.lax.dynamic_update_slice_in_dim(x, jnp.broadcast_to(src, window.shape), start,
                                               axis=SEQ_AXIS)

  return jax.tree.map(one, cache)
