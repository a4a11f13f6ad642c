# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Sequence-level multi-draft speculative decoding with exact output distribution.

One entry point, :func:`generate`, runs every scheme of
:mod:`lcoupling.verifiers` at sequence level (plus ``"autoregressive"``, plain
target sampling, the reference). It is pure and key-first, has static shapes
(the block loop is a :func:`jax.lax.while_loop`), and works under
:func:`jax.jit` and :func:`jax.vmap` over the key, so thousands of seeds run as
one batch.

Decoding a block
----------------
With ``n`` tokens emitted, the last committed token sits at absolute position
``P + n - 1`` (``P`` = prompt length). A block

1. **drafts** ``K`` rows of ``L`` tokens: ``X[k]_j`` is the winner of the
   exponential race of row ``k`` at output index ``n + j - 1`` on the
   drafter's filtered distribution ``p^(j,k)`` (temperature, then top-k on the
   drafter's own logits). The first drafter call of a block feeds the last
   ``L + 1`` committed tokens (positions ``P + n - 1 - L .. P + n - 1``), which
   rewrites every drafter-cache position that may hold a rejected draft, so
   drafter caches never need a window copy (and a tuple of different drafters
   works the same way); these tokens are the same in every row, so one drafter
   computes them for row 0 alone and gives its cache to every row;
2. runs **one target pass** over ``K`` rows ``[last, X[k]_1 .. X[k]_L]``,
   giving ``q^(j,k)`` for ``j = 1 .. L + 1``;
