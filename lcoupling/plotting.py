# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Small matplotlib helpers shared by the studies' figure functions.

Figures are made from ``results.json`` only (see :func:`lcoupling.runner.make_figures`).
"""

from __future__ import annotations

import io
import os
import pathlib

from lcoupling import results

__all__ = ["pyplot", "save", "integer_locator"]


def pyplot():
  """``matplotlib.pyplot``, on the non-interactive Agg backend outside notebooks."""
  import matplotlib  # noqa: PLC0415

  if "ipykernel" not in os.environ.get("MPLBACKEND", "") and not _in_notebook():
    matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  return plt


def _in_notebook() -> bool:
  try:
    from IPython import get_ipython  # noqa: PLC0415
  except ImportError:
    return False
  shell = get_ipython()
  return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def save(fig, stem: os.PathLike, *, formats=("png", "pdf"), dpi: int = 150,
         close: bool = True) -> list[pathlib.Path]:
  """Saves ``fig`` as ``stem.png`` and ``stem.pdf`` (atomically); returns the paths.

  The caller lays the figure out (e.g. ``fig.tight_layout()``) before saving.
  """
  stem = pathlib.Path(stem)
  stem.parent.mkdir(parents=True, exist_ok=True)
  paths = []
  for fmt in formats:
    path = stem.with_suffix(f".{fmt}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    results.atomic_write_bytes(path, buf.getvalue())
    paths.append(path)
  if close:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    plt.close(fig)
  return paths


def integer_locator():
  """A tick locator that puts ticks on integers only (list sizes, rates)."""
  from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

  return MaxNLocator(integer=True)
