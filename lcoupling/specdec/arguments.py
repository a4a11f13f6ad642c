# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The arguments of :func:`lcoupling.specdec.generate`, checked on the host before tracing.

:func:`prepare` turns them into a hashable :class:`DecodeConfig` (everything
the compiled decoder depends on: shapes, the walk, top-k) and the array
:class:`DecodeInputs`; :func:`lcoupling.specdec.engine.decode` runs them.
``TypeError`` / ``ValueError`` name the argument for every invalid setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling import acceptance, core
from lcoupling.specdec.verification import WALK

__all__ = ["SCHEMES", "DecodeConfig", "DecodeInputs", "prepare"]

#: Schemes accepted by :func:`lcoupling.specdec.generate`.
SCHEMES = ("autoregressive",) + acceptance.SCHEMES


class DecodeConfig(NamedTuple):
  """The static configuration of one compiled decoder (hashable; from :func:`prepare`)."""

  #: the compiled walk: ``"autoregressive"``, ``"gls"`` (also ``gls_strong`` and ``daliri``),
  #: ``"specinfer"`` (also ``sps``) or ``"spectr"`` (:data:`lcoupling.specdec.verification.WALK`).
  walk: str
  num_drafts: int
  draft_length: int
  max_new_tokens: int
  top_k: int  #: 0 = dense (also used when top_k == vocab size)
  vocab_size: int
  prompt_length: int  #: the prompt buffer's size (static; the prompt's length may be traced)
  cache_length: int
  drafter_tuple: bool  #: one drafter model per row


class DecodeInputs(NamedTuple):
  """The validated array arguments of :func:`decode` (from :func:`prepare`)."""

  target: Any
  drafter: Any  #: a model, a tuple of ``num_drafts`` models, or ``None`` (autoregressive)
  prompt: jax.Array  #: ``int32[P]`` prompt buffer
  prompt_length: jax.Array  #: ``int32[]``
  temperature: jax.Array  #: ``float32[]``
  draft_temperatures: jax.Array  #: ``float32[K]``
  eos_id: jax.Array  #: ``int32[]``, ``-1`` = none
  strong: jax.Array  #: ``bool[]``: ``gls_strong``'s row mask (a runtime flag of the GLS walk)


def prepare(target, prompt, *, scheme: str, drafter=None, num_drafts: int = 1,
            draft_length: int = 4, max_new_tokens: int, temperature=1.0, top_k: int = 0,
            draft_temperatures=None, eos_id: int | None = None,
            prompt_length=None) -> tuple[DecodeConfig, DecodeInputs]:
  """:func:`lcoupling.specdec.generate`'s validation: ``(DecodeConfig, DecodeInputs)`` for
  :func:`~lcoupling.specdec.engine.decode` or a host loop of the phases. Same arguments and
  defaults as ``generate`` (less the key)."""
  if scheme not in SCHEMES:
    raise ValueError(f"unknown scheme {scheme!r}; known: {list(SCHEMES)}")
  num_drafts = _check_int(num_drafts, "num_drafts", 1)
  draft_length = _check_int(draft_length, "draft_length", 1)
  max_new_tokens = _check_int(max_new_tokens, "max_new_tokens", 1)
  vocab = _vocab_size(target, "target")
  if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
    raise ValueError(f"top_k must be an int >= 0 (0 = no top-k filtering), got {top_k!r}")
  if top_k > vocab:
    raise ValueError(f"top_k = {top_k} is larger than the vocabulary ({vocab} tokens)")
  top_k = 0 if top_k == vocab else int(top_k)  # keeping every token is the dense path
  temperature = _check_temperature(temperature, "temperature")

  prompt = jnp.asarray(prompt)
  if prompt.ndim != 1 or prompt.shape[0] < 1:
    raise ValueError(f"prompt must be a non-empty 1-D array of token ids, got shape "
                     f"{tuple(prompt.shape)}")
  if not jnp.issubdtype(prompt.dtype, jnp.integer):
    raise TypeError(f"prompt must hold integer token ids, got dtype {prompt.dtype}")
  if core._is_concrete(prompt):
    x = np.asarray(prompt)
    if x.min() < 0 or x.max() >= vocab:
      raise ValueError(f"prompt: token ids must lie in [0, {vocab}), got "
                       f"{x[(x < 0) | (x >= vocab)][:8].tolist()}")
  prompt = prompt.astype(jnp.int32)
  if prompt_length is None:
    plen = jnp.int32(prompt.shape[0])
  else:
    plen = _int_scalar(prompt_length, "prompt_length", "an integer scalar", "an int or None",
                       1, prompt.shape[0] + 1, f"[1, len(prompt) = {prompt.shape[0]}]")
  if eos_id is None:
    eos = jnp.int32(-1)
  else:  # traced, e.g. vmapped over settings: -1 = none
    eos = _int_scalar(eos_id, "eos_id", "an integer scalar or None", "an int or None", 0, vocab,
                      f"[0, {vocab})")

  is_tuple = isinstance(drafter, (tuple, list))
  if scheme == "autoregressive":
    if drafter is not None or draft_temperatures is not None:
      raise ValueError("scheme 'autoregressive' samples the target alone: drafter and "
                       "draft_temperatures must be None")
    models = [target]
  else:
    if drafter is None:
      raise ValueError(f"scheme {scheme!r} needs a drafter (one model, or a tuple of "
                       f"num_drafts models)")
    if scheme in acceptance.SINGLE_DRAFT and num_drafts != 1:
      raise ValueError(f"{scheme} is a single-draft scheme: num_drafts must be 1, got "
                       f"{num_drafts}")
    if is_tuple:
      drafter = tuple(drafter)
      if len(drafter) != num_drafts:
        raise ValueError(f"drafter is a tuple of {len(drafter)} models but num_drafts = "
                         f"{num_drafts}: pass one model per draft row (or one model)")
      if scheme == "spectr":
        raise ValueError("spectr does not support diverse drafts: drafter is a tuple of models. "
                         "SpecTr K-SEQ is defined for i.i.d. drafts; pass one drafter model (or "
                         "use 'specinfer' / 'gls').")
    for i, m in enumerate(drafter if is_tuple else (drafter,)):
      name = f"drafter[{i}]" if is_tuple else "drafter"
      if _vocab_size(m, name) != vocab:
        raise ValueError(f"{name} has a vocabulary of {_vocab_size(m, name)} tokens but the "
                         f"target has {vocab}: drafter and target must share the vocabulary")
    models = [target] + list(drafter if is_tuple else (drafter,))

  if draft_temperatures is None:
    draft_temps = jnp.full((num_drafts,), temperature, jnp.float32)
  else:
    if isinstance(draft_temperatures, (str, bytes)) or not isinstance(draft_temperatures,
                                                                       Sequence):
      raise TypeError(f"draft_temperatures must be a tuple of num_drafts temperatures, got "
                      f"{draft_temperatures!r}")
    if len(draft_temperatures) != num_drafts:
      raise ValueError(f"draft_temperatures has {len(draft_temperatures)} entries but num_drafts "
                       f"= {num_drafts}")
    draft_temps = jnp.stack([_check_temperature(t, f"draft_temperatures[{i}]")
                             for i, t in enumerate(draft_temperatures)])
    if scheme == "spectr" and core._is_concrete(draft_temps) and len(
        set(np.asarray(draft_temps).tolist())) > 1:
      raise ValueError("spectr does not support diverse drafts: draft_temperatures differ. "
                       "SpecTr K-SEQ is defined for i.i.d. drafts; use 'specinfer' or 'gls'.")

  p = int(prompt.shape[0])
  cache_length = p + max_new_tokens + draft_length + 2
  for i, m in enumerate(models):
    limit = _max_length(m)
    if limit is not None and cache_length > limit:
      what = "target" if i == 0 else "drafter"
      raise ValueError(
          f"prompt too long: len(prompt) + max_new_tokens + draft_length + 2 = {p} + "
          f"{max_new_tokens} + {draft_length} + 2 = {cache_length} positions exceed the {what}'s "
          f"context length {limit}; shorten the prompt or lower max_new_tokens")

  cfg = DecodeConfig(walk=WALK.get(scheme, scheme), num_drafts=num_drafts,
                     draft_length=draft_length, max_new_tokens=max_new_tokens, top_k=top_k,
                     vocab_size=vocab, prompt_length=p, cache_length=cache_length,
                     drafter_tuple=is_tuple)
  return cfg, DecodeInputs(target, drafter, prompt, plen, temperature, draft_temps, eos,
                           jnp.bool_(scheme == "gls_strong"))


