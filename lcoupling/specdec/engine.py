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
   drafter caches never need row copies (and a tuple of different drafters
   works the same way);
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

Randomness
----------
All randomness is addressed by (key, output index ``t``, draft row ``k``),
never by block position or call order (``t`` is the 0-based index of the
generated token, the prompt excluded):

* race times: ``core.race_times_at(fold_in(fold_in(key, t), k), ids)``, only
  on the top-k support ``ids`` when ``top_k > 0`` (bit-identical to the dense
  row ``ids = arange(V)`` used when ``top_k = 0``);
* SpecInfer / SpecTr / sps, with the auxiliary key
  ``a[t] = fold_in(fold_in(key, t), AUX_STREAM)`` of index ``t``: the
  acceptance uniform of row ``k`` is ``1 - exp(-E)`` with ``E`` the Exp(1)
  time of counter ``2**31 + k`` under ``a[t]`` (token ids stay below
  ``2**31``), and the residual sample is the race of ``a[t]``'s times at the
  token ids on the residual distribution.

A block derives all of these in a few vectorised calls before its walk (so
the walk itself is arithmetic only); the values do not depend on that.

Why the output is exact
-----------------------
Write :math:`\mathcal F_t` for all the randomness of output indices
:math:`\le t`. Every draft at index ``t`` is a function of the races at
indices :math:`\le t` (a drafter reads its own earlier drafts), and the token
emitted at ``t`` (by a walk step, a residual or a bonus) is a function of the
races and uniforms at index ``t``, of the drafts at ``t`` and of the alive set,
which is decided by indices ``< t``. By induction, the emitted prefix up to
``t - 1``, where the block boundaries fall and which rows are alive when index
``t`` is verified are all :math:`\mathcal F_{t-1}`-measurable. Given
:math:`\mathcal F_{t-1}`, the randomness of index ``t`` is therefore fresh: the
alive rows' drafts at ``t`` are independent samples of their drafters'
distributions given the common prefix, so the token-level scheme's guarantee
applies (every scheme of :mod:`lcoupling.verifiers` outputs exactly ``q``,
SpecTr's because the alive drafts are i.i.d.; the bonus token is a plain race
on fresh rows), and the token at ``t`` has law ``q(. | prefix)``. A block that
stops before index ``t`` may have let its drafts read the races at ``t`` -- but
that stop was decided in :math:`\mathcal F_{t-1}`, and the next block (which
emits ``t``) uses index ``t``'s randomness for emission for the first and only
time; the drafts of the previous block at ``t`` are discarded. So the
generated sequence is an exact sample of the target's (temperature / top-k
filtered) autoregressive distribution, for every scheme and any drafter.

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
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling import acceptance, core
from lcoupling.lm import cache as lm_cache
from lcoupling.lm import sampling

__all__ = ["SCHEMES", "PAD_ID", "Generation", "Support", "Block", "generate", "verify_block",
           "support"]

#: Schemes accepted by :func:`generate`.
SCHEMES = ("autoregressive",) + acceptance.SCHEMES
#: Value of ``Generation.tokens`` after ``length`` (and of ``accepted_lengths`` after
#: ``num_blocks``).
PAD_ID = -1

_GLS_FAMILY = acceptance.GLS_FAMILY
#: The compiled walk of each scheme: ``daliri`` is ``gls`` with K = 1, ``sps`` is ``specinfer``
#: with K = 1, and ``gls_strong`` is ``gls`` with a runtime flag (its row mask), so these pairs
#: share one compilation.
_WALK = {"gls_strong": "gls", "daliri": "gls", "sps": "specinfer"}


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


class Support(NamedTuple):
  """A filtered distribution on token ids: ``logits[..., m]`` is the logit of ``ids[..., m]``.

  Dense form (``top_k = 0``): ``ids = arange(V)`` along the last axis. The
  logits need not be normalised; ``-inf`` is zero mass.
  """

  ids: jax.Array
  logits: jax.Array


