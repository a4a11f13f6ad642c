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

Commands (2-core CPU):

  python -m experiments.run --config configs/specdec_matching.py:quick --workdir runs/specdec_matching_quick
  python -m experiments.run --config configs/specdec_matching.py --workdir runs/specdec_matching
  python -m lcoupling.studies.specdec_matching runs/specdec_matching_quick   # the table

``:quick``: 6 prompts x 2 seeds, 24-token continuations (288 positions), K in
{2, 4, 8}, 1000 Monte-Carlo samples per position -- 1 min on the idle CPU (51 s
measured). The
full protocol (164 prompts x 5 seeds, 128-token continuations: ~100 000 positions,
2000 samples each) extrapolates to about 6 h on this CPU (most of it Monte Carlo).
``num_drafts`` is a sweep field.

Figures: ``figures/specdec_matching.{png,pdf}``.
"""

import ml_collections

from lcoupling.studies import specdec_common

VARIANTS = ("quick",)
SWEEP_FIELDS = ("num_drafts",)


def get_config(arg=None):
  if arg not in (None, "", *VARIANTS):
    raise ValueError(f"configs/specdec_matching.py: unknown variant {arg!r}; known: {VARIANTS}")
  quick = arg == "quick"
  c = ml_collections.ConfigDict()
  c.name = "specdec_matching_quick" if quick else "specdec_matching"
  c.description = ("Token-level matching of GLS on a drafter / target pair's real next-token "
                   "distributions: Monte Carlo vs exact vs the list matching lemma, with "
                   "SpecInfer and SpecTr.")
  c.paper_reference = ("Rowan, Phan & Khisti 2025 (arXiv:2506.05632), Tables 7 and 8 (measured "
                       "matching vs LML)")
  c.study = "specdec_matching"
  c.seed = 0
  specdec_common.add_common_fields(c, quick=quick, timing=False)
  c.num_drafts = (2, 4, 8) if quick else (2, 4, 6, 8)
  c.temperature = 1.0
  c.num_mc_samples = 1000 if quick else 2000
  c.mc_positions_per_call = 16  # positions per vectorised Monte-Carlo call (memory)
  return c


def get_sweep(config):
  return [{"K": int(k)} for k in config.num_drafts]
