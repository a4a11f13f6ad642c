# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Results files: atomic JSON writes, an append-only JSONL log, run metadata.

Layout of a work directory (``--workdir``)::

    config.json      the resolved config of the first run (resumes must match)
    results.jsonl    one line per completed sweep point (append-only log):
                     {"point": {...}, "records": [{...}, ...], "seconds": float,
                      "process": int}
    results.json     the summary that figures and tables are made from:
                     {"schema": "lcoupling.results/1", "name": str,
                      "description": str,
                      "meta": {"config": {...}, "seed": int, "study": str,
                               "paper_reference": str, "versions": {...},
                               "git_sha": str | null, "git_dirty": bool | null,
                               "devices": {...}, "created": iso8601,
                               "wall_seconds": float, "num_points": int},
                      "records": [ {flat dict per sweep cell and metric} ]}
    figures/*.png, figures/*.pdf   made only from results.json

Every write of a JSON file goes to a temporary file in the same directory and is
moved into place with :func:`os.replace`, so a kill at any moment leaves either
the old or the new file. A JSONL line is written with a single ``write`` on an
``O_APPEND`` descriptor followed by ``fsync``; a torn last line (kill during the
write) is detected and dropped by :func:`read_jsonl` and :func:`repair_jsonl`.
Non-finite floats are stored as ``null``.
"""

from __future__ import annotations

import datetime
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


def atomic_write_bytes(path: os.PathLike, data: bytes) -> None:
  """Writes ``data`` to ``path`` atomically (temp file + fsync + os.replace)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
  try:
    os.fchmod(fd, 0o644)
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


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
  """Loads ``results.json`` (a work directory or the file itself)."""
  p = pathlib.Path(workdir_or_file)
  if p.is_dir():
    p = p / "results.json"
  if not p.exists():
    raise FileNotFoundError(f"{p} not found: run the experiment first (python -m experiments.run ...)")
  res = json.loads(p.read_text())
  if res.get("schema") != SCHEMA:
    raise ValueError(f"{p}: unknown results schema {res.get('schema')!r} (expected {SCHEMA!r})")
  return res


def git_revision() -> tuple[str | None, bool | None]:
  """``(sha, dirty)`` of the lcoupling source tree, or ``(None, None)``."""
  root = pathlib.Path(__file__).resolve().parent.parent
  try:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                         timeout=10, check=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip())
    return sha, dirty
  except (OSError, subprocess.SubprocessError):
    return None, None


def _version(pkg: str) -> str | None:
  try:
    return importlib.metadata.version(pkg)
  except importlib.metadata.PackageNotFoundError:
    return None


def run_metadata(config) -> dict:
  """Metadata stored with every results file."""
  import jax  # local: keep this module importable without initialising JAX

  sha, dirty = git_revision()
  pkgs = ["lcoupling", "jax", "jaxlib", "flax", "optax", "numpy", "scipy", "ml_collections",
          "tensorflow-datasets", "orbax-checkpoint"]
  return {
      "config": to_jsonable(config),
      "seed": int(config.seed),
      "study": str(config.study),
      "paper_reference": str(config.get("paper_reference", "")),
      "versions": {"python": platform.python_version(), **{p: _version(p) for p in pkgs}},
      "git_sha": sha,
      "git_dirty": dirty,
      "devices": {
          "platform": jax.default_backend(),
          "local_device_count": jax.local_device_count(),
          "process_count": jax.process_count(),
          "device_kind": jax.local_devices()[0].device_kind,
      },
      "host": platform.node(),
      "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  }
