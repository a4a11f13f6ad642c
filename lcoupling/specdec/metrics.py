# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Metrics of speculative decoding, and a phase-timed decoder for wall-clock measurements.

Counting metrics read a :class:`~lcoupling.specdec.Generation` (one, or a
batch from ``vmap``: every function sums over all leading axes):

* :func:`block_efficiency` -- tokens emitted per target call, bonus included
  (at most ``L + 1``; 1 for ``autoregressive``);
* :func:`accepted_length_histogram` -- blocks by number of accepted drafts ``0 .. L``;
* :func:`position_acceptance` -- ``Pr[draft position j accepted | reached]``;
* :func:`summary` -- all of the above as a dict.

Wall-clock metrics need a host loop: :func:`timed_generate` runs the same
computation as :func:`~lcoupling.specdec.generate` (same tokens for the same
key) with drafting, the target pass and the verification as three separately
jitted functions per block, and times each (measurement only; the jitted
``generate`` is the fast path). :func:`token_rate` turns tokens and seconds
into tokens/s.

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
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling.specdec import engine
from lcoupling.specdec.verification import check_key

__all__ = ["block_efficiency", "accepted_length_histogram", "position_acceptance", "token_rate",
           "summary", "PhaseTimes", "timed_generate"]


def _np(x):
  return np.asarray(jax.device_get(x))


def block_efficiency(gen: engine.Generation) -> float:
  """Tokens emitted per target call (bonus included), pooled over a batch of generations."""
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
      "tokens": int(_np(gen.length).sum()),
      "target_calls": int(_np(gen.num_target_calls).sum()),
      "drafter_calls": int(_np(gen.num_drafter_calls).sum()),
      "mean_accepted": float((hist * np.arange(len(hist))).sum() / max(hist.sum(), 1)),
      "accepted_length_histogram": hist.tolist(),
      "position_acceptance": position_acceptance(gen).tolist(),
  }


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


@functools.lru_cache(maxsize=64)
def _phases(cfg: engine.DecodeConfig):
  """The jitted phase functions of one configuration (compiled once, reused)."""

  @jax.jit
  def prefill(target, drafter, prompt, prompt_length):
    return engine.prefill(target, drafter, prompt, prompt_length, cfg)

  @functools.partial(jax.jit, donate_argnums=(2,))
  def draft(key, drafter, drafter_cache, seq, p, n, draft_temperatures):
    keys = engine.keys_of(key, n, cfg)
    return engine.draft_phase(keys, drafter, drafter_cache, seq, p, n, draft_temperatures, cfg)

  @functools.partial(jax.jit, donate_argnums=(1,))
  def target_pass(target, target_cache, seq, p, n, drafts, temperature):
    return engine.target_phase(target, target_cache, seq, p, n, drafts, temperature, cfg)

  @functools.partial(jax.jit, donate_argnums=(5,))
  def verify(key, state, drafts, target_sup, draft_sup, target_cache, eos_id, strong):
    keys = engine.keys_of(key, state.n, cfg)
    return engine.verify_phase(keys, state, drafts, target_sup, draft_sup, target_cache, eos_id,
                               strong, cfg)

  @functools.partial(jax.jit, donate_argnums=(2,))
  def autoregressive(key, target, state, temperature, eos_id):
    return engine.autoregressive_step(key, target, state, temperature, eos_id, cfg)

  @jax.jit
  def finish(state):
    return engine.finish(state, cfg)

  return prefill, draft, target_pass, verify, autoregressive, finish


def timed_generate(key: jax.Array, target, prompt, *, warmup: bool = True, **kwargs
                   ) -> tuple[engine.Generation, PhaseTimes]:
  """:func:`~lcoupling.specdec.generate` as a host loop of separately jitted phases, timed.

  Same arguments as ``generate`` (keyword ``kwargs``) and the same tokens for
  the same key. Each phase is followed by ``block_until_ready``, so the times
  are wall-clock per phase; the host loop and the synchronisation make the
  total slower than ``generate``'s single ``while_loop``.

  Args:
    key, target, prompt, kwargs: as :func:`~lcoupling.specdec.generate`.
    warmup: run the whole decode once untimed first, so that no compilation is timed.

  Returns:
    ``(Generation, PhaseTimes)``.
  """
  cfg, inputs = engine.prepare(target, prompt, **kwargs)
  target, drafter, prompt, plen, temperature, draft_temps, eos, strong = inputs
  key = check_key(key)
  prefill, draft, target_pass, verify, autoregressive, finish = _phases(cfg)
  ready = jax.block_until_ready

  def run():
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
    gen = ready(finish(state))
    return gen, PhaseTimes(total=sum(times.values()), num_blocks=int(gen.num_blocks), **times)

  if warmup:
    run()
  return run()
