# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Runs (or resumes) an experiment config into a work directory.

  python -m experiments.run --config configs/toy.py:quick --workdir runs/toy_quick \
      [--config.num_pairs=20 ...] [--distributed] [--noprogress]

Everything happens in :func:`lcoupling.runner.run`; this file only parses flags.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config: configs/NAME.py[:variant]; override fields with "
    "--config.FIELD=VALUE.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for results.jsonl, results.json, "
                               "figures/ (re-running resumes).", required=True)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show progress bars.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() "
                                 "(multi-host runs; points are split over processes).")
_MAX_POINTS = flags.DEFINE_integer("max_points", None, "Stop after this many new points "
                                   "(the run stays resumable).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # orbax/jax INFO lines would drown the progress bars
  import jax  # noqa: PLC0415
  from lcoupling import runner  # noqa: PLC0415

  if _DISTRIBUTED.value:
    jax.distributed.initialize()
  spec = flags.FLAGS["config"].config_filename
  module = runner.load_config_module(spec.partition(":")[0])
  config = _CONFIG.value
  config.unlock()
  try:
    experiment = runner.experiment_from_config(module, config, source=spec)
  except ValueError as e:
    sys.exit(f"error: {e}")
  res = runner.run(experiment, _WORKDIR.value, progress=_PROGRESS.value,
                   max_points=_MAX_POINTS.value)
  if res:
    meta = res["meta"]
    state = "complete" if meta["complete"] else f"{meta['num_points_done']}/{meta['num_points']} points"
    print(f"[lcoupling] {config.name}: {state}, {len(res['records'])} records, "
          f"wall {meta['wall_seconds']:.1f} s")
    print(f"[lcoupling] results: {_WORKDIR.value}/results.json   figures: {_WORKDIR.value}/figures/")


def entry_point():
  app.run(main)


if __name__ == "__main__":
  entry_point()
