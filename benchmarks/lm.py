# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Language-model forward passes against their roofline floor.

Usage::

    python benchmarks/lm.py [--model smollm2-135m] [--quick] [--dtype float32|bfloat16]
                            [--prompt_len P] [--reps R] [--random_init]

``--random_init`` builds the named model's architecture (:func:`lcoupling.lm.architecture`)
with random weights instead of loading its file: the same bytes and FLOPs per pass, for a
machine the files cannot reach (an accelerator with no package index; ``make gpu-paper``
loads the real ones).

A forward pass cannot be faster than its floor

    floor = max(bytes read / memory bandwidth, FLOPs / matmul FLOP rate),

which a pass reaches only if it reads and computes at once, each at full
speed. A pass that does one after the other takes their sum, so the table also
prints ``time / (memory floor + compute floor)`` (``ratio to sum``; below 1 the
two overlap): where the two floors are equal, such a pass is 2x its floor.
Both rates are measured in the same run: the bandwidth as the best of a
large array reduction (``jnp.sum``) and a large matrix-vector product (the
kernel a decode step is made of), the FLOP rate as a large square matmul in
the model's dtype through the model's own :func:`lcoupling.lm.model.dense`
(the matrix-vector product takes the better of ``v @ W`` and ``W @ v``). Bytes are
the parameters a pass reads (a tied embedding counted once, as the output head; an untied
embedding table, of which a pass gathers a few rows, not at all) plus the KV-cache entries a pass
must read (the ``P`` valid positions of each row) and write; FLOPs are ``2 x`` the
multiply-adds of the projections, the MLP, the head and causal attention
over the valid positions.

Measured (jitted, after a warm-up call, best of ``--reps`` wall-clock times,
``block_until_ready``; before every rep each roofline kernel runs once, and a
pass's floor uses the best rates of its own reps, so that pass and floor are
measured over the same stretch of time on a shared CPU):

* ``prefill``: a ``P``-token prompt into a fresh cache (compute-bound);
* ``decode Bx1``: one token for each of ``B`` = 1, 4, 8 rows at position ``P``
  (a ``lax.fori_loop`` of steps, the loop of :func:`lcoupling.lm.generate.decode`;
  memory-bound: the weights are read once per step);
* ``verify Kx5``: a verification pass of K = 2 and K = 8 rows x 5 tokens at
  position ``P`` (multi-draft speculative decoding with K drafts of L = 4), also
  timed as a loop of passes (divided by their number), as the decoding loop runs
  them: on a GPU a lone jitted call adds about 1.5 ms of dispatch to a 2 ms pass.

The cache has ``P + 64`` positions (the static-shape design reads all of them;
the floor counts only the ``P`` valid ones).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lcoupling import lm  # noqa: E402

DECODE_STEPS = 16


def _once(fn, *args):
  t0 = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  return time.perf_counter() - t0, out


