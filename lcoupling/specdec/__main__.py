# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Command line: one speculative decode of a prompt, with its block efficiency and speed.

::

    python -m lcoupling.specdec generate --target smollm2-135m --drafter early_exit_linear:4 \\
        --scheme gls --num_drafts 4 --draft_length 4 --prompt "def fib(n):" --max_new_tokens 32
    python -m lcoupling.specdec generate --prompt "What is the capital of France?" --chat \\
        --scheme specinfer --num_drafts 2 --temperature 0.7 --top_k 50 --seed 1 --compare

``generate`` prints the continuation, then the block efficiency (tokens per
target call), the histogram of accepted draft lengths and the decode speed in
tokens/s (compilation is done ahead of time and reported separately). With
``--compare`` the same key is also decoded with ``autoregressive`` (plain
target sampling; with ``gls_strong`` the text is the same token for token).

The drafter is any spec of :func:`lcoupling.lm.distill.load_drafter`; the
training-free ones (``early_exit_linear:M``, ``soft_bigram``) are built once
from the first HumanEval prompts and cached under ``DATA_DIR/drafters/``.
Bad arguments (unknown scheme, ``--num_drafts`` < 1, a sampling setting)
are one-line errors with exit status 2, before anything loads; a missing
model or file is a one-line error naming the fetch command (exit status 1);
Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["main"]

_SINGLE_DRAFT = ("sps", "daliri")


class UsageError(ValueError):
  """A bad command-line value (exit status 2)."""


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m lcoupling.specdec",
                                   description=__doc__.split("\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  p = sub.add_parser("generate", help="speculatively decode a continuation of a prompt")
  p.add_argument("--target", default="smollm2-135m",
                 help="'smollm2-135m', 'gguf:PATH' or 'hf:DIR' (default: smollm2-135m)")
  p.add_argument("--drafter", default="early_exit_linear:4",
                 help="a drafter spec: 'early_exit_linear:M', 'soft_bigram', 'dir:DIR', "
                      "'model:SPEC' (default: early_exit_linear:4)")
  p.add_argument("--scheme", default="gls",
                 help="autoregressive, sps, daliri, specinfer, spectr, gls, gls_strong "
                      "(default: gls)")
  p.add_argument("--num_drafts", type=int, default=4, help="K (1 for sps / daliri)")
  p.add_argument("--draft_length", type=int, default=4, help="L, draft tokens per block")
  p.add_argument("--prompt", required=True)
  p.add_argument("--chat", action="store_true",
                 help="wrap the prompt as a user turn with the model's chat template")
  p.add_argument("--max_new_tokens", type=int, default=64)
  p.add_argument("--temperature", type=float, default=1.0, help="a finite number > 0")
  p.add_argument("--top_k", type=int, default=0, help="0 = no top-k filtering")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--data_dir", default="data", help="holds lm/ (from `make lm`) and drafters/")
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                 help="default: float32 on CPU, bfloat16 on GPU/TPU")
  p.add_argument("--compare", action="store_true",
                 help="also decode with 'autoregressive' (same key) and compare the speed")
  return parser


def _check_args(args) -> None:
  from lcoupling.lm import sampling
  from lcoupling.specdec import SCHEMES
  if args.scheme not in SCHEMES:
    raise UsageError(f"--scheme: unknown scheme {args.scheme!r}; known: {', '.join(SCHEMES)}")
  for name in ("num_drafts", "draft_length", "max_new_tokens"):
    if getattr(args, name) < 1:
      raise UsageError(f"--{name} must be >= 1, got {getattr(args, name)}")
  if args.scheme in _SINGLE_DRAFT and args.num_drafts != 1:
    raise UsageError(f"--scheme {args.scheme} is a single-draft scheme: use --num_drafts 1 "
                     f"(got {args.num_drafts})")
  try:
    sampling.check_sampling_args(args.temperature, args.top_k)
  except ValueError as e:
    raise UsageError(f"--{e}") from None
  from lcoupling.lm import drafters
  try:
    drafters.parse_spec(args.drafter)
  except ValueError as e:
    raise UsageError(f"--drafter: {e}") from None
  if args.seed < 0:
    raise UsageError(f"--seed must be >= 0, got {args.seed}")


