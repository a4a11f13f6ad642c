# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Gaussian study: lossy compression with K decoders, GLS vs baseline (docs/method.md §5.2).

Reproduces the synthetic Gaussian experiment of Rowan, Phan & Khisti (NeurIPS
2025, arXiv:2506.05632), §5: A ~ N(0,1), T_k = A + N(0, 0.5), N = 2**15
codewords, L_max = 2..64, K = 1..4, GLS (one race-time row per decoder) and the
baseline (one shared row); sigma2_{W|A} selected per (scheme, K, L_max) from a
7-value grid on 10**4 trials, evaluated on 10**5 fresh trials; 10 repeats,
mean +- SEM. Outputs the distortion (mean of 10 log10 (A - Â)², the paper's
metric, and 10 log10 MSE), matching probabilities with and without side
information, and the error-probability bound.

Commands (CPU jobs: minutes for ``:quick``, under an hour for the full protocol;
measured times: README, "Run times"; benchmarks/gaussian.py measures the throughput):

  python -m experiments.run --config configs/gaussian.py:quick --workdir runs/gaussian_quick  # 30k trials
  python -m experiments.run --config configs/gaussian.py --workdir runs/gaussian
  python -m lcoupling.studies.gaussian runs/gaussian        # the markdown table

Figures: ``figures/gaussian_matching.{png,pdf}`` (matching probability vs rate:
GLS without side information, GLS, baseline, the bound) and
``figures/gaussian_rd.{png,pdf}`` (R-D curves, GLS vs baseline per K).
Each sweep point is one repeat (resumable per repeat); ``num_repeats`` is a sweep
field, so more repeats can be added to a finished run (``--config.num_repeats=20``
computes repeats 10..19 only).
On an accelerator use the ``gpu`` variant (``trial_batch = 0``: vectorise whole
chunks of 2048 trials; ``configs/gaussian.py:gpu``); ``scripts/gpu_full.sh`` runs
it with the MNIST paper protocol and the benchmarks.
"""

import ml_collections

VARIANTS = ("quick", "gpu")
#: Fields that only select sweep points: a point is one repeat (``run_point`` folds
#: ``point["repeat"]`` into the key and never reads ``num_repeats``).
SWEEP_FIELDS = ("num_repeats",)


def get_config(arg=None):
  if arg not in (None, "", *VARIANTS):
    raise ValueError(f"configs/gaussian.py: unknown variant {arg!r}; known: {VARIANTS}")
  c = ml_collections.ConfigDict()
  c.name = "gaussian"
  c.description = ("Distributed lossy compression of a Gaussian source with K decoders: GLS vs "
                   "baseline importance-sampling codec, R-D and matching probability.")
  c.paper_reference = ("Rowan, Phan & Khisti 2025 (arXiv:2506.05632), §5 synthetic Gaussian "
                       "experiment (R-D table/figure, matching probability figure)")
  c.study = "gaussian"
  c.seed = 0
  c.prng_impl = "threefry2x32"
  c.chunk_size = 256  # trials per device-sharded chunk (bounds memory)
  c.trial_batch = 1  # trials vectorised together inside a chunk (0 = whole chunk; GPUs)
  c.num_codewords = 2 ** 15
  c.sigma2_t_given_a = 0.5
  c.sigma2_w_given_a_grid = (0.01, 0.008, 0.006, 0.005, 0.003, 0.002, 0.001)
  c.num_bins = (2, 4, 8, 16, 32, 64)  # L_max values (powers of two)
  c.num_decoders = 4  # K_max; every K <= K_max is evaluated
  c.num_selection_trials = 10_000
  c.num_eval_trials = 100_000
  c.num_repeats = 10
  if arg == "gpu":  # the paper protocol on one accelerator: whole chunks vectorised
    c.name = "gaussian_gpu"
    c.trial_batch = 0
    c.chunk_size = 2048
  if arg == "quick":
    c.name = "gaussian_quick"
    c.num_selection_trials = 3_000
    c.num_eval_trials = 12_000
    c.num_repeats = 2
  return c


def get_sweep(config):
  return [{"repeat": int(r)} for r in range(config.num_repeats)]