3. **walks** ``j = 1 .. L`` with an alive mask ``A`` (the drafts still
   consistent with the emitted prefix; any subset of the rows):

   * ``gls``: ``Y_j = argmin_i min_{k in A} S[n+j-1, k, i] / q^(j)_i``; the
     rows with ``X[k]_j != Y_j`` die;
   * ``gls_strong``: the same, but the minimum runs over all ``K`` rows at
     every position (only the alive drafts count for acceptance);
   * ``specinfer``, ``spectr``, ``sps``: the token-level rule of
     :mod:`lcoupling.verifiers` applied to the alive drafts in their original
     order (SpecTr with ``K' = |A|``, its :math:`\rho^*` computed for the
     dynamic ``K'``); an accepted token keeps every alive draft carrying it;
     if all are rejected the residual sample is emitted and the block stops;
   * ``daliri`` = ``gls`` and ``sps`` = ``specinfer`` with ``K = 1``.

   If all ``L`` positions are accepted, the **bonus** token
   ``Y_{L+1} = argmin_i min_{k in A} S[n+L, k, i] / q^(L+1)_i`` is emitted
   (minimum over all rows for ``gls_strong``), for every scheme;
4. **commits**: ``a`` tokens (accepted + 1) are written to the output, every
   row of the target cache gets the surviving row's entries in the window
   ``P + n - 1 .. P + n + L - 1`` (:func:`lcoupling.lm.cache.copy_window`), and
   ``n += a`` (cut after ``eos_id`` and at ``max_new_tokens``).

``autoregressive`` decodes one token per target call with the race of
``gls_strong``: ``Y_t = argmin_i min_{k < K} S[t, k, i] / q_i`` with
``K = num_drafts``.

Randomness is addressed by (key, output index, draft row), never by block or
call order; :mod:`lcoupling.specdec.verification` states the layout and why
every scheme's output is exact for any drafter.

Reading order: :func:`generate` (its arguments checked by
:func:`lcoupling.specdec.arguments.prepare`) -> :func:`decode` (prefill, a ``while_loop``
of blocks) -> :func:`block` = :func:`draft_phase` -> :func:`target_phase` ->
:func:`verify_phase` (the walk, then :func:`commit`). The phases take a
static :class:`DecodeConfig` and are public, so that host loops
(:func:`lcoupling.specdec.metrics.timed_generate`, benchmarks) time them.

Invariances
-----------
* ``gls_strong`` makes the emitted token at ``t`` the race winner of
  ``min_{k<K} S[t, k, .] / q`` -- a function of the key, the prefix and the
  target only: it reproduces ``autoregressive`` with the same key and
  ``num_drafts`` token for token, for any drafter, draft temperatures and
  ``L`` (*strong* drafter invariance; bit for bit where the target's logits in
  the verification pass equal those of the one-token decode, e.g. on
  :class:`lcoupling.lm.MarkovLM`).
* ``gls`` / ``daliri`` never read a draft probability: given the same draft
  token sequences the output is the same whatever drafter produced them
  (*conditional* invariance, :func:`verify_block`).
* ``specinfer`` / ``spectr`` / ``sps`` read the drafter's probabilities (of
  the drafts, and at the target's support for the residuals): neither
  invariance holds.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from lcoupling.lm import MarkovLM
  >>> target = MarkovLM(jnp.log(jnp.array([[.6, .3, .1], [.2, .5, .3], [.1, .1, .8]])))
  >>> drafter = MarkovLM(jnp.log(jnp.array([[.5, .3, .2], [.3, .4, .3], [.2, .2, .6]])))
  >>> out = generate(jax.random.key(0), target, jnp.array([0, 1]), scheme="gls_strong",
  ...                drafter=drafter, num_drafts=4, draft_length=3, max_new_tokens=8)
  >>> out.tokens.shape, int(out.length), int(out.num_target_calls) < 8
  ((8,), 8, True)
  >>> ref = generate(jax.random.key(0), target, jnp.array([0, 1]), scheme="autoregressive",
  ...                num_drafts=4, max_new_tokens=8)
  >>> bool((ref.tokens == out.tokens).all())  # strong invariance: the target's own sample
  True
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lcoupling import acceptance, core
from lcoupling.lm import cache as lm_cache
from lcoupling.specdec.arguments import SCHEMES, DecodeConfig, DecodeInputs, prepare
from lcoupling.specdec.verification import (Block, BlockKeys, Support, block_keys, check_key,
                                            race_times, support, verify_block, walk)

__all__ = ["SCHEMES", "PAD_ID", "Generation", "Support", "Block", "generate", "verify_block",
           "support", "DecodeConfig", "DecodeInputs", "State", "prepare", "decode", "keys_of",
           "block", "draft_phase", "target_phase", "verify_phase", "commit", "autoregressive_step",
           "prefill", "finish"]

#: Value of ``Generation.tokens`` after ``length`` (and of ``accepted_lengths`` after
#: ``num_blocks``).
PAD_ID = -1


class Generation(NamedTuple):
  """Output of :func:`generate` (fields gain a leading axis under ``vmap``)."""

  #: ``int32[max_new_tokens]``: the generated tokens, :data:`PAD_ID` after ``length``.
  tokens: jax.Array
  #: ``int32[]``: number of generated tokens (up to and including ``eos_id``).
  length: jax.Array
  #: ``int32[]``: blocks run (for ``autoregressive`` every token is a block without drafts).
  num_blocks: jax.Array
  #: ``int32[]``: target forward passes after the prefill (one per block; one per token for
  #: ``autoregressive``).
  num_target_calls: jax.Array
  #: ``int32[]``: sequential drafter steps (``draft_length`` per block; 0 for ``autoregressive``).
  num_drafter_calls: jax.Array
  #: ``int32[max_new_tokens]``: accepted draft tokens of each block (``0 .. L``, the bonus not
  #: counted), :data:`PAD_ID` after ``num_blocks``. A block emits ``accepted + 1`` tokens
  #: unless ``eos_id`` or ``max_new_tokens`` cuts it.
  accepted_lengths: jax.Array
  #: ``int32[L]``: blocks that verified draft position ``j`` (all earlier positions accepted).
  position_reached: jax.Array
  #: ``int32[L]``: blocks that accepted draft position ``j``.
  position_accepted: jax.Array


def generate(key: jax.Array, target, prompt, *, scheme: str, drafter=None, num_drafts: int = 1,
             draft_length: int = 4, max_new_tokens: int, temperature=1.0, top_k: int = 0,
             draft_temperatures=None, eos_id: int | None = None,
             prompt_length=None) -> Generation:
  """Samples ``max_new_tokens`` tokens from ``target`` after ``prompt`` (see the module docstring).

  The output is an exact sample of the target's autoregressive distribution
  after temperature and top-k filtering, for every scheme and any drafter.

  Args:
    key: a threefry PRNG key (``jax.random.key``, the default; raw ``uint32[2]`` keys are
      accepted); all randomness is addressed by (key, output index, draft row).
    target: a language model (:class:`lcoupling.lm.LanguageModel`).
    prompt: ``int[P]`` token ids, ``P >= 1``; with ``prompt_length``, a buffer whose first
      ``prompt_length`` entries are the prompt (the rest any valid ids: padding).
    scheme: one of :data:`SCHEMES`.
    drafter: one model (``num_drafts`` i.i.d. rows) or a tuple of ``num_drafts`` models (one
      row each); ``None`` for ``"autoregressive"``.
    num_drafts: ``K``; for ``"autoregressive"`` the number of race rows whose minimum each
      token's race uses (so that it equals ``gls_strong`` with the same ``K``).
    draft_length: ``L``, draft tokens per block.
    max_new_tokens: output length (static); generation also stops after ``eos_id``.
    temperature: target temperature (the drafts' too unless ``draft_temperatures``): a finite
      number > 0 (``0``, negative, NaN and infinite values are refused: there is no greedy
      mode). Concrete values (Python / NumPy numbers, concrete JAX scalars) are checked on the
      host before anything is traced; a temperature traced by the caller's own ``jit`` /
      ``vmap`` (e.g. over settings) cannot be inspected and is *not* checked -- validate it
      before tracing (:func:`lcoupling.lm.sampling.check_sampling_args`). The same holds for
      ``draft_temperatures``.
    top_k: keep the ``top_k`` most likely tokens (``0`` = all); applied to the target's and
      to each drafter's own logits. Randomness is then generated on the support only.
    draft_temperatures: optional tuple of ``K`` drafter temperatures ("diverse" drafts;
      ``spectr`` refuses different values -- which it cannot check when they are traced).
    eos_id: optional end-of-sequence id; tokens after it are :data:`PAD_ID`. (A traced
      integer is allowed, e.g. vmapped over settings; a traced value outside the vocabulary
      never matches.)
    prompt_length: optional length of the prompt inside the ``prompt`` buffer (may be traced),
      so that prompts of different lengths padded to one buffer size share one compilation
      (and can be vmapped over together). The caches are sized for the buffer.

  Returns:
    :class:`Generation`.

  Raises:
    ValueError / TypeError naming the argument for invalid settings (see the tests).
  """
  key = check_key(key)
  cfg, inputs = prepare(target, prompt, scheme=scheme, drafter=drafter, num_drafts=num_drafts,
                        draft_length=draft_length, max_new_tokens=max_new_tokens,
                        temperature=temperature, top_k=top_k,
                        draft_temperatures=draft_temperatures, eos_id=eos_id,
                        prompt_length=prompt_length)
  return decode(key, inputs, cfg=cfg)


@functools.partial(jax.jit, static_argnames=("cfg",))
def decode(key, inputs: DecodeInputs, cfg: DecodeConfig) -> Generation:
  """The jitted decoder: prefill, then blocks until ``max_new_tokens`` or ``eos_id``.

  ``key`` must be a checked key (:func:`lcoupling.specdec.verification.check_key`) and
  ``cfg, inputs = prepare(...)``; :func:`generate` is ``decode(check_key(key), inputs, cfg)``.
  """
  target, drafter = inputs.target, inputs.drafter
  state = prefill(target, drafter, inputs.prompt, inputs.prompt_length, cfg)

  def body(state):
    if cfg.walk == "autoregressive":
      return autoregressive_step(key, target, state, inputs.temperature, inputs.eos_id, cfg)
    return block(key, target, drafter, state, inputs.temperature, inputs.draft_temperatures,
                 inputs.eos_id, inputs.strong, cfg)

  state = jax.lax.while_loop(lambda s: ~s.done, body, state)
  return finish(state, cfg)


# --------------------------------------------------------------------------
# One block: draft -> target pass -> verify (walk, then commit).
# --------------------------------------------------------------------------


class State(NamedTuple):
  """The decoder's loop state."""

  p: jax.Array  #: prompt length (the buffer holds cfg.prompt_length >= p positions)
  n: jax.Array  #: tokens emitted so far
  done: jax.Array
  seq: jax.Array  #: committed tokens; ``seq[_offset(cfg) + i]`` = token at absolute position i
  target_cache: Any
  drafter_cache: Any
  num_blocks: jax.Array
  accepted_lengths: jax.Array
  position_reached: jax.Array
  position_accepted: jax.Array


def keys_of(key, n, cfg: DecodeConfig) -> BlockKeys:
  """The row keys of the block starting at output index ``n``
  (:func:`lcoupling.specdec.verification.block_keys`)."""
  return block_keys(key, n, cfg.num_drafts, cfg.draft_length,
                    cfg.walk not in acceptance.GLS_FAMILY)


def block(key, target, drafter, state: State, temperature, draft_temperatures, eos_id, strong,
          cfg: DecodeConfig) -> State:
  """One block: :func:`draft_phase`, :func:`target_phase`, :func:`verify_phase`."""
  keys = keys_of(key, state.n, cfg)
  drafts, draft_sup, drafter_cache = draft_phase(keys, drafter, state.drafter_cache, state.seq,
                                                 state.p, state.n, draft_temperatures, cfg)
  target_sup, target_cache = target_phase(target, state.target_cache, state.seq, state.p,
                                          state.n, drafts, temperature, cfg)
  state = state._replace(drafter_cache=drafter_cache)
  return verify_phase(keys, state, drafts, target_sup, draft_sup, target_cache, eos_id, strong,
                      cfg)


def draft_phase(keys: BlockKeys, drafter, cache, seq, p, n, draft_temperatures, cfg: DecodeConfig):
  """``(drafts int32[K, L], Support [K, L, M] or None, drafter cache)``.

  The drafter's filtered distributions are returned only for the schemes that
  read them (not for the GLS family).
  """
  k, length = cfg.num_drafts, cfg.draft_length
  keep = cfg.walk not in acceptance.GLS_FAMILY
  start = p + n - 1 - length
  window = jax.lax.dynamic_slice(seq, (start + _offset(cfg),), (length + 1,))
  last_logits, cache = _window_pass(drafter, cache, window, start, cfg)

  def body(carry, j):
    last_logits, cache = carry
    sup = support(last_logits, draft_temperatures[:, None], cfg.top_k)  # [K, M]
    log_s = race_times(keys.race[j], sup.ids, cfg.vocab_size)
    x = jnp.take_along_axis(sup.ids, core.race_argmin(log_s, sup.logits)[:, None], 1)[:, 0]

    def next_step(cache):  # the drafters read the drafts X[:, j] at position p + n + j
      logits, cache = _call_drafters(drafter, cache, x[:, None], p + n + j, cfg)
      return logits[:, 0], cache

    # the next drafter step; none after the last draft (one race / model call site either way)
    last_logits, cache = jax.lax.cond(j + 1 < length, next_step, lambda c: (last_logits, c),
                                      cache)
    return (last_logits, cache), (x, sup if keep else None)

  (_, cache), (xs, sups) = jax.lax.scan(body, (last_logits, cache), jnp.arange(length))
  drafts = xs.T  # [K, L]
  if keep:
    sups = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), sups)  # [K, L, M]
  return drafts, sups, cache


