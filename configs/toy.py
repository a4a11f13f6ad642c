# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Toy study: token-level acceptance of GLS, SpecInfer and SpecTr on random pairs.

Reproduces the toy study of Rowan, Phan & Khisti (NeurIPS 2025, arXiv:2506.05632):
100 random pairs ``p, q ~ Dirichlet(1)`` over N = 10 symbols, K = 1..20 i.i.d.
drafts; Monte-Carlo acceptance of GLS, SpecInfer and SpecTr against the optimum
``alpha*``, the list matching lemma and the exact GLS acceptance; and the
coupling-vs-d_TV figure of Daliri, Musco & Suresh (arXiv:2408.07978) for the
Gumbel and weighted-MinHash couplings.

Commands (``lcoupling-run`` is the installed form of ``python -m
experiments.run``, and ``toy`` names this file from any directory; both
variants are CPU jobs, seconds for ``:quick`` and minutes for the full sweep;
measured times: README, "Run times"):

  lcoupling-run --config toy:quick --workdir runs/toy_quick
  lcoupling-run --config toy --workdir runs/toy
  python -m lcoupling.studies.toy runs/toy_quick              # the tables

Adding list sizes to a finished run computes only the new ones
(``num_drafts`` is a sweep field): ``--config.num_drafts="(1,2,4,8,12,16,20,24)"``.

Figures: ``figures/toy_acceptance.{png,pdf}`` and ``figures/coupling_vs_dtv.{png,pdf}``.
"""

import ml_collections

VARIANTS = ("quick",)

#: Fields that only select sweep points (a finished run may be extended with more K).
SWEEP_FIELDS = ("num_drafts",)


def get_config(arg=None):
  if arg not in (None, "", *VARIANTS):
    raise ValueError(f"configs/toy.py: unknown variant {arg!r}; known: {VARIANTS}")
  c = ml_collections.ConfigDict()
  c.name = "toy"
  c.description = ("Token-level acceptance of GLS / SpecInfer / SpecTr vs the optimum on random "
                   "Dirichlet pairs, and coupling probability vs total variation.")
  c.paper_reference = ("Rowan, Phan & Khisti 2025 (arXiv:2506.05632), toy study (acceptance vs K); "
                       "Daliri, Musco & Suresh 2024 (arXiv:2408.07978), coupling vs d_TV figure")
  c.study = "toy"
  c.seed = 0
  c.prng_impl = "threefry2x32"
  c.chunk_size = 2000  # Monte-Carlo samples per device-sharded chunk
  c.alphabet_size = 10
  c.num_pairs = 100
  c.dirichlet_alpha = 1.0
  c.num_drafts = tuple(range(1, 21))
  c.methods = ("gls", "specinfer", "spectr")
  c.num_samples = 20_000  # Monte-Carlo samples per pair and K
  c.num_coupling_pairs = 200
  c.coupling_samples = 10_000
  c.coupling_alpha_range = (0.03, 30.0)
  if arg == "quick":
    c.name = "toy_quick"
    c.num_pairs = 40
    c.num_drafts = (1, 2, 4, 8, 12, 16, 20)
    c.num_samples = 2_000
    c.num_coupling_pairs = 60
    c.coupling_samples = 2_000
  return c


def get_sweep(config):
  points = [{"part": "acceptance", "K": int(k)} for k in config.num_drafts]
  return points + [{"part": "coupling"}]
