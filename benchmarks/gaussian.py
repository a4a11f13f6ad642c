# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Throughput of the Gaussian study's trial evaluation vs a plain NumPy version.

  python benchmarks/gaussian.py [--quick] [--chunk 256] [--impls threefry2x32,rbg]

Measures, for the full grid of one trial (7 sigma2 values, K = 4 with every
K' <= 4, 6 rates, both schemes, N = 2**15):

* JAX trials/s (lcoupling.studies.gaussian, chunks of ``--chunk`` trials, each
  PRNG implementation in ``--impls``);
* a straightforward NumPy implementation of the same scheme (per-trial loop
  over sigma2, schemes, K', decoders and rates; NumPy's PCG64 generator);
* the RNG floor: the time to generate only the random numbers one trial needs
  (N codewords, the labels, K race-time rows, source and side information) with
  the same PRNG, and the evaluation's cost as a multiple of that floor;
* the extrapolated time of the full paper protocol (10 x (10^4 + 10^5) trials).
"""

from __future__ import annotations

import argparse
import functools
import math
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from lcoupling import core, parallel  # noqa: E402
from lcoupling.compression import codec  # noqa: E402
from lcoupling.studies import gaussian as G  # noqa: E402

N = 2 ** 15
GRID = (0.01, 0.008, 0.006, 0.005, 0.003, 0.002, 0.001)
RATES = (2, 4, 8, 16, 32, 64)
K = 4
S2TA = 0.5
FULL_PROTOCOL_TRIALS = 10 * (10_000 + 100_000)


def _time_chunks(fn, key, num_trials, chunk):
  for _ in parallel.iterate_trials(fn, key, chunk, chunk_size=chunk):  # compile + warm up
    pass
  t0 = time.perf_counter()
  for _ in parallel.iterate_trials(fn, key, num_trials, chunk_size=chunk, start=10 ** 6):
    pass
  return (time.perf_counter() - t0) / num_trials


def rng_floor_fn(key, index):
  """Only the random numbers of one trial, with the study's keys and streams."""
  del index
  ck, sk = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
  z = jax.random.normal(jax.random.fold_in(ck, codec.CODEBOOK_STREAM), (N,), jnp.float32)
  counts = codec.bin_counts(jax.random.fold_in(ck, codec.LABEL_STREAM), N, max(RATES))
  log_s = core.log_race_times(jax.random.fold_in(ck, codec.RACE_STREAM), (K, N))
  a, t = G._source(sk, K, S2TA)
  return jnp.min(z) + jnp.min(log_s) + counts[0] + a + t[0]  # keep everything alive


def numpy_trial(rng):
  """One trial of the full grid, the straightforward way (per-trial loops)."""
  z = rng.standard_normal(N).astype(np.float32)
  labels = rng.integers(0, 64, N)
  log_s = np.log(rng.exponential(size=(K, N))).astype(np.float32)
  a = rng.standard_normal()
  t = a + math.sqrt(S2TA) * rng.standard_normal(K)
  s2_t = 1.0 + S2TA
  out = []
  for s2 in GRID:
    u = math.sqrt(1.0 + s2) * z
    s2_w = 1.0 + s2
    v = s2_w - 1.0 / s2_t
    lam = -0.5 * (u - a) ** 2 / s2 + 0.5 * u ** 2 / s2_w
    mus = [-0.5 * (u - tk / s2_t) ** 2 / v + 0.5 * u ** 2 / s2_w for tk in t]
    for scheme in ("gls", "baseline"):
      for kp in range(1, K + 1):
        rows = log_s[:kp].min(0) if scheme == "gls" else log_s[0]
        y = int(np.argmin(rows - lam))
        for lm in RATES:
          in_bin = (labels % lm) == (labels[y] % lm)
          best, match = np.inf, False
          for k in range(kp):
            row = log_s[k] if scheme == "gls" else log_s[0]
            x = int(np.argmin(np.where(in_bin, row - mus[k], np.inf)))
            a_hat = (S2TA * u[x] + s2 * t[k]) / (s2 * S2TA + S2TA + s2)
            best = min(best, (a - a_hat) ** 2)
            match |= x == y
          out.append((best, match))
  return out


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--quick", action="store_true", help="fewer trials (about 1 minute)")
  p.add_argument("--chunk", type=int, default=256)
  p.add_argument("--impls", default="threefry2x32,rbg")
  args = p.parse_args(argv)
  n_jax = 512 if args.quick else 2048
  n_np = 2 if args.quick else 6
  print(f"devices: {jax.devices()}  N = {N}, K = {K}, {len(GRID)} sigma2, {len(RATES)} rates, "
        f"both schemes; chunk {args.chunk}, trial_batch 1")
  rng = np.random.default_rng(0)
  numpy_trial(rng)
  t0 = time.perf_counter()
  for _ in range(n_np):
    numpy_trial(rng)
  t_np = (time.perf_counter() - t0) / n_np
  print(f"NumPy reference:            {1 / t_np:9.2f} trials/s  ({t_np * 1e3:8.1f} ms/trial, "
        f"{n_np} trials)")
  fn = G.trial_fn(N, max(RATES), K, RATES, GRID, S2TA, codec.bin_capacity(N, max(RATES)), 1)
  for impl in args.impls.split(","):
    key = jax.random.key(0, impl=impl)
    t_jax = _time_chunks(fn, key, n_jax, args.chunk)
    t_rng = _time_chunks(rng_floor_fn, key, n_jax, args.chunk)
    seq = jax.custom_batching.sequential_vmap(rng_floor_fn)
    t_rng_seq = _time_chunks(seq, key, n_jax, args.chunk)
    floor = min(t_rng, t_rng_seq)
    print(f"JAX [{impl:12s}]:        {1 / t_jax:9.2f} trials/s  ({t_jax * 1e3:8.3f} ms/trial)  "
          f"speed-up vs NumPy x{t_np / t_jax:.1f}")
    print(f"  RNG floor [{impl:12s}]: {floor * 1e3:8.3f} ms/trial (vectorised {t_rng * 1e3:.3f}, "
          f"sequential {t_rng_seq * 1e3:.3f}); evaluation = {t_jax / floor:.2f} x the floor")
    print(f"  full protocol ({FULL_PROTOCOL_TRIALS:,} trials): "
          f"{FULL_PROTOCOL_TRIALS * t_jax / 3600:.2f} h extrapolated")


if __name__ == "__main__":
  main()