def target_phase(target, cache, seq, p, n, drafts, temperature, cfg: DecodeConfig):
  """One target pass over ``[last, X[k]_1 .. X[k]_L]``: ``(Support [K, L + 1, M], cache)``."""
  k = cfg.num_drafts
  last = jax.lax.dynamic_index_in_dim(seq, _offset(cfg) + p + n - 1, keepdims=False)
  tokens = jnp.concatenate([jnp.full((k, 1), last, jnp.int32), drafts], axis=1)
  logits, cache = target(tokens, cache, jnp.full((k,), p + n - 1, jnp.int32))
  return support(logits, temperature, cfg.top_k), cache


def verify_phase(keys: BlockKeys, state: State, drafts, target_sup, draft_sup, target_cache, eos_id,
                 strong, cfg: DecodeConfig) -> State:
  """Walk, then commit: cache window of the surviving row, output tokens, metrics."""
  block = walk(keys, drafts, target_sup, draft_sup, cfg.walk, _dense(cfg), cfg.vocab_size,
               strong)
  target_cache = lm_cache.copy_window(target_cache, block.row,
                                      state.p + state.n - 1, cfg.draft_length + 1)
  state = state._replace(target_cache=target_cache)
  return commit(state, block.tokens, block.num_emitted, block.num_accepted, eos_id, cfg)


