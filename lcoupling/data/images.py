# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Source / side-information split of images, and keyed batching (pure JAX / NumPy).

An image ``x`` of shape ``(H, W)`` (grayscale, e.g. MNIST 28×28) or ``(H, W, C)``
(e.g. CIFAR-10 32×32×3) is split (docs/method.md §5.3) into

* the **source** ``A``: the right half, columns ``W/2 .. W-1`` (MNIST 28×14,
  CIFAR-10 32×16×3), and
* the **side information** ``T``: a ``c×c`` crop of the left half at a uniformly
  random offset :math:`(r, s) \in \{0..H-c\}\times\{0..W/2-c\}` (all channels),

pixels mapped to ``[-1, 1]`` (:func:`to_unit_range`). Crop offsets are keyed by
``fold_in(fold_in(key, example_index), decoder)``: reproducible and independent
of batching; :func:`side_crops` draws K independent crops for K decoders
(decoder 0 is the crop of :func:`split_source_side`). :class:`ImageGeometry`
holds the sizes; functions that receive images read it from their shape.

Batching is a pure function of ``(key, epoch)`` (:func:`iterate_batches`), so a
resumed training sees the same batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ImageGeometry",
    "MNIST_GEOMETRY",
    "CIFAR10_GEOMETRY",
    "geometry_of",
    "IMAGE_SIZE",
    "SOURCE_WIDTH",
    "to_unit_range",
    "to_zero_one",
    "source_canvas",
    "crop_offsets",
    "split_source_side",
    "source_of",
    "side_crops",
    "epoch_permutation",
    "iterate_batches",
    "num_batches",
]

IMAGE_SIZE = 28
SOURCE_WIDTH = 14  # MNIST: the source is the right half, columns 14..27


@dataclasses.dataclass(frozen=True)
class ImageGeometry:
  """Sizes of an image and of its source / side-information split.

  Attributes:
    height, width: ``H, W`` (``W`` even).
    channels: ``C``, or ``None`` for grayscale arrays without a channel axis.
  """

  height: int
  width: int
  channels: int | None = None

  def __post_init__(self):
    if self.width % 2 or self.height < 1 or self.width < 2:
      raise ValueError(f"image width must be even and >= 2, got {self.height}x{self.width}")
    if self.channels is not None and self.channels < 1:
      raise ValueError(f"channels must be >= 1 or None, got {self.channels}")

  @property
  def image_shape(self) -> tuple[int, ...]:
    """``(H, W)`` or ``(H, W, C)``."""
    return (self.height, self.width) + (() if self.channels is None else (self.channels,))

  @property
  def source_width(self) -> int:
    """``W / 2``: the source is columns ``W/2 .. W-1``, the side information's crop comes from the rest."""
    return self.width // 2

  @property
  def source_shape(self) -> tuple[int, ...]:
    """``(H, W/2)`` or ``(H, W/2, C)``."""
    return (self.height, self.source_width) + (() if self.channels is None else (self.channels,))

  @property
  def source_size(self) -> int:
    """Number of source values (pixels × channels), the MSE's denominator."""
    return int(np.prod(self.source_shape))

  @property
  def max_crop(self) -> int:
    """Largest side-information crop: ``min(H, W/2)``."""
    return min(self.height, self.source_width)

  def crop_shape(self, crop_size: int) -> tuple[int, ...]:
    """``(c, c)`` or ``(c, c, C)``."""
    return (crop_size, crop_size) + (() if self.channels is None else (self.channels,))

  def check_crop_size(self, crop_size) -> int:
    """``crop_size`` as an int in ``1..max_crop`` (error naming ``config.crop_size``)."""
    if isinstance(crop_size, bool) or not isinstance(crop_size, (int, np.integer)):
      raise TypeError(f"config.crop_size must be a Python int, got {crop_size!r}")
    if not 1 <= crop_size <= self.max_crop:
      raise ValueError(f"config.crop_size must be in 1..{self.max_crop}, got {crop_size}")
    return int(crop_size)


MNIST_GEOMETRY = ImageGeometry(28, 28)
CIFAR10_GEOMETRY = ImageGeometry(32, 32, 3)


def geometry_of(shape) -> ImageGeometry:
  """The geometry of images of trailing shape ``(H, W)`` or ``(H, W, C)``.

  ``shape`` is an image shape (2 or 3 entries). Example:

  >>> geometry_of((32, 32, 3)).source_shape
  (32, 16, 3)
  """
  shape = tuple(int(d) for d in shape)
  if len(shape) == 2:
    return ImageGeometry(*shape)
  if len(shape) == 3:
    return ImageGeometry(*shape)
  raise ValueError(f"an image must have shape (H, W) or (H, W, C), got {shape}")


def _batch_geometry(images) -> ImageGeometry:
  if images.ndim not in (3, 4):
    raise ValueError(f"images must have shape [B, H, W] or [B, H, W, C], got {tuple(images.shape)}")
  return geometry_of(images.shape[1:])


def to_unit_range(images: jax.Array) -> jax.Array:
  r"""uint8 pixels -> float32 in ``[-1, 1]``: :math:`x \mapsto 2x/255 - 1`."""
  return jnp.asarray(images, jnp.float32) * (2.0 / 255.0) - 1.0


def to_zero_one(x):
  r"""``[-1, 1]`` values -> ``[0, 1]``: :math:`v \mapsto (v + 1)/2`.

  A squared error on ``[0, 1]`` is exactly a quarter of the same error on
  ``[-1, 1]`` (the scale factor is a power of two, so ``mse_pm1 / 4`` is exact
  in floating point); the studies report that (:mod:`lcoupling.studies.image_codec`).
  """
  return (x + 1.0) * 0.5


