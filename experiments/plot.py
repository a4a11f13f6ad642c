# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Regenerates the figures of a work directory from its results.json only.

  python -m experiments.plot runs/toy_quick [runs/gaussian_quick ...]
"""

from __future__ import annotations

from absl import app


def main(argv):
  if len(argv) < 2:
    raise app.UsageError("usage: python -m experiments.plot WORKDIR [WORKDIR ...]")
  from lcoupling import runner  # noqa: PLC0415

  for workdir in argv[1:]:
    for path in runner.make_figures(workdir):
      print(path)


def entry_point():
  app.run(main)


if __name__ == "__main__":
  entry_point()