def commit(state: State, tokens, num_emitted, num_accepted, eos_id, cfg: DecodeConfig) -> State:
  """Appends ``tokens[:num_emitted]`` (cut after eos / at max_new_tokens) and the block's metrics.

  ``tokens[num_emitted:]`` are written too (one static-size update) but lie at or after the
  new end of the output: the next block overwrites them, :func:`finish` pads them.
  """
  n = state.n
  size = tokens.shape[0]
  seq = jax.lax.dynamic_update_slice(state.seq, tokens, (_offset(cfg) + state.p + n,))
  is_eos = (tokens == eos_id) & (jnp.arange(size) < num_emitted)
  found = jnp.any(is_eos)
  emitted = jnp.where(found, jnp.argmax(is_eos) + 1, num_emitted).astype(jnp.int32)
  n_new = jnp.minimum(n + emitted, cfg.max_new_tokens)
  j = jnp.arange(cfg.draft_length)
  return state._replace(
      n=n_new, done=found | (n_new >= cfg.max_new_tokens), seq=seq,
      num_blocks=state.num_blocks + 1,
      accepted_lengths=state.accepted_lengths.at[state.num_blocks].set(num_accepted),
      position_reached=state.position_reached + (j <= num_accepted).astype(jnp.int32),
      position_accepted=state.position_accepted + (j < num_accepted).astype(jnp.int32))