class Block(NamedTuple):
  """Result of one block's verification walk (:func:`verify_block`)."""

  #: ``int32[L + 1]``: the emitted tokens are ``tokens[:num_emitted]``.
  tokens: jax.Array
  #: ``int32[]``: tokens emitted (accepted + 1: a residual / GLS token or the bonus).
  num_emitted: jax.Array
  #: ``int32[]``: accepted draft positions, ``0 .. L``.
  num_accepted: jax.Array
  #: ``int32[]``: a row whose drafts carry the emitted prefix (its cache window is kept).
  row: jax.Array


class _Config(NamedTuple):
  """Static configuration of one compiled decoder."""

  scheme: str
  num_drafts: int
  draft_length: int
  max_new_tokens: int
  top_k: int  # 0 = dense (also used when top_k == vocab size)
  vocab_size: int
  prompt_length: int
  cache_length: int
  drafter_tuple: bool


class _State(NamedTuple):
  p: jax.Array  # prompt length (the buffer holds cfg.prompt_length >= p positions)
  n: jax.Array
  done: jax.Array
  seq: jax.Array  # committed tokens; seq[_offset(cfg) + p] = token at absolute position p
  target_cache: Any
  drafter_cache: Any
  num_blocks: jax.Array
  accepted_lengths: jax.Array
  position_reached: jax.Array
  position_accepted: jax.Array


# --------------------------------------------------------------------------
# Distributions, races and lookups.
# --------------------------------------------------------------------------


def support(logits: jax.Array, temperature, top_k: int) -> Support:
  """Temperature, then top-k (``0`` = dense) of ``logits [..., V]`` as a :class:`Support`.

  The sparse form keeps exactly the set of :func:`lcoupling.lm.sampling.top_k_filter`.
  """
  x = sampling.apply_temperature(logits, temperature)
  if top_k == 0:
    return Support(jnp.broadcast_to(jnp.arange(x.shape[-1], dtype=jnp.int32), x.shape), x)
  return Support(*sampling.top_k_support(x, top_k))


class _Keys(NamedTuple):
  """The row keys of one block (output indices ``n .. n + L``)."""

  race: jax.Array  #: ``[L + 1, K]``: ``fold_in(fold_in(key, n + j), k)``.
  aux: jax.Array | None  #: ``[L]``: ``fold_in(fold_in(key, n + j), AUX_STREAM)``.


#: Counter of the acceptance uniform of row ``k`` under an auxiliary key: ``_UNIFORM + k``.
_UNIFORM = 2**31


def _block_keys(key, n, num_rows: int, length: int, aux: bool) -> _Keys:
  """Every row key of a block, in two vectorised call sites of the hash.

  (Each call site of threefry costs XLA compile time, so the whole block
  derives its keys and its random numbers in a handful of batched calls.)
  """
  positions = n + jnp.arange(length + 1)
  pos_keys = jax.vmap(lambda t: jax.random.fold_in(key, t))(positions)  # [L+1]
  idx = jnp.arange(num_rows + aux, dtype=jnp.uint32)
  if aux:
    idx = idx.at[num_rows].set(core.AUX_STREAM)
  keys = jax.vmap(lambda kt: jax.vmap(lambda i: jax.random.fold_in(kt, i))(idx))(pos_keys)
  if not aux:
    return _Keys(keys, None)
  return _Keys(keys[:, :num_rows], keys[:length, num_rows])


def _times(keys, ids, vocab_size: int):
  """``log S`` of row keys ``[...]`` at ``ids [..., M]`` (one call site): ``[..., M]``."""
  flat_keys = keys.reshape(-1)
  flat_ids = ids.reshape((flat_keys.shape[0], ids.shape[-1]))
  out = jax.vmap(lambda k, i: core.race_times_at(k, i, num_symbols=vocab_size))(flat_keys, flat_ids)
  return out.reshape(ids.shape)


def _lookup(query, ids, values, dense: bool):
  """``values`` of a support (``ids, values [..., M]``) at ``query [..., Q]`` ids; 0 off support."""
  if dense:
    return jnp.take_along_axis(values, query, axis=-1)
  eq = query[..., :, None] == ids[..., None, :]
  return jnp.sum(jnp.where(eq, values[..., None, :], 0.0), axis=-1)


