# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""One block's verification walk, and the randomness it reads (part of :mod:`lcoupling.specdec`).

:func:`walk` is step 3 of a block of :func:`lcoupling.specdec.generate` (see
:mod:`lcoupling.specdec.engine`): given the ``K`` draft rows, the target's
filtered distributions after each draft prefix and (for the schemes that read
them) the drafter's, it emits the accepted tokens and one more (a residual, a
GLS token or the bonus). Every acceptance rule is a function of
:mod:`lcoupling.acceptance`; this module supplies their randomness and the
alive-set bookkeeping. :func:`verify_block` is the same walk as a validated,
jitted public function.

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
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling import acceptance, core
from lcoupling.lm import sampling

__all__ = ["Support", "Block", "BlockKeys", "support", "block_keys", "race_times", "walk",
           "verify_block", "check_key", "WALK"]

#: The compiled walk of each scheme: ``daliri`` is ``gls`` with K = 1, ``sps`` is ``specinfer``
#: with K = 1, and ``gls_strong`` is ``gls`` with a runtime flag (its row mask), so these pairs
#: share one compilation.
WALK = {"gls_strong": "gls", "daliri": "gls", "sps": "specinfer"}

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


# --------------------------------------------------------------------------
# Distributions, keys, races and lookups.
# --------------------------------------------------------------------------


def support(logits: jax.Array, temperature, top_k: int) -> Support:
  """Temperature, then top-k (``0`` = dense) of ``logits [..., V]`` as a :class:`Support`.

  The sparse form keeps exactly the set of :func:`lcoupling.lm.sampling.top_k_filter`.
  """
  x = sampling.apply_temperature(logits, temperature)
  if top_k == 0:
    return Support(jnp.broadcast_to(jnp.arange(x.shape[-1], dtype=jnp.int32), x.shape), x)
  return Support(*sampling.top_k_support(x, top_k))


class BlockKeys(NamedTuple):
  """The row keys of one block (output indices ``n .. n + L``)."""

  race: jax.Array  #: ``[L + 1, K]``: ``fold_in(fold_in(key, n + j), k)``.
  aux: jax.Array | None  #: ``[L]``: ``fold_in(fold_in(key, n + j), AUX_STREAM)``.


#: Counter of the acceptance uniform of row ``k`` under an auxiliary key: ``_UNIFORM + k``.
_UNIFORM = 2**31


