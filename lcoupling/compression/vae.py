# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""β-VAE with side information and a density-ratio estimator (docs/method.md §5.3).

Four Flax NNX modules, bundled in :class:`SourceCoder`:

* :class:`Encoder` -- the ``H×W(×C_img)`` canvas holding the source ``A``
  (right half; left half 0) → ``conv(C_img→C, 3, s1) → conv(C→C, 3, s2) →
  conv(C→C, 3, s2) → fc((H/4)(W/4)C→H_fc) → fc(H_fc→2d)``: mean and
  log-variance of the Gaussian posterior :math:`p_{W|A}(\cdot|a) = \mathcal
  N(\mu(a), \operatorname{diag} e^{\ell(a)})` of a ``d = 4``-dimensional latent
  with prior :math:`\mathcal N(0, I)`. Paper sizes (MNIST, 28×28×1): ``C =
  128``, ``H_fc = 512`` (6272 = 7·7·128).
* :class:`SideProjection` -- side information ``T`` (a ``c×c(×C_img)`` crop) →
  ``fc(c²C_img→P_h) → fc(P_h→P)``: features ``e(t)`` (``P = 128``; the paper
  does not give the projection's layers, an MLP is our choice).
* :class:`Decoder` -- ``[w, e(t)]`` (``d + P = 132``) → ``fc H_fc → fc
  (H/4)(W/4)C → reshape → upconv(C→C/2, 3, s2) → upconv(C/2→C/4, 3, s2) +
  dropout 0.5 → upconv(C/4→C_img, 3, s1) → tanh``. It paints a full canvas; the
  reconstruction of the source is its **right half** (the loss only sees that
  half, the left half is unconstrained).
* :class:`Estimator` -- ``h(w, t) = fc([w, vec t] → E → E → 1)``, a binary
  classifier of joint pairs ``(w, t) ~ p_{W,T}`` against product pairs
  ``p_W ⊗ p_T`` (``t`` shuffled within the batch). With balanced classes the
  Bayes-optimal logit is

  .. math:: h^*(w, t) = \log \frac{p_{W,T}(w, t)}{p_W(w)\,p_T(t)}
            = \log \frac{p_{W|T}(w|t)}{p_W(w)},

  the decoder's importance weight in the compression scheme (§5).

Hidden ReLU activations throughout. All sizes are constructor arguments so a
quick variant can shrink them. The image geometry is ``image_shape``: ``(28,
28)`` for MNIST (no channel axis), ``(32, 32, 3)`` for CIFAR-10 (the same
layers, the feature map after the two stride-2 convolutions is 8×8 instead of
7×7, and the first / last convolutions read / paint 3 channels). ``dtype``
is the *computation* dtype (e.g. ``jnp.bfloat16`` for training on an
accelerator); parameters are always float32 and every loss and log weight is
returned in float32.

Loss (:func:`vae_loss`), per example, with ``x`` the source in ``[-1, 1]``:

.. math::
   \mathcal L = \sum_{\text{source pixels}} (\hat x - x)^2
   + \beta\,\mathrm{KL}\big(\mathcal N(\mu, e^{\ell})\,\|\,\mathcal N(0, I)\big),
   \qquad \mathrm{KL} = \tfrac12 \sum_j \big(e^{\ell_j} + \mu_j^2 - 1 - \ell_j\big),

averaged over the batch (``reduction='mean'`` divides the squared error by the
number of source values instead, 392 for MNIST: per-pixel MSE). The estimator's loss (:func:`estimator_loss`) is the
BCE of joint vs product pairs with ``w`` sampled from the encoder and
**stop-gradient** into the encoder: the estimator passively learns the density
ratio of whatever code the VAE learns and does not shape it.

The functions used by the compression study are pure and batched:
:func:`encode_posterior`, :func:`log_density_ratio`, :func:`reconstruct`
(evaluation mode: no dropout), and the codec's log weights over a codebook,
:func:`posterior_log_weights` (encoder) and :func:`codebook_log_density_ratio`
(decoder). Wrap them in ``nnx.jit`` (or split the model and
``jax.jit`` a function that merges it) for speed.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from flax import nnx
  >>> m = SourceCoder(crop_size=7, channels=8, hidden=16, side_features=8, side_hidden=8,
  ...                 estimator_hidden=8, rngs=nnx.Rngs(0))
  >>> a = jnp.zeros((2, 28, 14)); t = jnp.zeros((2, 7, 7))
  >>> mean, logvar = encode_posterior(m, a)
  >>> mean.shape, reconstruct(m, mean, t).shape, log_density_ratio(m, mean, t).shape
  ((2, 4), (2, 28, 14), (2,))
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from lcoupling.data import images as images_lib

__all__ = [
    "Encoder",
    "SideProjection",
    "Decoder",
    "Estimator",
    "SourceCoder",
    "encode_posterior",
    "sample_posterior",
    "gaussian_kl",
    "gaussian_log_density",
    "reconstruct",
    "log_density_ratio",
    "posterior_log_weights",
    "codebook_log_density_ratio",
    "DecoderLogWeights",
    "vae_loss",
    "estimator_loss",
    "product_pairs",
    "SOURCE_SHAPE",
    "MNIST_SHAPE",
]

#: MNIST's image and source shapes (the defaults).
MNIST_SHAPE = (28, 28)
SOURCE_SHAPE = (28, 14)


def _geometry(image_shape) -> images_lib.ImageGeometry:
  g = images_lib.geometry_of(image_shape)
  if g.height % 4 or g.width % 4:
    raise ValueError(f"image_shape: height and width must be divisible by 4 (two stride-2 "
                     f"convolutions), got {tuple(image_shape)}")
  return g


def _quarter(n: int) -> int:
  return -(-(-(-n // 2)) // 2)  # two stride-2 'SAME' convolutions: ceil(ceil(n/2)/2)


def _f32(x):
  return x.astype(jnp.float32)


class Encoder(nnx.Module):
  """Canvas ``[B, H, W(, C)]`` → ``(mean, logvar)`` of the ``latent_dim``-d posterior."""

  def __init__(self, *, channels: int = 128, hidden: int = 512, latent_dim: int = 4,
               image_shape=MNIST_SHAPE, dtype=None, rngs: nnx.Rngs):
    c = channels
    g = _geometry(image_shape)
    c_in = g.channels or 1
    self.conv1 = nnx.Conv(c_in, c, (3, 3), strides=1, padding="SAME", dtype=dtype, rngs=rngs)
    self.conv2 = nnx.Conv(c, c, (3, 3), strides=2, padding="SAME", dtype=dtype, rngs=rngs)
    self.conv3 = nnx.Conv(c, c, (3, 3), strides=2, padding="SAME", dtype=dtype, rngs=rngs)
    self.fc1 = nnx.Linear(_quarter(g.height) * _quarter(g.width) * c, hidden, dtype=dtype, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, 2 * latent_dim, dtype=dtype, rngs=rngs)
    self.latent_dim = latent_dim
    self.grayscale = g.channels is None

  def __call__(self, canvas: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = canvas[..., None] if self.grayscale else canvas
    x = nnx.relu(self.conv1(x))
    x = nnx.relu(self.conv2(x))
    x = nnx.relu(self.conv3(x))
    x = nnx.relu(self.fc1(x.reshape(x.shape[0], -1)))
    out = _f32(self.fc2(x))
    return out[:, :self.latent_dim], out[:, self.latent_dim:]


class SideProjection(nnx.Module):
  """Side information ``[B, c, c(, C)]`` → features ``e(t)`` ``[B, features]``."""

  def __init__(self, *, crop_size: int = 14, hidden: int = 256, features: int = 128,
               image_channels: int | None = None, dtype=None, rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(crop_size * crop_size * (image_channels or 1), hidden, dtype=dtype, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, features, dtype=dtype, rngs=rngs)

  def __call__(self, t: jax.Array) -> jax.Array:
    x = nnx.relu(self.fc1(t.reshape(t.shape[0], -1)))
    return nnx.relu(self.fc2(x))


class Decoder(nnx.Module):
  """``[w, e(t)]`` → canvas ``[B, H, W(, C)]`` in ``(-1, 1)`` (source = right half)."""

  def __init__(self, *, latent_dim: int = 4, side_features: int = 128, hidden: int = 512,
               channels: int = 128, dropout: float = 0.5, image_shape=MNIST_SHAPE, dtype=None,
               rngs: nnx.Rngs):
    c = channels
    if c % 4:
      raise ValueError(f"config.widths.channels must be divisible by 4, got {c}")
    g = _geometry(image_shape)
    self.channels = c
    self.grid = (g.height // 4, g.width // 4)
    self.grayscale = g.channels is None
    self.fc1 = nnx.Linear(latent_dim + side_features, hidden, dtype=dtype, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, self.grid[0] * self.grid[1] * c, dtype=dtype, rngs=rngs)
    self.up1 = nnx.ConvTranspose(c, c // 2, (3, 3), strides=(2, 2), padding="SAME", dtype=dtype,
                                 rngs=rngs)
    self.up2 = nnx.ConvTranspose(c // 2, c // 4, (3, 3), strides=(2, 2), padding="SAME", dtype=dtype,
                                 rngs=rngs)
    self.dropout = nnx.Dropout(dropout)
    self.up3 = nnx.ConvTranspose(c // 4, g.channels or 1, (3, 3), strides=(1, 1), padding="SAME",
                                 dtype=dtype, rngs=rngs)

  def __call__(self, w: jax.Array, features: jax.Array, *, dropout_key: jax.Array | None = None
               ) -> jax.Array:
    x = nnx.relu(self.fc1(jnp.concatenate([w, features], axis=-1)))
    x = nnx.relu(self.fc2(x)).reshape(w.shape[0], *self.grid, self.channels)
    x = nnx.relu(self.up1(x))
    x = nnx.relu(self.up2(x))
    x = self.dropout(x, deterministic=dropout_key is None, rngs=dropout_key)
    out = _f32(jnp.tanh(self.up3(x)))
    return out[..., 0] if self.grayscale else out


class Estimator(nnx.Module):
  """``h(w, t)``: logit of "``(w, t)`` is a joint pair", ``[B]``."""

  def __init__(self, *, latent_dim: int = 4, crop_size: int = 14, hidden: int = 256,
               image_channels: int | None = None, dtype=None, rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(latent_dim + crop_size * crop_size * (image_channels or 1), hidden,
                          dtype=dtype, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, hidden, dtype=dtype, rngs=rngs)
    self.fc3 = nnx.Linear(hidden, 1, dtype=dtype, rngs=rngs)

  def __call__(self, w: jax.Array, t: jax.Array) -> jax.Array:
    x = jnp.concatenate([w, t.reshape(t.shape[0], -1)], axis=-1)
    x = nnx.relu(self.fc1(x))
    x = nnx.relu(self.fc2(x))
    return _f32(self.fc3(x)[:, 0])

  def codebook_logits(self, codebook: jax.Array, t: jax.Array) -> jax.Array:
    r""":math:`h(u_j, t)` for ``N`` codewords ``u_j`` and ONE side information ``t``, ``float32[N]``.

    Equals ``self(codebook, broadcast t)`` (up to float rounding) without
    materialising ``N`` copies of ``t``: the first layer is split,
    :math:`W_1 [u; t] = W_u u + (W_t t + b_1)`.
    """
    kernel, bias = self.fc1.kernel[...], self.fc1.bias[...]
    d = codebook.shape[-1]
    tt = jnp.asarray(t, jnp.float32).reshape(-1)
    h = jax.nn.relu(codebook @ kernel[:d] + (tt @ kernel[d:] + bias))
    h = jax.nn.relu(self.fc2(h))
    return _f32(self.fc3(h)[..., 0])


class SourceCoder(nnx.Module):
  """Encoder + side projection + decoder + estimator (one set of parameters).

  Args:
    crop_size: side ``c`` of the side-information crop (``config.crop_size``).
    latent_dim: ``d`` (4 in the paper).
    channels: conv width ``C`` (encoder ``C, C, C``; decoder ``C/2, C/4, C_img``).
    hidden: fully connected width ``H`` of encoder and decoder.
    side_features: ``P``, size of ``e(t)``.
    side_hidden: hidden width of the side projection.
    estimator_hidden: hidden width ``E`` of the estimator.
    dropout: decoder dropout rate.
    image_shape: ``(H, W)`` (grayscale) or ``(H, W, C_img)``; ``H, W`` divisible by 4.
    dtype: computation dtype (``None``: float32); parameters stay float32.
    rngs: initialisation randomness.
  """

  def __init__(self, *, crop_size: int = 14, latent_dim: int = 4, channels: int = 128,
               hidden: int = 512, side_features: int = 128, side_hidden: int = 256,
               estimator_hidden: int = 256, dropout: float = 0.5, image_shape=MNIST_SHAPE,
               dtype=None, rngs: nnx.Rngs):
    g = _geometry(image_shape)
    g.check_crop_size(crop_size)
    self.encoder = Encoder(channels=channels, hidden=hidden, latent_dim=latent_dim,
                           image_shape=image_shape, dtype=dtype, rngs=rngs)
    self.projection = SideProjection(crop_size=crop_size, hidden=side_hidden, features=side_features,
                                     image_channels=g.channels, dtype=dtype, rngs=rngs)
    self.decoder = Decoder(latent_dim=latent_dim, side_features=side_features, hidden=hidden,
                           channels=channels, dropout=dropout, image_shape=image_shape, dtype=dtype,
                           rngs=rngs)
    self.estimator = Estimator(latent_dim=latent_dim, crop_size=crop_size, hidden=estimator_hidden,
                               image_channels=g.channels, dtype=dtype, rngs=rngs)
    self.latent_dim = latent_dim
    self.crop_size = crop_size
    self.geometry = g


# --------------------------------------------------------------------------
# Pure, batched functions.
# --------------------------------------------------------------------------


def _as_canvas(model: SourceCoder, x: jax.Array) -> jax.Array:
  """``[B, *source_shape]`` source → ``[B, *image_shape]`` canvas (left half 0); canvases pass through."""
  g = model.geometry
  if x.shape[1:] == g.source_shape:
    return images_lib.source_canvas(x, g)
  if x.shape[1:] == g.image_shape:
    return x
  raise ValueError(f"source must have shape [B, {', '.join(map(str, g.source_shape))}] (or a "
                   f"[B, {', '.join(map(str, g.image_shape))}] canvas), got {tuple(x.shape)}")


def encode_posterior(model: SourceCoder, source: jax.Array) -> tuple[jax.Array, jax.Array]:
  r"""Posterior :math:`p_{W|A}(\cdot|a) = \mathcal N(\mu, \operatorname{diag} e^{\ell})`.

  Args:
    model: a :class:`SourceCoder`.
    source: ``[B, *source_shape]`` sources in ``[-1, 1]`` (MNIST ``[B, 28, 14]``),
      or ``[B, *image_shape]`` canvases with the source in the right half and 0
      on the left.

  Returns:
    ``(mean, logvar)``, each ``float32 [B, latent_dim]``.
  """
  return model.encoder(_as_canvas(model, jnp.asarray(source, jnp.float32)))


def sample_posterior(key: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  r"""Reparameterised sample :math:`w = \mu + e^{\ell/2} \odot \varepsilon`."""
  return mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  r"""KL of :math:`\mathcal N(\mu, e^{\ell})` to :math:`\mathcal N(0, I)` in nats, ``[B]``.

  .. math:: \tfrac12 \sum_j \left(e^{\ell_j} + \mu_j^2 - 1 - \ell_j\right)
  """
  return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def gaussian_log_density(w: jax.Array, mean: jax.Array | float = 0.0,
                         logvar: jax.Array | float = 0.0) -> jax.Array:
  r""":math:`\log \mathcal N(w; \mu, \operatorname{diag} e^{\ell})`, summed over the last axis.

  ``gaussian_log_density(w, mean, logvar) - gaussian_log_density(w)`` is the
  encoder's log importance weight :math:`\log p_{W|A}(w|a) / p(w)` against the
  prior :math:`\mathcal N(0, I)`.
  """
  return -0.5 * jnp.sum(math.log(2 * math.pi) + logvar + (w - mean) ** 2 * jnp.exp(-logvar), axis=-1)


def reconstruct(model: SourceCoder, w: jax.Array, t: jax.Array, *,
                dropout_key: jax.Array | None = None) -> jax.Array:
  r"""Decoder output :math:`\hat a = g(w, t)`: ``float32 [B, *source_shape]`` in ``(-1, 1)``.

  Args:
    model: a :class:`SourceCoder`.
    w: latents ``[B, latent_dim]``.
    t: side information ``[B, c, c(, C)]`` in ``[-1, 1]``.
    dropout_key: ``None`` (evaluation, no dropout) or a key (training mode).
  """
  canvas = model.decoder(w, model.projection(t), dropout_key=dropout_key)
  return canvas[:, :, model.geometry.source_width:]


def log_density_ratio(model: SourceCoder | Estimator, w: jax.Array, t: jax.Array) -> jax.Array:
  r"""Estimator logits :math:`h(w, t) \approx \log p_{W|T}(w|t) / p_W(w)`, ``[B]``.

  ``w`` ``[B, d]`` and ``t`` ``[B, c, c(, C)]`` are paired row by row; for ``N``
  codewords against one ``t`` use :func:`codebook_log_density_ratio`. ``model``
  may also be a bare :class:`Estimator`.
  """
  estimator = model if isinstance(model, Estimator) else model.estimator
  return estimator(w, t)


def posterior_log_weights(codebook: jax.Array, posterior: jax.Array) -> jax.Array:
  r"""Encoder log weights :math:`\log p_{W|A}(u|a) - \log p_W(u)` of ``N`` codewords, ``float32[N]``.

  ``posterior`` is ``[2, d]``: the mean and log-variance of
  :func:`encode_posterior` for one source; the prior is :math:`\mathcal N(0, I)`.

  .. math:: \log\lambda(u) = \log\mathcal N(u; \mu, e^{\ell}) - \log\mathcal N(u; 0, I)

  Example:
    >>> import jax.numpy as jnp
    >>> u = jnp.ones((5, 4)); post = jnp.zeros((2, 4))  # posterior = prior
    >>> float(jnp.abs(posterior_log_weights(u, post)).max())
    0.0
  """
  return gaussian_log_density(codebook, posterior[0], posterior[1]) - gaussian_log_density(codebook)


def codebook_log_density_ratio(model: SourceCoder | Estimator, codebook: jax.Array, t: jax.Array
                               ) -> jax.Array:
  r"""Decoder log weights :math:`h(u_j, t)` of ``N`` codewords for ONE side information ``t``.

  ``float32[N]``; equals :func:`log_density_ratio` on the ``(u_j, t)`` pairs up
  to float rounding (:meth:`Estimator.codebook_logits`).
  """
  estimator = model if isinstance(model, Estimator) else model.estimator
  return estimator.codebook_logits(codebook, t)


class DecoderLogWeights:
  """Hashable ``fn(codebook, t) -> h(codebook, t)``, a codec ``log_weight_fn``.

  The codec (:mod:`lcoupling.compression.codec`) takes its weight functions as
  static (hashable) arguments; this wrapper holds a split estimator
  (parameters become constants of the compiled function) and hashes by
  identity.
  """

  def __init__(self, estimator: Estimator):
    self._graphdef, self._state = nnx.split(estimator)

  def __call__(self, codebook, t):
    return nnx.merge(self._graphdef, self._state).codebook_logits(codebook, t)

  __hash__ = object.__hash__

  def __eq__(self, other):
    return self is other


def product_pairs(key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array]:
  """Index pairs ``(i, j)`` with ``i != j`` for product samples ``(w_i, t_j)``.

  A random permutation ``p`` pairs ``w[p[m]]`` with ``t[p[m-1]]``: every ``w``
  and every ``t`` is used once and no pair is a joint pair (a random cyclic
  derangement).
  """
  p = jax.random.permutation(key, batch_size)
  return p, jnp.roll(p, 1)


def estimator_loss(estimator: Estimator, key: jax.Array, w: jax.Array, t: jax.Array
                   ) -> tuple[jax.Array, dict]:
  r"""BCE of the estimator on joint ``(w_i, t_i)`` vs product ``(w_i, t_j)`` pairs.

  .. math:: \mathcal L_h = -\tfrac{1}{2B}\sum_i \big[\log\sigma(h(w_i,t_i))
            + \log\sigma(-h(w_{p_i}, t_{p_{i-1}}))\big]

  ``estimator`` is an :class:`Estimator` (``model.estimator``); ``w`` is used
  as given (the caller applies ``stop_gradient``). ``key`` draws the pairing.
  Returns ``(loss, {"est_bce", "est_acc"})``.
  """
  iw, it = product_pairs(key, w.shape[0])
  joint = estimator(w, t)
  prod = estimator(w[iw], t[it])
  loss = 0.5 * (jnp.mean(optax.sigmoid_binary_cross_entropy(joint, jnp.ones_like(joint)))
                + jnp.mean(optax.sigmoid_binary_cross_entropy(prod, jnp.zeros_like(prod))))
  acc = 0.5 * (jnp.mean(joint > 0) + jnp.mean(prod < 0))
  return loss, {"est_bce": loss, "est_acc": acc}


def vae_loss(model: SourceCoder, key: jax.Array, source: jax.Array, t: jax.Array, *,
             beta, reduction: str = "sum", train: bool = True) -> tuple[jax.Array, dict]:
  r"""Joint loss: β-VAE loss + estimator BCE (stop-gradient into the encoder).

  Args:
    model: a :class:`SourceCoder`.
    key: per-step key; ``fold_in`` 0: posterior sample, 1: dropout,
      2: estimator's product pairs.
    source: ``[B, *source_shape]`` in ``[-1, 1]``.
    t: ``[B, c, c(, C)]`` in ``[-1, 1]``.
    beta: KL weight β (a float, or a traced scalar when several β are trained
      together under ``vmap``).
    reduction: ``'sum'`` (squared error summed over the source values) or
      ``'mean'`` (per-value mean).
    train: dropout on (``True``) or off.

  Returns:
    ``(loss, metrics)`` with metrics ``loss, vae, mse`` (per source value, on
    ``[-1, 1]``), ``kl`` (nats), ``est_bce``, ``est_acc``.
  """
  if reduction not in ("sum", "mean"):
    raise ValueError(f"config.recon_reduction must be 'sum' or 'mean', got {reduction!r}")
  size = model.geometry.source_size
  mean, logvar = encode_posterior(model, source)
  w = sample_posterior(jax.random.fold_in(key, 0), mean, logvar)
  recon = reconstruct(model, w, t, dropout_key=jax.random.fold_in(key, 1) if train else None)
  se = jnp.sum((recon - source) ** 2, axis=tuple(range(1, recon.ndim)))
  rec = se if reduction == "sum" else se / size
  kl = gaussian_kl(mean, logvar)
  vae = jnp.mean(rec + beta * kl)
  est, est_metrics = estimator_loss(model.estimator, jax.random.fold_in(key, 2), jax.lax.stop_gradient(w), t)
  metrics = {"loss": vae + est, "vae": vae, "mse": jnp.mean(se) / size, "kl": jnp.mean(kl),
             **est_metrics}
  return vae + est, metrics