# --------------------------------------------------------------------------
# The verification walk.
# --------------------------------------------------------------------------


def _positions(query, ids, dense: bool):
  """Position of each ``query [Q]`` id in the support ``ids [M]``, ``-1`` off the support."""
  if dense:
    return query
  eq = query[:, None] == ids[None, :]
  return jnp.where(jnp.any(eq, axis=1), jnp.argmax(eq, axis=1), -1).astype(jnp.int32)


def _walk_randomness(keys: _Keys, target: Support, dense: bool, vocab_size: int):
  """Every random number a walk may use, generated up front in one call site of the hash.

  Returns ``(race [L+1, K, R, M], uniforms [L, K] or None, residual [L, R, M] or None)``
  where ``R`` indexes the possible *prefix rows* (the row whose target support a step uses;
  ``R = 1`` in the dense form, whose support ``arange(V)`` is every row's): entry
  ``race[j, k, r, m]`` is ``log S[n + j, k, target.ids[r, j, m]]``, ``residual[j, r, m]`` the
  time of the same id under the auxiliary key of index ``n + j``, and ``uniforms[j, k]`` is
  ``1 - exp(-E)``, ``E`` that key's time of counter ``2**31 + k``.
  """
  length, num_rows = keys.race.shape[0] - 1, keys.race.shape[1]
  ids = jnp.swapaxes(target.ids[:1] if dense else target.ids, 0, 1)  # [L+1, R, M]
  r, m = ids.shape[1:]
  ids = ids.reshape(length + 1, 1, r * m).astype(jnp.uint32)
  if keys.aux is None:
    times = _times(keys.race, jnp.broadcast_to(ids, (length + 1, num_rows, r * m)), vocab_size)
    return times.reshape(length + 1, num_rows, r, m), None, None
  # the race rows and the auxiliary rows in one call, all with the K uniform counters appended
  width = r * m + num_rows
  uniform_ctr = jnp.arange(num_rows, dtype=jnp.uint32) + np.uint32(_UNIFORM)
  ext = jnp.broadcast_to(uniform_ctr, (length + 1, 1, num_rows))
  ids = jnp.concatenate([ids, ext], axis=-1)  # [L+1, 1, W]
  race_ids = jnp.broadcast_to(ids, (length + 1, num_rows, width)).reshape(-1, width)
  all_ids = jnp.concatenate([race_ids, ids[:length, 0]])
  times = _times(jnp.concatenate([keys.race.reshape(-1), keys.aux]), all_ids, vocab_size)
  split = (length + 1) * num_rows
  race = times[:split, :r * m].reshape(length + 1, num_rows, r, m)
  residual = times[split:, :r * m].reshape(length, r, m)
  uniforms = -jnp.expm1(-jnp.exp(times[split:, r * m:]))  # 1 - exp(-E) ~ U(0, 1)
  return race, uniforms, residual