def block_keys(key, n, num_rows: int, length: int, aux: bool) -> BlockKeys:
  """Every row key of a block at output indices ``n .. n + length``, in two call sites of the hash.

  ``aux``: also the auxiliary keys (the schemes that draw acceptance uniforms and residuals).

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
    return BlockKeys(keys, None)
  return BlockKeys(keys[:, :num_rows], keys[:length, num_rows])


def race_times(keys, ids, vocab_size: int):
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


def _walk_randomness(keys: BlockKeys, target: Support, dense: bool, vocab_size: int):
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
  num_prefix, m = ids.shape[1:]  # R, M
  ids = ids.reshape(length + 1, 1, num_prefix * m).astype(jnp.uint32)
  if keys.aux is None:
    times = race_times(keys.race, jnp.broadcast_to(ids, (length + 1, num_rows, num_prefix * m)),
                       vocab_size)
    return times.reshape(length + 1, num_rows, num_prefix, m), None, None
  # the race rows and the auxiliary rows in one call, all with the K uniform counters appended
  width = num_prefix * m + num_rows
  uniform_ctr = jnp.arange(num_rows, dtype=jnp.uint32) + np.uint32(_UNIFORM)
  ext = jnp.broadcast_to(uniform_ctr, (length + 1, 1, num_rows))
  ids = jnp.concatenate([ids, ext], axis=-1)  # [L+1, 1, W]
  race_ids = jnp.broadcast_to(ids, (length + 1, num_rows, width)).reshape(-1, width)
  all_ids = jnp.concatenate([race_ids, ids[:length, 0]])
  times = race_times(jnp.concatenate([keys.race.reshape(-1), keys.aux]), all_ids, vocab_size)
  split = (length + 1) * num_rows
  race = times[:split, :num_prefix * m].reshape(length + 1, num_rows, num_prefix, m)
  residual = times[split:, :num_prefix * m].reshape(length, num_prefix, m)
  uniforms = -jnp.expm1(-jnp.exp(times[split:, num_prefix * m:]))  # 1 - exp(-E) ~ U(0, 1)
  return race, uniforms, residual


def walk(keys: BlockKeys, drafts, target: Support, draft: Support | None, scheme: str,
         dense: bool, vocab_size: int | None, strong=False) -> Block:
  """The walk of :func:`verify_block`, unvalidated (the jitted decoder's step 3).

  Walks ``j = 1 .. L`` with an alive mask (the drafts still consistent with the
  emitted prefix): the GLS family emits the race winner
  (:func:`lcoupling.acceptance.gls_token`); ``specinfer`` / ``spectr`` apply
  their token-level rule (:func:`lcoupling.acceptance.specinfer`,
  :func:`lcoupling.acceptance.spectr`, the latter with ``K' = |alive|``) to the
  alive drafts in their original order, and stop at a residual sample; then the
  bonus race if every position was accepted.

  Args:
    keys: :func:`block_keys` of the block (with ``aux`` unless the GLS family).
    drafts, target, draft, dense: as :func:`verify_block`.
    scheme: the compiled walk, ``"gls"``, ``"specinfer"`` or ``"spectr"`` (:data:`WALK`).
    vocab_size: the vocabulary (``None``: the supports' last axis is the vocabulary).
    strong: (may be traced) the target race takes the minimum over all rows (``gls_strong``)
      instead of the alive ones.
  """
  num_rows, length = drafts.shape
  all_rows = jnp.ones((num_rows,), bool)
  gls = scheme in acceptance.GLS_FAMILY
  race, uniforms, residual_race = _walk_randomness(keys, target, dense, vocab_size)
  if not gls:
    p_draft = jax.nn.softmax(draft.logits, axis=-1)  # [K, L, M_d]

  def prefix(row):
    """Index of ``row``'s support along the randomness' ``R`` axis (one support when dense)."""
    return 0 if dense else row

  def step(alive, j):
    row = jnp.argmax(alive).astype(jnp.int32)  # alive rows share the prefix: any one gives q
    ids, lq = target.ids[row, j], target.logits[row, j]
    x = drafts[:, j]
    if gls:
      y = acceptance.gls_token(race[j][:, prefix(row)], alive | strong, ids, lq)
      accepted = jnp.any(alive & (x == y))
    else:
      q = jax.nn.softmax(lq)
      d_ids, d_p = draft.ids[:, j], p_draft[:, j]  # [K, M_d]
      p_x = _lookup(x[:, None], d_ids, d_p, dense)[:, 0]  # each row's drafter prob of its draft
      u = uniforms[j]
      if scheme == "spectr":  # K' = |alive| i.i.d. drafts, rho* for the dynamic K'
        p_sup = d_p[row] if dense else _lookup(ids, d_ids[row], d_p[row], dense)  # proposal
        q_x = _lookup(x, ids, q, dense)
        accepts, res = acceptance.spectr(u, p_x, q_x, p_sup, q,
                                         jnp.sum(alive).astype(jnp.float32), alive)
      else:  # specinfer, sps
        p_sup = d_p if dense else _lookup(jnp.broadcast_to(ids, (num_rows,) + ids.shape), d_ids,
                                          d_p, dense)
        accepts, res = acceptance.specinfer(u, p_x, p_sup, q, _positions(x, ids, dense), alive)
      residual = acceptance.race_token(residual_race[j, prefix(row)], ids,
                                       acceptance.safe_log(res))
      accepted = jnp.any(accepts)
      y = jnp.where(accepted, x[jnp.argmax(accepts)], residual)
    alive_next = jnp.where(accepted, alive & (x == y), alive)
    return alive_next, (y.astype(jnp.int32), accepted, row)

  alive, (ys, accepted, rows) = jax.lax.scan(step, all_rows, jnp.arange(length))
  last = jnp.argmax(alive).astype(jnp.int32)  # a row alive after all L positions
  bonus = acceptance.gls_token(race[length][:, prefix(last)], alive | strong,
                               target.ids[last, length], target.logits[last, length])
  all_accepted = jnp.all(accepted)
  num_accepted = jnp.where(all_accepted, length, jnp.argmin(accepted)).astype(jnp.int32)
  row = jnp.where(all_accepted, last, rows[jnp.minimum(num_accepted, length - 1)])
  tokens = jnp.concatenate([ys, bonus.astype(jnp.int32)[None]])
  return Block(tokens, num_accepted + 1, num_accepted, row)


def verify_block(key: jax.Array, position, drafts: jax.Array, target: Support,
                 draft: Support | None = None, *, scheme: str, dense: bool = False) -> Block:
  """The verification walk of one block, as a pure function (what ``generate`` runs).

  Args:
    key: the generation key.
    position: output index ``n`` of the block's first token (may be traced).
    drafts: ``int32[K, L]``, row ``k`` = draft ``k``.
    target: :class:`Support` ``[K, L + 1, M]``: the target's filtered distribution after
      ``[last, X[k]_1 .. X[k]_{j-1}]`` for ``j = 1 .. L + 1`` (see :func:`support`).
    draft: :class:`Support` ``[K, L, M']``: each row's filtered drafter distribution at each
      position. Read by ``specinfer`` / ``spectr`` / ``sps`` only; the GLS family never looks
      at it (``None`` is allowed there) -- which is its conditional drafter invariance.
    scheme: one of :data:`lcoupling.acceptance.SCHEMES` (not ``"autoregressive"``).
    dense: promise that ``ids = arange(V)`` along the last axis of both supports (the
      ``top_k = 0`` form); lookups then index instead of matching ids.

  Returns:
    :class:`Block`.
  """
  if scheme not in acceptance.SCHEMES:
    raise ValueError(f"scheme must be one of {list(acceptance.SCHEMES)}, got {scheme!r}")
  key = check_key(key)
  drafts = jnp.asarray(drafts, jnp.int32)
  if drafts.ndim != 2:
    raise ValueError(f"drafts must have shape [K, L], got {tuple(drafts.shape)}")
  k, length = drafts.shape
  if tuple(target.ids.shape[:2]) != (k, length + 1) or target.ids.shape != target.logits.shape:
    raise ValueError(f"target must have ids and logits of shape [K, L + 1, M] = "
                     f"[{k}, {length + 1}, M], got {tuple(target.ids.shape)} and "
                     f"{tuple(target.logits.shape)}")
  if scheme not in acceptance.GLS_FAMILY:
    if draft is None:
      raise ValueError(f"{scheme} reads the draft probabilities: pass draft")
    if tuple(draft.ids.shape[:2]) != (k, length) or draft.ids.shape != draft.logits.shape:
      raise ValueError(f"draft must have ids and logits of shape [K, L, M'] = [{k}, {length}, M'],"
                       f" got {tuple(draft.ids.shape)} and {tuple(draft.logits.shape)}")
  return _verify_block_jit(key, jnp.asarray(position, jnp.int32), drafts, target, draft,
                           jnp.bool_(scheme == "gls_strong"), scheme=WALK.get(scheme, scheme),
                           dense=bool(dense), vocab_size=None)


@functools.partial(jax.jit, static_argnames=("scheme", "dense", "vocab_size"))
def _verify_block_jit(key, position, drafts, target, draft, strong, scheme, dense, vocab_size):
  k, length = drafts.shape
  keys = block_keys(key, position, k, length, scheme not in acceptance.GLS_FAMILY)
  return walk(keys, drafts, target, draft, scheme, dense, vocab_size, strong)


def check_key(key):
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
