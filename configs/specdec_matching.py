# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Token-level matching on real next-token distributions: measured GLS vs LML vs exact.

Reproduces Tables 7 and 8 of Rowan, Phan & Khisti (NeurIPS 2025, arXiv:2506.05632):
along target-sampled continuations of the HumanEval prompts, at every position the
target's (q) and the drafter's (p) next-token distributions (temperature 1, top-k 50);
for K in {2, 4, 6, 8} i.i.d. drafts the measured GLS matching (Monte Carlo), the exact
GLS acceptance (quadrature), the list matching lemma, and SpecInfer's and SpecTr's
token-level acceptance (Monte Carlo; SpecTr also in closed form). Target
SmolLM2-135M-Instruct, drafter ``early_exit_linear:4`` (shared cache ``runs/drafters``).

Commands (``:quick``: minutes on a CPU; the full protocol: hours, mostly Monte
Carlo; measured times: README, "Run times"):

  python -m experiments.run --config configs/specdec_matching.py:quick --workdir runs/specdec_matching_quick
  python -m experiments.run --config configs/specdec_matching.py --workdir runs/specdec_matching
  python -m lcoupling.studies.specdec_matching runs/specdec_matching_quick   # the table

``:quick``: 6 prompts x 2 seeds, 24-token continuations (288 positions), K in
{2, 4, 8}, 1000 Monte-Carlo samples per position. The full protocol (164 prompts x
5 seeds, 128-token continuations: ~100 000 positions, 2000 samples each).
``:diverse_quick`` / ``:diverse``: the same sizes, target temperature 2.0 and K = 2
draft rows with the diverse study's seven drafter-temperature pairs
(``draft_temperature_pairs``): GLS exact / measured / LML against SpecInfer in both
row orders, the token-level reason for the diverse study's block efficiencies.

  python -m experiments.run --config configs/specdec_matching.py:diverse_quick --workdir runs/specdec_matching_diverse_quick

``num_drafts`` and ``draft_temperature_pairs`` are sweep fields.

Figures: ``figures/specdec_matching.{png,pdf}``.

The paper's model family (``make lm-qwen`` first): ``:qwen_quick`` decodes with
Qwen2.5-Coder-1.5B-Instruct as the target and Qwen2.5-Coder-0.5B-Instruct as the
drafter (``model:qwen2.5-coder-0.5b``; same tokenizer), HumanEval prompts 114, 131 and
140 x 2 seeds, 32 new tokens -- minutes on a 2-core CPU (measured times in the README);
``:qwen`` is the full protocol with the pair, an accelerator job (``make gpu-paper``)::

  python -m experiments.run --config configs/specdec_matching.py:qwen_quick --workdir runs/specdec_matching_qwen_quick
  python -m lcoupling.studies.specdec_matching runs/specdec_matching_qwen_quick

``:qwen_diverse_quick`` / ``:qwen_diverse``: the diverse draft rows with the pair.
"""

import ml_collections

from lcoupling.studies import specdec_common

VARIANTS = ("quick", "diverse", "diverse_quick", "qwen_quick", "qwen", "qwen_diverse_quick",
            "qwen_diverse")
SWEEP_FIELDS = ("num_drafts", "draft_temperature_pairs")
#: The diverse-drafts study's temperature pairs (configs/specdec_diverse.py).
PAPER_PAIRS = ((0.5, 1.0), (1.0, 0.5), (1.0, 1.0), (1.5, 1.0), (1.0, 1.5), (2.0, 1.0), (1.0, 2.0))


def get_config(arg=None):
  if arg not in (None, "", *VARIANTS):
    raise ValueError(f"configs/specdec_matching.py: unknown variant {arg!r}; known: {VARIANTS}")
  quick = arg in ("quick", "diverse_quick", "qwen_quick", "qwen_diverse_quick")
  qwen = bool(arg) and arg.startswith("qwen")
  c = ml_collections.ConfigDict()
  c.name = "specdec_matching" + ("" if not arg else "_" + arg)
  c.description = ("Token-level matching of GLS on a drafter / target pair's real next-token "
                   "distributions: Monte Carlo vs exact vs the list matching lemma, with "
                   "SpecInfer and SpecTr.")
  c.paper_reference = ("Rowan, Phan & Khisti 2025 (arXiv:2506.05632), Tables 7 and 8 (measured "
                       "matching vs LML)")
  c.study = "specdec_matching"
  c.seed = 0
  specdec_common.add_common_fields(c, quick=quick, timing=False)
  if qwen:
    specdec_common.use_qwen_pair(c, quick=quick)
  c.num_drafts = (2, 4, 8) if quick else (2, 4, 6, 8)
  c.temperature = 1.0
  c.draft_temperature_pairs = ()
  if arg in ("diverse", "diverse_quick", "qwen_diverse", "qwen_diverse_quick"):  # the token-level view of configs/specdec_diverse.py
    c.temperature = 2.0
    c.num_drafts = ()
    c.draft_temperature_pairs = PAPER_PAIRS
  c.num_mc_samples = 1000 if quick else 2000
  c.mc_positions_per_call = 16  # positions per vectorised Monte-Carlo call (memory)
  return c


def get_sweep(config):
  points = [{"K": int(k)} for k in config.num_drafts]
  return points + [{"K": len(pair), "draft_temperatures": [float(t) for t in pair]}
                   for pair in config.draft_temperature_pairs]
