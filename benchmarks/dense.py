# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The bfloat16 projection kernel alone, at DRAM scale, against the bandwidth floor.

Usage::

    python benchmarks/dense.py [--layers 28] [--rows 1,2,4,5,8,10,16,40] [--variants dense,xla,min2,pad16,pairs,wxt,reduce]

The weights are ``--layers`` layers of Qwen2.5-Coder-1.5B's projection matrices
(q, k, v, o, gate, up, down; 2.6 GB in bfloat16 for 28 layers, far beyond the
last-level cache, where a small benchmark would mislead), stored ``[out, in]``.
Each variant runs one jitted pass through all of them for ``M`` rows (a decode
step's matrix products without attention, norms or head) and is printed as its
ratio to the floor, a ``jnp.sum`` over the same weights timed beside it (best
of ``--reps``):

* ``dense``: :func:`lcoupling.lm.model.dense` (``x Wᵀ``, float32 accumulator):
  the kernel :func:`lcoupling.lm.cpu_kernels.matmul_t` for 1-48 rows where the
  CPU has AMX-BF16 or AVX512-BF16 (:func:`~lcoupling.lm.cpu_kernels.matmul_isa`
  is printed), else ``xla``;
* ``xla``: XLA's own product as ``dense`` runs it without the kernel (one or two
  bfloat16 rows computed as four, :func:`lcoupling.lm.model.xla_rows_2d`);
* ``min2``: the same product with only one row padded (to two), ``dense``
  until it padded to four;
* ``pad16``: the rows padded to a multiple of 16;
* ``pairs``: the rows in pairs (the weights read ``M / 2`` times);
* ``wxt``: ``W xᵀ`` (the weights as the left operand), transposed back;
* ``reduce``: ``sum(x * W, axis=-1)`` in float32, which XLA fuses into one
  reduction reading the bfloat16 weights (no matrix kernel at all).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lcoupling.lm import cpu_kernels, model  # noqa: E402
from lcoupling.lm.model import dense  # noqa: E402

D, F, KV = 1536, 8960, 256  # Qwen2.5-Coder-1.5B: hidden, MLP, key/value width
SHAPES = {"q": (D, D), "k": (KV, D), "v": (KV, D), "o": (D, D), "gate": (F, D), "up": (F, D),
          "down": (D, F)}


def _xla(x, w):
  return model.xla_rows_2d(x, w).astype(x.dtype)


def _pad16(x, w):
  pad = -x.shape[0] % 16
  y = jax.lax.dot_general(jnp.pad(x, ((0, pad), (0, 0))), w, (((1,), (1,)), ((), ())),
                          preferred_element_type=jnp.float32)
  return y[:x.shape[0]].astype(x.dtype)


def _min2(x, w):
  pad = 2 - x.shape[0] if x.shape[0] < 2 else 0
  y = jax.lax.dot_general(jnp.pad(x, ((0, pad), (0, 0))), w, (((1,), (1,)), ((), ())),
                          preferred_element_type=jnp.float32)
  return y[:x.shape[0]].astype(x.dtype)


def _pairs(x, w):
  m = x.shape[0]
  x = jnp.pad(x, ((0, m % 2), (0, 0)))
  return jnp.concatenate([dense(x[i:i + 2], w) for i in range(0, x.shape[0], 2)])[:m]


def _wxt(x, w):
  y = jax.lax.dot_general(w, x, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
  return y.T.astype(x.dtype)


def _reduce(x, w):
  prods = x.astype(jnp.float32)[:, None, :] * w.astype(jnp.float32)[None]
  return jnp.sum(prods, axis=-1).astype(x.dtype)


VARIANTS = {"dense": dense, "xla": _xla, "min2": _min2, "pad16": _pad16, "pairs": _pairs, "wxt": _wxt, "reduce": _reduce}


def weights(num_layers: int):
  """Random ``[out, in]`` bfloat16 matrices, one dict per layer."""
  key = jax.random.key(0)
  return [{name: (0.02 * jax.random.normal(jax.random.fold_in(key, 16 * i + j), shape)
                  ).astype(jnp.bfloat16) for j, (name, shape) in enumerate(SHAPES.items())}
          for i in range(num_layers)]


def forward(product):
  """A jitted pass through every layer's projections, each output feeding the next."""
  @jax.jit
  def fn(layers, h):
    for p in layers:
      kv = jnp.tile(product(h, p["k"]) + product(h, p["v"]), (1, D // KV))
      h = h + 1e-3 * product(product(h, p["q"]) + kv, p["o"])
      h = h + 1e-3 * product(jax.nn.silu(product(h, p["gate"])) * product(h, p["up"]), p["down"])
    return h
  return fn


@jax.jit
def _sum(layers):
  return sum(jnp.sum(w, dtype=jnp.float32) for p in layers for w in p.values())


def _best(fn, *args, reps):
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return min(times)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--layers", type=int, default=28)
  ap.add_argument("--rows", default="1,2,4,5,8,10,16,40")
  ap.add_argument("--variants", default=",".join(VARIANTS))
  ap.add_argument("--reps", type=int, default=5)
  args = ap.parse_args(argv)
  rows = [int(r) for r in args.rows.split(",")]
  names = args.variants.split(",")
  unknown = [n for n in names if n not in VARIANTS]
  if unknown:
    ap.error(f"--variants: unknown {unknown}; known: {', '.join(VARIANTS)}")
  layers = weights(args.layers)
  nbytes = sum(w.nbytes for p in layers for w in p.values())
  floor = _best(_sum, layers, reps=args.reps)
  print(f"# jax {jax.__version__}, {jax.default_backend()}; {args.layers} layers, "
        f"{nbytes / 1e9:.2f} GB of bfloat16 weights; jnp.sum floor {floor * 1e3:.1f} ms "
        f"({nbytes / floor / 1e9:.1f} GB/s)\n# CPU: {cpu_kernels.describe()}\n")
  print("| variant | " + " | ".join(f"M = {m}" for m in rows) + " |")
  print("|---|" + "---:|" * len(rows))
  for name in names:
    fn, cells = forward(VARIANTS[name]), []
    for m in rows:
      t = _best(fn, layers, jnp.ones((m, D), jnp.bfloat16), reps=args.reps)
      floor = _best(_sum, layers, reps=2)  # the floor of the same stretch of time
      cells.append(f"{t * 1e3:.0f} ms ({t / floor:.2f}x)")
    print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
  main()
