# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Cost of sequence-level verification against the target pass it verifies.

Usage::

    python benchmarks/specdec.py [--quick] [--reps R] [--decode]
    python benchmarks/specdec.py --target smollm2-135m --drafter DRAFTER_SPEC [--quick]
    python benchmarks/specdec.py --target qwen2.5-coder-1.5b --drafter model:qwen2.5-coder-0.5b \
        [--quick] [--dtype bfloat16] [--num_drafts K] [--draft_length L] [--json PATH]

Models: a random-init Llama with the SmolLM2-135M architecture (30 layers,
d = 576, 9 / 3 heads, head_dim 64, SwiGLU 1536, vocabulary 49 152; no
checkpoint needed: the costs do not depend on the weights) as the target and
its first two layers' shape (2 layers, same width and head) as the drafter.
Every section is a function of ``(target, drafter)``, so real checkpoints can be
plugged in (:func:`verification_cost`, :func:`decode_rate`,
:func:`logits_agreement`).

1. **Verification cost** (:func:`verification_cost`), for every scheme at
   ``K = 8`` drafts (``K = 1`` for ``sps`` / ``daliri``), ``L = 4``, top-k 50
   and the dense vocabulary (``top_k = 0``), on a real block (prompt prefilled,
   drafts drawn by the drafter, target logits from the target), best of
   ``--reps`` timed calls after a warm-up, each jitted separately:

   * ``target``: one target forward of the ``K x (L + 1)`` verified tokens
     (the model call, cache of the prompt length);
   * ``filter``: temperature + top-k of its logits (:func:`lcoupling.specdec.support`);
   * ``walk``: the verification proper -- the block's keys, the race times on
     the support, the scheme's walk with its alive mask, residuals, bonus
     (:func:`lcoupling.specdec.verify_block`'s computation).

   ``walk %`` and ``(filter + walk) %`` are relative to ``target``.
2. **Logits agreement** (:func:`logits_agreement`): whether the verification
   pass and the one-token decode give bit-identical logits for the same prefix
   (what ``gls_strong == autoregressive`` token for token needs on a real model).
3. **Decode** (``--decode``; :func:`decode_rate`): tokens/s of the jitted
   ``generate``, block efficiency and the draft / target / verify split of
   :func:`lcoupling.specdec.metrics.timed_generate`. With random weights the
   drafts are rarely accepted; the section is there for real models.

With ``--target SPEC --drafter DRAFTER_SPEC`` (e.g. ``smollm2-135m`` and a
drafter of ``configs/train_drafter.py``, ``dir:runs/train_drafter/drafters/NAME``,
or ``early_exit_linear:4``, built from the target on HumanEval prompts 0-109),
the real models are used instead, and section 3 decodes a real HumanEval
prompt: tokens/s of every scheme relative to ``autoregressive`` with the same
target, at batch 1 (latency), with the draft / target / verify split.
Section 3 with real models is :func:`speedup_table`: every scheme is compiled
first, then the timed decodes are *interleaved* (rep by rep, seed by seed, every
scheme in turn) so that all schemes run under the same load, on the same prompt
and seeds; tokens/s is the decode rate (the prompt's prefill, which a short
decode on a CPU is dominated by, is reported apart); ``--json PATH`` writes its
rows (``scheme, K, L, tokens_per_s, speedup_vs_autoregressive,
block_efficiency``, the phase split, the rates with prefill) and the run's
metadata.
4. **Shared drafts** (``--draft_sharing`` with ``--target``, alone; :func:`draft_sharing`):
   over whole GLS decodes, how often the K drafts of a block are identical and how many
   rows a token tree of their distinct prefixes would verify, against ``K (L + 1)``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lcoupling import acceptance, specdec  # noqa: E402
from lcoupling.lm import Llama, architecture, cpu_kernels  # noqa: E402
from lcoupling.lm import cache as lm_cache  # noqa: E402
from lcoupling.specdec import engine, metrics, verification  # noqa: E402

SMOLLM2_135M = architecture("smollm2-135m")  # float32, random weights below
SCHEMES = ("sps", "daliri", "specinfer", "spectr", "gls", "gls_strong")


def _time(fn, *args, reps):
  """Best of ``reps`` timed calls after a warm-up (the minimum is the least disturbed by other
  processes sharing the CPU)."""
  jax.block_until_ready(fn(*args))  # warm-up (compilation)
  out = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    out.append(time.perf_counter() - t0)
  return min(out)


def _prompt(vocab_size, length, seed=0):
  return jnp.asarray(np.random.default_rng(seed).integers(0, vocab_size, length), jnp.int32)


def _block(target, drafter, scheme, num_drafts, draft_length, top_k, prompt, temperature=1.0):
  """A real block: prefilled caches, drafts and the target's cache state before its pass."""
  cfg, inputs = engine.prepare(target, prompt, scheme=scheme, drafter=drafter,
                               num_drafts=num_drafts, draft_length=draft_length,
                               max_new_tokens=16, temperature=temperature, top_k=top_k)
  state = jax.jit(lambda t, d, p, n: engine.prefill(t, d, p, n, cfg))(
      inputs.target, inputs.drafter, inputs.prompt, inputs.prompt_length)
  key = jax.random.key(0)
  keys = engine.keys_of(key, state.n, cfg)
  drafts, draft_sup, _ = jax.jit(
      lambda d, c, s, p, n, dt: engine.draft_phase(keys, d, c, s, p, n, dt, cfg))(
          inputs.drafter, state.drafter_cache, state.seq, state.p, state.n,
          inputs.draft_temperatures)
  return cfg, key, state, drafts, draft_sup, inputs.temperature, inputs.strong


def verification_cost(target, drafter, *, schemes=SCHEMES, num_drafts=8, draft_length=4,
                      top_ks=(50, 0), prompt_length=64, reps=5, log=print) -> list[dict]:
  """Times the target pass, the filter and each scheme's walk on one real block (see module doc)."""
  rows = []
  forward_ms, filter_ms = {}, {}  # per K (and top-k): they do not depend on the scheme
  for top_k in top_ks:
    for scheme in schemes:
      k = 1 if scheme in acceptance.SINGLE_DRAFT else num_drafts
      prompt = _prompt(target.vocab_size, prompt_length)
      cfg, key, state, drafts, draft_sup, temp, strong = _block(
          target, drafter, scheme, k, draft_length, top_k, prompt)
      p = cfg.prompt_length
      tokens = jnp.concatenate([jnp.full((k, 1), prompt[-1]), drafts], axis=1)
      positions = jnp.full((k,), p - 1, jnp.int32)
      forward = jax.jit(lambda m, c, t, pos: m(t, c, pos)[0])
      logits = forward(target, state.target_cache, tokens, positions)
      if k not in forward_ms:
        forward_ms[k] = 1e3 * _time(forward, target, state.target_cache, tokens, positions,
                                    reps=reps)
      filt = jax.jit(lambda lg, t: specdec.support(lg, t, cfg.top_k))
      target_sup = filt(logits, temp)
      if (k, top_k) not in filter_ms:
        filter_ms[k, top_k] = 1e3 * _time(filt, logits, temp, reps=reps)

      @jax.jit
      def walk(key, n, drafts, target_sup, draft_sup, strong):
        keys = engine.keys_of(key, n, cfg)
        return verification.walk(keys, drafts, target_sup, draft_sup, cfg.walk, cfg.top_k == 0,
                                 cfg.vocab_size, strong)

      walk_ms = 1e3 * _time(walk, key, state.n, drafts, target_sup, draft_sup, strong, reps=reps)
      row = dict(scheme=scheme, K=k, L=draft_length, top_k=top_k, target_ms=forward_ms[k],
                 filter_ms=filter_ms[k, top_k], walk_ms=walk_ms,
                 walk_pct=100 * walk_ms / forward_ms[k],
                 filter_walk_pct=100 * (filter_ms[k, top_k] + walk_ms) / forward_ms[k])
      rows.append(row)
      log(f"  {scheme:10s} K={k} top_k={top_k:<3d} target {row['target_ms']:8.1f} ms  filter "
          f"{row['filter_ms']:7.2f} ms  walk {walk_ms:7.2f} ms  ({row['walk_pct']:.2f} %)")
  return rows


def logits_agreement(target, *, num_drafts=8, draft_length=4, prompt_length=64, seed=0) -> dict:
  """Verification pass (K rows x (L + 1) tokens) vs one-token decode of the same prefixes."""
  p = prompt_length
  rng = np.random.default_rng(seed)
  prompt = _prompt(target.vocab_size, p, seed)
  drafts = jnp.asarray(rng.integers(0, target.vocab_size, (num_drafts, draft_length)), jnp.int32)
  size = p + draft_length + 2
  call = jax.jit(lambda m, t, c, pos: m(t, c, pos))
  cache = target.init_cache(1, size)
  _, cache = call(target, prompt[None, :-1], cache, jnp.zeros((1,), jnp.int32))
  tokens = jnp.concatenate([jnp.full((num_drafts, 1), prompt[-1]), drafts], axis=1)
  big, _ = call(target, tokens, lm_cache.broadcast_rows(cache, num_drafts),
                jnp.full((num_drafts,), p - 1, jnp.int32))
  same, diff = 0, 0.0
  for k in range(num_drafts):
    c = cache
    for j in range(draft_length + 1):
      one, c = call(target, tokens[k:k + 1, j:j + 1], c, jnp.array([p - 1 + j], jnp.int32))
      a, b = np.asarray(one[0, 0]), np.asarray(big[k, j])
      same += bool(np.array_equal(a, b))
      diff = max(diff, float(np.abs(a - b).max()))
  return dict(rows=num_drafts * (draft_length + 1), bit_identical=same, max_abs_diff=diff)


def decode_rate(target, drafter, prompt, *, schemes=("autoregressive",) + SCHEMES, num_drafts=8,
                draft_length=4, top_k=50, max_new_tokens=16, seed=0, eos_id=None, reps=1,
                log=print) -> list[dict]:
  """Tokens/s of the jitted ``generate`` and the phase split of ``timed_generate``, per scheme.

  ``tokens_per_s`` is the best of ``reps`` timed decodes after a compiling one; the
  ``speedup`` column is relative to ``autoregressive`` (the first scheme).
  """
  rows = []
  key = jax.random.key(seed)
  for scheme in schemes:
    kw = dict(scheme=scheme, max_new_tokens=max_new_tokens, top_k=top_k, eos_id=eos_id)
    if scheme != "autoregressive":
      kw.update(drafter=drafter, draft_length=draft_length,
                num_drafts=1 if scheme in acceptance.SINGLE_DRAFT else num_drafts)
    gen = jax.block_until_ready(specdec.generate(key, target, prompt, **kw))  # compile
    seconds = np.inf
    for _ in range(reps):
      t0 = time.perf_counter()
      gen = jax.block_until_ready(specdec.generate(key, target, prompt, **kw))
      seconds = min(seconds, time.perf_counter() - t0)
    _, times = metrics.timed_generate(key, target, prompt, **kw)
    row = dict(scheme=scheme, tokens=int(gen.length), seconds=seconds,
               tokens_per_s=metrics.token_rate(gen.length, seconds),
               block_efficiency=metrics.block_efficiency(gen),
               draft_s=times.draft, target_s=times.target, verify_s=times.verify)
    row["speedup"] = row["tokens_per_s"] / rows[0]["tokens_per_s"] if rows else 1.0
    rows.append(row)
    log(f"  {scheme:14s} {row['tokens_per_s']:7.2f} tok/s  BE {row['block_efficiency']:.2f}  "
        f"draft {times.draft:.2f} s  target {times.target:.2f} s  verify {times.verify:.3f} s")
  return rows


def speedup_table(target, drafter, prompt, *, schemes=("autoregressive",) + SCHEMES,
                  num_drafts=2, draft_length=4, top_k=50, max_new_tokens=32, seeds=(0, 1),
                  eos_id=None, reps=1, log=print) -> list[dict]:
  """Batch-1 decode speed of every scheme, timed interleaved, against ``autoregressive``.

  Each scheme is timed with :func:`lcoupling.specdec.metrics.timed_generate`
  (the same tokens as ``generate``, its phases timed apart): compiled first
  (one warm-up per scheme), then for each rep and each seed every scheme decodes
  once in turn, so load changes hit all schemes alike. ``tokens_per_s`` is the
  decode rate, tokens over the seconds of the draft / target / verify phases
  summed over seeds (the best rep per seed), without the prompt's prefill, which
  is the same for every scheme but the drafter's own (``prefill_s``);
  ``tokens_per_s_with_prefill`` includes it. ``speedup_vs_autoregressive`` is
  the ratio of decode rates on the same seeds; ``block_efficiency`` the mean over
  seeds of tokens per target call. ``sps`` / ``daliri`` use one draft; the
  multi-draft schemes get one row per ``K`` of ``num_drafts`` (an int or a
  sequence of ints).
  """
  if "autoregressive" not in schemes:
    raise ValueError("speedup_table: schemes must include 'autoregressive' (the reference)")
  ks = (num_drafts,) if isinstance(num_drafts, int) else tuple(num_drafts)
  kws = {}
  for scheme in schemes:
    kw = dict(scheme=scheme, max_new_tokens=max_new_tokens, top_k=top_k, eos_id=eos_id)
    if scheme == "autoregressive":
      kws[scheme, 1] = kw
    elif scheme in acceptance.SINGLE_DRAFT:
      kws[scheme, 1] = dict(kw, drafter=drafter, draft_length=draft_length, num_drafts=1)
    else:
      for k in ks:
        kws[scheme, k] = dict(kw, drafter=drafter, draft_length=draft_length, num_drafts=k)
  for (scheme, k), kw in kws.items():
    t0 = time.perf_counter()
    metrics.timed_generate(jax.random.key(seeds[0]), target, prompt, warmup=True, **kw)
    log(f"  compiled {scheme} K={k} ({time.perf_counter() - t0:.1f} s with two decodes)")
  best = {(entry, seed): None for entry in kws for seed in seeds}
  gens = {}
  for _ in range(reps):
    for seed in seeds:
      for entry, kw in kws.items():
        gen, times = metrics.timed_generate(jax.random.key(seed), target, prompt, warmup=False,
                                            **kw)
        old = best[entry, seed]
        if old is None or times.total - times.prefill < old.total - old.prefill:
          best[entry, seed] = times
        gens[entry, seed] = gen
  rows = []
  for entry, kw in kws.items():
    tokens = sum(int(gens[entry, seed].length) for seed in seeds)
    decode = sum(best[entry, seed].total - best[entry, seed].prefill for seed in seeds)
    prefill = sum(best[entry, seed].prefill for seed in seeds)
    rows.append(dict(scheme=entry[0], K=entry[1], L=kw.get("draft_length", 0), tokens=tokens,
                     decode_s=decode, prefill_s=prefill, tokens_per_s=tokens / decode,
                     tokens_per_s_with_prefill=tokens / (decode + prefill),
                     draft_s=sum(best[entry, seed].draft for seed in seeds),
                     target_s=sum(best[entry, seed].target for seed in seeds),
                     verify_s=sum(best[entry, seed].verify for seed in seeds),
                     block_efficiency=float(np.mean([metrics.block_efficiency(gens[entry, seed])
                                                     for seed in seeds]))))
  ar = rows[list(kws).index(("autoregressive", 1))]
  for r in rows:
    r["speedup_vs_autoregressive"] = r["tokens_per_s"] / ar["tokens_per_s"]
    r["speedup_with_prefill"] = r["tokens_per_s_with_prefill"] / ar["tokens_per_s_with_prefill"]
    log(f"  {r['scheme']:14s} K={r['K']} L={r['L']} {r['tokens_per_s']:7.2f} tok/s  "
        f"x{r['speedup_vs_autoregressive']:.2f}  BE {r['block_efficiency']:.2f}")
  return rows


def draft_sharing(target, drafter, prompt, *, scheme="gls", num_drafts=2, draft_length=4,
                  max_new_tokens=64, seeds=(0,), top_k=50, eos_id=None) -> dict:
  """How much of a block's K drafts the rows share, over whole decodes (one per seed).

  A verification pass feeds every row ``[last, X[k]_1 .. X[k]_L]``: ``K (L + 1)`` tokens.
  Rows with a common prefix ask the same questions of the target up to it, so a pass over
  the distinct prefixes (a token tree: the shared ``last`` once, then every distinct
  ``X[k]_{<=j}``) needs ``tree_rows`` of them. Returns ``blocks``, ``identical`` (the
  fraction of blocks whose K drafts are all equal), ``tree_rows`` (mean) against
  ``pass_rows = K (L + 1)``, and ``shared_prefix`` (blocks by the length, 0 .. L, of the
  prefix every row shares with row 0).
  """
  shared, nodes = [], []

  def on_block(x):  # the block's drafts [K, L]
    same = (x == x[:1]).all(axis=0)  # [L]: every row equals row 0 at position j
    shared.append(int(np.argmin(same)) if not same.all() else draft_length)
    nodes.append(1 + sum(len({tuple(r[:j + 1]) for r in x}) for j in range(draft_length)))

  for seed in seeds:
    metrics.timed_generate(jax.random.key(seed), target, prompt, warmup=False, on_block=on_block,
                           scheme=scheme, drafter=drafter, num_drafts=num_drafts,
                           draft_length=draft_length, max_new_tokens=max_new_tokens,
                           top_k=top_k, eos_id=eos_id)
  shared = np.asarray(shared)
  return dict(blocks=len(shared), identical=float((shared == draft_length).mean()),
              tree_rows=float(np.mean(nodes)), pass_rows=num_drafts * (draft_length + 1),
              shared_prefix=np.bincount(shared, minlength=draft_length + 1).tolist())


def _header(args):
  dev = jax.devices()[0]
  print("# Speculative decoding: verification cost")
  kind = getattr(dev, "device_kind", dev.platform)
  print(f"jax {jax.__version__}  python {platform.python_version()}  backend "
        f"{jax.default_backend()}  {jax.device_count()} x {kind}  host cpus {os.cpu_count()}"
        f"; CPU {cpu_kernels.describe()}")
  print(f"target: random-init SmolLM2-135M architecture ({SMOLLM2_135M.num_parameters / 1e6:.0f} M "
        f"parameters, float32); drafter: 2 layers of the same shape; best of {args.reps} reps\n")


def _ints(text: str) -> tuple[int, ...]:
  try:
    ks = tuple(int(t) for t in text.split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected K or K1,K2,... (ints >= 1), got {text!r}") from None
  if not ks or min(ks) < 1:
    raise argparse.ArgumentTypeError(f"expected ints >= 1, got {text!r}")
  return ks


def _schemes(text: str) -> tuple[str, ...]:
  names = tuple(t.strip() for t in text.split(",") if t.strip())
  known = ("autoregressive",) + SCHEMES
  bad = [n for n in names if n not in known]
  if bad or "autoregressive" not in names:
    raise argparse.ArgumentTypeError(
        f"expected a comma list of {', '.join(known)} that includes autoregressive (the reference), "
        f"got {text!r}")
  return names


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true", help="top-k 50 only, 3 reps")
  parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default 7)")
  parser.add_argument("--decode", action="store_true", help="also time whole decodes")
  parser.add_argument("--target", default=None,
                      help="a real target (lcoupling.lm.load spec, e.g. smollm2-135m)")
  parser.add_argument("--drafter", default="early_exit_linear:4",
                      help="drafter spec for --target (lcoupling.lm.distill.load_drafter)")
  parser.add_argument("--data_dir", default="data")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                      help="with --target: the models' dtype (default: float32 on CPU, bfloat16 on "
                           "an accelerator; bfloat16 is also the fast one on a CPU with bfloat16 "
                           "matrix units, see README)")
  parser.add_argument("--num_drafts", type=_ints, default=(2,),
                      help="K of the multi-draft schemes in section 3 with --target, or a comma "
                           "list (rows per K; default 2, see the README's wall-clock table)")
  parser.add_argument("--schemes", type=_schemes, default=("autoregressive",) + SCHEMES,
                      help="with --target: section 3's schemes, a comma list including "
                      "autoregressive (default: all)")
  parser.add_argument("--draft_length", type=int, default=4, help="L (default 4)")
  parser.add_argument("--seeds", type=int, default=None,
                      help="decodes per scheme in section 3 (default 2, quick 2)")
  parser.add_argument("--new_tokens", type=int, default=None,
                      help="new tokens per decode in section 3 (default 96, quick 32)")
  parser.add_argument("--skip_verification_cost", action="store_true",
                      help="with --target: only section 3")
  parser.add_argument("--draft_sharing", action="store_true",
                      help="with --target: only section 4, the drafts' shared prefixes (GLS, K = "
                           "the first --num_drafts; --seeds decodes of --new_tokens)")
  parser.add_argument("--json", default=None, help="with --target: write section 3's rows here")
  args = parser.parse_args(argv)
  args.reps = args.reps or (3 if args.quick else 7)
  if args.target is not None:
    return _real_models(args)
  _header(args)
  target = Llama(SMOLLM2_135M, rngs=nnx.Rngs(0))
  drafter = Llama(SMOLLM2_135M.replace(num_layers=2), rngs=nnx.Rngs(1))

  print("## 1. Verification cost per block (K = 8, L = 4; sps / daliri K = 1)")
  rows = verification_cost(target, drafter, top_ks=(50,) if args.quick else (50, 0),
                           reps=args.reps)
  print("\n| scheme | K | top-k | target pass (ms) | filter (ms) | walk (ms) | walk / target |"
        " (filter + walk) / target |")
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['scheme']} | {r['K']} | {r['top_k'] or 'all'} | {r['target_ms']:.1f} | "
          f"{r['filter_ms']:.2f} | {r['walk_ms']:.2f} | {r['walk_pct']:.2f} % | "
          f"{r['filter_walk_pct']:.2f} % |")

  print("\n## 2. Logits of the verification pass vs the one-token decode (same prefixes)")
  agree = logits_agreement(target)
  print(f"bit-identical rows: {agree['bit_identical']} / {agree['rows']}, max |difference| "
        f"{agree['max_abs_diff']:.3g}")

  if args.decode:
    print("\n## 3. Whole decodes (random weights: block efficiency is not meaningful)")
    decode_rate(target, drafter, _prompt(SMOLLM2_135M.vocab_size, 64),
                max_new_tokens=8 if args.quick else 16)


