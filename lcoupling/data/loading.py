# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Image datasets through tensorflow-datasets' data sources (no TensorFlow to read).

Every split is read with ``builder.as_data_source`` (random access to the
``array_record`` files, no TensorFlow) into ``(uint8 [n, H, W(, C)], int32
[n])`` arrays. Two datasets (:data:`DATASETS`):

* **MNIST** (:func:`load_mnist`). ``source='offline'`` reads ``lcoupling_mnist``,
  a small :class:`tfds.core.GeneratorBasedBuilder` over the verified IDX files
  of ``make data`` (:mod:`lcoupling.data.mnist_files`), prepared here
  (:func:`prepare_tfds`); full splits are re-checked against the published
  IDX checksums. ``source='tfds'`` uses tfds's own standard ``mnist`` builder
  (network download from the CVDF mirror; *preparing* it needs TensorFlow
  because that builder PNG-encodes its images, reading it does not: ``pip
  install -e '.[tf]'``). Both hold the same 60 000 / 10 000 examples, but the
  standard builder stores them in its own deterministic shuffled order (first
  training labels ``4 1 0 7 8``, not ``5 0 4 1 9``), so slices such as
  ``test[:500]`` select different images; its full splits are checked with the
  order-independent :func:`content_digest` (:data:`CONTENT_SHA256`).
* **CIFAR-10** (:func:`load_cifar10`): tfds's standard ``cifar10`` builder
  (50 000 / 10 000 images of 32×32×3). Preparing it downloads the CIFAR-10
  archive (tfds checks it against the checksum registered with the builder)
  and needs TensorFlow (``pip install -e '.[tf]'``); no offline copy exists.
  ``tfds.testing.mock_data`` serves random examples through the same path
  (the tests do so).

:func:`load_images` is the one entry point the studies use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import pathlib
import time

import numpy as np

from lcoupling.data.mnist_files import (CONTENT_SHA256, FETCH_COMMAND, IDX_SHA256, IMAGE_SIZE,
                                        SPLIT_SIZES, DataFileError, _fix_hint, _idx_dir,
                                        _idx_images, _idx_labels, _sha256, read_idx,
                                        verify_idx_dir)

__all__ = [
    "DATA_SOURCES",
    "DATASETS",
    "ImageDataset",
    "prepare_tfds",
    "content_digest",
    "load_mnist",
    "load_cifar10",
    "CIFAR10_SOURCES",
    "CIFAR10_SHAPE",
    "get_dataset",
    "load_images",
]

#: Values of ``config.data_source`` for MNIST.
DATA_SOURCES = ("offline", "tfds")
_TFDS_SUBDIR = "tfds"
_BUILDER_NAME = "lcoupling_mnist"
#: The packages that preparing a standard tfds builder needs (tfds 4.9.10 also
#: needs the importlib_resources backport to prepare any builder).
_PREPARE_DEPS = ("tensorflow", "importlib_resources")


def _missing_prepare_deps() -> list[str]:
  return [m for m in _PREPARE_DEPS if importlib.util.find_spec(m) is None]


def _standard_builder(name: str, data_dir):
  """tfds's own builder ``name`` under ``data_dir/tfds``, prepared if needed."""
  import tensorflow_datasets as tfds  # noqa: PLC0415

  builder = tfds.builder(name, data_dir=str(pathlib.Path(data_dir) / _TFDS_SUBDIR),
                         file_format="array_record")
  if not builder.is_prepared():
    missing = _missing_prepare_deps()
    if missing:
      where = pathlib.Path(builder.data_dir)
      alt = (f"without TensorFlow use data_source='offline' and {_fix_hint(data_dir)}"
             if name == "mnist" else "prepare it once on a machine with TensorFlow and network "
             f"access and copy {pathlib.Path(data_dir) / _TFDS_SUBDIR / name} here")
      raise DataFileError(
          f"{where}: preparing tfds's standard {name!r} builder needs {' and '.join(missing)} "
          f"(pip install -e '.[tf]') and network access; {alt}")
    builder.download_and_prepare()
  return builder


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


