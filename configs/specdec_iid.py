# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Speculative decoding with i.i.d. drafts: block efficiency and token rate vs K.

Reproduces Tables 1 and 3 of Rowan, Phan & Khisti (NeurIPS 2025, arXiv:2506.05632)
on HumanEval: K in {2, 4, 6, 8} i.i.d. drafts of length L = 4 from one drafter,
target temperature 1, top-k 50, 5 seeds (mean +- SEM); GLS, strong GLS, SpecInfer
and SpecTr against single-draft SpS / Daliri (K = 1) and plain autoregressive
decoding. Target SmolLM2-135M-Instruct (``make lm``); drafter
``early_exit_linear:4`` (its first 4 blocks + a ridge-fitted linear adapter + its
head, built in about a minute from HumanEval prompts 0..109 and cached in
``runs/drafters``; the quick run decodes 6 held-out prompts of 110..163).

Commands (``:quick``: minutes on a CPU; the full protocol: an accelerator job;
measured times: README, "Run times"):

  python -m experiments.run --config configs/specdec_iid.py:quick --workdir runs/specdec_iid_quick
  python -m experiments.run --config configs/specdec_iid.py --workdir runs/specdec_iid
  python -m lcoupling.studies.specdec_iid runs/specdec_iid_quick      # the table

``:quick``: 6 prompts x 2 seeds, 24 new tokens, K in {2, 4}; token rate on 1
prompt x 1 seed (the first run also builds the drafter, once). The full protocol
(164 prompts x 5 seeds, 128 new tokens, K in {2, 4, 6, 8}, token rate on 6
prompts x 2 seeds) is a day on a CPU: a GPU job (same command; bfloat16 there).
Adding K values to a finished run computes only the new points
(``num_drafts`` and ``schemes`` are sweep fields).

Figures: ``figures/specdec_iid.{png,pdf}`` (BE and speed-up vs K, ms per token by phase).

The paper's model family (``make lm-qwen`` first): ``:qwen_quick`` decodes with
Qwen2.5-Coder-1.5B-Instruct as the target and Qwen2.5-Coder-0.5B-Instruct as the
drafter (``model:qwen2.5-coder-0.5b``; same tokenizer), HumanEval prompts 114, 131 and
140 x 2 seeds, 32 new tokens -- minutes on a 2-core CPU (measured times in the README);
``:qwen`` is the full protocol with the pair, an accelerator job (``make gpu-paper``)::

  python -m experiments.run --config configs/specdec_iid.py:qwen_quick --workdir runs/specdec_iid_qwen_quick
  python -m lcoupling.studies.specdec_iid runs/specdec_iid_qwen_quick
"""

import ml_collections

from lcoupling.studies import specdec_common

VARIANTS = ("quick", "qwen_quick", "qwen")
SWEEP_FIELDS = ("num_drafts", "schemes")
SINGLE = ("autoregressive", "sps", "daliri")


def get_config(arg=None):
  if arg not in (None, "", *VARIANTS):
    raise ValueError(f"configs/specdec_iid.py: unknown variant {arg!r}; known: {VARIANTS}")
  quick = arg in ("quick", "qwen_quick")
  qwen = arg in ("qwen_quick", "qwen")
  c = ml_collections.ConfigDict()
  c.name = "specdec_iid" + (f"_{arg}" if arg else "")
  c.description = ("Multi-draft speculative decoding with i.i.d. drafts: block efficiency and "
                   "token rate of GLS / strong GLS / SpecInfer / SpecTr vs K, against SpS.")
  c.paper_reference = ("Rowan, Phan & Khisti 2025 (arXiv:2506.05632), Tables 1 and 3 (i.i.d. "
                       "drafts, L = 4, T = 1, top-k 50)")
  c.study = "specdec_iid"
  c.seed = 0
  specdec_common.add_common_fields(c, quick=quick)
  if qwen:
    specdec_common.use_qwen_pair(c, quick=quick)
  c.schemes = ("autoregressive", "sps", "daliri", "specinfer", "spectr", "gls", "gls_strong")
  if quick:  # Daliri (K = 1) behaves like SpS: left to the full protocol
    c.schemes = tuple(s for s in c.schemes if s != "daliri")
  c.num_drafts = (2, 4) if quick else (2, 4, 6, 8)
  c.draft_length = 4
  c.temperature = 1.0
  return c


def get_sweep(config):
  points = []
  for s in config.schemes:
    if s in SINGLE:
      points.append({"scheme": s, "K": 1})
    else:  # multi-draft schemes at K >= 2 (at K = 1 they are sps / daliri)
      points += [{"scheme": s, "K": int(k)} for k in config.num_drafts if k >= 2]
  return points