def _check_int(value, name, minimum):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(f"{name} must be a Python int, got {value!r}")
  if value < minimum:
    raise ValueError(f"{name} must be >= {minimum}, got {value}")
  return int(value)


def _check_temperature(value, name):
  """A concrete temperature is checked on the host (finite, > 0; ``0`` is refused: there is no
  greedy speculative mode); a traced one (the caller's ``vmap`` over settings) cannot be
  inspected and passes unchecked, as :func:`generate` documents."""
  if isinstance(value, jax.core.Tracer):
    return jnp.asarray(value, jnp.float32)
  if isinstance(value, (bool, str, bytes)):
    raise ValueError(f"{name} must be a finite number > 0 for sampling, got {value!r}")
  v = np.asarray(value, np.float64)
  if v.ndim != 0 or not np.isfinite(v) or not v > 0:
    raise ValueError(f"{name} must be a finite number > 0 for sampling, got {value!r} (speculative "
                     "decoding samples; for greedy decoding use lcoupling.lm.sample(greedy=True))")
  return jnp.float32(v)


def _vocab_size(model, name) -> int:
  v = getattr(model, "vocab_size", None)
  if v is None or not callable(getattr(model, "init_cache", None)):
    raise TypeError(f"{name} must be a language model (vocab_size, init_cache, __call__; see "
                    f"lcoupling.lm.LanguageModel), got {type(model).__name__}")
  return int(v)


def _max_length(model) -> int | None:
  config = getattr(model, "config", None)
  return getattr(config, "max_position_embeddings", None)


def _int_scalar(value, name: str, traced_kind: str, concrete_kind: str, lo: int, hi: int,
                range_text: str) -> jax.Array:
  """An int32 scalar argument: a traced integer scalar (not range-checked) or a concrete int in
  ``[lo, hi)``; ``TypeError`` / ``ValueError`` naming ``name`` otherwise."""
  if isinstance(value, jax.core.Tracer):  # e.g. vmapped over padded prompts or settings
    if value.shape != () or not jnp.issubdtype(value.dtype, jnp.integer):
      raise TypeError(f"{name} must be {traced_kind}, got {value!r}")
    return value.astype(jnp.int32)
  if isinstance(value, bool) or np.ndim(value) != 0 or not np.issubdtype(
      np.asarray(value).dtype, np.integer):
    raise TypeError(f"{name} must be {concrete_kind}, got {value!r}")
  if not lo <= int(value) < hi:
    raise ValueError(f"{name} must lie in {range_text}, got {value}")
  return jnp.int32(value)