def autoregressive_step(key, target, state: State, temperature, eos_id, cfg: DecodeConfig) -> State:
  """One token of ``autoregressive``: a one-token target decode and the race of ``gls_strong``."""
  p, n = state.p, state.n
  last = jax.lax.dynamic_index_in_dim(state.seq, _offset(cfg) + p + n - 1, keepdims=True)
  logits, cache = target(last[None], state.target_cache, (p + n - 1)[None].astype(jnp.int32))
  sup = support(logits[0, 0], temperature, cfg.top_k)
  k = cfg.num_drafts
  keys = block_keys(key, n, k, 0, aux=False).race[0]  # [K]: output index n
  log_s = race_times(keys, jnp.broadcast_to(sup.ids, (k,) + sup.ids.shape), cfg.vocab_size)
  y = acceptance.gls_token(log_s, jnp.ones((k,), bool), sup.ids, sup.logits)
  tokens = jnp.full((cfg.draft_length + 1,), y, jnp.int32)
  state = commit(state._replace(target_cache=cache), tokens, jnp.int32(1), jnp.int32(0), eos_id,
                  cfg)
  # a one-token block without drafts: no draft position was verified.
  return state._replace(position_reached=jnp.zeros_like(state.position_reached))


def prefill(target, drafter, prompt, prompt_length, cfg: DecodeConfig) -> State:
  """Prefills the caches with the prompt buffer (all but its last token; entries past
  ``prompt_length - 1`` are overwritten before any query can see them)."""
  p, s = cfg.prompt_length, cfg.cache_length
  rows = 1 if cfg.walk == "autoregressive" else cfg.num_drafts

  def prefilled(model):
    cache = model.init_cache(1, s)
    if p > 1:
      _, cache = model(prompt[None, :-1], cache, jnp.zeros((1,), jnp.int32))
    return cache

  target_cache = lm_cache.broadcast_rows(prefilled(target), rows)
  if drafter is None:
    drafter_cache = None
  elif cfg.drafter_tuple:
    drafter_cache = tuple(prefilled(m) for m in drafter)
  else:
    drafter_cache = lm_cache.broadcast_rows(prefilled(drafter), cfg.num_drafts)
  seq = jnp.zeros((_seq_length(cfg),), jnp.int32)
  seq = jax.lax.dynamic_update_slice(seq, prompt, (_offset(cfg),))
  return State(
      p=jnp.asarray(prompt_length, jnp.int32), n=jnp.int32(0), done=jnp.bool_(False), seq=seq,
      target_cache=target_cache, drafter_cache=drafter_cache, num_blocks=jnp.int32(0),
      accepted_lengths=jnp.full((cfg.max_new_tokens,), PAD_ID, jnp.int32),
      position_reached=jnp.zeros((cfg.draft_length,), jnp.int32),
      position_accepted=jnp.zeros((cfg.draft_length,), jnp.int32))