def source_canvas(source: jax.Array, geometry: ImageGeometry = MNIST_GEOMETRY) -> jax.Array:
  """Places a ``[..., *source_shape]`` source in the right half of a zero ``[..., *image_shape]`` canvas.

  The left half is 0 (the middle of ``[-1, 1]``, i.e. "no information"); this is
  the encoder's input.
  """
  source = jnp.asarray(source)
  axis = source.ndim - (2 if geometry.channels is None else 3) + 1  # the width axis
  pad = [(0, 0)] * source.ndim
  pad[axis] = (geometry.width - source.shape[axis], 0)
  return jnp.pad(source, pad)


def crop_offsets(key: jax.Array, indices: jax.Array, decoder=0, *, crop_size: int = 14,
                 geometry: ImageGeometry = MNIST_GEOMETRY) -> jax.Array:
  r"""Top-left ``(row, col)`` of the side-information crop, ``int32 [..., 2]``.

  For example ``i`` and decoder ``k`` the offset is drawn uniformly from
  :math:`\{0..H-c\} \times \{0..W/2-c\}` with key
  ``fold_in(fold_in(key, i), k)``: a pure function of ``(key, i, k)``.
  """
  crop_size = geometry.check_crop_size(crop_size)
  indices = jnp.asarray(indices, jnp.uint32)
  decoder = jnp.asarray(decoder, jnp.uint32)
  hi = (geometry.height - crop_size + 1, geometry.source_width - crop_size + 1)

  def one(i, k):
    kk = jax.random.fold_in(jax.random.fold_in(key, i), k)
    return jax.random.randint(kk, (2,), 0, jnp.array(hi, jnp.int32))

  i_b, k_b = jnp.broadcast_arrays(indices, decoder)
  flat = jax.vmap(one)(i_b.reshape(-1), k_b.reshape(-1))
  return flat.reshape(i_b.shape + (2,))


def _crop(image_left: jax.Array, offset: jax.Array, crop_shape) -> jax.Array:
  start = (offset[0], offset[1]) + (0,) * (len(crop_shape) - 2)
  return jax.lax.dynamic_slice(image_left, start, crop_shape)


def side_crops(key: jax.Array, images: jax.Array, indices: jax.Array | None = None, *,
               crop_size: int = 14, num_decoders: int = 1) -> jax.Array:
  """``num_decoders`` independent side-information crops per image, ``[B, K, c, c(, C)]`` in ``[-1, 1]``.

  Crop ``k`` of example ``indices[b]`` uses ``fold_in(fold_in(key, indices[b]), k)``
  (see :func:`crop_offsets`), so crop ``0`` is the ``T`` of
  :func:`split_source_side` and the crops do not depend on batching.
  """
  images = jnp.asarray(images)
  geometry = _batch_geometry(images)
  crop_size = geometry.check_crop_size(crop_size)
  if isinstance(num_decoders, bool) or not isinstance(num_decoders, (int, np.integer)) or num_decoders < 1:
    raise ValueError(f"config.num_decoders must be an int >= 1, got {num_decoders!r}")
  if indices is None:
    indices = jnp.arange(images.shape[0])
  left = to_unit_range(images[:, :, :geometry.source_width])
  offs = crop_offsets(key, jnp.asarray(indices)[:, None], jnp.arange(num_decoders)[None, :],
                      crop_size=crop_size, geometry=geometry)  # [B, K, 2]
  shape = geometry.crop_shape(crop_size)
  return jax.vmap(lambda im, o: jax.vmap(lambda oo: _crop(im, oo, shape))(o))(left, offs)


def source_of(images: jax.Array) -> jax.Array:
  """The source (right half) of ``[B, H, W(, C)]`` uint8 images, in ``[-1, 1]``."""
  images = jnp.asarray(images)
  return to_unit_range(images[:, :, _batch_geometry(images).source_width:])


def split_source_side(key: jax.Array, images: jax.Array, indices: jax.Array | None = None, *,
                      crop_size: int = 14) -> tuple[jax.Array, jax.Array]:
  r"""Source ``A`` (right half) and side information ``T`` (crop of the left half).

  .. math::
     A = x_{[:, W/2:W]}, \qquad T = x_{[r:r+c,\ s:s+c]},\ (r, s) \sim
     \mathcal U(\{0..H-c\}\times\{0..W/2-c\}),

  pixels mapped to ``[-1, 1]``. The offset of example ``indices[b]`` is keyed by
  ``fold_in(fold_in(key, indices[b]), 0)`` (decoder 0 of :func:`side_crops`).

  Args:
    key: PRNG key of the split.
    images: ``uint8 [B, H, W]`` or ``[B, H, W, C]``.
    indices: dataset index of every example (default ``arange(B)``); makes the
      crop independent of how the data is batched.
    crop_size: side of the square crop ``c`` (``config.crop_size``).

  Returns:
    ``(A, T)``: ``float32 [B, H, W/2(, C)]`` and ``float32 [B, c, c(, C)]``.

  Example:
    >>> import jax, numpy as np
    >>> imgs = np.zeros((3, 28, 28), np.uint8)
    >>> a, t = split_source_side(jax.random.key(0), imgs, crop_size=7)
    >>> a.shape, t.shape, float(a.min())
    ((3, 28, 14), (3, 7, 7), -1.0)
  """
  images = jnp.asarray(images)
  t = side_crops(key, images, indices, crop_size=crop_size, num_decoders=1)[:, 0]
  return source_of(images), t


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
