# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the studies: mean +- SEM over repeats, table formatting."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mean_sem", "fmt_mean_sem"]


def mean_sem(values) -> tuple[float, float | None]:
  """``(mean, standard error of the mean)`` of ``values``; SEM is ``None`` for one value.

  Example:
    >>> m, s = mean_sem([1.0, 2.0, 3.0])
    >>> m, round(s, 6)
    (2.0, 0.57735)
  """
  v = np.asarray(values, np.float64)
  sem = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
  return float(v.mean()), sem


def fmt_mean_sem(mean, sem, digits: int) -> str:
  """``"m ± s"`` with ``digits`` decimals (``"–"`` for a missing mean)."""
  if mean is None:
    return "–"
  return f"{mean:.{digits}f}" + ("" if sem is None else f" ± {sem:.{digits}f}")