def _compiled_decode(key, target, drafter, prompt, **kw):
  """``(run, compile seconds)``: the decode compiled ahead of time (models passed as arguments)."""
  import jax

  from lcoupling import specdec

  def decode(k, t, d, p):
    return specdec.generate(k, t, p, drafter=d, **kw)

  t0 = time.perf_counter()
  compiled = jax.jit(decode).lower(key, target, drafter, prompt).compile()
  return (lambda: jax.block_until_ready(compiled(key, target, drafter, prompt))), \
      time.perf_counter() - t0


def _timed(run):
  t0 = time.perf_counter()
  out = run()
  return out, time.perf_counter() - t0


def _generate(args) -> None:
  import jax
  import jax.numpy as jnp
  import numpy as np

  from lcoupling import lm
  from lcoupling.lm import distill, sampling
  from lcoupling.specdec import metrics

  t0 = time.perf_counter()
  loaded = lm.load(args.target, dtype=args.dtype, data_dir=args.data_dir)
  model, tok = loaded.model, loaded.tokenizer
  print(f"[{args.target}: {loaded.config.num_parameters / 1e6:.0f} M parameters, "
        f"{loaded.config.num_layers} layers; loaded in {time.perf_counter() - t0:.1f} s]",
        file=sys.stderr)
  sampling.check_sampling_args(args.temperature, args.top_k, vocab_size=model.vocab_size)
  ids = (tok.encode_chat([{"role": "user", "content": args.prompt}]) if args.chat
         else tok.encode(args.prompt))
  if not ids:
    raise UsageError("--prompt encodes to no tokens")
  drafter = None
  if args.scheme != "autoregressive":
    t0 = time.perf_counter()
    drafter = distill.load_drafter(args.drafter, loaded, data_dir=args.data_dir, dtype=args.dtype)
    print(f"[drafter {args.drafter}: ready in {time.perf_counter() - t0:.1f} s]", file=sys.stderr)
  eos = tok.eos_id if tok.eos_id is not None and tok.eos_id < model.vocab_size else None
  prompt = jnp.asarray(ids, jnp.int32)
  key = jax.random.key(args.seed)
  common = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                top_k=args.top_k, eos_id=eos, num_drafts=args.num_drafts)
  kw = dict(common, scheme=args.scheme)
  if args.scheme != "autoregressive":
    kw["draft_length"] = args.draft_length
  run, compile_s = _compiled_decode(key, model, drafter, prompt, **kw)
  gen, seconds = _timed(run)
  n = int(gen.length)
  tokens = np.asarray(gen.tokens[:n]).tolist()
  print(tok.decode(tokens, skip_special_tokens=True))
  s = metrics.summary(gen)
  rate = n / seconds
  print(f"scheme {args.scheme}, K = {args.num_drafts}, L = {args.draft_length}, drafter "
        f"{args.drafter if drafter is not None else '-'}; prompt {len(ids)} tokens, seed "
        f"{args.seed}")
  print(f"block efficiency: {s['block_efficiency']:.3f} tokens per target call ({s['tokens']} "
        f"tokens, {s['target_calls']} target calls)")
  if args.scheme != "autoregressive":
    hist = s["accepted_length_histogram"]
    print(f"accepted lengths: " + ", ".join(f"{j}: {c}" for j, c in enumerate(hist))
          + f" (blocks by accepted drafts; mean {s['mean_accepted']:.2f})")
  print(f"speed: {n} tokens in {seconds * 1e3:.0f} ms = {rate:.1f} tokens/s "
        f"(compilation {compile_s:.1f} s, not included)")
  if args.compare:
    ar, ar_compile = _compiled_decode(key, model, None, prompt, scheme="autoregressive", **common)
    ar_gen, ar_s = _timed(ar)
    m = int(ar_gen.length)
    same = m == n and np.asarray(ar_gen.tokens[:m]).tolist() == tokens
    ar_rate = m / ar_s
    print(f"autoregressive (same key): {m} tokens in {ar_s * 1e3:.0f} ms = {ar_rate:.1f} "
          f"tokens/s (compilation {ar_compile:.1f} s); speed ratio {rate / ar_rate:.2f}; "
          f"same text: {'yes' if same else 'no'}")
    if not same:
      print("autoregressive text: "
            + tok.decode(np.asarray(ar_gen.tokens[:m]).tolist(), skip_special_tokens=True))


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  try:
    _check_args(args)
  except UsageError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  try:
    _generate(args)
  except UsageError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except (ValueError, TypeError, OSError, RuntimeError) as e:  # messages name the field and fix
    print(f"error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print("\ninterrupted", file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  from lcoupling import cli

  cli.exit_process(main())  # after Ctrl-C: no interpreter teardown under running XLA threads
