# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Metrics of speculative decoding, and a phase-timed decoder for wall-clock measurements.

Counting metrics read a :class:`~lcoupling.specdec.Generation` (one, or a
batch from ``vmap``: every function sums over all leading axes):

* :func:`block_efficiency` -- tokens emitted per target call, bonus included
  (at most ``L + 1``; 1 for ``autoregressive``), the paper's estimator: the
  ratio of each sequence, averaged (:func:`block_efficiency_per_seed` on a
  ``[seeds, prompts]`` grid: the mean over prompts per seed, whose mean and
  SEM over seeds a study reports); :func:`pooled_block_efficiency` is the other
  estimator, all tokens over all target calls;
* :func:`accepted_length_histogram` -- blocks by number of accepted drafts ``0 .. L``;
* :func:`position_acceptance` -- ``Pr[draft position j accepted | reached]``;
* :func:`summary` -- all of the above as a dict.

:func:`batched_generate` runs ``generate`` over a ``[seeds, prompts]`` grid of
keys and padded prompts in vmapped chunks of one shape (one compilation);
:func:`continuations` continues prompts with the target alone.

Wall-clock metrics need a host loop: :func:`timed_generate` runs the same
computation as :func:`~lcoupling.specdec.generate` (same tokens for the same
key) with drafting, the target pass and the verification as three separately
jitted functions per block, and times each (measurement only; the jitted
``generate`` is the fast path). :func:`token_rate` turns tokens and seconds
into tokens/s. :func:`step_ms` times one cached decode step of each of
several models, interleaved (a drafter's cost relative to its target).

Example:
  >>> import jax, jax.numpy as jnp
  >>> from lcoupling import specdec
  >>> from lcoupling.lm import MarkovLM
  >>> t = MarkovLM(jnp.log(jnp.array([[.6, .3, .1], [.2, .5, .3], [.1, .1, .8]])))
  >>> d = MarkovLM(jnp.log(jnp.array([[.5, .3, .2], [.3, .4, .3], [.2, .2, .6]])))
  >>> keys = jax.random.split(jax.random.key(0), 64)
  >>> run = lambda k: specdec.generate(k, t, jnp.array([0]), scheme="gls", drafter=d,
  ...                                 num_drafts=2, draft_length=2, max_new_tokens=6)
  >>> gen = jax.vmap(run)(keys)
  >>> 1.0 <= block_efficiency(gen) <= 3.0, accepted_length_histogram(gen).shape
  (True, (3,))
  >>> position_acceptance(gen).shape
  (2,)
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling import acceptance
from lcoupling.specdec import engine
from lcoupling.specdec.verification import check_key

__all__ = ["batched_generate", "continuations", "block_efficiency", "block_efficiency_per_seed",
           "pooled_block_efficiency", "accepted_length_histogram", "position_acceptance",
           "token_rate", "summary", "PhaseTimes", "timed_generate", "step_ms"]


def _np(x):
  return np.asarray(jax.device_get(x))


def _ratios(length, num_target_calls) -> np.ndarray:
  """Tokens per target call of each sequence."""
  return _np(length) / np.maximum(_np(num_target_calls), 1)


def block_efficiency(gen: engine.Generation) -> float:
  """Tokens emitted per target call (bonus included): the mean over the generations of a batch
  of each one's ratio (on a full ``[seeds, prompts]`` grid: the mean over prompts, then over
  seeds, as in the paper; :func:`block_efficiency_per_seed` gives the per-seed values)."""
  return float(_ratios(gen.length, gen.num_target_calls).mean())


def block_efficiency_per_seed(length, num_target_calls) -> np.ndarray:
  """``float64[S]``: per seed, the mean over prompts of tokens / target calls.

  Args:
    length, num_target_calls: ``[S, P]`` (``Generation`` fields of a ``[seeds, prompts]`` grid).
  """
  return _ratios(length, num_target_calls).mean(axis=1)


def pooled_block_efficiency(gen: engine.Generation) -> float:
  """All tokens over all target calls of a batch (long sequences weigh more; not the paper's
  estimator, :func:`block_efficiency`)."""
  return float(_np(gen.length).sum() / max(_np(gen.num_target_calls).sum(), 1))


def accepted_length_histogram(gen: engine.Generation) -> np.ndarray:
  """``int64[L + 1]``: number of blocks that accepted ``0, 1, .., L`` drafts."""
  lengths = _np(gen.accepted_lengths).ravel()
  size = _np(gen.position_reached).shape[-1] + 1
  return np.bincount(lengths[lengths >= 0], minlength=size)[:size]


def position_acceptance(gen: engine.Generation) -> np.ndarray:
  """``float64[L]``: fraction of the blocks reaching draft position ``j`` that accepted it.

  ``nan`` where no block reached the position.
  """
  size = _np(gen.position_reached).shape[-1]
  reached = _np(gen.position_reached).reshape(-1, size).sum(0)
  accepted = _np(gen.position_accepted).reshape(-1, size).sum(0)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(reached > 0, accepted / np.maximum(reached, 1), np.nan)


def token_rate(num_tokens, seconds: float) -> float:
  """Tokens per second."""
  return float(np.sum(_np(num_tokens))) / seconds


def summary(gen: engine.Generation) -> dict:
  """Block efficiency, mean accepted length, the histogram and per-position acceptance."""
  hist = accepted_length_histogram(gen)
  return {
      "block_efficiency": block_efficiency(gen),
      "pooled_block_efficiency": pooled_block_efficiency(gen),
      "tokens": int(_np(gen.length).sum()),
      "target_calls": int(_np(gen.num_target_calls).sum()),
      "drafter_calls": int(_np(gen.num_drafter_calls).sum()),
      "mean_accepted": float((hist * np.arange(len(hist))).sum() / max(hist.sum(), 1)),
      "accepted_length_histogram": hist.tolist(),
      "position_acceptance": position_acceptance(gen).tolist(),
  }


# --------------------------------------------------------------------------
# Batched generation.
# --------------------------------------------------------------------------


def batched_generate(keys, target, prompts, prompt_lengths, *, batch_size: int,
                     draft_temperatures=None, progress: Callable[[int], None] | None = None,
                     **kwargs) -> engine.Generation:
  """:func:`~lcoupling.specdec.generate` of every (seed, prompt), vmapped in chunks of one shape.

  Row ``(s, i)`` decodes prompt ``prompts[i, :prompt_lengths[i]]`` with ``keys[s, i]``. Each
  chunk of ``batch_size`` rows is one vmapped call of the same shape (the last chunk is
  filled with copies), so a configuration compiles once.

  Args:
    keys: ``[S, P]`` PRNG keys.
    target: the target model.
    prompts: ``int32[P, B]`` one padded prompt buffer per prompt.
    prompt_lengths: ``int[P]``.
    batch_size: rows per vmapped call.
    draft_temperatures: ``None`` or ``float[S, P, K]`` per-row draft temperatures, passed
      traced (every temperature setting shares the compilation).
    progress: optional callback with the number of rows done after each chunk.
    **kwargs: the other arguments of ``generate`` (``scheme``, ``drafter``, ...).

  Returns:
    :class:`~lcoupling.specdec.Generation` (numpy) with leading axes ``[S, P]``.
  """
  keys = jnp.asarray(keys)
  buf, lens = np.asarray(prompts), np.asarray(prompt_lengths)
  s_n, p_n = keys.shape[:2]
  rows = [(s, p) for s in range(s_n) for p in range(p_n)]
  temps = None if draft_temperatures is None else np.asarray(draft_temperatures, np.float32)
  num_drafts = None if temps is None else temps.shape[-1]

  def one(k, b, n, t):
    extra = {} if t is None else {"draft_temperatures": tuple(t[j] for j in range(num_drafts))}
    return engine.generate(k, target, b, prompt_length=n, **kwargs, **extra)

  outs = []
  for lo in range(0, len(rows), batch_size):
    chunk = rows[lo:lo + batch_size]
    full = chunk + [chunk[-1]] * (batch_size - len(chunk))
    k = jnp.stack([keys[s, p] for s, p in full])
    b = jnp.asarray(buf[[p for _, p in full]])
    n = jnp.asarray(lens[[p for _, p in full]])
    if temps is None:
      gen = jax.vmap(lambda k, b, n: one(k, b, n, None))(k, b, n)
    else:
      t = jnp.asarray(np.stack([temps[s, p] for s, p in full]))
      gen = jax.vmap(one)(k, b, n, t)
    gen = jax.device_get(gen)
    outs.append(jax.tree.map(lambda a, m=len(chunk): np.asarray(a)[:m], gen))
    if progress is not None:
      progress(len(chunk))
  cat = jax.tree.map(lambda *a: np.concatenate(a), *outs)
  return jax.tree.map(lambda a: a.reshape((s_n, p_n) + a.shape[1:]), cat)


def continuations(key: jax.Array, target, prompts: Sequence[Sequence[int]], *,
                  max_new_tokens: int, temperature: float = 1.0, top_k: int = 0,
                  eos_id: int | None = None, batch_size: int = 8, bucket: int = 128,
                  indices: Sequence[int] | None = None,
                  progress: Callable[[int], None] | None = None) -> list[list[int]]:
  """Prompt + target-sampled continuation, for every prompt (an exact sample each).

  Prompts are grouped by length (padded to a multiple of ``bucket``) and each group runs
  through :func:`batched_generate` (``scheme="autoregressive"``, ``batch_size`` at a time);
  prompt ``j`` uses ``fold_in(key, indices[j])`` (default ``indices[j] = j``),
  so the text does not depend on the batching or on which other prompts are
  in the list. The continuation stops after ``eos_id`` (included).
  """
  indices = list(range(len(prompts))) if indices is None else [int(i) for i in indices]
  if len(indices) != len(prompts):
    raise ValueError(f"indices has {len(indices)} entries for {len(prompts)} prompts")
  out: list[list[int] | None] = [None] * len(prompts)
  order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
  groups: dict[int, list[int]] = {}
  for i in order:
    groups.setdefault(-(-len(prompts[i]) // bucket) * bucket, []).append(i)

  for width, idx in groups.items():
    buf = np.zeros((len(idx), width), np.int32)
    for r, i in enumerate(idx):
      buf[r, :len(prompts[i])] = prompts[i]
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(
        jnp.asarray([indices[i] for i in idx], jnp.uint32))
    gen = batched_generate(keys[None], target, buf, [len(prompts[i]) for i in idx],
                           batch_size=batch_size, progress=progress, scheme="autoregressive",
                           max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                           eos_id=eos_id)
    for r, i in enumerate(idx):
      out[i] = list(prompts[i]) + gen.tokens[0, r, :gen.length[0, r]].tolist()
  return out  # type: ignore[return-value]


# --------------------------------------------------------------------------
# Phase timing.
# --------------------------------------------------------------------------


class PhaseTimes(NamedTuple):
  """Wall-clock seconds of :func:`timed_generate`, summed over blocks."""

  prefill: float  #: prompt prefill (the first call compiles nothing: all phases are warmed).
  draft: float  #: drafter calls and draft races.
  target: float  #: target passes (+ temperature / top-k of their logits).
  verify: float  #: the walk (races, acceptance, residuals), cache window copy, bookkeeping.
  total: float  #: all of the above.
  num_blocks: int


#: The host loop's phases, in the order :func:`_phases` returns them.
_PHASE_NAMES = ("prefill", "draft", "target", "verify", "autoregressive", "finish")


def _phase_configs(cfg: engine.DecodeConfig) -> dict[str, engine.DecodeConfig]:
  """Each phase's configuration with the fields it does not read made equal, so that
  schemes which differ only there share that phase's compiled program.

  The target pass does not read ``walk``; the draft phase reads only whether the walk is of
  the GLS family (its row keys and whether it keeps the drafter's distributions); prefill and
  finish only whether it is ``"autoregressive"``. The computations, and so the results, are
  the same as with ``cfg``; only the walk itself needs its own program per scheme.
  """
  ar = cfg.walk == "autoregressive"
  rows_only = cfg._replace(walk="autoregressive" if ar else "gls")
  family = "gls" if cfg.walk in acceptance.GLS_FAMILY else "specinfer"
  return dict(prefill=rows_only, draft=cfg._replace(walk=family), target=rows_only,
              verify=cfg, autoregressive=cfg, finish=rows_only)


@functools.lru_cache(maxsize=256)
def _phase(name: str, cfg: engine.DecodeConfig):
  """The jitted phase ``name`` of configuration ``cfg`` (compiled once, reused)."""
  if name == "prefill":
    return jax.jit(lambda target, drafter, prompt, prompt_length: engine.prefill(
        target, drafter, prompt, prompt_length, cfg))
  if name == "draft":
    def draft(key, drafter, drafter_cache, seq, p, n, draft_temperatures):
      keys = engine.keys_of(key, n, cfg)
      return engine.draft_phase(keys, drafter, drafter_cache, seq, p, n, draft_temperatures, cfg)
    return jax.jit(draft, donate_argnums=(2,))
  if name == "target":
    def target_pass(target, target_cache, seq, p, n, drafts, temperature):
      return engine.target_phase(target, target_cache, seq, p, n, drafts, temperature, cfg)
    return jax.jit(target_pass, donate_argnums=(1,))
  if name == "verify":
    def verify(key, state, drafts, target_sup, draft_sup, target_cache, eos_id, strong):
      keys = engine.keys_of(key, state.n, cfg)
      return engine.verify_phase(keys, state, drafts, target_sup, draft_sup, target_cache, eos_id,
                                 strong, cfg)
    return jax.jit(verify, donate_argnums=(5,))
  if name == "autoregressive":
    def autoregressive(key, target, state, temperature, eos_id):
      return engine.autoregressive_step(key, target, state, temperature, eos_id, cfg)
    return jax.jit(autoregressive, donate_argnums=(2,))
  assert name == "finish", name
  return jax.jit(lambda state: engine.finish(state, cfg))


def _phases(cfg: engine.DecodeConfig):
  """The jitted phase functions of one configuration: ``(prefill, draft, target_pass, verify,
  autoregressive, finish)``, each shared with the configurations that agree on what it
  reads (:func:`_phase_configs`)."""
  configs = _phase_configs(cfg)
  return tuple(_phase(name, configs[name]) for name in _PHASE_NAMES)


def step_ms(models: dict, *, steps: int, batch: int = 1, length: int = 256) -> dict[str, float]:
  """Median wall-clock ms of a one-token cached decode step of each model (compiled first).

  The models' steps are interleaved (one step of each, ``steps`` rounds), so
  that on a shared machine every model is timed under the same load and their
  ratios mean something (:mod:`lcoupling.studies.train_drafter` and
  ``benchmarks/drafters.py`` compare drafters with their target by it).

  Args:
    models: name -> model with the decoder interface (``init_cache``, ``__call__``).
    steps: timed rounds.
    batch: rows per step.
    length: cache length; the step writes position ``length // 2``.
  """
  step = jax.jit(lambda m, c, t, p: m(t, c, p))
  tokens = jnp.ones((batch, 1), jnp.int32)
  pos = jnp.full((batch,), length // 2, jnp.int32)
  caches = {name: m.init_cache(batch, length) for name, m in models.items()}
  for name, m in models.items():
    jax.block_until_ready(step(m, caches[name], tokens, pos))
  times = {name: [] for name in models}
  for _ in range(steps):
    for name, m in models.items():
      t0 = time.perf_counter()
      jax.block_until_ready(step(m, caches[name], tokens, pos))
      times[name].append(time.perf_counter() - t0)
  return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def timed_generate(key: jax.Array, target, prompt, *, warmup: bool = True, on_block=None,
                   **kwargs) -> tuple[engine.Generation, PhaseTimes]:
  """:func:`~lcoupling.specdec.generate` as a host loop of separately jitted phases, timed.

  Same arguments as ``generate`` (keyword ``kwargs``) and the same tokens for
  the same key. Each phase is followed by ``block_until_ready``, so the times
  are wall-clock per phase; the host loop and the synchronisation make the
  total slower than ``generate``'s single ``while_loop``. The jitted phases are
  cached and shared between schemes where they compute the same thing (the
  target pass by every scheme with the same ``num_drafts``; only the walk is
  compiled per scheme), so timing several schemes compiles the models once per K.

  Args:
    key, target, prompt, kwargs: as :func:`~lcoupling.specdec.generate`.
    warmup: run the whole decode once untimed first, so that no compilation is timed.
    on_block: called after each block of the returned decode with its drafts
      (``int32[K, L]``, a NumPy array), outside the timed phases (e.g. to study the drafts).

  Returns:
    ``(Generation, PhaseTimes)``.
  """
  cfg, inputs = engine.prepare(target, prompt, **kwargs)
  target, drafter, prompt, plen, temperature, draft_temps, eos, strong = inputs
  key = check_key(key)
  prefill, draft, target_pass, verify, autoregressive, finish = _phases(cfg)
  ready = jax.block_until_ready

  def run(on_block=None):
    times = dict(prefill=0.0, draft=0.0, target=0.0, verify=0.0)
    t0 = time.perf_counter()
    state = ready(prefill(target, drafter, prompt, plen))
    times["prefill"] = time.perf_counter() - t0
    while not bool(state.done):
      if cfg.walk == "autoregressive":
        t0 = time.perf_counter()
        state = ready(autoregressive(key, target, state, temperature, eos))
        times["target"] += time.perf_counter() - t0
        continue
      t0 = time.perf_counter()
      drafts, draft_sup, drafter_cache = ready(
          draft(key, drafter, state.drafter_cache, state.seq, state.p, state.n, draft_temps))
      t1 = time.perf_counter()
      target_sup, target_cache = ready(
          target_pass(target, state.target_cache, state.seq, state.p, state.n, drafts,
                      temperature))
      t2 = time.perf_counter()
      state = state._replace(target_cache=None, drafter_cache=drafter_cache)
      state = ready(verify(key, state, drafts, target_sup, draft_sup, target_cache, eos, strong))
      t3 = time.perf_counter()
      times["draft"] += t1 - t0
      times["target"] += t2 - t1
      times["verify"] += t3 - t2
      if on_block is not None:
        on_block(np.asarray(drafts))
    gen = ready(finish(state))
    return gen, PhaseTimes(total=sum(times.values()), num_blocks=int(gen.num_blocks), **times)

  if warmup:
    run()
  return run(on_block)
