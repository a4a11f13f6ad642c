# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""β-VAE with side information and a density-ratio estimator (gls-notes §5.2).

Four Flax NNX modules, bundled in :class:`SourceCoder`:

* :class:`Encoder` -- the 28×28 canvas holding the source ``A`` (right half;
  left half 0) → ``conv(1→C, 3, s1) → conv(C→C, 3, s2) → conv(C→C, 3, s2) →
  fc(49C→H) → fc(H→2d)``: mean and log-variance of the Gaussian posterior
  :math:`p_{W|A}(\cdot|a) = \mathcal N(\mu(a), \operatorname{diag} e^{\ell(a)})`
  of a ``d = 4``-dimensional latent with prior :math:`\mathcal N(0, I)`.
  Paper sizes: ``C = 128``, ``H = 512`` (6272 = 49·128).
* :class:`SideProjection` -- side information ``T`` (a ``c×c`` crop) →
  ``fc(c²→P_h) → fc(P_h→P)``: features ``e(t)`` (``P = 128``; the paper does not
  give the projection's layers, an MLP is our choice).
* :class:`Decoder` -- ``[w, e(t)]`` (``d + P = 132``) → ``fc H → fc 49C →
  reshape 7×7×C → upconv(C→C/2, 3, s2) → upconv(C/2→C/4, 3, s2) + dropout 0.5 →
  upconv(C/4→1, 3, s1) → tanh``. It paints a 28×28 canvas; the reconstruction
  of the source is its **right half** ``[:, :, 14:]`` (the loss only sees that
  half, the left half is unconstrained).
* :class:`Estimator` -- ``h(w, t) = fc([w, vec t] → E → E → 1)``, a binary
  classifier of joint pairs ``(w, t) ~ p_{W,T}`` against product pairs
  ``p_W ⊗ p_T`` (``t`` shuffled within the batch). With balanced classes the
  Bayes-optimal logit is

  .. math:: h^*(w, t) = \log \frac{p_{W,T}(w, t)}{p_W(w)\,p_T(t)}
            = \log \frac{p_{W|T}(w|t)}{p_W(w)},

  the decoder's importance weight in the compression scheme (§5).

Hidden ReLU activations throughout. All sizes are constructor arguments so a
quick variant can shrink them.

Loss (:func:`vae_loss`), per example, with ``x`` the source in ``[-1, 1]``:

.. math::
   \mathcal L = \sum_{\text{392 pixels}} (\hat x - x)^2
   + \beta\,\mathrm{KL}\big(\mathcal N(\mu, e^{\ell})\,\|\,\mathcal N(0, I)\big),
   \qquad \mathrm{KL} = \tfrac12 \sum_j \big(e^{\ell_j} + \mu_j^2 - 1 - \ell_j\big),

averaged over the batch (``reduction='mean'`` divides the squared error by 392
instead: per-pixel MSE). The estimator's loss (:func:`estimator_loss`) is the
BCE of joint vs product pairs with ``w`` sampled from the encoder and
**stop-gradient** into the encoder: the estimator passively learns the density
ratio of whatever code the VAE learns and does not shape it.

The functions used by the compression study are pure and batched:
:func:`encode_posterior`, :func:`log_density_ratio`, :func:`reconstruct`
(evaluation mode: no dropout). Wrap them in ``nnx.jit`` (or split the model and
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
    "vae_loss",
    "estimator_loss",
    "product_pairs",
    "SOURCE_SHAPE",
]

IMAGE_SIZE = 28
SOURCE_SHAPE = (28, 14)
_SOURCE_PIXELS = SOURCE_SHAPE[0] * SOURCE_SHAPE[1]


def _as_canvas(x: jax.Array) -> jax.Array:
  """``[B, 28, 14]`` source → ``[B, 28, 28]`` canvas (left half 0); canvases pass through."""
  if x.shape[-2:] == SOURCE_SHAPE:
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(IMAGE_SIZE - SOURCE_SHAPE[1], 0)])
  if x.shape[-2:] == (IMAGE_SIZE, IMAGE_SIZE):
    return x
  raise ValueError(f"source must have shape [B, 28, 14] (or a [B, 28, 28] canvas), got {tuple(x.shape)}")


