# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Trial-parallel evaluation: fixed chunks, sharded over local devices.

Monte-Carlo studies evaluate a per-trial function ``fn(trial_key, trial_index)``
for ``trial_index = start, ..., start + num_trials - 1`` with
``trial_key = fold_in(key, trial_index)``. :func:`iterate_trials` cuts the trial
range into chunks of a *fixed* size (a config field, independent of the number
of devices), shards each chunk's trial axis over a 1-D device mesh with a
:class:`jax.sharding.NamedSharding`, evaluates ``vmap(fn)`` under ``jit`` and
yields the per-trial outputs of each chunk as NumPy arrays, in trial order.

Because every trial's randomness is derived from its index alone and the host
sees the outputs in trial order, any reduction the caller performs on the host
(in float64, chunk after chunk) is bit-identical for 1 or 8 devices, for any
chunk size that divides the work the same way, and after resumption.

Example:
  >>> import jax, jax.numpy as jnp
  >>> fn = lambda k, t: jax.random.uniform(k)
  >>> chunks = list(iterate_trials(fn, jax.random.key(0), 10, chunk_size=4))
  >>> [c.shape for c in chunks]
  [(4,), (4,), (2,)]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

__all__ = ["TRIALS", "trial_mesh", "trial_keys", "iterate_trials", "map_trials", "progress_bar"]

#: Name of the mesh axis that trials are sharded over.
TRIALS = "trials"


def trial_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh named ``'trials'`` over ``devices`` (default: all local devices)."""
  devices = list(jax.local_devices() if devices is None else devices)
  return jax.make_mesh((len(devices),), (TRIALS,), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def trial_keys(key: jax.Array, indices: jax.Array) -> jax.Array:
  """``fold_in(key, i)`` for every trial index ``i`` (vectorised)."""
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(indices, jnp.uint32))


@functools.lru_cache(maxsize=64)
def _compiled(fn, mesh, padded: int, num_args: int):
  sharding = NamedSharding(mesh, P(TRIALS))
  replicated = NamedSharding(mesh, P())

  def run(key, indices, *args):
    indices = jax.lax.with_sharding_constraint(indices, sharding)
    return jax.vmap(lambda k, i: fn(k, i, *args))(trial_keys(key, indices), indices)

  return jax.jit(run, in_shardings=(replicated, sharding) + (replicated,) * num_args,
                 out_shardings=sharding)


def iterate_trials(fn: Callable[[jax.Array, jax.Array], Any], key: jax.Array, num_trials: int, *,
                   chunk_size: int, start: int = 0, mesh: jax.sharding.Mesh | None = None,
                   args: tuple = ()) -> Iterator[Any]:
  """Yields ``vmap(fn)`` outputs (NumPy pytrees) for consecutive trial chunks.

  Args:
    fn: ``fn(trial_key, trial_index, *args) -> pytree of arrays`` for ONE trial.
      It must be a stable object (a module-level function or a
      ``functools.partial`` of one with hashable arguments) so compiled chunks
      are cached.
    key: the study's key; trial ``t`` uses ``fold_in(key, t)``.
    num_trials: number of trials.
    chunk_size: trials per chunk (rounded up to a multiple of the device count;
      the padding trials are computed and dropped). Bounds the memory.
    start: index of the first trial (e.g. selection and evaluation trials use
      disjoint ranges).
    mesh: a 1-D ``'trials'`` mesh; default :func:`trial_mesh`.
    args: arrays (pytrees) shared by every trial, e.g. the distributions under
      study; replicated over the mesh and passed to ``fn`` after the index.
  """
  if num_trials < 0:
    raise ValueError(f"num_trials must be >= 0, got {num_trials}")
  if chunk_size < 1:
    raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
  mesh = trial_mesh() if mesh is None else mesh
  ndev = mesh.devices.size
  padded = int(math.ceil(chunk_size / ndev) * ndev)
  step = _compiled(fn, mesh, padded, len(args))
  for lo in range(0, num_trials, chunk_size):
    n = min(chunk_size, num_trials - lo)
    idx = np.arange(start + lo, start + lo + padded, dtype=np.uint32)
    out = step(key, idx, *args)
    yield jax.tree.map(lambda a: np.asarray(a)[:n], out)


def map_trials(fn, key, num_trials, *, chunk_size, start=0, mesh=None, args=(), progress=None):
  """All per-trial outputs of :func:`iterate_trials`, concatenated (NumPy).

  ``progress``: optional callable ``progress(n)`` called with the number of
  trials finished after each chunk (e.g. ``tqdm.update``).
  """
  chunks = []
  for c in iterate_trials(fn, key, num_trials, chunk_size=chunk_size, start=start, mesh=mesh,
                          args=args):
    chunks.append(c)
    if progress is not None:
      progress(len(jax.tree.leaves(c)[0]))
  if not chunks:
    raise ValueError("map_trials needs num_trials >= 1")
  return jax.tree.map(lambda *a: np.concatenate(a, axis=0), *chunks)


def progress_bar(total: int, desc: str, *, enabled: bool = True, unit: str = "trial"):
  """A tqdm bar (with ETA) for trial loops; a no-op bar when not ``enabled``."""
  from tqdm.auto import tqdm  # noqa: PLC0415

  return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False,
              disable=not enabled, dynamic_ncols=True)
