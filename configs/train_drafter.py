# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Drafters for SmolLM2-135M-Instruct: build / distil them and measure them.

No public drafter shares SmolLM2's tokenizer and is reachable offline, so the
project makes its own from the target (``lcoupling.lm.drafters``): a soft
bigram and early-exit drafters (the target's first m blocks + an adapter +
the target's final norm and head), with a ridge-fitted linear adapter or a
distilled transformer-block adapter. Training data: the target's own
continuations of HumanEval prompts 0-109; held out: prompts 110-163.
Each drafter is saved under ``WORKDIR/drafters/NAME`` and used by the
speculative-decoding studies as ``--config.drafter=dir:WORKDIR/drafters/NAME``.

Commands (CPU jobs: under an hour for ``:quick``, hours for the full sweep;
measured times: README, "Run times"):

  python -m experiments.run --config configs/train_drafter.py:quick --workdir runs/train_drafter_quick
  python -m experiments.run --config configs/train_drafter.py --workdir runs/train_drafter
  python -m lcoupling.studies.train_drafter runs/train_drafter                                          # the table

``:qwen_quick`` measures the paper's own kind of drafter the same way: the
Qwen2.5-Coder-0.5B-Instruct checkpoint (``model:qwen2.5-coder-0.5b``, loaded,
not built) for the Qwen2.5-Coder-1.5B-Instruct target (``make lm-qwen`` first),
in bfloat16, on held-out prompts 110-115 (CPU minutes)::

  python -m experiments.run --config configs/train_drafter.py:qwen_quick --workdir runs/train_drafter_qwen_quick

Reproduces no paper table: the paper's drafters are public checkpoints (e.g.
Qwen2.5-0.5B for Qwen2.5-7B); this measures ours (acceptance alpha, single-draft
block efficiency at L = 4, and step cost relative to the target).
"""

import ml_collections

from lcoupling.studies import train_drafter

VARIANTS = ("quick", "qwen_quick")
#: Changing only these fields extends (or shrinks) a finished run.
SWEEP_FIELDS = ("drafters",)


def get_config(arg=None):
  if arg not in (None, "", *VARIANTS):
    raise ValueError(f"configs/train_drafter.py: unknown variant {arg!r}; known: {VARIANTS}")
  c = ml_collections.ConfigDict()
  c.name = "train_drafter"
  c.description = ("Drafters for SmolLM2-135M-Instruct (soft bigram; early exit with linear / "
                   "distilled block adapters): acceptance, block efficiency and cost.")
  c.paper_reference = ("Rowan, Phan & Khisti 2025 (arXiv:2506.05632): drafters for the "
                       "speculative-decoding experiments (Tables 1-4, 7-9)")
  c.study = "train_drafter"
  c.seed = 0
  c.prng_impl = "threefry2x32"
  c.chunk_size = 1
  c.target = "smollm2-135m"
  c.dtype = ml_collections.FieldReference(None, field_type=str)
  c.data_dir = "data"
  c.prompts = "humaneval"
  c.prompt_field = "prompt"
  c.train_prompts = (0, 110)
  c.heldout_prompts = (110, 164)
  c.num_new_tokens = 128  # target continuation per prompt (the distillation text)
  c.corpus_batch_size = 8
  c.temperature = 1.0
  c.top_k = 50
  # drafter specs (lcoupling.lm.drafters.parse_spec): "soft_bigram", "early_exit_linear:M",
  # "early_exit_block:M" (M = target blocks run by the drafter)
  c.drafters = ("soft_bigram", "early_exit_linear:2", "early_exit_linear:4", "early_exit_linear:8",
                "early_exit_linear:12", "early_exit_block:2", "early_exit_block:4")
  c.window = 256
  c.teacher_top = 64
  c.ridge = 10.0
  c.train = ml_collections.ConfigDict(dict(steps=3000, batch_size=8, learning_rate=1e-3,
                                           warmup_steps=100, save_every=100))
  c.draft_length = 4
  c.num_seeds = 3
  c.max_new_tokens = 64
  c.timing_steps = 20
  c.output_dir = "{workdir}/drafters"
  if arg == "quick":
    c.name = "train_drafter_quick"
    c.num_new_tokens = 64
    c.drafters = ("soft_bigram", "early_exit_linear:4", "early_exit_block:4")
    c.train.steps = 300
    c.num_seeds = 2
    c.max_new_tokens = 32
    c.timing_steps = 10
  if arg == "qwen_quick":
    c.name = "train_drafter_qwen_quick"
    c.description = ("The Qwen2.5-Coder-0.5B-Instruct checkpoint as the drafter of "
                     "Qwen2.5-Coder-1.5B-Instruct: acceptance, block efficiency and cost.")
    c.target = "qwen2.5-coder-1.5b"
    c.dtype = "bfloat16"
    c.drafters = ("model:qwen2.5-coder-0.5b",)
    c.heldout_prompts = (110, 116)
    c.num_new_tokens = 64
    c.corpus_batch_size = 6
    c.num_seeds = 2
    c.max_new_tokens = 32
    c.timing_steps = 10
  return c


def get_sweep(config):
  return train_drafter.sweep(config)