def _real_models(args):
  """Sections 1-3 with a real target and drafter; section 3 on a HumanEval prompt."""
  from lcoupling import lm  # noqa: PLC0415
  from lcoupling.lm import distill  # noqa: PLC0415

  llm = lm.load(args.target, data_dir=args.data_dir, dtype=args.dtype)
  prompts = lm.humaneval_prompts(args.data_dir)
  corpus = [llm.tokenizer.encode(p) for p in prompts[:110]]
  drafter = distill.load_drafter(args.drafter, llm.model, corpus=corpus,
                                 cache_dir=os.path.join("runs", "drafters"),
                                 data_dir=args.data_dir, dtype=llm.config.dtype)
  dev = jax.devices()[0]
  print("# Speculative decoding with real models")
  print(f"jax {jax.__version__}  backend {jax.default_backend()}  "
        f"{getattr(dev, 'device_kind', dev.platform)}  host cpus {os.cpu_count()}"
        f"; CPU {cpu_kernels.describe()}")
  print(f"target: {args.target} ({llm.config.num_parameters / 1e6:.0f} M parameters, "
        f"{llm.config.dtype}); drafter: {args.drafter}; best of {args.reps} reps\n")
  if not (args.skip_verification_cost or args.draft_sharing):
    print("## 1. Verification cost per block (K = 8, L = 4; sps / daliri K = 1)")
    rows = verification_cost(llm.model, drafter, top_ks=(50,), reps=args.reps)
    print("\n| scheme | K | target pass (ms) | filter (ms) | walk (ms) | walk / target |")
    print("|---|---|---|---|---|---|")
    for r in rows:
      print(f"| {r['scheme']} | {r['K']} | {r['target_ms']:.1f} | {r['filter_ms']:.2f} | "
            f"{r['walk_ms']:.2f} | {r['walk_pct']:.2f} % |")
  prompt = jnp.asarray(llm.tokenizer.encode(prompts[150]), jnp.int32)  # a held-out prompt
  n = args.new_tokens or (32 if args.quick else 96)
  k = args.num_drafts
  k_text = ", ".join(map(str, k))
  seeds = tuple(range(args.seeds or 2))
  if args.draft_sharing:
    share = draft_sharing(llm.model, drafter, prompt, num_drafts=k[0],
                          draft_length=args.draft_length, max_new_tokens=n, seeds=seeds,
                          eos_id=llm.tokenizer.eos_id)
    print(f"\n## 4. Shared drafts (HumanEval/150, gls, K = {k[0]}, L = {args.draft_length}, "
          f"{n} new tokens, seeds {list(seeds)})")
    print(f"blocks {share['blocks']}; all {k[0]} drafts identical in {share['identical']:.1%}; "
          f"a token tree of the distinct prefixes: {share['tree_rows']:.2f} rows on average, "
          f"against {share['pass_rows']} in the pass; blocks by the prefix every row shares "
          f"with row 0 (0 .. L tokens): {share['shared_prefix']}")
    return
  print(f"\n## 3. Decoding HumanEval/150 ({len(prompt)} prompt tokens, {n} new tokens, top-k 50, "
        f"batch 1, K = {k_text}, L = {args.draft_length}, seeds {list(seeds)}, timed interleaved)")
  t0 = time.perf_counter()
  rows = speedup_table(llm.model, drafter, prompt, schemes=args.schemes, num_drafts=k,
                       draft_length=args.draft_length,
                       max_new_tokens=n, seeds=seeds, eos_id=llm.tokenizer.eos_id,
                       reps=1 if args.quick else 2)
  print("\n| scheme | K | L | tokens/s | speed-up vs autoregressive | block efficiency | "
        "draft / target / verify s | with prefill: tokens/s, speed-up |")
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['scheme']} | {r['K']} | {r['L']} | {r['tokens_per_s']:.2f} | "
          f"{r['speedup_vs_autoregressive']:.2f} | {r['block_efficiency']:.2f} | "
          f"{r['draft_s']:.1f} / {r['target_s']:.1f} / {r['verify_s']:.2f} | "
          f"{r['tokens_per_s_with_prefill']:.2f}, {r['speedup_with_prefill']:.2f} |")
  if args.json:
    from lcoupling import results  # noqa: PLC0415
    meta = dict(target=args.target, drafter=args.drafter, prompt="HumanEval/150",
                prompt_tokens=int(len(prompt)), new_tokens=n, top_k=50, seeds=list(seeds),
                dtype=llm.config.dtype, backend=jax.default_backend(), host_cpus=os.cpu_count(),
                seconds=time.perf_counter() - t0, code=results.code_version())
    results.atomic_write_json(args.json, dict(meta=meta, rows=rows))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
  main()
