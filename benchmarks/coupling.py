# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Throughput of Gumbel-max list sampling (GLS) against the RNG floor and NumPy.

Usage::

    python benchmarks/coupling.py [--quick] [--batch B] [--reps R]

For (K, N) in {1, 8} x {32768, 151936} it times, jitted and vmapped over a batch
of keys, after one warm-up call, with ``block_until_ready`` (median of
``--reps`` repetitions):

* ``gls``: :func:`lcoupling.core.gls_sample` (K drafts + target, full support);
* ``floor``: ``jax.random.uniform(key, (K, N))`` for the same keys, reduced with
  ``min`` over the table so the array is not written to memory (GLS does not
  write it either) -- the cost of the random numbers alone;
* ``numpy``: a plain NumPy GLS (``Generator.random`` float32, ``-log U``,
  ``argmin``), one sample at a time.

Results are in microseconds per sample (one sample = K drafts and one target).
A breakdown of the GLS kernel (bits only, ``S = -log1p(-u)``, ``log S``) says
where the time goes, and ``gls-linear`` is a prototype of the race in the
linear domain (``argmin S * exp(-logit)``, one transcendental per entry instead
of two) that core.py could adopt.

The last section times :func:`lcoupling.bounds.gls_acceptance_probability` when
that module is available.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lcoupling import core  # noqa: E402

SIZES = [(1, 32768), (1, 151936), (8, 32768), (8, 151936)]


def _time(fn, *args, reps):
  jax.block_until_ready(fn(*args))  # warm-up (compilation)
  out = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    out.append(time.perf_counter() - t0)
  return statistics.median(out)


def _header(args):
  dev = jax.devices()[0]
  print("# GLS coupling benchmark")
  print(f"jax {jax.__version__}  numpy {np.__version__}  python {platform.python_version()}")
  print(f"backend {jax.default_backend()}  devices {jax.device_count()} x "
        f"{getattr(dev, 'device_kind', dev.platform)}  host cpus {os.cpu_count()}  "
        f"({platform.processor() or platform.machine()})")
  print(f"batch {args.batch} keys/call, median of {args.reps} reps after warm-up, "
        f"{'quick' if args.quick else 'full'} mode\n")


# --------------------------------------------------------------------------
# Kernels.
# --------------------------------------------------------------------------


def _make_kernels(k):

  @jax.jit
  def gls(keys, p, q):
    s = jax.vmap(lambda key: core.gls_sample(key, p, q, k))(keys)
    return s.drafts, s.target

  @functools.partial(jax.jit, static_argnums=1)
  def floor(keys, n):
    return jax.vmap(lambda key: jnp.min(jax.random.uniform(key, (k, n))))(keys)

  def rows(key, n):
    return jax.vmap(lambda r: jax.random.bits(jax.random.fold_in(key, r), (n,), jnp.uint32))(
        jnp.arange(k, dtype=jnp.uint32))

  @jax.jit
  def bits_only(keys, p):
    return jax.vmap(lambda key: jnp.min(rows(key, p.shape[-1]), axis=-1))(keys)

  def uniform(bits):
    return jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32) - 1.0

  @jax.jit
  def race_s(keys, p):  # S = -log1p(-u): one transcendental
    return jax.vmap(lambda key: jnp.argmin(-jnp.log1p(-uniform(rows(key, p.shape[-1]))), -1))(keys)

  @jax.jit
  def race_log_s(keys, p):  # log S: the log of a log, what core does
    return jax.vmap(lambda key: jnp.argmin(core.log_race_times(key, (k, p.shape[-1])), -1))(keys)

  @jax.jit
  def gls_linear(keys, p, q):
    """Prototype: the same race in the linear domain, argmin S / p with 1/p precomputed."""
    inv_p = jnp.exp(jnp.max(p) - p)  # 1/p up to a constant; -inf logits -> inf
    inv_q = jnp.exp(jnp.max(q) - q)

    def one(key):
      s = -jnp.log1p(-uniform(rows(key, p.shape[-1])))
      drafts = jnp.argmin(s * inv_p, axis=-1).astype(jnp.int32)
      target = jnp.argmin(jnp.min(s, axis=0) * inv_q).astype(jnp.int32)
      return drafts, target

    return jax.vmap(one)(keys)

  return gls, floor, bits_only, race_s, race_log_s, gls_linear