def _walk(keys: _Keys, drafts, target: Support, draft: Support | None, scheme: str, dense: bool,
          vocab_size: int, strong=False) -> Block:
  """The walk of :func:`verify_block`; ``strong`` (may be traced): the target race takes the
  minimum over all rows (``gls_strong``) instead of the alive ones."""
  num_rows, length = drafts.shape
  all_rows = jnp.ones((num_rows,), bool)
  gls = scheme in _GLS_FAMILY
  race, uniforms, residual_race = _walk_randomness(keys, target, dense, vocab_size)
  prefix = (lambda r: 0) if dense else (lambda r: r)  # index into the R axis
  if not gls:
    p_draft = jax.nn.softmax(draft.logits, axis=-1)  # [K, L, M_d]

  def step(alive, j):
    r = jnp.argmax(alive).astype(jnp.int32)  # alive rows share the prefix: any one gives q
    ids, lq = target.ids[r, j], target.logits[r, j]
    x = drafts[:, j]
    if gls:
      y = acceptance.gls_token(race[j][:, prefix(r)], alive | strong, ids, lq)
      accepted = jnp.any(alive & (x == y))
    else:
      q = jax.nn.softmax(lq)
      d_ids, d_p = draft.ids[:, j], p_draft[:, j]  # [K, M_d]
      p_x = _lookup(x[:, None], d_ids, d_p, dense)[:, 0]  # each row's drafter prob of its draft
      u = uniforms[j]
      if scheme == "spectr":  # K' = |alive| i.i.d. drafts, rho* for the dynamic K'
        p_sup = d_p[r] if dense else _lookup(ids, d_ids[r], d_p[r], dense)  # common proposal
        q_x = _lookup(x, ids, q, dense)
        accepts, res = acceptance.spectr(u, p_x, q_x, p_sup, q,
                                         jnp.sum(alive).astype(jnp.float32), alive)
      else:  # specinfer, sps
        p_sup = d_p if dense else _lookup(jnp.broadcast_to(ids, (num_rows,) + ids.shape), d_ids,
                                          d_p, dense)
        accepts, res = acceptance.specinfer(u, p_x, p_sup, q, _positions(x, ids, dense), alive)
      residual = acceptance.race_token(residual_race[j, prefix(r)], ids,
                                       acceptance.safe_log(res))
      accepted = jnp.any(accepts)
      y = jnp.where(accepted, x[jnp.argmax(accepts)], residual)
    alive_next = jnp.where(accepted, alive & (x == y), alive)
    return alive_next, (y.astype(jnp.int32), accepted, r)

  alive, (ys, accepted, rows) = jax.lax.scan(step, all_rows, jnp.arange(length))
  r = jnp.argmax(alive).astype(jnp.int32)
  bonus = acceptance.gls_token(race[length][:, prefix(r)], alive | strong, target.ids[r, length],
                     target.logits[r, length])
  all_accepted = jnp.all(accepted)
  num_accepted = jnp.where(all_accepted, length, jnp.argmin(accepted)).astype(jnp.int32)
  row = jnp.where(all_accepted, r, rows[jnp.minimum(num_accepted, length - 1)])
  tokens = jnp.concatenate([ys, bonus.astype(jnp.int32)[None]])
  return Block(tokens, num_accepted + 1, num_accepted, row)


def verify_block(key: jax.Array, position, drafts: jax.Array, target: Support,
                 draft: Support | None = None, *, scheme: str, dense: bool = False) -> Block:
  """The verification walk of one block, as a pure function (what :func:`generate` runs).

  Args:
    key: the generation key.
    position: output index ``n`` of the block's first token (may be traced).
    drafts: ``int32[K, L]``, row ``k`` = draft ``k``.
    target: :class:`Support` ``[K, L + 1, M]``: the target's filtered distribution after
      ``[last, X[k]_1 .. X[k]_{j-1}]`` for ``j = 1 .. L + 1`` (see :func:`support`).
    draft: :class:`Support` ``[K, L, M']``: each row's filtered drafter distribution at each
      position. Read by ``specinfer`` / ``spectr`` / ``sps`` only; the GLS family never looks
      at it (``None`` is allowed there) -- which is its conditional drafter invariance.
    scheme: one of :data:`SCHEMES` except ``"autoregressive"``.
    dense: promise that ``ids = arange(V)`` along the last axis of both supports (the
      ``top_k = 0`` form); lookups then index instead of matching ids.

  Returns:
    :class:`Block`.
  """
  if scheme not in SCHEMES or scheme == "autoregressive":
    raise ValueError(f"scheme must be one of {list(SCHEMES[1:])}, got {scheme!r}")
  key = _check_key(key)
  drafts = jnp.asarray(drafts, jnp.int32)
  if drafts.ndim != 2:
    raise ValueError(f"drafts must have shape [K, L], got {tuple(drafts.shape)}")
  k, length = drafts.shape
  if tuple(target.ids.shape[:2]) != (k, length + 1) or target.ids.shape != target.logits.shape:
    raise ValueError(f"target must have ids and logits of shape [K, L + 1, M] = "
                     f"[{k}, {length + 1}, M], got {tuple(target.ids.shape)} and "
                     f"{tuple(target.logits.shape)}")
  if scheme not in _GLS_FAMILY:
    if draft is None:
      raise ValueError(f"{scheme} reads the draft probabilities: pass draft")
    if tuple(draft.ids.shape[:2]) != (k, length) or draft.ids.shape != draft.logits.shape:
      raise ValueError(f"draft must have ids and logits of shape [K, L, M'] = [{k}, {length}, M'],"
                       f" got {tuple(draft.ids.shape)} and {tuple(draft.logits.shape)}")
  return _verify_block_jit(key, jnp.asarray(position, jnp.int32), drafts, target, draft,
                           jnp.bool_(scheme == "gls_strong"), scheme=_WALK.get(scheme, scheme),
                           dense=bool(dense), vocab_size=None)


