# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Runs (or resumes) an experiment config into a work directory.

  lcoupling-run --config toy:quick --workdir runs/toy_quick [--config.num_pairs=20 ...]
  python -m experiments.run --config configs/toy.py:quick --workdir runs/toy_quick \
      [--config.FIELD=VALUE ...] [--distributed] [--noprogress] [--max_points=N] \
      [--allow_version_change] [--traceback]

``--config`` takes a built-in config by name (``toy``, ``gaussian``, ``mnist``;
from any directory) or a path to a config file, each with an optional
``:variant``. ``--config.FIELD=VALUE`` (or ``--config.FIELD VALUE``) overrides a
field; the value is parsed by the field's type (strings as is, ``(1,2)`` for
tuples, true/false for booleans).

Errors -- an unknown flag or config field, an invalid value, a missing file, a
work directory that is a file or holds another config or code version -- print
one line ``error: ...`` that says what to do, and exit with status 2 (usage:
the flags, the config, its overrides and its validation) or 1 (the rest); ``--traceback`` shows the full traceback instead. Ctrl-C prints
``interrupted; rerun the same command to resume`` and exits with status 130.

Everything else happens in :func:`lcoupling.runner.run`. At the end the
command names the study's table printer (``python -m lcoupling.studies.NAME
WORKDIR``).
"""

from __future__ import annotations

import signal
import sys
import threading

# Ctrl-C while the imports below initialise jaxlib would surface as an ImportError traceback:
# record it instead, and let entry_point report the interrupt (exit status 130).
_EARLY_SIGINT: list[int] = []
_PREVIOUS_SIGINT = None
if (threading.current_thread() is threading.main_thread()
    and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
  _PREVIOUS_SIGINT = signal.signal(signal.SIGINT, lambda signum, frame: _EARLY_SIGINT.append(1))
try:
  from absl import flags

  from lcoupling import cli
finally:
  if _PREVIOUS_SIGINT is not None:
    signal.signal(signal.SIGINT, _PREVIOUS_SIGINT)

FLAGS = flags.FlagValues()
flags.DEFINE_string("config", None, "Experiment config: NAME[:variant] (built-in: toy, gaussian, "
                    "mnist) or path/to/config.py[:variant]; override fields with "
                    "--config.FIELD=VALUE.", flag_values=FLAGS)
flags.DEFINE_string("workdir", None, "Directory for config.json, results.jsonl, results.json, "
                    "figures/ (re-running the same command resumes).", flag_values=FLAGS)
flags.DEFINE_bool("progress", True, "Show progress bars.", flag_values=FLAGS)
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host runs; "
                  "points are split over processes).", flag_values=FLAGS)
flags.DEFINE_integer("max_points", None, "Stop after this many new points (the run stays "
                     "resumable).", flag_values=FLAGS)
flags.DEFINE_bool("allow_version_change", False, "Resume a work directory whose finished points "
                  "were computed by another code version (results.json then lists every "
                  "version in meta.code_versions).", flag_values=FLAGS)
flags.DEFINE_bool("traceback", False, "Show the full traceback of an error instead of one line.",
                  flag_values=FLAGS)

USAGE = ("usage: lcoupling-run --config NAME[:variant] --workdir DIR [--config.FIELD=VALUE ...] "
         "[--noprogress] [--max_points=N] [--allow_version_change] [--distributed]")
INTERRUPTED = "interrupted; rerun the same command to resume"


def printer_command(study: str | None, workdir: str) -> str | None:
  """``python -m lcoupling.studies.NAME WORKDIR`` when the study has a table printer."""
  import importlib  # noqa: PLC0415
  import shlex  # noqa: PLC0415

  from lcoupling import studies  # noqa: PLC0415

  if study not in studies.STUDIES:
    return None
  if not callable(getattr(importlib.import_module(studies.STUDIES[study]), "main", None)):
    return None
  return f"python -m {studies.STUDIES[study]} {shlex.quote(str(workdir))}"


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv if argv is None else argv)
  overrides, status = cli.parse_flags(FLAGS, argv, usage=USAGE, doc=__doc__)
  if status is not None:
    return status
  if not FLAGS.config:
    return cli.error("--config is required: --config NAME[:variant] for a built-in config (toy, "
                     "gaussian, mnist), e.g. --config toy:quick, or --config path/to/config.py", 2)
  if not FLAGS.workdir:
    name = FLAGS.config.partition(":")[0].split("/")[-1].removesuffix(".py")
    return cli.error(f"--workdir is required (results go there; rerunning resumes), e.g. "
                     f"--workdir runs/{name}", 2)
  try:
    with cli.deferred_sigint():
      import jax  # noqa: PLC0415

      from lcoupling import runner  # noqa: PLC0415

    if FLAGS.distributed:
      jax.distributed.initialize()
    spec = FLAGS.config
    try:  # the config, its overrides and its validation: usage errors (exit status 2)
      module, config = cli.load_config(spec, overrides)
      experiment = runner.experiment_from_config(module, config, source=spec)
    except (ValueError, FileNotFoundError) as e:  # incl. a missing config or prompt file
      if FLAGS.traceback:
        raise
      return cli.error(e, 2)
    res = runner.run(experiment, FLAGS.workdir, progress=FLAGS.progress,
                     max_points=FLAGS.max_points, allow_version_change=FLAGS.allow_version_change)
  except KeyboardInterrupt:
    print(f"\n{INTERRUPTED}", file=sys.stderr)
    return 130
  except (ValueError, OSError) as e:
    if FLAGS.traceback:
      raise
    return cli.error(e)
  if res:
    meta = res["meta"]
    state = ("complete" if meta["complete"]
             else f"{meta['num_points_done']}/{meta['num_points']} points")
    print(f"[lcoupling] {experiment.config.name}: {state}, {len(res['records'])} records, "
          f"wall {meta['wall_seconds']:.1f} s")
    print(f"[lcoupling] results: {FLAGS.workdir}/results.json   figures: {FLAGS.workdir}/figures/")
    printer = printer_command(meta.get("study"), FLAGS.workdir)
    if printer:
      print(f"[lcoupling] tables: {printer}")
  return 0


def entry_point():
  """The ``lcoupling-run`` command: :func:`main`, then :func:`lcoupling.cli.exit_process`."""
  try:
    if _EARLY_SIGINT:
      raise KeyboardInterrupt
    status = main()
  except KeyboardInterrupt:  # during the imports or before main's own handler (flag parsing)
    cli.ignore_sigint()
    print(f"\n{INTERRUPTED}", file=sys.stderr)
    status = 130
  if status == 130:
    cli.ignore_sigint()  # a second Ctrl-C must not interrupt the exit
  cli.exit_process(status)


if __name__ == "__main__":
  entry_point()
