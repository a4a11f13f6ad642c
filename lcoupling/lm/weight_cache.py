# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""A dequantised-weight cache for GGUF checkpoints: the second load is a file read.

Dequantising a K-quant GGUF file (:func:`lcoupling.lm.gguf_io.read_gguf`) costs
about a minute per billion parameters on a CPU. :func:`read_gguf_cached` does
it once and stores the result as a `safetensors <https://huggingface.co/docs/safetensors>`_
file beside the GGUF::

    DIR/model.gguf
    DIR/.lcoupling-cache/model.float32.safetensors   # the weights in Llama's layout

The cache file's metadata records the GGUF's sha256 and size, the dtype, the
:class:`~lcoupling.lm.model.LlamaConfig` and the tokenizer (its JSON, ids and
chat template), and a format version. **Staleness rule:** the cache is used only
when all of these match the GGUF being loaded (its sha256 is recomputed on
every load, about 1 s per GB); otherwise it is rebuilt. It is written
atomically (temporary name + rename), one tensor at a time, so an interrupted
build leaves no cache behind and the writer never holds a second copy of the
weights. Reading (:class:`CachedParams`) reads each tensor into memory once; on
the CPU the model's arrays are those buffers themselves, so a cached load takes
seconds and holds the weights once.

Example:
  >>> import numpy as np, tempfile, pathlib
  >>> d = pathlib.Path(tempfile.mkdtemp())
  >>> write_safetensors(d / "w.safetensors", {"a": np.arange(6, dtype=np.float32).reshape(2, 3)},
  ...                   {"note": "x"})
  >>> p = CachedParams(d / "w.safetensors")
  >>> sorted(p), p["a"].tolist(), p.metadata["note"]
  (['a'], [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], 'x')
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import math
import os
import pathlib
import struct
from collections.abc import Callable, Mapping

import numpy as np

from lcoupling import results, wheels
from lcoupling.lm import gguf_io
from lcoupling.lm.model import LlamaConfig
from lcoupling.lm.tokenizer import Tokenizer

__all__ = ["read_gguf_cached", "cache_path", "CachedParams", "write_safetensors", "FORMAT"]

#: Bumped whenever the cached layout or metadata changes (older caches are rebuilt).
#: "2": projections stored ``[out, in]`` (:func:`lcoupling.lm.model.dense`).
FORMAT = "2"

_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32"}


def _st_dtype(a: np.ndarray) -> str:
  if a.dtype in _DTYPES:
    return _DTYPES[a.dtype]
  if a.dtype.name == "bfloat16":
    return "BF16"
  raise ValueError(f"write_safetensors: unsupported dtype {a.dtype}")


def write_safetensors(path: os.PathLike | str, tensors: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str]) -> None:
  """Writes a safetensors file atomically, streaming one tensor at a time.

  ``safetensors.numpy.save_file`` first turns every tensor into ``bytes`` (a
  second copy of a 7 GB model); this writes the same format (8-byte header
  length, JSON header, then the tensors' bytes in header order) from the
  arrays themselves. The result is read by ``safetensors.safe_open``.
  """
  path = pathlib.Path(path)
  # Larger tensors first, so that every tensor whose size is a multiple of 64
  # bytes starts 64-byte aligned (a reader that maps the file can use it in place).
  names = sorted(tensors, key=lambda k: (-(tensors[k].nbytes % 64 == 0), k))
  header, offset = {"__metadata__": dict(metadata)}, 0
  for name in names:
    a = tensors[name]
    header[name] = {"dtype": _st_dtype(a), "shape": list(a.shape),
                    "data_offsets": [offset, offset + a.nbytes]}
    offset += a.nbytes
  raw = json.dumps(header, separators=(",", ":")).encode()
  raw += b" " * (-(8 + len(raw)) % 64)  # space padding (allowed): the data starts 64-aligned
  with results.atomic_writer(path) as f:
    f.write(struct.pack("<Q", len(raw)))
    f.write(raw)
    for name in names:
      f.write(np.ascontiguousarray(tensors[name]).reshape(-1).view(np.uint8).data)


