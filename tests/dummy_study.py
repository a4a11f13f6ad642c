# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""A tiny study for the runner tests (registered by monkeypatching STUDIES)."""

import pathlib

import jax
import numpy as np

from lcoupling import parallel, plotting


def validate(config):
  if config.num_trials < 1:
    raise ValueError(f"config.num_trials must be >= 1, got {config.num_trials}")


def _trial(key, t):
  del t
  return jax.random.uniform(key)


def run_point(key, config, point, *, mesh=None, progress=False):
  if point["x"] == config.crash_at:
    raise RuntimeError(f"simulated crash at point {point}")
  if config.get("scratch_dir"):
    scratch = pathlib.Path(config.scratch_dir)
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / f"x{point['x']}.txt").write_text("done\n")
  k = jax.random.fold_in(key, point["x"])
  u = parallel.map_trials(_trial, k, config.num_trials, chunk_size=config.chunk_size, mesh=mesh)
  return [{"x": point["x"], "mean": float(np.mean(u, dtype=np.float64))}]


def summarize(config, point_records):
  return [r for recs in point_records for r in recs]


def plot(results, figdir):
  plt = plotting.pyplot()
  fig, ax = plt.subplots()
  ax.plot([r["x"] for r in results["records"]], [r["mean"] for r in results["records"]])
  return plotting.save(fig, pathlib.Path(figdir) / "dummy")
