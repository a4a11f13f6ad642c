# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Shared pytest fixtures: seeded NumPy generators and statistical assertions.

Statistical tests state their significance level ``alpha`` explicitly; with
fixed seeds every test is deterministic, and a correct implementation fails a
given test with probability about ``alpha`` over the choice of seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats


def _chisquare_pvalue(counts, probs, min_expected=5.0):
  """Pearson chi-square p-value, merging bins with expected count < min_expected.

  Bins with zero probability are excluded (they are checked separately to be
  empty). Low-expectation bins are merged (in order of increasing expectation)
  into one pooled bin until the pool reaches ``min_expected``; if the pool
  stays below it, it is folded into the smallest regular bin.
  """
  counts = np.asarray(counts, dtype=np.float64)
  probs = np.asarray(probs, dtype=np.float64)
  total = counts.sum()
  support = probs > 0
  counts, probs = counts[support], probs[support] / probs[support].sum()
  expected = total * probs
  order = list(np.argsort(expected))
  pooled = []
  while order and expected[order[0]] < min_expected:
    pooled.append(order.pop(0))
  while pooled and expected[pooled].sum() < min_expected and order:
    pooled.append(order.pop(0))
  obs, exp = list(counts[order]), list(expected[order])
  if pooled:
    obs.append(counts[pooled].sum())
    exp.append(expected[pooled].sum())
  counts, expected = np.asarray(obs), np.asarray(exp)
  if len(counts) < 2:
    return 1.0
  return float(stats.chisquare(counts, expected).pvalue)


def _assert_chisquare(counts, probs, alpha, what="sample"):
  """Asserts ``counts`` are a multinomial draw of ``probs`` at level ``alpha``.

  Also asserts that zero-probability bins are empty (exactly).
  """
  counts = np.asarray(counts)
  probs = np.asarray(probs, dtype=np.float64)
  assert counts.shape == probs.shape, (counts.shape, probs.shape)
  zero = probs <= 0
  assert not counts[zero].any(), (
      f"{what}: zero-probability symbols {np.flatnonzero(zero & (counts > 0)).tolist()} were chosen")
  pvalue = _chisquare_pvalue(counts, probs)
  assert pvalue > alpha, (
      f"{what}: chi-square p-value {pvalue:.3g} <= alpha {alpha:g}\n"
      f"counts   {counts.tolist()}\nexpected {(counts.sum() * probs / probs.sum()).round(1).tolist()}")


def _assert_close_to(mean_hits, expected, num, num_se=4.0, what="rate"):
  """Asserts a Bernoulli frequency equals ``expected`` within ``num_se`` SEs."""
  se = np.sqrt(max(expected * (1 - expected), 1e-12) / num)
  assert abs(mean_hits - expected) <= num_se * se, (
      f"{what}: measured {mean_hits:.5f}, expected {expected:.5f} +- {num_se:g} SE ({se:.2g})")


def _assert_at_least(mean_hits, bound, num, num_se=4.0, what="rate"):
  """Asserts a Bernoulli frequency is >= ``bound`` - ``num_se`` SEs."""
  se = np.sqrt(max(mean_hits * (1 - mean_hits), 1e-12) / num)
  assert mean_hits >= bound - num_se * se, (
      f"{what}: measured {mean_hits:.5f} < bound {bound:.5f} - {num_se:g} SE ({se:.2g})")


@pytest.fixture
def rng():
  """A NumPy Generator with a fixed seed (fresh per test)."""
  return np.random.default_rng(20260101)


@pytest.fixture
def assert_chisquare():
  """``assert_chisquare(counts, probs, alpha, what=...)`` (see :func:`_assert_chisquare`)."""
  return _assert_chisquare


@pytest.fixture
def assert_close_to():
  """``assert_close_to(freq, expected, num, num_se=4, what=...)``."""
  return _assert_close_to


@pytest.fixture
def assert_at_least():
  """``assert_at_least(freq, bound, num, num_se=4, what=...)``."""
  return _assert_at_least


@pytest.fixture
def random_pair():
  """``random_pair(rng, n, zeros=0)`` -> ``(p, q)`` float64 probability vectors.

  Dirichlet(1) draws; with ``zeros > 0`` that many symbols get zero mass in p
  and (a different set) in q, keeping at least two symbols in each support.
  """

  def make(rng, n, zeros=0):
    p = rng.dirichlet(np.ones(n))
    q = rng.dirichlet(np.ones(n))
    if zeros:
      perm = rng.permutation(n)
      p[perm[:zeros]] = 0.0
      q[perm[zeros:2 * zeros]] = 0.0
      p /= p.sum()
      q /= q.sum()
    return p, q

  return make


def to_logits(p):
  """log p with -inf for zeros, float32."""
  p = np.asarray(p, dtype=np.float64)
  with np.errstate(divide="ignore"):
    return np.log(p).astype(np.float32)


@pytest.fixture
def logits():
  """``logits(p)``: float32 log-probabilities with ``-inf`` for zero mass."""
  return to_logits


@pytest.fixture(scope="session")
def smollm2():
  """SmolLM2-135M-Instruct (float32), loaded once per session: ``LoadedLM(model, tokenizer, ...)``.

  Skips (with the fix in the reason) when ``make lm`` has not fetched the model.
  """
  import pathlib

  from lcoupling.lm import assets, load
  data_dir = pathlib.Path(__file__).resolve().parent.parent / "data"
  try:
    assets.asset_path("smollm2", data_dir)
  except assets.AssetError as e:
    pytest.skip(f"SmolLM2 asset not fetched: {e}")
  return load("smollm2-135m", dtype="float32", data_dir=data_dir)


#: Test modules, slowest first (their summed test times in a full ``make test`` run on the
#: 2-core machine). ``make test`` runs ``-n 2 --dist loadscope --no-loadscope-reorder``: xdist
#: hands whole modules to the two workers in collection order, so the long ones start first and
#: the short ones (every module not listed, in their usual order) even out the end. With xdist's
#: default order (most tests first) a long module with few tests, handed out last, ran alone while
#: the other worker idled. A stale list only costs balance, never a test.
SLOWEST_MODULES_FIRST = (
    "test_image_codec.py", "test_drafters.py", "test_specdec.py", "test_core.py",
    "test_specdec_studies.py", "test_doctests.py", "test_compression.py", "test_readme.py",
    "test_runner.py", "test_verifiers.py", "test_vae.py", "test_bounds.py", "test_lm_smollm2.py",
    "test_gaussian_study.py", "test_conventions.py", "test_ctrl_c.py", "test_data.py",
    "test_cifar10_study.py", "test_benchmark_specdec.py", "test_lm_generate.py",
    "test_lm_model.py", "test_cpu_kernels.py", "test_notebook.py", "test_toy_study.py",
    "test_train_drafter_study.py", "test_specdec_cli.py", "test_benchmark_dense.py",
    "test_lm_qwen_assets.py", "test_gpu_script.py",
)


def pytest_collection_modifyitems(config, items):
  """Orders the modules by :data:`SLOWEST_MODULES_FIRST` (stable: tests keep their order)."""
  del config
  rank = {name: i for i, name in enumerate(SLOWEST_MODULES_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