def _numpy_gls(rng, p, q, k):
  u = rng.random((k, p.shape[-1]), dtype=np.float32)
  s = -np.log1p(-u)
  drafts = np.argmin(s / p, axis=1)
  target = np.argmin(s.min(axis=0) / q)
  return drafts, target


def bench_sampling(args):
  print("## GLS sampling (us per sample; ratio = time / RNG floor)")
  cols = ["K", "N", "gls", "floor", "gls/floor", "numpy", "numpy/gls", "bits", "S", "logS",
          "gls-linear", "lin/floor"]
  print("| " + " | ".join(cols) + " |")
  print("|" + "---|" * len(cols))
  rng = np.random.default_rng(0)
  for k, n in SIZES:
    logits_p = jnp.asarray(rng.normal(size=n) * 2, jnp.float32)
    logits_q = jnp.asarray(rng.normal(size=n) * 2, jnp.float32)
    keys = jax.random.split(jax.random.key(0), args.batch)
    gls, floor, bits_only, race_s, race_log_s, gls_linear = _make_kernels(k)
    per = lambda t: 1e6 * t / args.batch
    t_gls = per(_time(gls, keys, logits_p, logits_q, reps=args.reps))
    t_floor = per(_time(floor, keys, n, reps=args.reps))
    t_bits = per(_time(bits_only, keys, logits_p, reps=args.reps))
    t_s = per(_time(race_s, keys, logits_p, reps=args.reps))
    t_logs = per(_time(race_log_s, keys, logits_p, reps=args.reps))
    t_lin = per(_time(gls_linear, keys, logits_p, logits_q, reps=args.reps))
    # NumPy: one sample at a time, float32.
    p = np.exp(np.asarray(logits_p, np.float64)); p = (p / p.sum()).astype(np.float32)
    q = np.exp(np.asarray(logits_q, np.float64)); q = (q / q.sum()).astype(np.float32)
    np_rng = np.random.default_rng(1)
    m = max(2, args.batch // 8)
    reps = []
    for _ in range(args.reps):
      t0 = time.perf_counter()
      for _ in range(m):
        _numpy_gls(np_rng, p, q, k)
      reps.append((time.perf_counter() - t0) / m * 1e6)
    t_np = statistics.median(reps)
    row = [k, n, f"{t_gls:.1f}", f"{t_floor:.1f}", f"{t_gls / t_floor:.2f}", f"{t_np:.1f}",
           f"{t_np / t_gls:.1f}", f"{t_bits:.1f}", f"{t_s:.1f}", f"{t_logs:.1f}", f"{t_lin:.1f}",
           f"{t_lin / t_floor:.2f}"]
    print("| " + " | ".join(map(str, row)) + " |", flush=True)
  print("\nbits = threefry bits of the K rows only (min-reduced); S = bits -> -log1p(-u) -> argmin;"
        "\nlogS = core.log_race_times -> argmin; gls-linear = prototype race in the linear domain.\n")


def bench_bounds(args):
  print("## lcoupling.bounds.gls_acceptance_probability(p, q, num_drafts=8)")
  try:
    from lcoupling import bounds
    fn = bounds.gls_acceptance_probability
  except (ImportError, AttributeError):
    print("n/a (lcoupling.bounds not available)")
    return
  print("| N | value | ms per call |")
  print("|---|---|---|")
  rng = np.random.default_rng(2)
  for n in (1000, 151936):
    p = rng.dirichlet(np.ones(n))
    q = rng.dirichlet(np.ones(n))
    try:
      t0 = time.perf_counter()
      val = fn(p, q, num_drafts=8)
      first = time.perf_counter() - t0
      reps = []
      for _ in range(max(1, args.reps // 2)):
        t0 = time.perf_counter()
        val = fn(p, q, num_drafts=8)
        reps.append(time.perf_counter() - t0)
      print(f"| {n} | {float(np.asarray(val)):.6f} | {1e3 * statistics.median(reps):.1f}"
            f" (first call {1e3 * first:.1f}) |", flush=True)
    except Exception as e:  # report, don't crash the benchmark
      print(f"| {n} | error: {type(e).__name__}: {e} | - |")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true", help="small batch, few reps")
  parser.add_argument("--batch", type=int, default=None, help="keys per call (default 64; quick 8)")
  parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default 7; quick 3)")
  args = parser.parse_args(argv)
  args.batch = args.batch or (8 if args.quick else 64)
  args.reps = args.reps or (3 if args.quick else 7)
  _header(args)
  bench_sampling(args)
  bench_bounds(args)


if __name__ == "__main__":
  main()