def finish(state: State, cfg: DecodeConfig) -> Generation:
  """The :class:`Generation` of a finished loop state."""
  tokens = jax.lax.dynamic_slice(state.seq, (_offset(cfg) + state.p,), (cfg.max_new_tokens,))
  tokens = jnp.where(jnp.arange(cfg.max_new_tokens) < state.n, tokens, PAD_ID)
  ar = cfg.walk == "autoregressive"
  return Generation(
      tokens=tokens, length=state.n, num_blocks=state.num_blocks,
      num_target_calls=state.num_blocks,
      num_drafter_calls=jnp.int32(0) if ar else state.num_blocks * cfg.draft_length,
      accepted_lengths=state.accepted_lengths, position_reached=state.position_reached,
      position_accepted=state.position_accepted)


def _offset(cfg: DecodeConfig) -> int:
  return cfg.draft_length + 1


def _seq_length(cfg: DecodeConfig) -> int:
  return _offset(cfg) + cfg.prompt_length + cfg.max_new_tokens + cfg.draft_length + 1


def _dense(cfg: DecodeConfig) -> bool:
  return cfg.top_k == 0


def _window_pass(drafter, cache, window, start, cfg: DecodeConfig):
  """The block's first drafter call, on the committed ``window`` at ``start``:
  ``(logits at its last position [K, V], cache)``.

  Every row reads the same committed tokens, and before the call the rows' caches agree at
  every position a query of the window can read (each was last written by an earlier window
  pass, or by the prefill). So one drafter (not a tuple of drafters) computes row 0 alone --
  ``L + 1`` tokens instead of ``K (L + 1)`` -- and every row gets row 0's cache: after the
  call the rows agree again up to the last committed position, and the entries past it (row
  0's drafts of the previous block) are masked until the draft steps overwrite them.
  """
  k = cfg.num_drafts
  if cfg.drafter_tuple or k == 1:
    tokens = jnp.broadcast_to(window, (k, window.shape[0]))
    logits, cache = _call_drafters(drafter, cache, tokens, start, cfg)
    return logits[:, -1], cache
  row = jax.tree.map(lambda x: jax.lax.slice_in_dim(x, 0, 1, axis=lm_cache.BATCH_AXIS), cache)
  logits, row = drafter(window[None], row, jnp.full((1,), start, jnp.int32))
  return jnp.broadcast_to(logits[:, -1], (k,) + logits.shape[2:]), lm_cache.broadcast_rows(row, k)


def _call_drafters(drafter, cache, tokens, position, cfg: DecodeConfig):
  """All K draft rows through the drafter(s): ``tokens [K, T]`` at ``position`` -> ``[K, T, V]``."""
  if cfg.drafter_tuple:
    outs = [m(tokens[k:k + 1], c, position[None]) for k, (m, c) in enumerate(zip(drafter, cache))]
    return jnp.concatenate([o[0] for o in outs]), tuple(o[1] for o in outs)
  return drafter(tokens, cache, jnp.full((cfg.num_drafts,), position, jnp.int32))