@functools.partial(jax.jit, static_argnames=("scheme", "dense", "vocab_size"))
def _verify_block_jit(key, position, drafts, target, draft, strong, scheme, dense, vocab_size):
  k, length = drafts.shape
  keys = _block_keys(key, position, k, length, scheme not in _GLS_FAMILY)
  return _walk(keys, drafts, target, draft, scheme, dense, vocab_size, strong)


# --------------------------------------------------------------------------
# Phases of a block (shared by the jitted loop and the timed host loop).
# --------------------------------------------------------------------------


def _offset(cfg: _Config) -> int:
  return cfg.draft_length + 1


def _seq_length(cfg: _Config) -> int:
  return _offset(cfg) + cfg.prompt_length + cfg.max_new_tokens + cfg.draft_length + 1


def _dense(cfg: _Config) -> bool:
  return cfg.top_k == 0


def _call_drafters(drafter, cache, tokens, position, cfg: _Config):
  """All K draft rows through the drafter(s): ``tokens [K, T]`` at ``position`` -> ``[K, T, V]``."""
  if cfg.drafter_tuple:
    outs = [m(tokens[k:k + 1], c, position[None]) for k, (m, c) in enumerate(zip(drafter, cache))]
    return jnp.concatenate([o[0] for o in outs]), tuple(o[1] for o in outs)
  return drafter(tokens, cache, jnp.full((cfg.num_drafts,), position, jnp.int32))


def _draft_phase(keys: _Keys, drafter, cache, seq, p, n, draft_temperatures, cfg: _Config):
  """``(drafts int32[K, L], Support [K, L, M] or None, drafter cache)``.

  The drafter's filtered distributions are returned only for the schemes that
  read them (not for the GLS family).
  """
  k, length = cfg.num_drafts, cfg.draft_length
  keep = cfg.scheme not in _GLS_FAMILY
  start = p + n - 1 - length
  window = jax.lax.dynamic_slice(seq, (start + _offset(cfg),), (length + 1,))
  logits, cache = _call_drafters(drafter, cache, jnp.broadcast_to(window, (k, length + 1)), start,
                                 cfg)
  def body(carry, j):
    last_logits, cache = carry
    sup = support(last_logits, draft_temperatures[:, None], cfg.top_k)  # [K, M]
    log_s = _times(keys.race[j], sup.ids, cfg.vocab_size)
    x = jnp.take_along_axis(sup.ids, core.race_argmin(log_s, sup.logits)[:, None], 1)[:, 0]
    # the next drafter step; none after the last draft (one race / model call site either way)
    last_logits, cache = jax.lax.cond(
        j + 1 < length,
        lambda c: (lambda lg, c: (lg[:, 0], c))(*_call_drafters(drafter, c, x[:, None],
                                                                p + n + j, cfg)),
        lambda c: (last_logits, c), cache)
    return (last_logits, cache), (x, sup if keep else None)

  (_, cache), (xs, sups) = jax.lax.scan(body, (logits[:, -1], cache), jnp.arange(length))
  drafts = xs.T  # [K, L]
  if keep:
    sups = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), sups)  # [K, L, M]
  return drafts, sups, cache


