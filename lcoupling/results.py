# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Results files: atomic JSON writes, an append-only JSONL log, run metadata.

Layout of a work directory (``--workdir``)::

    config.json      the config of the finished points, as written (``{workdir}``
                     placeholders kept); a resume must match it except in
                     ignored and sweep fields (:mod:`lcoupling.runner`)
    results.jsonl    one line per completed sweep point (append-only log):
                     {"point": {...}, "records": [{...}, ...], "seconds": float,
                      "process": int, "code": {...}}
                     ``code`` is :func:`code_version` of the process that
                     computed the point: ``{"git_sha", "git_dirty",
                     "source_digest", "versions"}``.
    results.json     the summary that figures and tables are made from:
                     {"schema": "lcoupling.results/1", "name": str,
                      "description": str,
                      "meta": {"config": {...}, "seed": int, "study": str,
                               "paper_reference": str, "versions": {...},
                               "git_sha": str | null, "git_dirty": bool | null,
                               "source_digest": str, "devices": {...},
                               "created": iso8601, "wall_seconds": float,
                               "num_points": int, "num_points_done": int,
                               "complete": bool, "sweep_fields": [str],
                               "code_versions": [{...code, "num_points": int}]},
                      "records": [ {flat dict per sweep cell and metric} ]}
                     ``versions``/``git_*``/``source_digest`` describe the run
                     that wrote the file; ``code_versions`` every code version
                     that contributed points.
    figures/*.png, figures/*.pdf   made only from results.json

Every write of a JSON file goes to a temporary file in the same directory and is
moved into place with :func:`os.replace`, so a kill at any moment leaves either
the old or the new file. A JSONL line is written with a single ``write`` on an
``O_APPEND`` descriptor followed by ``fsync``; a torn last line (kill during the
write) is detected and dropped by :func:`read_jsonl` and :func:`repair_jsonl`.
Non-finite floats are stored as ``null``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import subprocess
import tempfile
import warnings
from typing import Any

import numpy as np

__all__ = [
    "SCHEMA",
    "to_jsonable",
    "dumps",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "append_jsonl",
    "read_jsonl",
    "repair_jsonl",
    "load_results",
    "run_metadata",
    "git_revision",
    "source_digest",
    "code_version",
    "code_identity",
    "describe_code",
    "code_difference",
]

SCHEMA = "lcoupling.results/1"


def to_jsonable(x: Any) -> Any:
  """Converts NumPy/JAX scalars and arrays to JSON types; non-finite -> None."""
  if isinstance(x, dict):
    return {str(k): to_jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [to_jsonable(v) for v in x]
  if hasattr(x, "to_dict") and callable(x.to_dict):  # ConfigDict
    return to_jsonable(x.to_dict())
  if isinstance(x, (bool, np.bool_)):
    return bool(x)
  if isinstance(x, (int, np.integer)):
    return int(x)
  if isinstance(x, (float, np.floating)):
    x = float(x)
    return x if math.isfinite(x) else None
  if isinstance(x, np.ndarray) or type(x).__module__.startswith("jax"):
    return to_jsonable(np.asarray(x).tolist())
  if x is None or isinstance(x, str):
    return x
  return str(x)


def dumps(obj: Any, **kw) -> str:
  return json.dumps(to_jsonable(obj), allow_nan=False, **kw)


@contextlib.contextmanager
def atomic_writer(path: os.PathLike):
  """A binary file that becomes ``path`` atomically when the block exits without error.

  It is written under a temporary name beside ``path``, fsynced and renamed
  over it; an exception inside the block (or while syncing) removes the
  temporary file and leaves ``path`` as it was. For writers that stream (a
  file too big for one ``bytes`` object); :func:`atomic_write_bytes` is the
  one-shot form.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
  try:
    os.fchmod(fd, 0o644)
    with os.fdopen(fd, "wb") as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def atomic_write_bytes(path: os.PathLike, data: bytes) -> None:
  """Writes ``data`` to ``path`` atomically (temp file + fsync + os.replace)."""
  with atomic_writer(path) as f:
    f.write(data)


def atomic_write_text(path: os.PathLike, text: str) -> None:
  """Writes ``text`` (UTF-8) to ``path`` atomically."""
  atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: os.PathLike, obj: Any) -> None:
  atomic_write_text(path, dumps(obj, indent=1, sort_keys=False) + "\n")


def append_jsonl(path: os.PathLike, obj: Any) -> None:
  """Appends one JSON line with a single write + fsync (O_APPEND)."""
  data = (dumps(obj, sort_keys=True) + "\n").encode("utf-8")
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    n = os.write(fd, data)
    if n != len(data):
      raise OSError(f"short write to {path}: {n} of {len(data)} bytes")
    os.fsync(fd)
  finally:
    os.close(fd)


def read_jsonl(path: os.PathLike) -> tuple[list[dict], bool]:
  """Reads a JSONL log; returns ``(entries, torn)``.

  A last line without its newline or that does not parse (a write cut by a
  kill) is dropped and reported as ``torn``. A bad line anywhere else means the
  file was edited or damaged: ``ValueError`` naming the line.
  """
  path = pathlib.Path(path)
  if not path.exists():
    return [], False
  raw = path.read_bytes()
  lines = raw.split(b"\n")
  torn = lines[-1] != b""  # no trailing newline: last line incomplete
  body, tail = lines[:-1], lines[-1]
  entries = []
  for n, line in enumerate(body, 1):
    if not line.strip():
      continue
    try:
      entries.append(json.loads(line))
    except json.JSONDecodeError as e:
      if n == len(body) and not tail:
        torn = True
        break
      raise ValueError(f"{path}: line {n} is not valid JSON ({e}); the log is damaged") from e
  return entries, torn


def repair_jsonl(path: os.PathLike) -> list[dict]:
  """Drops a torn last line (atomically) and returns the complete entries."""
  entries, torn = read_jsonl(path)
  if torn:
    warnings.warn(f"{path}: dropping an incomplete last line (interrupted write)")
    atomic_write_text(path, "".join(dumps(e, sort_keys=True) + "\n" for e in entries))
  return entries


def load_results(workdir_or_file: os.PathLike) -> dict:
  """Loads ``results.json`` (a work directory or the file itself).

  Raises ``FileNotFoundError`` (missing file, with the command that makes it)
  and ``ValueError`` naming the file (not JSON, e.g. truncated; not a results
  file; unknown schema).
  """
  p = pathlib.Path(workdir_or_file)
  if p.is_dir():
    p = p / "results.json"
  if not p.exists():
    raise FileNotFoundError(
        f"{p} not found: run the experiment first (python -m experiments.run --config ... "
        f"--workdir {p.parent})")
  try:
    res = json.loads(p.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(
        f"{p} is not valid JSON ({e}): the file is truncated or damaged; rerun the experiment's "
        f"command with --workdir {p.parent} to rewrite it from results.jsonl") from None
  if not isinstance(res, dict) or res.get("schema") != SCHEMA:
    schema = res.get("schema") if isinstance(res, dict) else None
    raise ValueError(f"{p}: unknown results schema {schema!r} (expected {SCHEMA!r}); "
                     "is this an lcoupling results.json?")
  return res


def _source_root() -> pathlib.Path:
  """The directory holding the ``lcoupling`` package (a checkout or site-packages)."""
  return pathlib.Path(__file__).resolve().parent.parent


def git_revision() -> tuple[str | None, bool | None]:
  """``(sha, dirty)`` of the lcoupling checkout, or ``(None, None)``.

  ``(None, None)`` also when the package is not the top of a git checkout
  (e.g. installed in a virtual environment that lives inside another
  repository), so an unrelated repository's commit is never reported.
  """
  root = _source_root()
  try:
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True,
                         text=True, timeout=10, check=True).stdout.strip()
    if pathlib.Path(top).resolve() != root:
      return None, None
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                         timeout=10, check=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip())
    return sha, dirty
  except (OSError, subprocess.SubprocessError):
    return None, None


#: Packages whose versions are part of :func:`code_version`.
CODE_PACKAGES = ("lcoupling", "jax", "jaxlib", "flax", "optax", "numpy", "scipy", "ml_collections",
                 "tensorflow-datasets", "orbax-checkpoint")

#: Top-level source directories hashed into ``code_version()["source_digest"]``.
SOURCE_DIRS = ("lcoupling", "configs", "experiments")


def source_digest() -> str:
  """SHA-256 (16 hex digits) of the ``.py`` files the runner executes.

  Hashes the relative path and bytes of every ``*.py`` file under
  :data:`SOURCE_DIRS` next to the imported ``lcoupling`` package (a checkout,
  editable or not, or site-packages), so it identifies the code that actually
  runs, committed or not, with or without git.
  """
  root = _source_root()
  h = hashlib.sha256()
  for d in SOURCE_DIRS:
    base = root / d
    if not base.is_dir():
      continue
    for f in sorted(base.rglob("*.py")):
      if "__pycache__" in f.parts:
        continue
      h.update(f.relative_to(root).as_posix().encode() + b"\0")
      h.update(f.read_bytes() + b"\0")
  return h.hexdigest()[:16]


def code_version() -> dict:
  """The code version recorded with every finished sweep point.

  ``{"git_sha", "git_dirty", "source_digest", "versions"}``: the git commit and
  dirty flag of the checkout (``None`` outside git), :func:`source_digest` and
  the versions of Python and :data:`CODE_PACKAGES`. Two points have the same
  code version iff :func:`code_identity` agrees: the source digest and the
  versions (the git fields are for people; the digest already covers
  uncommitted edits).
  """
  sha, dirty = git_revision()
  return {
      "git_sha": sha,
      "git_dirty": dirty,
      "source_digest": source_digest(),
      "versions": {"python": platform.python_version(), **{p: _version(p) for p in CODE_PACKAGES}},
  }


def code_identity(code: dict | None) -> str | None:
  """Canonical identity of a :func:`code_version` dict (``None`` if unknown)."""
  if not code:
    return None
  return json.dumps({"source_digest": code.get("source_digest"),
                     "versions": code.get("versions")}, sort_keys=True)


def describe_code(code: dict | None) -> str:
  """A short human description: ``git abc1234 (dirty), source 1f2e..., jax 0.10.2``."""
  if not code:
    return "unknown (recorded before code versions were)"
  sha = code.get("git_sha")
  git = f"git {sha[:10]}" + (" (dirty)" if code.get("git_dirty") else "") if sha else "no git"
  v = code.get("versions") or {}
  return (f"{git}, source {code.get('source_digest')}, lcoupling {v.get('lcoupling')}, "
          f"jax {v.get('jax')}")


def code_difference(old: dict | None, new: dict | None) -> str:
  """What differs between two :func:`code_version` dicts, e.g. ``jax 0.10.1 -> 0.10.2``."""
  if not old or not new:
    return f"{describe_code(old)} -> {describe_code(new)}"
  out = []
  if old.get("source_digest") != new.get("source_digest"):
    out.append(f"source {old.get('source_digest')} ({describe_code(old).split(',')[0]}) -> "
               f"{new.get('source_digest')} ({describe_code(new).split(',')[0]})")
  ov, nv = old.get("versions") or {}, new.get("versions") or {}
  for k in sorted(set(ov) | set(nv)):
    if ov.get(k) != nv.get(k):
      out.append(f"{k} {ov.get(k)} -> {nv.get(k)}")
  return "; ".join(out) or "same code"


def _version(pkg: str) -> str | None:
  try:
    return importlib.metadata.version(pkg)
  except importlib.metadata.PackageNotFoundError:
    return None


def run_metadata(config, code: dict | None = None) -> dict:
  """Metadata stored with every results file (``code``: :func:`code_version`, computed if None)."""
  import jax  # local: keep this module importable without initialising JAX

  code = code_version() if code is None else code
  return {
      "config": to_jsonable(config),
      "seed": int(config.seed),
      "study": str(config.study),
      "paper_reference": str(config.get("paper_reference", "")),
      "versions": code["versions"],
      "git_sha": code["git_sha"],
      "git_dirty": code["git_dirty"],
      "source_digest": code["source_digest"],
      "devices": {
          "platform": jax.default_backend(),
          "local_device_count": jax.local_device_count(),
          "process_count": jax.process_count(),
          "device_kind": jax.local_devices()[0].device_kind,
      },
      "host": platform.node(),
      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  }