def _read_source(ds, image_shape) -> tuple[np.ndarray, np.ndarray]:
  """All ``(image, label)`` records of a tfds data source, as two arrays."""
  n = len(ds)
  images = np.empty((n, *image_shape), np.uint8)
  labels = np.empty((n,), np.int32)
  step = 4096
  for start in range(0, n, step):
    idx = list(range(start, min(n, start + step)))
    try:
      recs = ds.__getitems__(idx)
    except (AttributeError, TypeError):  # no batched read (e.g. tfds.testing.mock_data's source)
      recs = [ds[i] for i in idx]
    for j, r in zip(idx, recs):
      images[j] = np.asarray(r["image"]).reshape(image_shape)
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
    builder = _standard_builder("mnist", data_dir)
    where = pathlib.Path(builder.data_dir)
  try:
    ds = builder.as_data_source(split=split)
    images, labels = _read_source(ds, (IMAGE_SIZE, IMAGE_SIZE))
  except DataFileError:
    raise
  except Exception as e:  # array_record / protobuf errors on damaged files
    raise DataFileError(f"{where}: cannot read the prepared MNIST dataset ({type(e).__name__}: {e}); "
                        f"delete {where} and {_fix_hint(data_dir)}") from e
  if verify:
    _check_loaded(images, labels, split, where, data_dir, ordered=source == "offline")
  return images, labels


#: Values of ``config.data_source`` for CIFAR-10 (tfds's standard builder only).
CIFAR10_SOURCES = ("tfds",)
CIFAR10_SHAPE = (32, 32, 3)


def load_cifar10(data_dir, split: str = "train", source: str = "tfds") -> tuple[np.ndarray, np.ndarray]:
  """Loads a CIFAR-10 split through tfds's standard ``cifar10`` builder.

  Args:
    data_dir: data directory; the prepared dataset lives in ``data_dir/tfds/cifar10``.
    split: a tfds split: ``'train'`` (50 000), ``'test'`` (10 000) or a slice.
    source: ``'tfds'`` (the only one).

  Returns:
    ``(images, labels)``: ``uint8 [n, 32, 32, 3]`` and ``int32 [n]``.

  Raises:
    DataFileError: not prepared and TensorFlow missing (preparing needs it and
      network access), or unreadable files (names the directory).
  """
  if source not in CIFAR10_SOURCES:
    raise ValueError(f"config.data_source must be one of {CIFAR10_SOURCES} for cifar10, got {source!r}")
  if not isinstance(split, str) or not split:
    raise ValueError(f"split must be a tfds split string such as 'train', got {split!r}")
  builder = _standard_builder("cifar10", data_dir)
  where = pathlib.Path(builder.data_dir)
  try:
    ds = builder.as_data_source(split=split)
    return _read_source(ds, CIFAR10_SHAPE)
  except Exception as e:  # array_record / protobuf errors on damaged files
    raise DataFileError(f"{where}: cannot read the prepared CIFAR-10 dataset ({type(e).__name__}: "
                        f"{e}); delete {where} and prepare it again") from e


@dataclasses.dataclass(frozen=True)
class ImageDataset:
  """An image dataset the compression studies can read.

  Attributes:
    name: ``config.dataset``.
    image_shape: ``(H, W)`` (grayscale, no channel axis) or ``(H, W, C)``.
    split_sizes: examples per full split.
    sources: the allowed ``config.data_source`` values (the first is the default).
    load: ``load(data_dir, split, source) -> (uint8 images, int32 labels)``.
  """

  name: str
  image_shape: tuple[int, ...]
  split_sizes: dict
  sources: tuple[str, ...]
  load: object


#: ``config.dataset`` -> :class:`ImageDataset`.
DATASETS = {
    "mnist": ImageDataset("mnist", (IMAGE_SIZE, IMAGE_SIZE), dict(SPLIT_SIZES), DATA_SOURCES,
                          lambda d, s, src: load_mnist(d, s, source=src)),
    "cifar10": ImageDataset("cifar10", CIFAR10_SHAPE, {"train": 50_000, "test": 10_000},
                            CIFAR10_SOURCES, lambda d, s, src: load_cifar10(d, s, source=src)),
}


def get_dataset(name: str) -> ImageDataset:
  """The :class:`ImageDataset` ``name`` (``ValueError`` naming ``config.dataset`` otherwise)."""
  if name not in DATASETS:
    raise ValueError(f"config.dataset must be one of {sorted(DATASETS)}, got {name!r}")
  return DATASETS[name]


def load_images(dataset: str, data_dir, split: str, source: str | None = None, *,
                num: int = 0) -> np.ndarray:
  """``uint8 [n, H, W(, C)]``: the first ``num`` images of ``split`` (0 = all) of ``dataset``."""
  ds = get_dataset(dataset)
  spec = split if not num else f"{split}[:{int(num)}]"
  images, _ = ds.load(data_dir, spec, ds.sources[0] if source is None else source)
  return images[:num] if num else images  # (tfds.testing.mock_data ignores split slices)
