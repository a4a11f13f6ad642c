# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Decode-step cost of drafters relative to their target, ratios measured in one run.

Usage::

    python benchmarks/drafters.py [--drafters_dir runs/train_drafter_quick/drafters]
                                  [--target smollm2-135m] [--batch 1] [--steps 30] [--length 256]
                                  [--extra SPEC ...]

Loads the target and every drafter saved under ``--drafters_dir`` (the
directories ``configs/train_drafter.py`` writes; any drafter spec can be added
with ``--extra``: ``dir:DIR`` or ``model:SPEC``, the specs that need no
corpus) and times one cached decode step of each,
interleaved (one step of every model per round, median over ``--steps``
rounds; :func:`lcoupling.specdec.metrics.step_ms`), so that the ratios
are taken under the same load. Prints a Markdown table: ms per step and the
ratio to the target's step.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from lcoupling import lm  # noqa: E402
from lcoupling.lm import distill  # noqa: E402
from lcoupling.specdec import metrics  # noqa: E402


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--drafters_dir", default="runs/train_drafter_quick/drafters")
  ap.add_argument("--target", default="smollm2-135m")
  ap.add_argument("--data_dir", default="data")
  ap.add_argument("--batch", type=int, default=1)
  ap.add_argument("--steps", type=int, default=30)
  ap.add_argument("--length", type=int, default=256, help="cache length (step at length / 2)")
  ap.add_argument("--extra", nargs="*", default=(), help="more drafter specs (dir:, model:)")
  args = ap.parse_args(argv)
  root = pathlib.Path(args.drafters_dir)
  specs = [f"dir:{d}" for d in sorted(root.iterdir()) if (d / "drafter.json").is_file()] \
      if root.is_dir() else []
  specs += list(args.extra)
  if not specs:
    print(f"no drafters under {root} (run configs/train_drafter.py first) and no --extra",
          file=sys.stderr)
    return 2
  target = lm.load(args.target, data_dir=args.data_dir)
  models = {"target": target.model}
  for spec in specs:
    name = pathlib.Path(spec[4:]).name if spec.startswith("dir:") else spec
    models[name] = distill.load_drafter(spec, target.model, data_dir=args.data_dir)
  print(f"jax {jax.__version__} {jax.default_backend()}; target {args.target}; batch "
        f"{args.batch}; cache {args.length}, step at position {args.length // 2}; median of "
        f"{args.steps} interleaved rounds")
  ms = metrics.step_ms(models, steps=args.steps, batch=args.batch, length=args.length)
  print("\n| model | ms per decode step | step / target step |\n|---|---|---|")
  for name, t in ms.items():
    print(f"| {name} | {t:.2f} | {t / ms['target']:.3f} |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
