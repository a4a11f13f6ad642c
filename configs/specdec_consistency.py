# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Output consistency across drafters: same seed, drafter temperature 1.0 then 0.5.

Reproduces Table 9 of Rowan, Phan & Khisti (NeurIPS 2025, arXiv:2506.05632): K = 2
i.i.d. drafts of length L = 4, target temperature 1, top-k 50; every prompt and seed
decoded twice with the same key, the drafter at temperature 1.0 and then 0.5; ROUGE-1/2/L
(``rouge-score``) and the exact-match rate between the two outputs for SpecInfer, GLS
and strong GLS (identical outputs by construction, up to float32 race flips, which are
counted). Target SmolLM2-135M-Instruct, drafter ``early_exit_linear:4`` (shared cache
``runs/drafters``).

Commands (``:quick``: minutes on a CPU; the full protocol: hours, an accelerator
job; measured times: README, "Run times"):

  python -m experiments.run --config configs/specdec_consistency.py:quick --workdir runs/specdec_consistency_quick
  python -m experiments.run --config configs/specdec_consistency.py --workdir runs/specdec_consistency
  python -m lcoupling.studies.specdec_consistency runs/specdec_consistency_quick   # the table

``:quick``: 6 prompts x 2 seeds, 24 new tokens. The full protocol: 164 prompts x
5 seeds, 128 new tokens.
``schemes`` is a sweep field.

Figures: ``figures/specdec_consistency.{png,pdf}`` (ROUGE and exact match per scheme).

The paper's model family (``make lm-qwen`` first): ``:qwen_quick`` decodes with
Qwen2.5-Coder-1.5B-Instruct as the target and Qwen2.5-Coder-0.5B-Instruct as the
drafter (``model:qwen2.5-coder-0.5b``; same tokenizer), HumanEval prompts 114, 131 and
140 x 2 seeds, 32 new tokens -- minutes on a 2-core CPU (measured times in the README);
``:qwen`` is the full protocol with the pair, an accelerator job (``make gpu-paper``)::

  python -m experiments.run --config configs/specdec_consistency.py:qwen_quick --workdir runs/specdec_consistency_qwen_quick
  python -m lcoupling.studies.specdec_consistency runs/specdec_consistency_qwen_quick
"""

import ml_collections

from lcoupling.studies import specdec_common

VARIANTS = ("quick", "qwen_quick", "qwen")
SWEEP_FIELDS = ("schemes",)


def get_config(arg=None):
  if arg not in (None, "", *VARIANTS):
    raise ValueError(f"configs/specdec_consistency.py: unknown variant {arg!r}; known: "
                     f"{VARIANTS}")
  quick = arg in ("quick", "qwen_quick")
  qwen = arg in ("qwen_quick", "qwen")
  c = ml_collections.ConfigDict()
  c.name = "specdec_consistency" + (f"_{arg}" if arg else "")
  c.description = ("Do the outputs change when the drafter changes? ROUGE and exact match "
                   "between two decodings with the same seed, drafter T = 1.0 then 0.5.")
  c.paper_reference = ("Rowan, Phan & Khisti 2025 (arXiv:2506.05632), Table 9 (consistency "
                       "ablation, K = 2, L = 4)")
  c.study = "specdec_consistency"
  c.seed = 0
  specdec_common.add_common_fields(c, quick=quick, timing=False)
  if qwen:
    specdec_common.use_qwen_pair(c, quick=quick)
  c.schemes = ("specinfer", "gls", "gls_strong")
  c.num_drafts = 2
  c.draft_length = 4
  c.temperature = 1.0
  c.drafter_temperatures = (1.0, 0.5)
  return c


def get_sweep(config):
  return [{"scheme": s} for s in config.schemes]
