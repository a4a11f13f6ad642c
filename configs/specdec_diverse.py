# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Speculative decoding with diverse drafts: one drafter at two temperatures, K = 2.

Reproduces Tables 2 and 4 of Rowan, Phan & Khisti (NeurIPS 2025, arXiv:2506.05632):
K = 2 drafts of length L = 5, target temperature 2.0, top-k 50; draft row k from the
drafter at temperature t_k for the pairs (0.5, 1.0), (1.0, 0.5), (1.0, 1.0),
(1.5, 1.0), (1.0, 1.5), (2.0, 1.0), (1.0, 2.0); GLS and strong GLS (symmetric in the
rows) against SpecInfer (tries row 0 first: sensitive to the order); SpS with one
draft at temperature 1.0 is the speed-up reference. Target SmolLM2-135M-Instruct,
drafter ``early_exit_linear:4`` (shared cache ``runs/drafters``, see
configs/specdec_iid.py).

Commands (``:quick``: minutes on a CPU; the full protocol: an accelerator job;
measured times: README, "Run times"):

  python -m experiments.run --config configs/specdec_diverse.py:quick --workdir runs/specdec_diverse_quick
  python -m experiments.run --config configs/specdec_diverse.py --workdir runs/specdec_diverse
  python -m lcoupling.studies.specdec_diverse runs/specdec_diverse_quick   # the tables

``:quick``: 6 prompts x 2 seeds, 24 new tokens, one swapped pair (1.0, 2.0) /
(2.0, 1.0), GLS and SpecInfer; token rate on 1 prompt x 1 seed. The full protocol
(164 prompts x 5 seeds, 128 new tokens, 7 pairs x 3 schemes) is a day on a CPU: a
GPU job.
``temperature_pairs`` and ``schemes`` are sweep fields.

Figures: ``figures/specdec_diverse.{png,pdf}`` (BE and speed-up per temperature pair).

The paper's model family (``make lm-qwen`` first): ``:qwen_quick`` decodes with
Qwen2.5-Coder-1.5B-Instruct as the target and Qwen2.5-Coder-0.5B-Instruct as the
drafter (``model:qwen2.5-coder-0.5b``; same tokenizer), HumanEval prompts 114, 131 and
140 x 2 seeds, 32 new tokens -- minutes on a 2-core CPU (measured times in the README);
``:qwen`` is the full protocol with the pair, an accelerator job (``make gpu-paper``)::

  python -m experiments.run --config configs/specdec_diverse.py:qwen_quick --workdir runs/specdec_diverse_qwen_quick
  python -m lcoupling.studies.specdec_diverse runs/specdec_diverse_qwen_quick
"""

import ml_collections

from lcoupling.studies import specdec_common

VARIANTS = ("quick", "qwen_quick", "qwen")
SWEEP_FIELDS = ("temperature_pairs", "schemes", "reference_draft_temperature")

PAPER_PAIRS = ((0.5, 1.0), (1.0, 0.5), (1.0, 1.0), (1.5, 1.0), (1.0, 1.5), (2.0, 1.0), (1.0, 2.0))


def get_config(arg=None):
  if arg not in (None, "", *VARIANTS):
    raise ValueError(f"configs/specdec_diverse.py: unknown variant {arg!r}; known: {VARIANTS}")
  quick = arg in ("quick", "qwen_quick")
  qwen = arg in ("qwen_quick", "qwen")
  c = ml_collections.ConfigDict()
  c.name = "specdec_diverse" + (f"_{arg}" if arg else "")
  c.description = ("Multi-draft speculative decoding with diverse drafts (one drafter at two "
                   "temperatures): GLS vs SpecInfer and their sensitivity to draft order.")
  c.paper_reference = ("Rowan, Phan & Khisti 2025 (arXiv:2506.05632), Tables 2 and 4 (K = 2, "
                       "L = 5, target T = 2, top-k 50)")
  c.study = "specdec_diverse"
  c.seed = 0
  specdec_common.add_common_fields(c, quick=quick)
  if qwen:
    specdec_common.use_qwen_pair(c, quick=quick)
  c.schemes = ("gls", "specinfer") if quick else ("gls", "gls_strong", "specinfer")
  c.num_drafts = 2
  c.draft_length = 5
  c.temperature = 2.0
  # quick: one swapped pair (the drafter at the target's temperature 2.0 first, then second)
  c.temperature_pairs = ((1.0, 2.0), (2.0, 1.0)) if quick else PAPER_PAIRS
  c.reference_draft_temperature = 1.0  # sps with one draft at this temperature (0: none)
  return c


def get_sweep(config):
  points = [{"scheme": s, "draft_temperatures": [float(t) for t in pair]}
            for pair in config.temperature_pairs for s in config.schemes]
  if config.reference_draft_temperature:
    points.append({"scheme": "sps",
                   "draft_temperatures": [float(config.reference_draft_temperature)]})
  return points