class Encoder(nnx.Module):
  """Canvas ``[B, 28, 28]`` → ``(mean, logvar)`` of the ``latent_dim``-d posterior."""

  def __init__(self, *, channels: int = 128, hidden: int = 512, latent_dim: int = 4, rngs: nnx.Rngs):
    c = channels
    self.conv1 = nnx.Conv(1, c, (3, 3), strides=1, padding="SAME", rngs=rngs)
    self.conv2 = nnx.Conv(c, c, (3, 3), strides=2, padding="SAME", rngs=rngs)
    self.conv3 = nnx.Conv(c, c, (3, 3), strides=2, padding="SAME", rngs=rngs)
    self.fc1 = nnx.Linear(49 * c, hidden, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, 2 * latent_dim, rngs=rngs)
    self.latent_dim = latent_dim

  def __call__(self, canvas: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = canvas[..., None]
    x = nnx.relu(self.conv1(x))
    x = nnx.relu(self.conv2(x))
    x = nnx.relu(self.conv3(x))
    x = nnx.relu(self.fc1(x.reshape(x.shape[0], -1)))
    out = self.fc2(x)
    return out[:, :self.latent_dim], out[:, self.latent_dim:]


class SideProjection(nnx.Module):
  """Side information ``[B, c, c]`` → features ``e(t)`` ``[B, features]``."""

  def __init__(self, *, crop_size: int = 14, hidden: int = 256, features: int = 128, rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(crop_size * crop_size, hidden, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, features, rngs=rngs)

  def __call__(self, t: jax.Array) -> jax.Array:
    x = nnx.relu(self.fc1(t.reshape(t.shape[0], -1)))
    return nnx.relu(self.fc2(x))


class Decoder(nnx.Module):
  """``[w, e(t)]`` → canvas ``[B, 28, 28]`` in ``(-1, 1)`` (source = right half)."""

  def __init__(self, *, latent_dim: int = 4, side_features: int = 128, hidden: int = 512,
               channels: int = 128, dropout: float = 0.5, rngs: nnx.Rngs):
    c = channels
    if c % 4:
      raise ValueError(f"config.widths.channels must be divisible by 4, got {c}")
    self.channels = c
    self.fc1 = nnx.Linear(latent_dim + side_features, hidden, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, 49 * c, rngs=rngs)
    self.up1 = nnx.ConvTranspose(c, c // 2, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
    self.up2 = nnx.ConvTranspose(c // 2, c // 4, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
    self.dropout = nnx.Dropout(dropout)
    self.up3 = nnx.ConvTranspose(c // 4, 1, (3, 3), strides=(1, 1), padding="SAME", rngs=rngs)

  def __call__(self, w: jax.Array, features: jax.Array, *, dropout_key: jax.Array | None = None
               ) -> jax.Array:
    x = nnx.relu(self.fc1(jnp.concatenate([w, features], axis=-1)))
    x = nnx.relu(self.fc2(x)).reshape(w.shape[0], 7, 7, self.channels)
    x = nnx.relu(self.up1(x))
    x = nnx.relu(self.up2(x))
    x = self.dropout(x, deterministic=dropout_key is None, rngs=dropout_key)
    return jnp.tanh(self.up3(x))[..., 0]


class Estimator(nnx.Module):
  """``h(w, t)``: logit of "``(w, t)`` is a joint pair", ``[B]``."""

  def __init__(self, *, latent_dim: int = 4, crop_size: int = 14, hidden: int = 256, rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(latent_dim + crop_size * crop_size, hidden, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, hidden, rngs=rngs)
    self.fc3 = nnx.Linear(hidden, 1, rngs=rngs)

  def __call__(self, w: jax.Array, t: jax.Array) -> jax.Array:
    x = jnp.concatenate([w, t.reshape(t.shape[0], -1)], axis=-1)
    x = nnx.relu(self.fc1(x))
    x = nnx.relu(self.fc2(x))
    return self.fc3(x)[:, 0]


class SourceCoder(nnx.Module):
  """Encoder + side projection + decoder + estimator (one set of parameters).

  Args:
    crop_size: side ``c`` of the side-information crop (``config.crop_size``).
    latent_dim: ``d`` (4 in the paper).
    channels: conv width ``C`` (encoder ``C, C, C``; decoder ``C/2, C/4, 1``).
    hidden: fully connected width ``H`` of encoder and decoder.
    side_features: ``P``, size of ``e(t)``.
    side_hidden: hidden width of the side projection.
    estimator_hidden: hidden width ``E`` of the estimator.
    dropout: decoder dropout rate.
    rngs: initialisation randomness.
  """

  def __init__(self, *, crop_size: int = 14, latent_dim: int = 4, channels: int = 128,
               hidden: int = 512, side_features: int = 128, side_hidden: int = 256,
               estimator_hidden: int = 256, dropout: float = 0.5, rngs: nnx.Rngs):
    self.encoder = Encoder(channels=channels, hidden=hidden, latent_dim=latent_dim, rngs=rngs)
    self.projection = SideProjection(crop_size=crop_size, hidden=side_hidden, features=side_features,
                                     rngs=rngs)
    self.decoder = Decoder(latent_dim=latent_dim, side_features=side_features, hidden=hidden,
                           channels=channels, dropout=dropout, rngs=rngs)
    self.estimator = Estimator(latent_dim=latent_dim, crop_size=crop_size, hidden=estimator_hidden,
                               rngs=rngs)
    self.latent_dim = latent_dim
    self.crop_size = crop_size


# --------------------------------------------------------------------------
# Pure, batched functions.
# --------------------------------------------------------------------------


def encode_posterior(model: SourceCoder, source: jax.Array) -> tuple[jax.Array, jax.Array]:
  r"""Posterior :math:`p_{W|A}(\cdot|a) = \mathcal N(\mu, \operatorname{diag} e^{\ell})`.

  Args:
    model: a :class:`SourceCoder`.
    source: ``[B, 28, 14]`` sources in ``[-1, 1]`` (or ``[B, 28, 28]`` canvases
      with the source in the right half and 0 on the left).

  Returns:
    ``(mean, logvar)``, each ``float32 [B, latent_dim]``.
  """
  return model.encoder(_as_canvas(jnp.asarray(source, jnp.float32)))


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
  r"""Decoder output :math:`\hat a = g(w, t)`: ``float32 [B, 28, 14]`` in ``(-1, 1)``.

  Args:
    model: a :class:`SourceCoder`.
    w: latents ``[B, latent_dim]``.
    t: side information ``[B, c, c]`` in ``[-1, 1]``.
    dropout_key: ``None`` (evaluation, no dropout) or a key (training mode).
  """
  canvas = model.decoder(w, model.projection(t), dropout_key=dropout_key)
  return canvas[..., IMAGE_SIZE - SOURCE_SHAPE[1]:]


def log_density_ratio(model: SourceCoder | Estimator, w: jax.Array, t: jax.Array) -> jax.Array:
  r"""Estimator logits :math:`h(w, t) \approx \log p_{W|T}(w|t) / p_W(w)`, ``[B]``.

  ``w`` ``[B, d]`` and ``t`` ``[B, c, c]`` are paired row by row; for ``N``
  codewords against one ``t`` broadcast ``t`` (or ``vmap``). ``model`` may
  also be a bare :class:`Estimator`.
  """
  estimator = model if isinstance(model, Estimator) else model.estimator
  return estimator(w, t)


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
             beta: float, reduction: str = "sum", train: bool = True) -> tuple[jax.Array, dict]:
  r"""Joint loss: β-VAE loss + estimator BCE (stop-gradient into the encoder).

  Args:
    model: a :class:`SourceCoder`.
    key: per-step key; ``fold_in`` 0: posterior sample, 1: dropout,
      2: estimator's product pairs.
    source: ``[B, 28, 14]`` in ``[-1, 1]``.
    t: ``[B, c, c]`` in ``[-1, 1]``.
    beta: KL weight β.
    reduction: ``'sum'`` (squared error summed over the 392 source pixels) or
      ``'mean'`` (per-pixel mean).
    train: dropout on (``True``) or off.

  Returns:
    ``(loss, metrics)`` with metrics ``loss, vae, mse`` (per pixel), ``kl``
    (nats), ``est_bce``, ``est_acc``.
  """
  if reduction not in ("sum", "mean"):
    raise ValueError(f"config.recon_reduction must be 'sum' or 'mean', got {reduction!r}")
  mean, logvar = encode_posterior(model, source)
  w = sample_posterior(jax.random.fold_in(key, 0), mean, logvar)
  recon = reconstruct(model, w, t, dropout_key=jax.random.fold_in(key, 1) if train else None)
  se = jnp.sum((recon - source) ** 2, axis=(-2, -1))
  rec = se if reduction == "sum" else se / _SOURCE_PIXELS
  kl = gaussian_kl(mean, logvar)
  vae = jnp.mean(rec + beta * kl)
  est, est_metrics = estimator_loss(model.estimator, jax.random.fold_in(key, 2), jax.lax.stop_gradient(w), t)
  metrics = {"loss": vae + est, "vae": vae, "mse": jnp.mean(se) / _SOURCE_PIXELS, "kl": jnp.mean(kl),
             **est_metrics}
  return vae + est, metrics
