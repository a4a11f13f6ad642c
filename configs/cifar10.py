# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""CIFAR-10 study: distributed lossy compression with K decoders, GLS vs baseline (docs/method.md §5.3).

The CIFAR-10 experiment of Rowan, Phan & Khisti (NeurIPS 2025,
arXiv:2506.05632), App. D.4 (Tables 15-16): the image compression study of
configs/mnist.py on 32x32x3 images. Source = the right half (32x16x3), decoder
``k``'s side information = its own random 16x16(x3) patch of the left half.
The networks are the MNIST ones on the CIFAR-10 geometry (the repository does
not have the appendix's CIFAR-10 widths): the same three convolutions (3 input
channels), 8x8 feature maps after the two stride-2 convolutions, a decoder
painting a 32x32x3 canvas, a 4-d latent, the paper's widths (128 channels,
512 hidden). Training as for MNIST (30 epochs of the 50 000 training images,
Adam 1e-3, batch 64, beta in {0.15, ..., 0.95}), evaluation on the 10 000 test
images; MSE per source value on [0, 1] pixels (``*_pm1``: on [-1, 1]).

Data: tensorflow-datasets' own ``cifar10`` builder (``config.data_source =
"tfds"``, the only source). Preparing it downloads the CIFAR-10 archive (tfds
checks its registered checksum) and needs TensorFlow and network access, once::

  pip install -e '.[tf]'
  python -c "import tensorflow_datasets as tfds; tfds.builder('cifar10', data_dir='data/tfds', file_format='array_record').download_and_prepare()"

Reading it afterwards needs no TensorFlow. Without network access the
pipeline is tested end to end on ``tfds.testing.mock_data`` (random images;
``tests/test_image_codec.py``).

VAE checkpoints go to ``WORKDIR/checkpoints`` (``config.checkpoint_dir``);
``betas`` is a sweep field (adding a beta to a finished run computes only it).

Variants: (none) the paper protocol; ``quick`` (narrow networks, 2 epochs,
betas (0.15, 0.55), 500 test images, N in {2^7, 2^9}, 3 repeats); ``gpu`` (the
paper protocol sized for one accelerator, as configs/mnist.py:gpu).

  python -m experiments.run --config configs/cifar10.py:quick --workdir runs/cifar10_quick
  python -m experiments.run --config configs/cifar10.py:gpu --workdir runs/cifar10
  python -m lcoupling.studies.image_codec runs/cifar10_quick     # the markdown tables
"""

import ml_collections

from lcoupling.compression import train as train_lib

VARIANTS = ("quick", "gpu")
#: Fields that only select sweep points (one point per beta, as in configs/mnist.py).
SWEEP_FIELDS = ("betas",)


def get_config(arg=None):
  if arg not in (None, "", *VARIANTS):
    raise ValueError(f"configs/cifar10.py: unknown variant {arg!r}; known: {VARIANTS}")
  quick = arg == "quick"
  c = ml_collections.ConfigDict()
  c.name = "cifar10"
  c.description = ("Distributed lossy compression of CIFAR-10 right halves with K decoders holding "
                   "different 16x16 left-half patches: GLS vs baseline importance-sampling codec on a "
                   "beta-VAE latent, R-D (best-of-K MSE on [0,1] pixels) and matching probability.")
  c.paper_reference = ("Rowan, Phan & Khisti 2025 (arXiv:2506.05632), App. D.4 CIFAR-10 "
                       "(Tables 15-16)")
  c.study = "cifar10"
  c.dataset = "cifar10"
  c.seed = 0
  c.prng_impl = "threefry2x32"
  c.chunk_size = 128
  c.data_dir = "data"
  c.data_source = "tfds"
  c.num_train_images = 0  # 0 = all 50 000
  c.num_test_images = 0  # 0 = all 10 000
  c.crop_size = 16  # a 16x16 patch of the 32x16 left half
  c.checkpoint_dir = "{workdir}/checkpoints"  # the run's work directory (resolved by the runner)
  c.betas = (0.15, 0.35, 0.55, 0.75, 0.95)
  t = train_lib.default_config(quick=quick)
  c.train = ml_collections.ConfigDict(dict(
      epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate, b1=t.b1, b2=t.b2,
      recon_reduction=t.recon_reduction, widths=t.widths.to_dict(), steps_per_call=1,
      compute_dtype="float32", joint_betas=False))
  c.num_codewords_grid = (2**7, 2**8, 2**9, 2**10, 2**11, 2**12)
  c.num_bins = (4, 8, 16, 32, 64)
  c.num_decoders = 4
  c.num_repeats = 5
  c.fixed_num_codewords = 2**7
  c.fixed_beta = 0.15
  c.num_examples = 6
  c.example_num_bins = 4
  if quick:
    c.name = "cifar10_quick"
    c.chunk_size = 50
    c.betas = (0.15, 0.55)
    c.train.epochs = 2
    c.num_test_images = 500
    c.num_codewords_grid = (2**7, 2**9)
    c.num_repeats = 3
  if arg == "gpu":
    c.name = "cifar10_gpu"
    c.chunk_size = 250
    c.train.steps_per_call = 1000  # a whole epoch (781 steps) per call
    c.train.joint_betas = True
  return c


def get_sweep(config):
  return [{"beta": float(b)} for b in config.betas]
