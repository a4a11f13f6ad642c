# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Config-driven, resumable experiment runner (usable from a notebook).

An *experiment* is a config file ``configs/NAME.py`` that defines

* ``get_config(arg=None) -> ml_collections.ConfigDict`` -- ``arg`` names a
  variant (``None``: the paper's full protocol; ``"quick"``: a fast one);
* ``get_sweep(config) -> list[dict]`` -- the sweep points, small JSON-able
  dicts, evaluated one after the other (after ``--config`` overrides);
* optionally ``SWEEP_FIELDS`` -- the config fields that only select the sweep
  points (e.g. ``("num_drafts",)``): changing them on a finished work
  directory extends (or shrinks) the sweep instead of being refused.

The built-in configs (``toy``, ``gaussian``, ``mnist``) are installed with the
package and load by name from any directory: ``load_experiment("toy:quick")``,
``lcoupling-run --config toy:quick``; a path (``my_configs/x.py:quick``) works
too. Every config has the fields :data:`REQUIRED_FIELDS`; ``config.study``
names a study module of :mod:`lcoupling.studies` that computes one point at a
time. A string field may contain ``{workdir}`` (:data:`WORKDIR_PLACEHOLDER`):
the study sees it replaced by the absolute work directory, so outputs such as
checkpoints land in the work directory, not the current one.

:func:`run` executes the sweep into a work directory (layout in
:mod:`lcoupling.results`): it validates everything before touching a file,
appends one line per completed point to ``results.jsonl`` with the code
version that computed it (so a re-run skips what is done, and Ctrl-C or a kill
loses at most the point in progress), rewrites ``results.json`` atomically
after every point, and makes the figures from ``results.json`` at the end
(:func:`make_figures` regenerates them). A resume must use the same config
(up to :data:`RESUME_IGNORED_FIELDS` and the sweep fields) and the same code
version unless ``allow_version_change=True``; a work directory whose previous
run finished no point (e.g. it failed on a wrong path) takes any config.

Notebook use::

    from lcoupling import runner
    exp = runner.load_experiment("toy:quick", {"num_pairs": 20})
    results = runner.run(exp, "runs/toy_quick")

Multi-host: with ``jax.process_count() > 1`` (after
``jax.distributed.initialize()``) process ``i`` computes the points
``i, i + P, i + 2P, ...`` and process 0 writes the summary. Within a process a
point's trials are sharded over the local devices (:mod:`lcoupling.parallel`).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
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
from lcoupling.validation import check_choice, check_int, need

__all__ = [
    "REQUIRED_FIELDS",
    "RESUME_IGNORED_FIELDS",
    "WORKDIR_PLACEHOLDER",
    "Experiment",
    "builtin_config_dir",
    "builtin_configs",
    "resolve_config_path",
    "load_config_module",
    "load_experiment",
    "experiment_from_config",
    "apply_overrides",
    "parse_override",
    "validate",
    "point_id",
    "resolve_workdir_paths",
    "unresolved_workdir_fields",
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

#: In a string config field, replaced by the absolute work directory before the
#: study sees the config (``config.json`` keeps the placeholder), e.g.
#: ``checkpoint_dir = "{workdir}/checkpoints"``.
WORKDIR_PLACEHOLDER = "{workdir}"

_PRNG_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A resolved config and its sweep points."""

  config: ml_collections.ConfigDict
  sweep: tuple[dict, ...]
  source: str = ""  #: ``path[:variant]`` the config came from.
  #: Config fields that only select the sweep points (the config file's
  #: ``SWEEP_FIELDS``): a resume may change them to extend or shrink the sweep.
  sweep_fields: tuple[str, ...] = ()


# --------------------------------------------------------------------------
# Finding and loading config files.
# --------------------------------------------------------------------------


def builtin_config_dir() -> pathlib.Path:
  """The directory of the built-in configs (the ``configs`` package installed with lcoupling).

  It sits next to the ``lcoupling`` package, in a checkout (editable install)
  and in site-packages alike, so it does not depend on the current directory.
  """
  here = pathlib.Path(__file__).resolve().parent.parent / "configs"
  if here.is_dir():
    return here
  spec = importlib.util.find_spec("configs")
  if spec is not None and spec.submodule_search_locations:
    return pathlib.Path(list(spec.submodule_search_locations)[0])
  return here


def builtin_configs() -> list[str]:
  """Names of the built-in configs (``toy``, ``gaussian``, ``mnist``, ...)."""
  d = builtin_config_dir()
  return sorted(f.stem for f in d.glob("*.py") if not f.stem.startswith("_")) if d.is_dir() else []


def resolve_config_path(path: str | os.PathLike) -> pathlib.Path:
  """A config file path, or a bare built-in name (``toy``, ``toy.py``) -> the file.

  An existing file wins; a name without a directory part is looked up among
  the built-in configs (:func:`builtin_config_dir`), from any directory.
  """
  text = os.fspath(path)
  p = pathlib.Path(text).expanduser()
  if p.is_file():
    return p
  builtin = builtin_configs()
  if text and "/" not in text and os.sep not in text:
    name = text[:-3] if text.endswith(".py") else text
    candidate = builtin_config_dir() / f"{name}.py"
    if name in builtin and candidate.is_file():
      return candidate
  where = "" if p.is_absolute() else f" (relative to {os.getcwd()})"
  raise FileNotFoundError(
      f"config file {text!r} not found{where}; pass a built-in config by name "
      f"({', '.join(builtin) or 'none installed'}; e.g. --config toy:quick) or a path to a "
      "config file")


def load_config_module(path: str | os.PathLike):
  """Imports a config file (a path, or a built-in name such as ``toy``) as a module."""
  path = resolve_config_path(path)
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


def _field_names(config, prefix="") -> list[str]:
  out = []
  for k, v in config.items():
    out.append(prefix + k)
    if isinstance(v, ml_collections.ConfigDict):
      out += _field_names(v, f"{prefix}{k}.")
  return out


def _unknown_field(config, dotted) -> ValueError:
  close = difflib.get_close_matches(dotted, _field_names(config), n=3)
  hint = f"; did you mean {', '.join('config.' + c for c in close)}?" if close else (
      "; known fields: " + ", ".join(sorted(config.keys())))
  return ValueError(f"config.{dotted}: unknown config field{hint}")


def _locate(config, dotted):
  *parents, leaf = dotted.split(".")
  node = config
  for part in parents:
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      raise _unknown_field(config, dotted)
    node = node[part]
  if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
    raise _unknown_field(config, dotted)
  return node, leaf


def parse_override(config: ml_collections.ConfigDict, dotted: str, text: str) -> Any:
  """Parses the command-line text of ``--config.DOTTED=TEXT`` by the field's type.

  String fields take the text as is; booleans accept true/false/1/0/yes/no;
  anything else is a Python literal (``3``, ``0.5``, ``(1, 2)``); a single
  value for a tuple field becomes a 1-tuple.
  """
  node, leaf = _locate(config, dotted)
  current = node[leaf]
  if isinstance(current, str):
    return text
  if isinstance(current, bool):
    low = text.strip().lower()
    if low in ("true", "1", "yes", "t", "y"):
      return True
    if low in ("false", "0", "no", "f", "n"):
      return False
    raise ValueError(f"config.{dotted} must be a bool (true/false), got {text!r}")
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  if isinstance(current, (tuple, list)):
    if isinstance(value, (tuple, list)):
      value = type(current)(value)
    elif not isinstance(value, str):
      value = type(current)((value,))
  return value


def apply_overrides(config: ml_collections.ConfigDict, overrides: Mapping[str, Any]) -> None:
  """Sets ``{"dotted.field": value}``; unknown fields and wrong types raise ``ValueError``."""
  for dotted, value in overrides.items():
    node, leaf = _locate(config, dotted)
    try:
      node[leaf] = value
    except (TypeError, ValueError) as e:
      raise ValueError(f"config.{dotted} must be {_kind(node[leaf])}, got {value!r}") from e


def _kind(current) -> str:
  """What a config field holding ``current`` accepts, for error messages."""
  if isinstance(current, bool):
    return "a bool (true/false)"
  if isinstance(current, int):
    return f"an int (e.g. {current})"
  if isinstance(current, float):
    return f"a number (e.g. {current})"
  if isinstance(current, str):
    return f"a str (e.g. {current!r})"
  if isinstance(current, (tuple, list)):
    example = ",".join(repr(v) for v in current) or "1,2"
    return f"a {type(current).__name__} (e.g. ({example}) or a single value)"
  return f"a {type(current).__name__} (e.g. {current!r})"


_apply_overrides = apply_overrides  # backwards-compatible private name


def experiment_from_config(module, config: ml_collections.ConfigDict, source: str = "",
                           ) -> Experiment:
  """Builds (and validates) an :class:`Experiment` from a loaded config.

  ``module.SWEEP_FIELDS`` (optional) names the config fields that only select
  the sweep points (e.g. the list sizes ``num_drafts`` of the toy study): a
  finished run may be resumed with other values of them, which computes the
  new points only. Every other field must match on resume.
  """
  validate(config)
  sweep_fields = tuple(getattr(module, "SWEEP_FIELDS", ()) or ())
  for f in sweep_fields:
    if not isinstance(f, str):
      raise ValueError(f"SWEEP_FIELDS must hold config field names, got {f!r}")
    _locate(config, f)
    if f in REQUIRED_FIELDS:
      raise ValueError(f"SWEEP_FIELDS: config.{f} is a required field, not a sweep field")
  sweep = module.get_sweep(config)
  sweep = _check_sweep(sweep)
  config.lock()
  return Experiment(config=config, sweep=sweep, source=source, sweep_fields=sweep_fields)


def load_experiment(spec: str, overrides: Mapping[str, Any] | None = None) -> Experiment:
  """Loads ``NAME[:variant]`` or ``path[:variant]`` and applies overrides.

  ``NAME`` is a built-in config (``toy``, ``gaussian``, ``mnist``; found from
  any directory), ``path`` a config file. ``overrides`` maps dotted fields to
  values (``{"num_pairs": 20, "train.epochs": 1}``). Unknown fields and values
  of the wrong type raise ``ValueError`` naming the field; the config and the
  sweep are validated (:func:`validate`).
  """
  path, arg = _split_spec(spec)
  module = load_config_module(path)
  config = module.get_config(arg)
  if not isinstance(config, ml_collections.ConfigDict):
    raise TypeError(f"{path}: get_config must return an ml_collections.ConfigDict")
  apply_overrides(config, dict(overrides or {}))
  return experiment_from_config(module, config, source=str(spec))


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks the common fields and runs the study's own ``validate``."""
  for field, typ in REQUIRED_FIELDS.items():
    if field not in config:
      raise ValueError(f"config.{field} is required")
    value = config[field]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
      raise ValueError(f"config.{field} must be {typ.__name__}, got {value!r}")
  need(bool(config.name), "config.name must not be empty")
  need(0 <= config.seed < 2**32, f"config.seed must be in [0, 2**32), got {config.seed}")
  check_choice(config, "prng_impl", _PRNG_IMPLS)
  check_int(config, "chunk_size", 1)
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


# --------------------------------------------------------------------------
# Work directory: paths, resumption.
# --------------------------------------------------------------------------


def resolve_workdir_paths(config: ml_collections.ConfigDict, workdir) -> ml_collections.ConfigDict:
  """A locked copy of ``config`` with ``{workdir}`` in string fields replaced.

  Run outputs other than the results (e.g. MNIST's VAE checkpoints) belong in
  the work directory: a config field ``"{workdir}/checkpoints"`` becomes
  ``<absolute workdir>/checkpoints``. Other paths are used as given (relative
  ones relative to the current directory). The runner passes the resolved
  copy to the study and stores the placeholder form in ``config.json``, so a
  work directory can be moved and resumed from anywhere.

  Example:
    >>> c = ml_collections.ConfigDict({"ckpt": "{workdir}/ckpt", "n": 1})
    >>> resolve_workdir_paths(c, "/tmp/run").ckpt
    '/tmp/run/ckpt'
  """
  root = str(pathlib.Path(workdir).expanduser().resolve())

  def sub(node):
    for k, v in node.items():
      if isinstance(v, ml_collections.ConfigDict):
        sub(v)
      elif isinstance(v, str) and WORKDIR_PLACEHOLDER in v:
        node[k] = v.replace(WORKDIR_PLACEHOLDER, root)

  out = ml_collections.ConfigDict(config.to_dict())
  sub(out)
  out.lock()
  return out


def unresolved_workdir_fields(config: ml_collections.ConfigDict) -> dict[str, str]:
  """``{dotted field: value}`` of the string fields that still hold ``{workdir}``.

  Empty once :func:`resolve_workdir_paths` has run. Entry points that use a
  config outside :func:`run` check it to refuse a placeholder that would
  otherwise become a directory literally named ``{workdir}``.

  Example:
    >>> c = ml_collections.ConfigDict({"ckpt": "{workdir}/ckpt", "sub": {"out": "x"}})
    >>> unresolved_workdir_fields(c), unresolved_workdir_fields(resolve_workdir_paths(c, "/tmp"))
    ({'ckpt': '{workdir}/ckpt'}, {})
  """
  return {k: v for k, v in _flatten(config.to_dict()).items()
          if isinstance(v, str) and WORKDIR_PLACEHOLDER in v}


def _prepare_workdir(workdir: pathlib.Path) -> None:
  if workdir.exists() and not workdir.is_dir():
    raise NotADirectoryError(
        f"workdir {str(workdir)!r} is a file, not a directory: pass a directory (it is created "
        "if missing)")


def _config_json(config) -> dict:
  return results_lib.to_jsonable(config)


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _in_fields(key: str, fields) -> bool:
  return any(key == f or key.startswith(f + ".") for f in fields)


def _config_diff(old: dict, new: dict, ignore) -> list[str]:
  fo, fn = _flatten(old), _flatten(new)
  keys = set(fo) | set(fn)
  return sorted(k for k in keys if not _in_fields(k, ignore) and fo.get(k) != fn.get(k))


def _describe_diff(keys, old, new) -> str:
  fo, fn = _flatten(old), _flatten(new)
  more = f"; and {len(keys) - 8} more" if len(keys) > 8 else ""
  return "; ".join(f"config.{k}: {fo.get(k)!r} -> {fn.get(k)!r}" for k in keys[:8]) + more


def _done_points(workdir: pathlib.Path) -> dict[str, dict]:
  entries = results_lib.repair_jsonl(workdir / "results.jsonl")
  return {point_id(e["point"]): e for e in entries}


def _check_resume(workdir: pathlib.Path, experiment: Experiment, code: dict, *,
                  allow_version_change: bool, progress: bool) -> dict[str, dict]:
  """Checks that ``workdir`` may be (re)used for ``experiment``; returns the finished points.

  Nothing is written until every check passed; then ``config.json`` is
  (re)written when it is new, when the previous run finished no point (a run
  that failed at once, e.g. on a wrong path, leaves nothing to protect), or
  when only sweep fields changed (the sweep is extended or shrunk).
  """
  path = workdir / "config.json"
  new = _config_json(experiment.config)
  done = _done_points(workdir)
  write = True
  note = None
  if path.exists():
    try:
      old = json.loads(path.read_text())
    except json.JSONDecodeError as e:
      raise ValueError(f"{path} is not valid JSON ({e}): restore it or use a new workdir") from None
    if done:
      ignore = (*RESUME_IGNORED_FIELDS, *experiment.sweep_fields)
      diff = _config_diff(old, new, ignore)
      if diff:
        raise ValueError(
            f"{workdir} holds results of a different config ({_describe_diff(diff, old, new)}). "
            "Use a new --workdir, or rerun with the original config to resume.")
      sweep_diff = _config_diff(old, new, RESUME_IGNORED_FIELDS)
      if sweep_diff:
        note = f"changing the sweep of {workdir} ({_describe_diff(sweep_diff, old, new)})"
      write = bool(_config_diff(old, new, ()))
    elif old != new:
      note = f"{workdir} holds no finished point: starting over with the new config"
  elif done:
    raise ValueError(
        f"{workdir / 'results.jsonl'} holds {len(done)} finished points but {path} is missing, "
        "so they cannot be checked against this config: restore config.json or use a new --workdir")
  wanted = {point_id(p) for p in experiment.sweep}
  used = [e for pid, e in done.items() if pid in wanted]
  ident = results_lib.code_identity(code)
  other = [e for e in used if results_lib.code_identity(e.get("code")) != ident]
  if other and not allow_version_change:
    raise ValueError(
        f"{workdir}: {len(other)} of the {len(used)} finished points were computed by another code "
        f"version ({results_lib.code_difference(other[0].get('code'), code)}). Rerun with "
        "--allow_version_change (run(..., allow_version_change=True)) to keep them, or use a new "
        "--workdir.")
  if write:
    results_lib.atomic_write_json(path, new)
  if progress and note:
    print(f"[lcoupling] {note}", file=sys.stderr)
  if progress and other:
    print(f"[lcoupling] {len(other)} finished points come from another code version "
          f"({results_lib.code_difference(other[0].get('code'), code)}); kept "
          "(--allow_version_change)", file=sys.stderr)
  return done


def _code_versions(entries) -> list[dict]:
  groups: dict[str | None, dict] = {}
  for e in entries:
    code = e.get("code")
    ident = results_lib.code_identity(code)
    if ident not in groups:
      base = dict(code) if code else {"git_sha": None, "git_dirty": None, "source_digest": None,
                                      "versions": None}
      groups[ident] = {**base, "num_points": 0}
    groups[ident]["num_points"] += 1
  return list(groups.values())


def summarize_workdir(experiment: Experiment, workdir, *, wall_seconds: float | None = None,
                      code: dict | None = None) -> dict:
  """Writes ``results.json`` from the points completed so far; returns it.

  ``meta.code_versions`` lists every code version that contributed a point
  (with its number of points); ``code`` is this process's
  (:func:`lcoupling.results.code_version`, computed if ``None``).
  """
  workdir = pathlib.Path(workdir)
  config = experiment.config
  done = _done_points(workdir)
  entries = [done[point_id(p)] for p in experiment.sweep if point_id(p) in done]
  study = studies.get(config.study)
  study_config = resolve_workdir_paths(config, workdir)
  records = study.summarize(study_config, [e["records"] for e in entries]) if entries else []
  meta = results_lib.run_metadata(config, code)
  meta.update({
      "num_points": len(experiment.sweep),
      "num_points_done": len(entries),
      "complete": len(entries) == len(experiment.sweep),
      "compute_seconds": float(sum(e.get("seconds", 0.0) for e in entries)),
      "wall_seconds": wall_seconds,
      "source": experiment.source,
      "sweep_fields": list(experiment.sweep_fields),
      "code_versions": _code_versions(entries),
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
        max_points: int | None = None, allow_version_change: bool = False) -> dict:
  """Runs (or resumes) ``experiment`` into ``workdir``; returns ``results.json``.

  Re-running resumes: finished points (identified by their JSON) are skipped.
  A resume must use the same config, except :data:`RESUME_IGNORED_FIELDS` and
  the experiment's sweep fields (changing those computes the new points only),
  and the same code version (:func:`lcoupling.results.code_version`: source
  digest and library versions) unless ``allow_version_change``. A work
  directory whose previous run finished no point accepts any config.

  Args:
    experiment: from :func:`load_experiment` (validated).
    workdir: the work directory (created).
    progress: show tqdm bars.
    figures: make the figures when the sweep is complete.
    max_points: stop after computing this many new points (for tests and
      for splitting a long run into sessions); the run stays resumable.
    allow_version_change: resume points computed by another code version
      (``meta.code_versions`` then lists every version that contributed).
  """
  import jax  # noqa: PLC0415 -- keep `import lcoupling.runner` light

  from lcoupling import parallel  # noqa: PLC0415

  config = experiment.config
  validate(config)  # again: the config may have been edited after loading
  study = studies.get(config.study)
  workdir = pathlib.Path(workdir)
  _prepare_workdir(workdir)
  code = results_lib.code_version()
  done = _check_resume(workdir, experiment, code, allow_version_change=allow_version_change,
                       progress=progress)  # checks everything, then creates workdir/config.json
  study_config = resolve_workdir_paths(config, workdir)

  pidx, pcount = jax.process_index(), jax.process_count()
  mine = [p for i, p in enumerate(experiment.sweep) if i % pcount == pidx]
  todo = [p for p in mine if point_id(p) not in done]
  key = jax.random.key(config.seed, impl=config.prng_impl)
  mesh = parallel.trial_mesh()
  t_start = time.perf_counter()
  if progress and len(mine) > len(todo):
    print(f"[lcoupling] resuming {workdir}: {len(mine) - len(todo)}/{len(mine)} points done",
          file=sys.stderr)
  bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=config.name, unit="point",
             disable=not progress, dynamic_ncols=True)
  computed = 0
  behind = False  # results.jsonl holds a point that results.json does not show yet
  try:
    for point in todo:
      if max_points is not None and computed >= max_points:
        break
      bar.set_postfix_str(point_id(point)[:60])
      t0 = time.perf_counter()
      records = study.run_point(key, study_config, point, mesh=mesh, progress=progress)
      seconds = time.perf_counter() - t0
      results_lib.append_jsonl(workdir / "results.jsonl", {
          "point": point, "records": records, "seconds": seconds, "process": pidx, "code": code})
      behind = pcount == 1
      computed += 1
      bar.update(1)
      if pcount == 1:
        summarize_workdir(experiment, workdir, code=code)
        behind = False
  except KeyboardInterrupt:
    # Ctrl-C between a point's log line and its summary: results.json still shows every
    # finished point (a second Ctrl-C interrupts this too; results.jsonl has them anyway).
    if behind:
      summarize_workdir(experiment, workdir, code=code)
    raise
  finally:
    bar.close()
  if pcount > 1:
    from jax.experimental import multihost_utils  # noqa: PLC0415
    multihost_utils.sync_global_devices("lcoupling.runner.run")
  wall = time.perf_counter() - t_start
  if pidx != 0:
    return {}
  res = summarize_workdir(experiment, workdir, wall_seconds=wall, code=code)
  if figures and res["meta"]["complete"]:
    try:
      make_figures(workdir)
    except Exception as e:  # a plotting bug must not lose the results
      warnings.warn(f"making figures failed ({type(e).__name__}: {e}); "
                    f"rerun `python -m experiments.plot {workdir}`")
      raise
  return res
