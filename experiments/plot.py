# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Regenerates the figures of a work directory from its results.json only.

  lcoupling-plot runs/toy_quick [runs/gaussian_quick ...]
  python -m experiments.plot runs/toy_quick [runs/gaussian_quick ...]

Each argument is a work directory or a ``results.json`` file. A missing,
truncated or foreign file prints one line ``error: ...`` naming it (exit status
1); Ctrl-C exits with status 130.
"""

from __future__ import annotations

import pathlib
import sys

from lcoupling import cli

USAGE = "usage: lcoupling-plot WORKDIR_OR_RESULTS_JSON [...]"


def main(argv: list[str] | None = None) -> int:
  args = list(sys.argv if argv is None else argv)[1:]
  if any(a in ("-h", "--help") for a in args):
    print(f"{__doc__}\n{USAGE}")
    return 0
  if not args or any(a.startswith("-") for a in args):
    return cli.error(USAGE, 2)
  try:
    from lcoupling import runner  # noqa: PLC0415

    for workdir in args:
      if not pathlib.Path(workdir).exists():
        return cli.error(f"{workdir}: no such work directory (or results.json file); check the "
                         f"path, or run the experiment first: lcoupling-run --config NAME "
                         f"--workdir {workdir}")
      for path in runner.make_figures(workdir):
        print(path)
  except KeyboardInterrupt:
    print("\ninterrupted", file=sys.stderr)
    return 130
  except (ValueError, OSError) as e:
    return cli.error(e)
  return 0


def entry_point():
  """The ``lcoupling-plot`` command: :func:`main`, then :func:`lcoupling.cli.exit_process`."""
  try:
    status = main()
  except KeyboardInterrupt:
    print("\ninterrupted", file=sys.stderr)
    status = 130
  if status == 130:
    cli.ignore_sigint()  # a second Ctrl-C must not interrupt the exit
  cli.exit_process(status)


if __name__ == "__main__":
  entry_point()