class CachedParams(collections.abc.Mapping):
  """A safetensors file as a ``{name: np.ndarray}`` mapping, each tensor read on access.

  Reading a tensor reads its bytes from the file into a new array (a
  page-cache copy when the file was read recently). The weights are not used
  in place from a memory map: file-backed pages are 4 KB pages, and a decoding
  step streaming 3 GB of weights through them ran 8-55 % slower on this
  project's CPU (Qwen2.5-Coder-1.5B, one row: 145 against 123 ms in one
  measurement) than from ordinary memory, which the kernel backs with 2 MB
  pages. The header is checked (offsets inside the file, sizes matching shapes).
  """

  def __init__(self, path: os.PathLike | str):
    import ml_dtypes
    self.path = pathlib.Path(path)
    size = self.path.stat().st_size
    with open(self.path, "rb") as f:
      (n,) = struct.unpack("<Q", f.read(8))
      if n > min(size - 8, 1 << 28):
        raise ValueError(f"{self.path}: not a safetensors file (header length {n})")
      header = json.loads(f.read(n))
    self.metadata: dict[str, str] = header.pop("__metadata__", None) or {}
    dtypes = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "BF16": ml_dtypes.bfloat16}
    self._entries = {}
    for name, e in header.items():
      dtype = np.dtype(dtypes[e["dtype"]])
      start, end = (8 + n + o for o in e["data_offsets"])
      count = math.prod(e["shape"])
      if not 8 + n <= start <= end <= size or end - start != count * dtype.itemsize:
        raise ValueError(f"{self.path}: corrupt entry {name} in the safetensors header")
      self._entries[name] = (dtype, tuple(e["shape"]), start)

  def __getitem__(self, name: str) -> np.ndarray:
    dtype, shape, start = self._entries[name]
    count = math.prod(shape) * dtype.itemsize
    data = np.fromfile(self.path, dtype=np.uint8, count=count, offset=start)
    if data.size != count:
      raise ValueError(f"{self.path}: truncated while reading {name}")
    return data.view(dtype).reshape(shape)

  def __iter__(self):
    return iter(self._entries)

  def __len__(self) -> int:
    return len(self._entries)


def cache_path(gguf_path: os.PathLike | str, dtype: str) -> pathlib.Path:
  """Where :func:`read_gguf_cached` keeps the dequantised weights of ``gguf_path``."""
  p = pathlib.Path(gguf_path)
  return p.parent / ".lcoupling-cache" / f"{p.stem}.{dtype}.safetensors"


def _config_json(config: LlamaConfig) -> str:
  return json.dumps(dataclasses.asdict(config))


def _config_from_json(text: str) -> LlamaConfig:
  fields = json.loads(text)
  for name in ("rope_scaling", "rope_freq_factors"):
    if fields.get(name) is not None:
      fields[name] = tuple(fields[name])
  return LlamaConfig(**fields)


def _tokenizer_json(tok: Tokenizer) -> str:
  return json.dumps({"tokenizer": tok.hf.to_str(), "bos_id": tok.bos_id,
                     "eos_ids": list(tok.eos_ids), "add_bos": tok.add_bos,
                     "chat_template": tok.chat_template, "pad_id": tok.pad_id})


def _tokenizer_from_json(text: str) -> Tokenizer:
  import tokenizers
  d = json.loads(text)
  return Tokenizer(tokenizers.Tokenizer.from_str(d["tokenizer"]), bos_id=d["bos_id"],
                   eos_ids=d["eos_ids"], add_bos=d["add_bos"], chat_template=d["chat_template"],
                   pad_id=d["pad_id"])


def _expected(gguf_path: pathlib.Path, dtype: str, sha256: str | None) -> dict[str, str]:
  return {"format": FORMAT, "dtype": dtype, "gguf_size": str(gguf_path.stat().st_size),
          "gguf_sha256": sha256 or wheels.sha256_file(gguf_path)}


def read_gguf_cached(path: os.PathLike | str, *, dtype: str = "float32",
                     sha256: str | None = None,
                     progress: Callable[[str], None] | None = None):
  """:func:`lcoupling.lm.gguf_io.read_gguf` through the dequantised cache.

  Args:
    path: the ``.gguf`` file.
    dtype: ``"float32"`` or ``"bfloat16"`` (one cache file per dtype).
    sha256: the GGUF's sha256 when the caller has just verified it (a named
      asset); default: computed here.
    progress: optional callback receiving a line of progress text.

  Returns:
    ``(config, params, tokenizer)`` as :func:`~lcoupling.lm.gguf_io.read_gguf`;
    ``params`` is a :class:`CachedParams` mapping (read on access). When the
    cache directory cannot be written (a read-only location), the weights are
    dequantised without caching and a progress line says so.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: GGUF file not found")
  expected = _expected(path, dtype, sha256)
  target = cache_path(path, dtype)
  if target.is_file():
    try:
      params = CachedParams(target)
      meta = params.metadata
      if all(meta.get(k) == v for k, v in expected.items()):
        return _config_from_json(meta["config"]), params, _tokenizer_from_json(meta["tokenizer"])
      if progress:
        progress(f"{target.name} is stale (written for another GGUF, dtype or format): rebuilding")
    except Exception as e:  # a truncated or foreign file: rebuild it
      if progress:
        progress(f"{target}: unreadable cache ({type(e).__name__}): rebuilding")
  if progress:
    progress(f"dequantising {path.name} (once; cached in {target.parent})")
  config, params, tok = gguf_io.read_gguf(path, dtype=dtype, progress=progress)
  metadata = dict(expected, config=_config_json(config), tokenizer=_tokenizer_json(tok))
  try:
    write_safetensors(target, params, metadata)
  except OSError as e:
    if progress:
      progress(f"could not write the weight cache {target} ({e}); loading without it")
    return config, params, tok
  del params
  return config, CachedParams(target), tok
