# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Config-driven, resumable experiment runner (usable from a notebook).

An *experiment* is a config file ``configs/NAME.py`` that defines

* ``get_config(arg=None) -> ml_collections.ConfigDict`` -- ``arg`` names a
  variant (``None``: the paper's full protocol; ``"quick"``: a fast one);
* ``get_sweep(config) -> list[dict]`` -- the sweep points, small JSON-able
  dicts, evaluated one after the other (after ``--config`` overrides).

Every config has the fields :data:`REQUIRED_FIELDS`; ``config.study`` names a
study module of :mod:`lcoupling.studies` that computes one point at a time.

:func:`run` executes the sweep into a work directory (layout in
:mod:`lcoupling.results`): it validates everything before touching a file,
appends one line per completed point to ``results.jsonl`` (so a re-run skips
what is done, and Ctrl-C or a kill loses at most the point in progress),
rewrites ``results.json`` atomically after every point, and makes the figures
from ``results.json`` at the end (:func:`make_figures` regenerates them).

Notebook use::

    from lcoupling import runner
    exp = runner.load_experiment("configs/toy.py:quick", {"num_pairs": 20})
    results = runner.run(exp, "runs/toy_quick")

Multi-host: with ``jax.process_count() > 1`` (after
``jax.distributed.initialize()``) process ``i`` computes the points
``i, i + P, i + 2P, ...`` and process 0 writes the summary. Within a process a
point's trials are sharded over the local devices (:mod:`lcoupling.parallel`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
from tqdm.auto import tqdm

from lcoupling import results as results_lib
from lcoupling import studies

__all__ = [
    "REQUIRED_FIELDS",
    "RESUME_IGNORED_FIELDS",
    "Experiment",
    "load_config_module",
    "load_experiment",
    "experiment_from_config",
    "validate",
    "point_id",
    "run",
    "summarize_workdir",
    "make_figures",
]

#: Fields every config must have (name -> type).
REQUIRED_FIELDS = {
    "name": str,
    "description": str,
    "paper_reference": str,
    "study": str,
    "seed": int,
    "prng_impl": str,
    "chunk_size": int,
}

#: Fields that do not change results (so a resume may change them).
RESUME_IGNORED_FIELDS = ("chunk_size",)

_PRNG_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A resolved config and its sweep points."""

  config: ml_collections.ConfigDict
  sweep: tuple[dict, ...]
  source: str = ""  #: ``path[:variant]`` the config came from.


def load_config_module(path: str | os.PathLike):
  """Imports a config file (``configs/NAME.py``) as a module."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"config file {str(path)!r} not found")
  name = f"lcoupling_config_{path.stem}"
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for fn in ("get_config", "get_sweep"):
    if not callable(getattr(module, fn, None)):
      raise ValueError(f"config file {str(path)!r} must define {fn}()")
  return module


def _split_spec(spec: str) -> tuple[str, str | None]:
  path, _, arg = str(spec).partition(":")
  return path, (arg or None)


def _apply_overrides(config: ml_collections.ConfigDict, overrides: Mapping[str, Any]) -> None:
  for dotted, value in overrides.items():
    *parents, leaf = dotted.split(".")
    node = config
    for i, part in enumerate(parents):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        raise ValueError(f"config.{'.'.join(parents[:i + 1])}: unknown config field")
      node = node[part]
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
      raise ValueError(f"config.{dotted}: unknown config field")
    try:
      node[leaf] = value
    except TypeError as e:
      raise ValueError(f"config.{dotted}: {e}") from e


def experiment_from_config(module, config: ml_collections.ConfigDict, source: str = "",
                           ) -> Experiment:
  """Builds (and validates) an :class:`Experiment` from a loaded config."""
  validate(config)
  sweep = module.get_sweep(config)
  sweep = _check_sweep(sweep)
  config.lock()
  return Experiment(config=config, sweep=sweep, source=source)


def load_experiment(spec: str, overrides: Mapping[str, Any] | None = None) -> Experiment:
  """Loads ``path[:variant]`` and applies ``{"dotted.field": value}`` overrides.

  Unknown fields and values of the wrong type raise ``ValueError`` naming the
  field; the config and the sweep are validated (:func:`validate`).
  """
  path, arg = _split_spec(spec)
  module = load_config_module(path)
  config = module.get_config(arg)
  if not isinstance(config, ml_collections.ConfigDict):
    raise TypeError(f"{path}: get_config must return an ml_collections.ConfigDict")
  _apply_overrides(config, dict(overrides or {}))
  return experiment_from_config(module, config, source=str(spec))


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks the common fields and runs the study's own ``validate``."""
  for field, typ in REQUIRED_FIELDS.items():
    if field not in config:
      raise ValueError(f"config.{field} is required")
    value = config[field]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
      raise ValueError(f"config.{field} must be {typ.__name__}, got {value!r}")
  if not config.name:
    raise ValueError("config.name must not be empty")
  if config.seed < 0 or config.seed >= 2**32:
    raise ValueError(f"config.seed must be in [0, 2**32), got {config.seed}")
  if config.prng_impl not in _PRNG_IMPLS:
    raise ValueError(f"config.prng_impl must be one of {_PRNG_IMPLS}, got {config.prng_impl!r}")
  if config.chunk_size < 1:
    raise ValueError(f"config.chunk_size must be >= 1, got {config.chunk_size}")
  studies.get(config.study).validate(config)


def point_id(point: Mapping[str, Any]) -> str:
  """Canonical identity of a sweep point (sorted-key JSON)."""
  return json.dumps(results_lib.to_jsonable(dict(point)), sort_keys=True)


def _check_sweep(sweep) -> tuple[dict, ...]:
  if not isinstance(sweep, Sequence) or isinstance(sweep, (str, bytes)):
    raise ValueError(f"get_sweep must return a list of dicts, got {type(sweep).__name__}")
  if not sweep:
    raise ValueError("the sweep is empty: get_sweep(config) returned no points")
  seen = set()
  for i, point in enumerate(sweep):
    if not isinstance(point, Mapping):
      raise ValueError(f"sweep point {i} must be a dict, got {point!r}")
    pid = point_id(point)
    if json.loads(pid) != results_lib.to_jsonable(dict(point)):
      raise ValueError(f"sweep point {i} is not JSON-serialisable: {point!r}")
    if pid in seen:
      raise ValueError(f"sweep point {i} is a duplicate: {pid}")
    seen.add(pid)
  return tuple(dict(p) for p in sweep)


def _config_json(config) -> dict:
  return results_lib.to_jsonable(config)


def _check_resume(workdir: pathlib.Path, config) -> None:
  path = workdir / "config.json"
  new = _config_json(config)
  if not path.exists():
    results_lib.atomic_write_json(path, new)
    return
  old = json.loads(path.read_text())
  flat_old = _flatten(old)
  flat_new = _flatten(new)
  diff = sorted(k for k in set(flat_old) | set(flat_new)
                if k.split(".")[0] not in RESUME_IGNORED_FIELDS and flat_old.get(k) != flat_new.get(k))
  if diff:
    details = "; ".join(f"config.{k}: {flat_old.get(k)!r} -> {flat_new.get(k)!r}" for k in diff[:8])
    raise ValueError(
        f"{workdir} holds results of a different config ({details}). Use a new --workdir, or "
        "rerun with the original config to resume.")


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _done_points(workdir: pathlib.Path) -> dict[str, dict]:
  entries = results_lib.repair_jsonl(workdir / "results.jsonl")
  return {point_id(e["point"]): e for e in entries}


def summarize_workdir(experiment: Experiment, workdir, *, wall_seconds: float | None = None,
                      ) -> dict:
  """Writes ``results.json`` from the points completed so far; returns it."""
  workdir = pathlib.Path(workdir)
  config = experiment.config
  done = _done_points(workdir)
  entries = [done[point_id(p)] for p in experiment.sweep if point_id(p) in done]
  study = studies.get(config.study)
  records = study.summarize(config, [e["records"] for e in entries]) if entries else []
  meta = results_lib.run_metadata(config)
  meta.update({
      "num_points": len(experiment.sweep),
      "num_points_done": len(entries),
      "complete": len(entries) == len(experiment.sweep),
      "compute_seconds": float(sum(e.get("seconds", 0.0) for e in entries)),
      "wall_seconds": wall_seconds,
      "source": experiment.source,
  })
  res = {
      "schema": results_lib.SCHEMA,
      "name": config.name,
      "description": config.description,
      "meta": meta,
      "records": records,
  }
  results_lib.atomic_write_json(workdir / "results.json", res)
  return res


def make_figures(workdir_or_results, figdir=None) -> list[pathlib.Path]:
  """(Re)makes the figures from ``results.json`` only."""
  if isinstance(workdir_or_results, Mapping):
    res = dict(workdir_or_results)
    if figdir is None:
      raise ValueError("figdir is required when passing a results dict")
  else:
    res = results_lib.load_results(workdir_or_results)
    p = pathlib.Path(workdir_or_results)
    figdir = figdir or ((p if p.is_dir() else p.parent) / "figures")
  figdir = pathlib.Path(figdir)
  figdir.mkdir(parents=True, exist_ok=True)
  study = studies.get(res["meta"]["study"])
  return list(study.plot(res, figdir))


def run(experiment: Experiment, workdir, *, progress: bool = True, figures: bool = True,
        max_points: int | None = None) -> dict:
  """Runs (or resumes) ``experiment`` into ``workdir``; returns ``results.json``.

  Args:
    experiment: from :func:`load_experiment` (validated).
    workdir: the work directory (created).
    progress: show tqdm bars.
    figures: make the figures when the sweep is complete.
    max_points: stop after computing this many new points (for tests and
      for splitting a long run into sessions); the run stays resumable.
  """
  import jax  # noqa: PLC0415 -- keep `import lcoupling.runner` light

  from lcoupling import parallel  # noqa: PLC0415

  config = experiment.config
  validate(config)  # again: the config may have been edited after loading
  study = studies.get(config.study)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  _check_resume(workdir, config)
  done = _done_points(workdir)

  pidx, pcount = jax.process_index(), jax.process_count()
  mine = [p for i, p in enumerate(experiment.sweep) if i % pcount == pidx]
  todo = [p for p in mine if point_id(p) not in done]
  key = jax.random.key(config.seed, impl=config.prng_impl)
  mesh = parallel.trial_mesh()
  t_start = time.perf_counter()
  if progress and len(done):
    print(f"[lcoupling] resuming {workdir}: {len(done)}/{len(experiment.sweep)} points done",
          file=sys.stderr)
  bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=config.name, unit="point",
             disable=not progress, dynamic_ncols=True)
  computed = 0
  try:
    for point in todo:
      if max_points is not None and computed >= max_points:
        break
      bar.set_postfix_str(point_id(point)[:60])
      t0 = time.perf_counter()
      records = study.run_point(key, config, point, mesh=mesh, progress=progress)
      seconds = time.perf_counter() - t0
      results_lib.append_jsonl(workdir / "results.jsonl", {
          "point": point, "records": records, "seconds": seconds, "process": pidx})
      computed += 1
      bar.update(1)
      if pcount == 1:
        summarize_workdir(experiment, workdir)
  finally:
    bar.close()
  if pcount > 1:
    from jax.experimental import multihost_utils  # noqa: PLC0415
    multihost_utils.sync_global_devices("lcoupling.runner.run")
  wall = time.perf_counter() - t_start
  if pidx != 0:
    return {}
  res = summarize_workdir(experiment, workdir, wall_seconds=wall)
  if figures and res["meta"]["complete"]:
    try:
      make_figures(workdir)
    except Exception as e:  # a plotting bug must not lose the results
      warnings.warn(f"making figures failed ({type(e).__name__}: {e}); "
                    f"rerun `python -m experiments.plot {workdir}`")
      raise
  return res