class Roofline:
  """The roofline kernels (see the module docstring), timed one call at a time.

  :meth:`sample` times each kernel once and keeps the best rates seen since
  :meth:`reset`: interleaved with a pass's reps, the floor of that pass comes
  from the same stretch of time (the CPU is shared: its speed drifts).
  """

  def __init__(self, dtype, quick):
    n = (64 if quick else 128) * 1024 * 1024  # float32 elements: 256 / 512 MB
    self.x = jnp.ones((n,), jnp.float32)
    self.w = jnp.ones((n // 1024, 1024), jnp.float32)
    self.vl, self.vr = jnp.ones((1, n // 1024)), jnp.ones((1024, 1))
    self.m = 1536 if quick else 2048
    self.a = jnp.ones((self.m, self.m), dtype)
    self.kernels = {"sum": (jax.jit(jnp.sum), (self.x,), self.x.nbytes),
                    "v@W": (jax.jit(lambda v, w: v @ w), (self.vl, self.w), self.w.nbytes),
                    "W@v": (jax.jit(lambda w, v: w @ v), (self.w, self.vr), self.w.nbytes)}
    self.matmul = jax.jit(lm.model.dense)  # the model's own matmul (float32 accumulator)
    for f, args, _ in self.kernels.values():
      jax.block_until_ready(f(*args))
    jax.block_until_ready(self.matmul(self.a, self.a))
    self.reset()

  def reset(self):
    self.bw = {k: 0.0 for k in self.kernels}
    self.flops = 0.0

  def sample(self):
    for name, (f, args, nbytes) in self.kernels.items():
      self.bw[name] = max(self.bw[name], nbytes / _once(f, *args)[0])
    self.flops = max(self.flops, 2 * self.m ** 3 / _once(self.matmul, self.a, self.a)[0])

  @property
  def bandwidth(self):
    return max(self.bw.values())


def measure(roof, fn, state, reps):
  """Best time of ``state -> (output, state)`` over ``reps`` calls, each after a roofline sample.

  ``state`` (a KV cache) may be donated by ``fn``; its output state feeds the next call.
  """
  _, (_, state) = _once(fn, state)  # compile + warm up
  roof.reset()
  best = float("inf")
  for _ in range(reps):
    roof.sample()
    t, (_, state) = _once(fn, state)
    best = min(best, t)
  roof.sample()
  return best


def model_costs(c, itemsize):
  """Per-token matmul parameters, parameter bytes, per-position cache bytes (all layers)."""
  d, f, n = c.hidden_size, c.intermediate_size, c.num_layers
  q, kv = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim
  per_layer = d * q + 2 * d * kv + q * d + 3 * d * f
  matmul_params = n * per_layer + d * c.vocab_size  # the head
  # An untied embedding table is only gathered (a few rows), never read whole: not counted.
  read_params = c.num_parameters - (0 if c.tie_embeddings else c.vocab_size * d)
  param_bytes = read_params * itemsize
  cache_bytes_per_pos = 2 * n * kv * itemsize
  return matmul_params, param_bytes, cache_bytes_per_pos


def attention_flops(c, rows, t, start):
  """2 x multiply-adds of q.k and p.v for ``t`` queries per row at positions start..start+t-1."""
  keys = rows * (t * start + t * (t + 1) // 2)  # causal: query i sees start + i + 1 keys
  return 2 * 2 * c.num_layers * c.num_heads * c.head_dim * keys


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--model", default="smollm2-135m")
  ap.add_argument("--data_dir", default="data")
  ap.add_argument("--dtype", choices=("float32", "bfloat16"), default=None)
  ap.add_argument("--quick", action="store_true", help="fewer reps, shorter prompt")
  ap.add_argument("--prompt_len", type=int, default=None, help="P (default 256, quick 128)")
  ap.add_argument("--reps", type=int, default=None, help="default 5, quick 3")
  ap.add_argument("--random_init", action="store_true",
                  help="the model's architecture with random weights (no file needed)")
  args = ap.parse_args(argv)
  reps = args.reps or (3 if args.quick else 5)
  p_len = args.prompt_len or (128 if args.quick else 256)
  s_len = p_len + 64

  if args.random_init:
    c = lm.architecture(args.model, args.dtype or lm.loading.default_dtype())
    model = lm.Llama(c, rngs=nnx.Rngs(0))
  else:
    loaded = lm.load(args.model, dtype=args.dtype, data_dir=args.data_dir)
    model, c = loaded.model, loaded.config
  itemsize = jnp.dtype(c.dtype).itemsize
  dev = jax.devices()[0]
  print("# Language-model forward passes vs roofline")
  print(f"jax {jax.__version__}  python {platform.python_version()}  backend "
        f"{jax.default_backend()} ({getattr(dev, 'device_kind', dev.platform)})  host cpus "
        f"{os.cpu_count()}; CPU {lm.cpu_kernels.describe()}")
  print(f"model {args.model}{' (random weights)' if args.random_init else ''}: "
        f"{c.num_parameters / 1e6:.1f} M parameters, {c.dtype}; prompt "
        f"P = {p_len}, cache {s_len} positions; best of {reps} reps after warm-up, each rep "
        "after one call of every roofline kernel\n")

  roof = Roofline(c.dtype, args.quick)
  matmul_params, param_bytes, cache_pos_bytes = model_costs(c, itemsize)
  rows_out = []

  def record(name, t, rows, t_len, start, tokens):
    flops = 2 * matmul_params * rows * t_len + attention_flops(c, rows, t_len, start)
    nbytes = param_bytes + cache_pos_bytes * rows * (start + t_len)  # read start, write t_len
    mem, comp = nbytes / roof.bandwidth, flops / roof.flops
    rows_out.append((name, t, mem, comp, tokens / t, roof.bandwidth, roof.flops))

  prompt = jnp.asarray(np.random.default_rng(0).integers(0, c.vocab_size, p_len), jnp.int32)

  @functools.partial(jax.jit, static_argnums=(2,))
  def prefill(model, prompt, s):
    cache = model.init_cache(1, s)
    logits, cache = model(prompt[None], cache, jnp.zeros((1,), jnp.int32))
    return logits[:, -1], cache

  t = measure(roof, lambda state: (prefill(model, prompt, s_len), state), None, reps)
  record(f"prefill 1x{p_len}", t, 1, p_len, 0, p_len)
  _, base_cache = prefill(model, prompt, s_len)

  # Decode steps and verification passes update a donated cache in place, as
  # the decoding loops do (their cache is loop state); each rep restarts at P.
  @functools.partial(jax.jit, static_argnums=(4,), donate_argnums=(1,))
  def decode_steps(model, cache, tok, pos, n):
    def body(i, state):
      cache, tok = state
      logits, cache = model(tok, cache, pos + i)
      return cache, jnp.argmax(logits[:, -1], axis=-1).astype(jnp.int32)[:, None]

    cache, tok = jax.lax.fori_loop(0, n, body, (cache, tok))
    return tok, cache

  for b in (1, 4, 8):
    cache = jax.tree.map(jnp.array, lm.cache.broadcast_rows(base_cache, b))
    tok = jnp.zeros((b, 1), jnp.int32)
    pos = jnp.full((b,), p_len, jnp.int32)
    t = measure(roof, lambda cache: decode_steps(model, cache, tok, pos, DECODE_STEPS), cache,
                reps) / DECODE_STEPS
    record(f"decode {b}x1", t, b, 1, p_len, b)

  # Verification passes likewise DECODE_STEPS at a time in a loop (each at position P, the
  # tokens' logits reduced so that none is dead code): the per-call dispatch (flattening the
  # model's arrays, ~1 ms) is paid once per block inside a decoding loop, not once per pass.
  @functools.partial(jax.jit, static_argnums=(4,), donate_argnums=(1,))
  def verify(model, cache, tokens, pos, n):
    def body(i, state):
      cache, acc = state
      logits, cache = model(tokens, cache, pos)
      return cache, acc + jnp.argmax(logits, axis=-1).astype(jnp.int32)

    cache, acc = jax.lax.fori_loop(0, n, body, (cache, jnp.zeros(tokens.shape, jnp.int32)))
    return acc, cache

  for b in (2, 8):  # K = 2 (the CPU's choice, benchmarks/specdec.py) and K = 8 drafts, L = 4
    cache = jax.tree.map(jnp.array, lm.cache.broadcast_rows(base_cache, b))
    tokens = jnp.zeros((b, 5), jnp.int32)
    pos = jnp.full((b,), p_len, jnp.int32)
    t = measure(roof, lambda cache: verify(model, cache, tokens, pos, DECODE_STEPS), cache,
                reps) / DECODE_STEPS
    record(f"verify {b}x5", t, b, 5, p_len, 5 * b)

  print("| pass | time (ms) | memory floor (ms) | compute floor (ms) | ratio to floor "
        "| ratio to sum | tokens/s | bandwidth (GB/s) | matmul (GFLOP/s) |")
  print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
  for name, t, mem, comp, rate, bw, fl in rows_out:
    print(f"| {name} | {t * 1e3:.1f} | {mem * 1e3:.1f} | {comp * 1e3:.1f} | "
          f"{t / max(mem, comp):.2f} | {t / (mem + comp):.2f} | {rate:.0f} | {bw / 1e9:.1f} | "
          f"{fl / 1e9:.0f} |")
  print("\nbandwidth = the best of jnp.sum / v@W / W@v and matmul = a "
        f"{roof.m}^3 {c.dtype} matmul, both over the same reps as the pass")


if __name__ == "__main__":
  main()