def _target_phase(target, cache, seq, p, n, drafts, temperature, cfg: _Config):
  """One target pass over ``[last, X[k]_1 .. X[k]_L]``: ``(Support [K, L + 1, M], cache)``."""
  k = cfg.num_drafts
  last = jax.lax.dynamic_index_in_dim(seq, _offset(cfg) + p + n - 1, keepdims=False)
  tokens = jnp.concatenate([jnp.full((k, 1), last, jnp.int32), drafts], axis=1)
  logits, cache = target(tokens, cache, jnp.full((k,), p + n - 1, jnp.int32))
  return support(logits, temperature, cfg.top_k), cache


def _commit(state: _State, tokens, num_emitted, num_accepted, eos_id, cfg: _Config) -> _State:
  """Appends ``tokens[:num_emitted]`` (cut after eos / at max_new_tokens) and the block's metrics.

  ``tokens[num_emitted:]`` are written too (one static-size update) but lie at or after the
  new end of the output: the next block overwrites them, :func:`_finish` pads them.
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


def _verify_phase(keys: _Keys, state: _State, drafts, target_sup, draft_sup, target_cache, eos_id,
                  strong, cfg: _Config) -> _State:
  """Walk, then commit: cache window of the surviving row, output tokens, metrics."""
  block = _walk(keys, drafts, target_sup, draft_sup, cfg.scheme, _dense(cfg), cfg.vocab_size,
                strong)
  target_cache = lm_cache.copy_window(target_cache, block.row,
                                      state.p + state.n - 1, cfg.draft_length + 1)
  state = state._replace(target_cache=target_cache)
  return _commit(state, block.tokens, block.num_emitted, block.num_accepted, eos_id, cfg)


def _autoregressive_step(key, target, state: _State, temperature, eos_id, cfg: _Config) -> _State:
  p, n = state.p, state.n
  last = jax.lax.dynamic_index_in_dim(state.seq, _offset(cfg) + p + n - 1, keepdims=True)
  logits, cache = target(last[None], state.target_cache, (p + n - 1)[None].astype(jnp.int32))
  sup = support(logits[0, 0], temperature, cfg.top_k)
  k = cfg.num_drafts
  keys = _block_keys(key, n, k, 0, aux=False).race[0]  # [K]: output index n
  log_s = _times(keys, jnp.broadcast_to(sup.ids, (k,) + sup.ids.shape), cfg.vocab_size)
  y = acceptance.gls_token(log_s, jnp.ones((k,), bool), sup.ids, sup.logits)
  tokens = jnp.full((cfg.draft_length + 1,), y, jnp.int32)
  state = _commit(state._replace(target_cache=cache), tokens, jnp.int32(1), jnp.int32(0), eos_id,
                  cfg)
  # a one-token block without drafts: no draft position was verified.
  return state._replace(position_reached=jnp.zeros_like(state.position_reached))


def _prefill(target, drafter, prompt, prompt_length, cfg: _Config) -> _State:
  """Prefills the caches with the prompt buffer (all but its last token; entries past
  ``prompt_length - 1`` are overwritten before any query can see them)."""
  p, s = cfg.prompt_length, cfg.cache_length
  rows = 1 if cfg.scheme == "autoregressive" else cfg.num_drafts

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
  return _State(
      p=jnp.asarray(prompt_length, jnp.int32), n=jnp.int32(0), done=jnp.bool_(False), seq=seq, target_cache=target_cache,
      drafter_cache=drafter_cache, num_blocks=jnp.int32(0),
      accepted_lengths=jnp.full((cfg.max_new_tokens,), PAD_ID, jnp.int32),
      position_reached=jnp.zeros((cfg.draft_length,), jnp.int32),
      position_accepted=jnp.zeros((cfg.draft_length,), jnp.int32))


def _finish(state: _State, cfg: _Config) -> Generation:
  tokens = jax.lax.dynamic_slice(state.seq, (_offset(cfg) + state.p,), (cfg.max_new_tokens,))
  tokens = jnp.where(jnp.arange(cfg.max_new_tokens) < state.n, tokens, PAD_ID)
  ar = cfg.scheme == "autoregressive"
  return Generation(
      tokens=tokens, length=state.n, num_blocks=state.num_blocks,
      num_target_calls=state.num_blocks,
      num_drafter_calls=jnp.int32(0) if ar else state.num_blocks * cfg.draft_length,
      accepted_lengths=state.accepted_lengths, position_reached=state.position_reached,
      position_accepted=state.position_accepted)


def _keys(key, n, cfg: _Config) -> _Keys:
  return _block_keys(key, n, cfg.num_drafts, cfg.draft_length, cfg.scheme not in _GLS_FAMILY)


def _block(key, target, drafter, state: _State, temperature, draft_temperatures, eos_id, strong,
           cfg: _Config) -> _State:
  keys = _keys(key, state.n, cfg)
  drafts, draft_sup, drafter_cache = _draft_phase(keys, drafter, state.drafter_cache, state.seq,
                                                  state.p, state.n, draft_temperatures, cfg)
  target_sup, target_cache = _target_phase(target, state.target_cache, state.seq, state.p, state.n,
                                           drafts,
                                           temperature, cfg)
  state = state._replace(drafter_cache=drafter_cache)
  return _verify_phase(keys, state, drafts, target_sup, draft_sup, target_cache, eos_id, strong,
                       cfg)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _generate(key, target, drafter, prompt, prompt_length, temperature, draft_temperatures, eos_id,
              strong, cfg):
  state = _prefill(target, drafter, prompt, prompt_length, cfg)

  def body(state):
    if cfg.scheme == "autoregressive":
      return _autoregressive_step(key, target, state, temperature, eos_id, cfg)
    return _block(key, target, drafter, state, temperature, draft_temperatures, eos_id, strong,
                  cfg)

  state = jax.lax.while_loop(lambda s: ~s.done, body, state)
  return _finish(state, cfg)


# --------------------------------------------------------------------------
# The public entry point: validation in Python, then the jitted core.
# --------------------------------------------------------------------------


def _check_key(key):
  """A typed threefry key (raw ``uint32[2]`` keys are wrapped); other PRNGs are refused."""
  key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
  if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    if key.shape[-1:] != (2,) or key.dtype != jnp.uint32:
      raise TypeError(f"key must be a PRNG key (jax.random.key), got {key.dtype}{list(key.shape)}")
    key = jax.random.wrap_key_data(key, impl="threefry2x32")
  if key.shape != ():
    raise ValueError(f"key must be one PRNG key (vmap over a batch of keys), got shape {key.shape}")
  if not core._is_threefry(key):
    raise ValueError(f"key must be a threefry2x32 key (the JAX default), got the "
                     f"{jax.random.key_impl(key)} PRNG: race times are addressed by counter")
  return key


def _check_int(value, name, minimum):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(f"{name} must be a Python int, got {value!r}")
  if value < minimum:
    raise ValueError(f"{name} must be >= {minimum}, got {value}")
  return int(value)


def _check_temperature(value, name):
  if isinstance(value, jax.core.Tracer):
    return jnp.asarray(value, jnp.float32)
  v = np.asarray(value, np.float64)
  if v.ndim != 0 or not np.isfinite(v) or not v > 0:
    raise ValueError(f"{name} must be a finite number > 0 for sampling, got {value!r}")
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


def _validate(target, prompt, scheme, drafter, num_drafts, draft_length, max_new_tokens,
              temperature, top_k, draft_temperatures, eos_id, prompt_length=None):
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

  cfg = _Config(scheme=_WALK.get(scheme, scheme), num_drafts=num_drafts, draft_length=draft_length,
                max_new_tokens=max_new_tokens, top_k=top_k, vocab_size=vocab, prompt_length=p,
                cache_length=cache_length, drafter_tuple=is_tuple)
  return cfg, (target, drafter, prompt, plen, temperature, draft_temps, eos,
               jnp.bool_(scheme == "gls_strong"))


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
    temperature: target temperature (the drafts' too unless ``draft_temperatures``).
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
  key = _check_key(key)
  cfg, args = _validate(target, prompt, scheme, drafter, num_drafts, draft_length, max_new_tokens,
                        temperature, top_k, draft_temperatures, eos_id, prompt_length)
  return _generate(key, *args, cfg=cfg)
