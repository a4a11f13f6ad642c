# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""MNIST study: lossy compression with side information at ``K`` decoders (notes §5.2).

Reproduces the MNIST experiment of Rowan, Phan & Khisti (NeurIPS 2025,
arXiv:2506.05632), §5 (Tables 13-14, Figures 3-4). The source ``A`` is the
right half of an image (28×14, pixels in ``[-1, 1]``); decoder ``k`` holds its
own random ``c×c`` crop ``T_k`` of the left half
(:func:`lcoupling.data.side_crops`). A β-VAE (:mod:`lcoupling.compression.vae`)
trained per β gives the posterior :math:`p_{W|A}(\cdot|a) = \mathcal N(\mu(a),
\operatorname{diag} e^{\ell(a)})` of a 4-d latent with prior
:math:`p_W = \mathcal N(0, I)`, a decoder :math:`g(w, t)` and an estimator
:math:`h(w, t) \approx \log p_{W|T}(w|t)/p_W(w)`. The codec
(:mod:`lcoupling.compression.codec`) draws ``N`` codewords
:math:`U_j \sim p_W` and uses the log weights

.. math::
   \log\lambda_j = \log \mathcal N(U_j; \mu(a), e^{\ell(a)}) - \log \mathcal N(U_j; 0, I),
   \qquad \log\mu^{(k)}_j = h(U_j, t_k),

the reconstruction of decoder ``k`` is :math:`\hat A_k = g(U_{X_k}, t_k)` and
the per-pixel MSE is :math:`\frac{1}{392}\lVert \hat A_k - A \rVert^2`. Reported
per ``(β, N, scheme, K, L_max)``: the best-of-K MSE (the paper's oracle:
:math:`\min_k`), the mean over the ``K`` decoders, decoder 1 alone and the
matching probability (some decoder recovers the encoder's codeword).

**One trial = one test image and every cell.** A trial draws, for every ``N``
of the grid, the codec's shared randomness from ONE seed (as
:func:`lcoupling.compression.shared_randomness` does for
``CodecSpec(N, K_max, 64, sample_prior=latent_prior)``), the ``K_max`` side
crops, and evaluates both schemes, every ``K' <= K_max`` and every rate on it
(common random numbers; the per-bin minima of
:func:`lcoupling.compression.bin_minima` are shared by every ``K'`` and rate).
The decisions equal the codec's :func:`~lcoupling.compression.encoder_index` /
:func:`~lcoupling.compression.decoder_index` run cell by cell with the same
seed (``tests/test_mnist_study.py`` checks it).

Keys (every one a ``fold_in`` of ``key = jax.random.key(config.seed)``):
``fold_in(key, 0)`` trains every VAE (the same initialisation, order and crops
for every β: common random numbers across β); repeat ``r`` and test image
``i`` use the trial key ``fold_in(fold_in(fold_in(key, 1), r), i)``; inside a
trial ``fold_in(trial_key, 0)`` is the codec's shared seed and
``fold_in(trial_key, 1)`` the crop key (crop ``k`` from ``fold_in(fold_in(crop_key,
0), k)``). The evaluation randomness does not depend on β, so every β sees the
same codebooks and crops.

Selection: as in the paper, ``(N, β)`` is chosen per ``(scheme, K, L_max)`` by
the lowest best-of-K MSE (mean over repeats, on the evaluation images
themselves); ``selected`` marks it. The fixed ``N = 2**7, β = 0.15`` slice is
the records with those values (``fixed_slice``).

Reference: Rowan, Phan & Khisti, NeurIPS 2025 (arXiv:2506.05632), §5 MNIST;
Phan, Khisti & Louizos, AISTATS 2024 (arXiv:2401.02609).

Example:
  >>> import jax, jax.numpy as jnp
  >>> u = latent_prior(jax.random.key(0), 5)
  >>> post = jnp.stack([jnp.zeros(4), jnp.zeros(4)])  # posterior = prior
  >>> encoder_log_weights(u, post).shape, float(jnp.abs(encoder_log_weights(u, post)).max())
  ((5,), 0.0)
"""

from __future__ import annotations

import functools
import math
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lcoupling import core, parallel, plotting
from lcoupling import data as data_lib
from lcoupling.compression import codec
from lcoupling.compression import train as train_lib
from lcoupling.compression import vae as vae_lib
from lcoupling.studies import common

__all__ = [
    "PAPER_MSE_K1",
    "SCHEME_NAMES",
    "TRAIN_STREAM",
    "EVAL_STREAM",
    "latent_prior",
    "encoder_log_weights",
    "estimator_log_weights",
    "DecoderLogWeight",
    "codec_spec",
    "trial_key",
    "trial_inputs",
    "trial_indices",
    "trial_outputs",
    "trial_fn",
    "train_config",
    "train_workdir",
    "load_images",
    "load_model",
    "train_mean_source",
    "evaluate",
    "example_record",
    "reference_record",
    "zero_rate_outputs",
    "validate",
    "run_point",
    "summarize",
    "plot",
    "markdown_table",
    "reference_table",
    "encode_hex",
    "decode_hex",
]

#: The paper's K = 1 best MSE (GLS; baseline equal) at L_max = 4..64 (notes §5.2).
PAPER_MSE_K1 = {4: 0.1027, 8: 0.0942, 16: 0.0852, 32: 0.0766, 64: 0.0693}
#: Output order of the scheme axis.
SCHEME_NAMES = ("gls", "baseline")
#: ``fold_in`` streams of the study key.
TRAIN_STREAM, EVAL_STREAM = 0, 1
#: ``fold_in`` streams of a trial key.
CODEC_SEED, CROP_SEED = 0, 1
_METRICS = ("mse_best", "mse_mean", "mse_first", "match_prob")

# --------------------------------------------------------------------------
# Log weights.
# --------------------------------------------------------------------------


def latent_prior(key: jax.Array, num_codewords: int, dim: int = 4) -> jax.Array:
  """``p_W = N(0, I_dim)``: ``float32[N, dim]`` codewords (a codec ``sample_prior``)."""
  return jax.random.normal(key, (num_codewords, dim), jnp.float32)


def encoder_log_weights(codebook: jax.Array, posterior: jax.Array) -> jax.Array:
  r"""Encoder log weights :math:`\log p_{W|A}(u|a) - \log p_W(u)`, ``float32[N]``.

  ``posterior`` is ``[2, d]``: the mean and log-variance of
  :func:`lcoupling.compression.vae.encode_posterior` for one source.

  .. math:: \log\lambda(u) = \log\mathcal N(u; \mu, e^{\ell}) - \log\mathcal N(u; 0, I)
  """
  return (vae_lib.gaussian_log_density(codebook, posterior[0], posterior[1])
          - vae_lib.gaussian_log_density(codebook))


def estimator_log_weights(estimator: vae_lib.Estimator, codebook: jax.Array, t: jax.Array
                          ) -> jax.Array:
  r"""Decoder log weights :math:`h(u_j, t)` for ``N`` codewords and ONE crop, ``float32[N]``.

  Equals :func:`lcoupling.compression.vae.log_density_ratio` on ``(u_j, t)``
  pairs (up to float rounding) without materialising ``N`` copies of ``t``:
  the first layer is split, :math:`W_1 [u; t] = W_u u + (W_t t + b_1)`.
  """
  kernel, bias = estimator.fc1.kernel[...], estimator.fc1.bias[...]
  d = codebook.shape[-1]
  tt = jnp.asarray(t, jnp.float32).reshape(-1)
  h = jax.nn.relu(codebook @ kernel[:d] + (tt @ kernel[d:] + bias))
  h = jax.nn.relu(estimator.fc2(h))
  return estimator.fc3(h)[..., 0]


class DecoderLogWeight:
  """Hashable ``fn(codebook, t) -> h(codebook, t)`` for the codec's ``log_weight_fn``.

  The codec takes its weight functions as static (hashable) arguments; this
  wrapper holds a split estimator (parameters become constants of the compiled
  function) and hashes by identity.
  """

  def __init__(self, estimator: vae_lib.Estimator):
    self._graphdef, self._state = nnx.split(estimator)

  def __call__(self, codebook, t):
    return estimator_log_weights(nnx.merge(self._graphdef, self._state), codebook, t)

  __hash__ = object.__hash__

  def __eq__(self, other):
    return self is other


def codec_spec(num_codewords: int, num_decoders: int, max_bins: int, scheme: str = "gls",
               latent_dim: int = 4) -> codec.CodecSpec:
  """The :class:`~lcoupling.compression.CodecSpec` of this study (latent prior ``N(0, I)``)."""
  prior = functools.partial(latent_prior, dim=int(latent_dim))
  return codec.CodecSpec(int(num_codewords), int(num_decoders), int(max_bins), scheme, prior)


def trial_key(key: jax.Array, repeat: int, index: int) -> jax.Array:
  """Key of test image ``index`` in repeat ``repeat``: ``fold_in(fold_in(fold_in(key, 1), r), i)``."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, EVAL_STREAM), repeat), index)


# --------------------------------------------------------------------------
# One trial.
# --------------------------------------------------------------------------


def trial_inputs(tkey, image, model, *, num_decoders, crop_size):
  """``(source [28, 14], crops [K, c, c], posterior [2, d])`` of one trial (test image ``image``)."""
  source = data_lib.to_unit_range(image[:, data_lib.SOURCE_WIDTH:])  # [28, 14]
  crops = data_lib.side_crops(jax.random.fold_in(tkey, CROP_SEED), image[None],
                              jnp.zeros((1,), jnp.int32), crop_size=crop_size,
                              num_decoders=num_decoders)[0]  # [K, c, c]
  mean, logvar = vae_lib.encode_posterior(model, source[None])
  return source, crops, jnp.stack([mean[0], logvar[0]])


def trial_indices(tkey, image, model, *, num_codewords, num_decoders, max_bins, rates, crop_size,
                  capacity):
  """Codec decisions of one trial at one ``N`` for both schemes, every ``K'`` and rate.

  Args:
    tkey: the trial key (:func:`trial_key`).
    image: ``uint8[28, 28]`` test image.
    model: a :class:`~lcoupling.compression.vae.SourceCoder`.
    num_codewords, num_decoders, max_bins, rates, crop_size: static sizes
      (``num_decoders`` is ``K_max``).
    capacity: width of the padded bin layout
      (:func:`lcoupling.compression.bin_capacity`).

  Returns:
    A dict: ``gls_enc int32[K']`` (encoder index for ``K' = 1..K``),
    ``gls_dec int32[K', R, k]``, ``bl_enc int32[]``, ``bl_dec int32[R, k]``,
    ``codebook [N, d]``, ``source [28, 14]``, ``crops [K, c, c]``,
    ``overflow bool[]``.
  """
  source, crops, posterior = trial_inputs(tkey, image, model, num_decoders=num_decoders,
                                           crop_size=crop_size)
  n, k_max = num_codewords, num_decoders
  seed = jax.random.fold_in(tkey, CODEC_SEED)
  codebook = latent_prior(jax.random.fold_in(seed, codec.CODEBOOK_STREAM), n, model.latent_dim)
  counts = codec.bin_counts(jax.random.fold_in(seed, codec.LABEL_STREAM), n, max_bins)
  ends = jnp.cumsum(counts)
  log_s = core.log_race_times(jax.random.fold_in(seed, codec.RACE_STREAM), (k_max, n))
  index, valid, overflow = codec.padded_layout(counts, n, capacity)
  lam = encoder_log_weights(codebook, posterior)
  prefix = jax.lax.cummin(log_s, axis=0)  # GLS encoder of K' races rows < K'
  gls_enc = jax.vmap(lambda s: core.race_argmin(s, lam))(prefix)  # [K']
  mu = jax.vmap(lambda t: estimator_log_weights(model.estimator, codebook, t))(crops)  # [K, N]
  mu_pad = mu[:, index]  # [K, L, C]
  ls_pad = jnp.where(valid, log_s[:, index], jnp.inf)
  g_min, g_win = jax.vmap(codec.bin_minima, in_axes=(0, 0, None))(ls_pad, mu_pad, index)
  b_min, b_win = jax.vmap(codec.bin_minima, in_axes=(None, 0, None))(ls_pad[0], mu_pad, index)
  labels = jnp.searchsorted(ends, gls_enc, side="right").astype(jnp.int32)  # [K']

  def decode_all(minima, winners, label):  # -> [R, k]
    return jnp.stack([jax.vmap(lambda m, w, r=r: codec.coset_argmin(m, w, label, r))(minima, winners)
                      for r in rates])

  gls_dec = jax.vmap(lambda lab: decode_all(g_min, g_win, lab))(labels)  # [K', R, k]
  bl_dec = decode_all(b_min, b_win, labels[0])  # [R, k]
  return dict(gls_enc=gls_enc, gls_dec=gls_dec, bl_enc=gls_enc[0], bl_dec=bl_dec, codebook=codebook,
              source=source, crops=crops, overflow=overflow)


@functools.lru_cache(maxsize=16)
def _entries(k_max, num_rates):
  """Static (K'-1, rate, k) of the live GLS decoders and (rate, k) of the baseline's."""
  gls = np.array([(kp, r, k) for kp in range(k_max) for r in range(num_rates) for k in range(kp + 1)],
                 np.int32).reshape(-1, 3)
  bl = np.array([(r, k) for r in range(num_rates) for k in range(k_max)], np.int32).reshape(-1, 2)
  return gls, bl


def _cell_metrics(model, r, rates, k_max):
  """``[2, K', R]`` best / mean / first MSE and match of one trial at one ``N``."""
  gls_e, bl_e = _entries(k_max, len(rates))
  kp_i, r_i, k_i = (jnp.asarray(gls_e[:, j]) for j in range(3))
  br_i, bk_i = jnp.asarray(bl_e[:, 0]), jnp.asarray(bl_e[:, 1])
  idx = jnp.concatenate([r["gls_dec"][kp_i, r_i, k_i], r["bl_dec"][br_i, bk_i]])
  dec_k = jnp.concatenate([k_i, bk_i])
  recon = vae_lib.reconstruct(model, r["codebook"][idx], r["crops"][dec_k])  # [E, 28, 14]
  mse = jnp.mean((recon - r["source"]) ** 2, axis=(-2, -1))
  e1 = gls_e.shape[0]
  kp = jnp.arange(1, k_max + 1, dtype=jnp.float32)
  # GLS: [K', R, k] with +inf at dead decoders (k >= K').
  g = jnp.full((k_max, len(rates), k_max), jnp.inf).at[kp_i, r_i, k_i].set(mse[:e1])
  alive = jnp.arange(k_max)[None, None, :] < jnp.arange(1, k_max + 1)[:, None, None]
  g_best = jnp.min(g, axis=-1)
  g_mean = jnp.sum(jnp.where(alive, g, 0.0), axis=-1) / kp[:, None]
  g_first = g[:, :, 0]
  g_match = jnp.any(alive & (r["gls_dec"] == r["gls_enc"][:, None, None]), axis=-1)
  # Baseline: decoders do not depend on K'; K' keeps the first K' of them.
  b = jnp.zeros((len(rates), k_max)).at[br_i, bk_i].set(mse[e1:])  # [R, k]
  b_best = jax.lax.cummin(b, axis=1).T  # [K', R]
  b_mean = (jnp.cumsum(b, axis=1) / kp[None, :]).T
  b_first = jnp.broadcast_to(b[:, 0][None, :], (k_max, len(rates)))
  b_match = jax.lax.cummax((r["bl_dec"] == r["bl_enc"]).astype(jnp.int32), axis=1).T > 0
  stack = lambda x, y: jnp.stack([x, y]).astype(jnp.float32)  # noqa: E731
  return {"mse_best": stack(g_best, b_best), "mse_mean": stack(g_mean, b_mean),
          "mse_first": stack(g_first, b_first), "match_prob": stack(g_match, b_match)}


def trial_outputs(tkey, index, state, images, *, graphdef, grid, capacities, num_decoders, max_bins,
                  rates, crop_size):
  """Per-trial measurements for every cell (the function mapped over test images).

  ``index`` is the test image's index in ``images`` (``uint8[n, 28, 28]``);
  ``state`` the model's parameters (``nnx.split``). Returns ``mse_best,
  mse_mean, mse_first, match_prob float32[G, 2, K, R]`` (``G`` indexes
  ``grid``, the scheme axis is :data:`SCHEME_NAMES`) and ``overflow bool[G]``.
  """
  model = nnx.merge(graphdef, state)
  image = images[index]
  outs = []
  for n, cap in zip(grid, capacities):
    r = trial_indices(tkey, image, model, num_codewords=n, num_decoders=num_decoders,
                      max_bins=max_bins, rates=rates, crop_size=crop_size, capacity=cap)
    m = _cell_metrics(model, r, rates, num_decoders)
    m["overflow"] = r["overflow"]
    outs.append(m)
  return {k: jnp.stack([o[k] for o in outs]) for k in outs[0]}


@functools.lru_cache(maxsize=32)
def trial_fn(graphdef, grid, capacities, num_decoders, max_bins, rates, crop_size):
  """The per-trial function for :func:`lcoupling.parallel.iterate_trials` (cached)."""
  return functools.partial(trial_outputs, graphdef=graphdef, grid=grid, capacities=capacities,
                           num_decoders=num_decoders, max_bins=max_bins, rates=rates,
                           crop_size=crop_size)


# --------------------------------------------------------------------------
# Data, training.
# --------------------------------------------------------------------------


def train_config(config, beta: float):
  """The :mod:`lcoupling.compression.train` config of one β."""
  import ml_collections  # noqa: PLC0415

  t = config.train.to_dict() if hasattr(config.train, "to_dict") else dict(config.train)
  t.update(beta=float(beta), crop_size=int(config.crop_size), checkpoint_dir=str(config.checkpoint_dir))
  return ml_collections.ConfigDict(t)


def train_workdir(config, beta: float) -> pathlib.Path:
  """``CHECKPOINT_DIR/NAME-seedS-IMPL-nTRAIN/beta=B``: one training directory per β.

  The directory name holds everything that changes the training besides the
  fields ``train`` itself checks (``model.json``): the run name, the seed, the
  PRNG implementation and the number of training images.
  """
  run = f"{config.name}-seed{config.seed}-{config.prng_impl}-n{config.num_train_images}"
  return pathlib.Path(config.checkpoint_dir) / run / f"beta={float(beta):g}"


def load_images(config, split: str) -> np.ndarray:
  """``uint8[n, 28, 28]``: the first ``config.num_{train,test}_images`` of ``split``."""
  n = int(config.num_train_images if split == "train" else config.num_test_images)
  spec = split if n == 0 else f"{split}[:{n}]"
  images, _ = data_lib.load_mnist(config.data_dir, spec, source=config.data_source)
  return images


def _trained(workdir: pathlib.Path, epochs: int) -> bool:
  return (workdir / "model.json").is_file() and (workdir / "checkpoints" / str(epochs)).is_dir()


def load_model(config, beta: float, *, key=None, train_if_missing: bool = False,
               progress: bool = False):
  """The trained VAE of ``beta`` (trains or resumes it if ``train_if_missing``).

  Returns ``(model, train_seconds)``; ``train_seconds`` is 0 when the final
  checkpoint already existed. Raises ``FileNotFoundError`` naming the
  directory and the command when it is missing and ``train_if_missing`` is false.
  """
  tcfg = train_config(config, beta)
  workdir = train_workdir(config, beta)
  epochs = int(tcfg.epochs)
  if _trained(workdir, epochs):
    return train_lib.load_trained(workdir, tcfg, epoch=epochs), 0.0
  if not train_if_missing:
    raise FileNotFoundError(
        f"{workdir}: no VAE trained for beta={beta:g}; run the study first "
        f"(python -m experiments.run --config configs/mnist.py[:quick] --workdir ...) with the "
        f"same config.checkpoint_dir, or pass --train")
  if key is None:
    key = jax.random.key(config.seed, impl=config.prng_impl)
  t0 = time.perf_counter()
  images = load_images(config, "train")
  model = train_lib.train(jax.random.fold_in(key, TRAIN_STREAM), tcfg, images, workdir,
                          progress=progress)
  return model, time.perf_counter() - t0


# --------------------------------------------------------------------------
# Evaluation.
# --------------------------------------------------------------------------


def _static(config, capacities=None):
  grid = tuple(int(n) for n in config.num_codewords_grid)
  max_bins = int(max(config.num_bins))
  caps = tuple(codec.bin_capacity(n, max_bins) for n in grid) if capacities is None else capacities
  return dict(grid=grid, capacities=caps, num_decoders=int(config.num_decoders), max_bins=max_bins,
              rates=tuple(int(r) for r in config.num_bins), crop_size=int(config.crop_size))


def evaluate(key, config, model, images, *, mesh=None, progress=None) -> dict:
  """Per-repeat means over the test images of every cell.

  Returns ``{metric: float64[repeats, G, 2, K, R]}`` for the metrics
  ``mse_best, mse_mean, mse_first, match_prob`` plus ``n`` (images). A trial
  whose labels overflow the padded bin layout (probability < 1e-20) is
  recomputed exactly with capacity ``N``.
  """
  graphdef, state = nnx.split(model)
  st = _static(config)
  fn = trial_fn(graphdef, **st)
  images = jnp.asarray(images)
  n = int(images.shape[0])
  chunk = int(config.chunk_size)
  per_repeat = {m: [] for m in _METRICS}
  for repeat in range(int(config.num_repeats)):
    rkey = jax.random.fold_in(jax.random.fold_in(key, EVAL_STREAM), repeat)
    sums, start = None, 0
    for out in parallel.iterate_trials(fn, rkey, n, chunk_size=chunk, mesh=mesh, args=(state, images)):
      if out["overflow"].any():
        out = {f: np.array(v) for f, v in out.items()}
        exact = trial_fn(graphdef, **{**st, "capacities": st["grid"]})
        for i in np.flatnonzero(out["overflow"].any(axis=1)):
          fix = next(parallel.iterate_trials(exact, rkey, 1, chunk_size=1, start=start + int(i),
                                             mesh=mesh, args=(state, images)))
          for f in _METRICS:
            out[f][i] = fix[f][0]
      part = {f: out[f].astype(np.float64).sum(0) for f in _METRICS}
      sums = part if sums is None else {f: sums[f] + part[f] for f in _METRICS}
      start += len(out["mse_best"])
      if progress is not None:
        progress(len(out["mse_best"]))
    for f in _METRICS:
      per_repeat[f].append(sums[f] / n)
  res = {f: np.stack(v) for f, v in per_repeat.items()}
  res["n"] = n
  return res


def encode_hex(x) -> str:
  """uint8 array -> hex string (row-major), the compact form stored in results.json."""
  return np.ascontiguousarray(np.asarray(x, np.uint8)).tobytes().hex()


def decode_hex(s: str, shape) -> np.ndarray:
  """Inverse of :func:`encode_hex`."""
  return np.frombuffer(bytes.fromhex(s), np.uint8).reshape(shape)


def _to_uint8(x):
  return np.clip(np.round((np.asarray(x, np.float64) + 1.0) * 127.5), 0, 255).astype(np.uint8)


@functools.partial(jax.jit, static_argnames=("graphdef", "num_codewords", "num_decoders", "max_bins",
                                             "rates", "crop_size", "capacity"))
def _example_batch(keys, images, state, *, graphdef, num_codewords, num_decoders, max_bins, rates,
                   crop_size, capacity):
  model = nnx.merge(graphdef, state)

  def one(k, im):
    r = trial_indices(k, im, model, num_codewords=num_codewords, num_decoders=num_decoders,
                      max_bins=max_bins, rates=rates, crop_size=crop_size, capacity=capacity)
    out = {}
    for name, dec, enc in (("gls", r["gls_dec"][num_decoders - 1, 0], r["gls_enc"][num_decoders - 1]),
                           ("baseline", r["bl_dec"][0], r["bl_enc"])):
      recon = vae_lib.reconstruct(model, r["codebook"][dec], r["crops"])  # [K, 28, 14]
      out[name] = dict(recon=recon, match=dec == enc,
                       mse=jnp.mean((recon - r["source"]) ** 2, axis=(-2, -1)))
    return out, r["overflow"]

  return jax.vmap(one)(keys, images)


def example_record(key, config, model, images, beta: float, *, candidates: int = 64) -> dict:
  """The Figure-3-like examples of one β (``kind = "examples"``), from repeat 0.

  Cell: ``N = config.fixed_num_codewords``, ``K = K_max``, ``L_max =
  config.example_num_bins``. Among the first ``candidates`` test images it takes
  up to ``num_examples // 2`` where some GLS decoder recovered the encoder's
  codeword (success) and fills up with failures, in index order. Images are
  stored as uint8 hex strings (:func:`encode_hex`).
  """
  ne = int(config.num_examples)
  m = min(int(candidates), int(images.shape[0]))
  k_max, n = int(config.num_decoders), int(config.fixed_num_codewords)
  rate = int(config.example_num_bins)
  graphdef, state = nnx.split(model)
  keys = jax.vmap(lambda i: trial_key(key, 0, i))(jnp.arange(m, dtype=jnp.uint32))
  kw = dict(graphdef=graphdef, num_codewords=n, num_decoders=k_max,
            max_bins=int(max(config.num_bins)), rates=(rate,), crop_size=int(config.crop_size))
  out, overflow = _example_batch(keys, jnp.asarray(images[:m]), state,
                                 capacity=codec.bin_capacity(n, int(max(config.num_bins))), **kw)
  if bool(np.any(overflow)):
    out, _ = _example_batch(keys, jnp.asarray(images[:m]), state, capacity=n, **kw)
  out = jax.tree.map(np.asarray, out)
  success = out["gls"]["match"].any(axis=1)
  good = [int(i) for i in np.flatnonzero(success)][: ne // 2]
  bad = [int(i) for i in np.flatnonzero(~success)][: ne - len(good)]
  chosen = sorted(good + bad)
  if len(chosen) < ne:
    chosen = sorted(set(chosen) | set(list(range(m))[: ne]))[:ne]
  crop = int(config.crop_size)
  ex = []
  for i in chosen:
    ck = jax.random.fold_in(trial_key(key, 0, i), CROP_SEED)
    offs = np.asarray(data_lib.crop_offsets(ck, jnp.zeros((k_max,), jnp.int32), jnp.arange(k_max),
                                            crop_size=crop))
    e = {"index": i, "image": encode_hex(images[i]), "crop_offsets": offs.tolist()}
    for s in SCHEME_NAMES:
      e[s] = {"recon": encode_hex(_to_uint8(out[s]["recon"][i])),
              "match": [bool(v) for v in out[s]["match"][i]],
              "mse": [round(float(v), 5) for v in out[s]["mse"][i]]}
    ex.append(e)
  return {"kind": "examples", "beta": float(beta), "N": n, "K": k_max, "L_max": rate,
          "crop_size": crop, "recon_shape": [k_max, 28, data_lib.SOURCE_WIDTH],
          "encoding": "uint8 hex, row-major; pixels p/255*2-1 in [-1, 1]", "examples": ex}


def zero_rate_outputs(tkey, index, state, images, *, graphdef, num_decoders, crop_size):
  """``float32[K]``: MSE of decoder ``k`` at the prior mean ``w = 0`` with its crop (one trial)."""
  model = nnx.merge(graphdef, state)
  source, crops, _ = trial_inputs(tkey, images[index], model, num_decoders=num_decoders,
                                  crop_size=crop_size)
  w = jnp.zeros((num_decoders, model.latent_dim), jnp.float32)
  recon = vae_lib.reconstruct(model, w, crops)  # [K, 28, 14]
  return jnp.mean((recon - source) ** 2, axis=(-2, -1))


@functools.lru_cache(maxsize=32)
def _zero_rate_fn(graphdef, num_decoders, crop_size):
  return functools.partial(zero_rate_outputs, graphdef=graphdef, num_decoders=num_decoders,
                           crop_size=crop_size)


def reference_record(key, config, model, images, train_mean, beta: float, *, mesh=None) -> dict:
  r"""Zero-rate references of one β (``kind = "reference"``), on repeat 0's crops.

  * ``mse_mean_image``: every decoder outputs the mean training right half
    ``train_mean`` (``float[28, 14]`` in ``[-1, 1]``): what a decoder achieves
    with neither bits nor side information.
  * ``mse_zero_rate[K'-1]``: best over the first ``K'`` decoders of
    :math:`\lVert g(0, t_k) - a \rVert^2 / 392`, the decoder at the prior
    mean ``w = 0`` -- its side information alone, no message. ``K' = 1`` is
    decoder 1. Trials are those of :func:`evaluate`'s repeat 0 (same keys,
    same crops).

  A codec whose MSE at a rate exceeds these is worse than sending nothing.
  """
  graphdef, state = nnx.split(model)
  n = int(images.shape[0])
  fn = _zero_rate_fn(graphdef, int(config.num_decoders), int(config.crop_size))
  rkey = jax.random.fold_in(jax.random.fold_in(key, EVAL_STREAM), 0)  # repeat 0: trial_key(key, 0, i)
  per = parallel.map_trials(fn, rkey, n, chunk_size=int(config.chunk_size), mesh=mesh,
                            args=(state, jnp.asarray(images)))  # [n, K]
  best = np.minimum.accumulate(np.asarray(per, np.float64), axis=1)  # best of the first K' decoders
  zero_rate = [common.mean_sem(best[:, k]) for k in range(best.shape[1])]
  source = np.asarray(data_lib.to_unit_range(jnp.asarray(images)[:, :, data_lib.SOURCE_WIDTH:]),
                      np.float64)
  mean_image = float(np.mean((source - np.asarray(train_mean, np.float64)[None]) ** 2))
  return {"kind": "reference", "beta": float(beta), "num_test_images": n,
          "mse_mean_image": mean_image,
          "mse_zero_rate": [m for m, _ in zero_rate],
          "mse_zero_rate_sem": [e for _, e in zero_rate]}


def train_mean_source(config) -> np.ndarray:
  """``float64[28, 14]``: the mean right half of the training images, in ``[-1, 1]``."""
  images = load_images(config, "train")
  return np.asarray(data_lib.to_unit_range(jnp.asarray(images[:, :, data_lib.SOURCE_WIDTH:])),
                    np.float64).mean(0)


# --------------------------------------------------------------------------
# The study interface.
# --------------------------------------------------------------------------


def _need(cond, msg):
  if not cond:
    raise ValueError(msg)


def _is_int(v):
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v):
  return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def validate(config) -> None:
  """Raises ``ValueError`` naming the config field for any bad value."""
  for f in ("data_dir", "checkpoint_dir"):
    _need(isinstance(config.get(f), str) and config.get(f),
          f"config.{f} must be a non-empty string, got {config.get(f)!r}")
  _need(config.get("data_source") in data_lib.DATA_SOURCES,
        f"config.data_source must be one of {data_lib.DATA_SOURCES}, got {config.get('data_source')!r}")
  for f, hi in (("num_train_images", 60_000), ("num_test_images", 10_000)):
    v = config.get(f)
    _need(_is_int(v) and 0 <= v <= hi, f"config.{f} must be an int in 0..{hi} (0 = all), got {v!r}")
  c = config.get("crop_size")
  _need(_is_int(c) and 1 <= c <= data_lib.SOURCE_WIDTH,
        f"config.crop_size must be an int in 1..{data_lib.SOURCE_WIDTH}, got {c!r}")
  betas = tuple(config.get("betas") or ())
  _need(len(betas) >= 1, "config.betas must not be empty")
  for b in betas:
    _need(_is_num(b) and math.isfinite(b) and b >= 0, f"config.betas: values must be finite and >= 0, got {b!r}")
  _need(len(set(betas)) == len(betas), f"config.betas has duplicates: {betas}")
  grid = tuple(config.get("num_codewords_grid") or ())
  _need(len(grid) >= 1, "config.num_codewords_grid (N values) must not be empty")
  for n in grid:
    _need(_is_int(n) and n >= 1, f"config.num_codewords_grid: every N must be an int >= 1, got {n!r}")
  _need(len(set(grid)) == len(grid), f"config.num_codewords_grid has duplicates: {grid}")
  rates = tuple(config.get("num_bins") or ())
  _need(len(rates) >= 1, "config.num_bins (L_max values) must not be empty")
  for r in rates:
    _need(codec._is_power_of_two(r) and r >= 2,
          f"config.num_bins: every L_max must be a power of two >= 2, got {r!r}")
  _need(len(set(rates)) == len(rates), f"config.num_bins has duplicates: {rates}")
  _need(max(rates) <= 2**16, f"config.num_bins: L_max at most 2**16, got {max(rates)}")
  for f in ("num_decoders", "num_repeats", "chunk_size"):
    v = config.get(f)
    _need(_is_int(v) and v >= 1, f"config.{f} must be an int >= 1, got {v!r}")
  _need(_is_int(config.get("num_examples")) and config.num_examples >= 0,
        f"config.num_examples must be an int >= 0, got {config.get('num_examples')!r}")
  _need(config.get("example_num_bins") in rates,
        f"config.example_num_bins must be one of config.num_bins {rates}, got "
        f"{config.get('example_num_bins')!r}")
  _need(config.get("fixed_num_codewords") in grid,
        f"config.fixed_num_codewords must be in config.num_codewords_grid {grid}, got "
        f"{config.get('fixed_num_codewords')!r}")
  _need(config.get("fixed_beta") in betas,
        f"config.fixed_beta must be in config.betas {betas}, got {config.get('fixed_beta')!r}")
  _need(config.prng_impl in ("threefry2x32", "rbg", "unsafe_rbg"),
        f"config.prng_impl must be threefry2x32, rbg or unsafe_rbg, got {config.prng_impl!r}")
  _need("train" in config, "config.train (the VAE training fields) is required")
  try:
    train_lib.validate_config(train_config(config, betas[0]))
  except TypeError as e:
    raise ValueError(str(e).replace("config.", "config.train.", 1)) from e
  except ValueError as e:
    msg = str(e)
    if msg.startswith("config.") and not msg.startswith(("config.crop_size", "config.beta")):
      msg = "config.train." + msg[len("config."):]
    raise ValueError(msg) from e


def run_point(key, config, point, *, mesh=None, progress=False):
  """One β: train (or resume / load) its VAE, then evaluate every cell on the test images.

  ``point = {"beta": b}``. Returns ``kind = "cell"`` records (one per ``(N,
  scheme, K, L_max)`` with per-repeat means ``*_repeats``), one ``"training"``
  record (per-epoch metrics), one ``"reference"`` record (zero-rate MSEs,
  :func:`reference_record`) and one ``"examples"`` record.
  """
  validate(config)
  beta = float(point["beta"])
  _need(math.isfinite(beta) and beta >= 0, f"sweep point beta must be finite and >= 0, got {beta!r}")
  t0 = time.perf_counter()
  model, train_seconds = load_model(config, beta, key=key, train_if_missing=True, progress=progress)
  images = load_images(config, "test")
  n = int(images.shape[0])
  reps = int(config.num_repeats)
  bar = parallel.progress_bar(n * reps, f"mnist beta={beta:g} eval", enabled=bool(progress))
  t1 = time.perf_counter()
  ev = evaluate(key, config, model, images, mesh=mesh, progress=bar.update)
  bar.close()
  t2 = time.perf_counter()
  records = []
  grid = [int(x) for x in config.num_codewords_grid]
  rates = [int(r) for r in config.num_bins]
  for gi, nc in enumerate(grid):
    for si, scheme in enumerate(SCHEME_NAMES):
      for ki in range(int(config.num_decoders)):
        for ri, lm in enumerate(rates):
          rec = {"kind": "cell", "beta": beta, "N": nc, "scheme": scheme, "K": ki + 1, "L_max": lm,
                 "rate_bits": math.log2(lm), "num_test_images": n, "num_repeats": reps}
          for f in _METRICS:
            rec[f + "_repeats"] = [float(v) for v in ev[f][:, gi, si, ki, ri]]
          records.append(rec)
  metrics_path = train_workdir(config, beta) / "metrics.jsonl"
  from lcoupling import results as results_lib  # noqa: PLC0415
  epochs, _ = results_lib.read_jsonl(metrics_path)
  epochs = sorted({int(e["epoch"]): e for e in epochs}.values(), key=lambda e: e["epoch"])
  train_rec = {"kind": "training", "beta": beta, "epoch": [int(e["epoch"]) + 1 for e in epochs]}
  for f in ("loss", "vae", "mse", "kl", "est_bce", "est_acc", "seconds"):
    train_rec[f] = [float(e[f]) if e.get(f) is not None else None for e in epochs]
  train_rec.update(train_seconds=train_seconds, eval_seconds=t2 - t1,
                   load_seconds=t1 - t0 - train_seconds,
                   trials_per_second=n * reps / max(t2 - t1, 1e-9),
                   num_train_images=int(config.num_train_images) or 60_000)
  records.append(train_rec)
  records.append(reference_record(key, config, model, images, train_mean_source(config), beta,
                                  mesh=mesh))
  if int(config.num_examples) > 0:
    records.append(example_record(key, config, model, images, beta))
  return records


def _select_key(r):
  return (r["mse_best"], r["N"], r["beta"])


def summarize(config, point_records):
  """Mean ± SEM over repeats per ``(β, N, scheme, K, L_max)``, the per-cell selection.

  ``selected`` marks, per ``(scheme, K, L_max)``, the ``(N, β)`` with the lowest
  best-of-K MSE (ties: smaller ``N``, then smaller β); ``fixed_slice`` marks
  ``N = config.fixed_num_codewords, β = config.fixed_beta``. The training and
  example records pass through unchanged.
  """
  cells, extra = [], []
  for recs in point_records:
    for r in recs:
      (cells if r.get("kind", "cell") == "cell" else extra).append(r)
  out = []
  for r in cells:
    rec = {k: r[k] for k in ("kind", "scheme", "K", "L_max", "rate_bits", "N", "beta")}
    for f in _METRICS:
      v = np.asarray(r[f + "_repeats"], np.float64)
      rec[f], rec[f + "_sem"] = common.mean_sem(v)
    rec["num_repeats"] = r["num_repeats"]
    rec["num_test_images"] = r["num_test_images"]
    rec["fixed_slice"] = bool(r["N"] == config.fixed_num_codewords
                              and float(r["beta"]) == float(config.fixed_beta))
    rec["selected"] = False
    if r["K"] == 1 and r["L_max"] in PAPER_MSE_K1:
      rec["paper_mse_k1"] = PAPER_MSE_K1[r["L_max"]]
    out.append(rec)
  groups: dict = {}
  for rec in out:
    groups.setdefault((rec["scheme"], rec["K"], rec["L_max"]), []).append(rec)
  for rs in groups.values():
    min(rs, key=_select_key)["selected"] = True
  out.sort(key=lambda r: (SCHEME_NAMES.index(r["scheme"]), r["K"], r["L_max"], r["N"], r["beta"]))
  extra.sort(key=lambda r: (r["kind"], r["beta"]))
  return out + extra


# --------------------------------------------------------------------------
# Figures and tables (from results.json only).
# --------------------------------------------------------------------------


def _cells(recs, which="selected"):
  cells = [r for r in recs if r.get("kind", "cell") == "cell"]
  if which == "selected":
    return [r for r in cells if r.get("selected")]
  if which == "fixed":
    return [r for r in cells if r.get("fixed_slice")]
  raise ValueError(f"which must be 'selected' or 'fixed', got {which!r}")


def plot(results, figdir):
  """R-D curves, per-decoder curves, example reconstructions, training curves."""
  import matplotlib.ticker  # noqa: PLC0415

  plt = plotting.pyplot()

  recs = common.records(results)
  figdir = pathlib.Path(figdir)
  figdir.mkdir(parents=True, exist_ok=True)
  cells = [r for r in recs if r.get("kind", "cell") == "cell"]
  ks = sorted({r["K"] for r in cells})
  paths = []
  fixed = [r for r in cells if r.get("fixed_slice")]
  fixed_lbl = (f"N={fixed[0]['N']}, β={fixed[0]['beta']:g}" if fixed else "fixed slice")
  styles = (("gls", "o-", "C0", "GLS"), ("baseline", "^--", "C3", "baseline"))
  refs = [r for r in recs if r.get("kind") == "reference"]

  rows = [("mse_best", "selected", "best-of-K MSE\n(selected N, β)"),
          ("mse_best", "fixed", f"best-of-K MSE\n({fixed_lbl})"),
          ("match_prob", "selected", "matching probability\n(selected N, β)")]
  fig, axes = plt.subplots(len(rows), len(ks), figsize=(3.3 * len(ks), 2.7 * len(rows)),
                           squeeze=False, sharex=True)
  for i, (field, which, ylabel) in enumerate(rows):
    sub = _cells(recs, which)
    for j, k in enumerate(ks):
      ax = axes[i][j]
      for scheme, fmt, color, label in styles:
        x, y, e = common.rate_series(sub, scheme, k, field)
        ax.errorbar(x, y, yerr=e, fmt=fmt, color=color, ms=4, capsize=2, label=label)
      if field == "mse_best":
        _reference_lines(ax, refs, k, fixed[0]["beta"] if which == "fixed" and fixed else None)
      if field == "mse_best" and k == 1 and which == "selected":
        ax.plot([math.log2(l) for l in PAPER_MSE_K1], list(PAPER_MSE_K1.values()), "k+", ms=9,
                label="paper K=1")
      if i == 0:
        ax.set_title(f"K = {k}")
      if i == len(rows) - 1:
        ax.set_xlabel("rate (bits)")
      if j == 0:
        ax.set_ylabel(ylabel, fontsize=8)
      ax.grid(alpha=0.3)
      if j == 0:
        ax.legend(fontsize=6)
  fig.suptitle("MNIST right half, K decoders with different left-half crops", fontsize=10)
  fig.tight_layout()
  paths += plotting.save(fig, figdir / "mnist_rd")

  rows = [("mse_mean", "MSE, mean over the K decoders"), ("mse_first", "MSE, decoder 1")]
  sub = _cells(recs, "selected")
  fig, axes = plt.subplots(1, len(rows), figsize=(9, 3.5), squeeze=False)
  for j, (field, title) in enumerate(rows):
    ax = axes[0][j]
    for i, k in enumerate(ks):
      for scheme, fmt, _, label in styles:
        x, y, e = common.rate_series(sub, scheme, k, field)
        ax.errorbar(x, y, yerr=e, fmt=fmt, color=f"C{i}", ms=4, capsize=2,
                    label=f"{'GLS' if scheme == 'gls' else 'BL'} K={k}")
    ax.set_title(title + " (selected N, β)", fontsize=9)
    ax.set_xlabel("rate (bits)")
    ax.set_ylabel("MSE per pixel")
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=6, ncol=2)
  fig.tight_layout()
  paths += plotting.save(fig, figdir / "mnist_rd_decoders")

  ex_recs = [r for r in recs if r.get("kind") == "examples"]
  if ex_recs:
    fixed_beta = fixed[0]["beta"] if fixed else None
    ex = next((r for r in ex_recs if r["beta"] == fixed_beta), ex_recs[0])
    paths += _plot_examples(plt, ex, figdir)

  tr = [r for r in recs if r.get("kind") == "training"]
  if tr:
    fields = [("loss", "total loss"), ("mse", "train MSE per pixel"), ("kl", "KL (nats)"),
              ("est_acc", "estimator accuracy")]
    fig, axes = plt.subplots(1, len(fields), figsize=(3.2 * len(fields), 3.0), squeeze=False)
    for ax, (f, title) in zip(axes[0], fields):
      for i, r in enumerate(sorted(tr, key=lambda r: r["beta"])):
        y = np.array([np.nan if v is None else v for v in r.get(f, [])], float)
        ax.plot(r["epoch"], y, "o-", ms=3, color=f"C{i}", label=f"β={r['beta']:g}")
      ax.set_title(title, fontsize=9)
      ax.set_xlabel("epoch")
      ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
      ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    paths += plotting.save(fig, figdir / "mnist_training")
  return paths


def _reference_lines(ax, refs, k, beta=None):
  """Zero-rate references: the mean training image, and w = 0 (best β, or ``beta``)."""
  if not refs:
    return
  ax.axhline(refs[0]["mse_mean_image"], color="0.5", ls=":", lw=1, label="mean image (0 bits)")
  zr = [r["mse_zero_rate"][k - 1] for r in refs
        if len(r["mse_zero_rate"]) >= k and (beta is None or r["beta"] == beta)]
  if zr:
    ax.axhline(min(zr), color="0.3", ls="-.", lw=1, label="w = 0: side info only")


def reference_table(results) -> str:
  """Markdown table of the zero-rate references per β (:func:`reference_record`)."""
  refs = sorted((r for r in common.records(results) if r.get("kind") == "reference"),
                key=lambda r: r["beta"])
  if not refs:
    return ""
  k_max = max(len(r["mse_zero_rate"]) for r in refs)
  head = ["β", "mean image"] + [f"w = 0, best of K={k}" for k in range(1, k_max + 1)]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in refs:
    sem = r.get("mse_zero_rate_sem") or [None] * k_max
    lines.append("| " + " | ".join([f"{r['beta']:g}", f"{r['mse_mean_image']:.4f}"] + [
        common.fmt_mean_sem(v, e, 4) for v, e in zip(r["mse_zero_rate"], sem)]) + " |")
  return "\n".join(lines)


def _plot_examples(plt, ex, figdir):
  """Figure-3-like grid: per example a side-information row, a GLS row and a baseline row."""
  k = int(ex["K"])
  c = int(ex["crop_size"])
  shape = tuple(ex["recon_shape"])
  items = ex["examples"]
  blocks = 2 if len(items) > 1 else 1
  per_block = -(-len(items) // blocks)
  nrow, ncol = 3 * per_block, blocks * (k + 1)
  fig, axes = plt.subplots(nrow, ncol, figsize=(0.95 * ncol + 0.6, 1.3 * nrow), squeeze=False)
  for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_frame_on(False)
  for n, e in enumerate(items):
    blk, pos = divmod(n, per_block)
    rows = axes[3 * pos:3 * pos + 3, blk * (k + 1):(blk + 1) * (k + 1)]
    image = decode_hex(e["image"], (28, 28))
    rows[0][0].imshow(image, cmap="gray", vmin=0, vmax=255)
    rows[0][0].axvline(13.5, color="w", lw=0.6, ls=":")
    rows[0][0].set_ylabel(f"test #{e['index']}", fontsize=7)
    rows[1][0].imshow(image[:, 14:], cmap="gray", vmin=0, vmax=255)
    rows[1][0].set_ylabel("source", fontsize=7)
    for kk, (r0, c0) in enumerate(e["crop_offsets"]):
      ax = rows[0][1 + kk]
      ax.imshow(image[r0:r0 + c, c0:c0 + c], cmap="gray", vmin=0, vmax=255)
      ax.set_title(f"T{kk + 1} @({r0},{c0})", fontsize=6, pad=1)
    for s, scheme in enumerate(SCHEME_NAMES):
      rec = e[scheme]
      recon = decode_hex(rec["recon"], shape)
      for kk in range(k):
        ax = rows[1 + s][1 + kk]
        ax.imshow(recon[kk], cmap="gray", vmin=0, vmax=255)
        ok = rec["match"][kk]
        color = "tab:green" if ok else "tab:red"
        ax.set_frame_on(True)
        for sp in ax.spines.values():
          sp.set_edgecolor(color)
          sp.set_linewidth(2.0)
        ax.set_title(f"{'ok' if ok else 'miss'} {rec['mse'][kk]:.3f}", fontsize=6, pad=1, color=color)
      rows[1 + s][1].set_ylabel("GLS" if scheme == "gls" else "BL", fontsize=7)
    rows[2][0].text(0.5, 0.5, f"best\nGLS {min(e['gls']['mse']):.3f}\nBL {min(e['baseline']['mse']):.3f}",
                    ha="center", va="center", fontsize=6, transform=rows[2][0].transAxes)
  fig.suptitle(f"β={ex['beta']:g}, N={ex['N']}, K={k}, L_max={ex['L_max']}: row 1 image and the K "
               f"decoders' side information T_k ({c}x{c} crops of the left half); rows 2-3 decoder k's "
               f"reconstruction (GLS, baseline); green = recovered the encoder's codeword, number = MSE",
               fontsize=6.5, wrap=True)
  fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=0.4, w_pad=0.2)
  paths = plotting.save(fig, figdir / "mnist_examples")
  return paths


def markdown_table(results, field: str = "mse_best", which: str = "selected") -> str:
  """Markdown table of ``field`` per ``L_max`` (rows) and scheme × K (columns).

  ``which``: ``"selected"`` (the per-cell (N, β), shown under each value) or
  ``"fixed"`` (the fixed slice). The first data column is the paper's K = 1 MSE
  (for ``field = "mse_best"``).
  """
  digits = 3 if field.startswith("match") else 4
  annotate = (lambda r: f" (N={r['N']}, β={r['beta']:g})") if which == "selected" else None
  return common.rate_table(_cells(common.records(results), which), field, schemes=SCHEME_NAMES,
                           digits=digits, anchor=PAPER_MSE_K1 if field == "mse_best" else None,
                           annotate=annotate)


def main(argv=None):
  """``python -m lcoupling.studies.mnist WORKDIR_OR_RESULTS_JSON [FIELD ...]``."""
  from lcoupling import results as results_io  # noqa: PLC0415

  argv = sys.argv[1:] if argv is None else argv
  if not argv:
    print(main.__doc__)
    return 2
  res = results_io.load_results(argv[0])
  for field in argv[1:] or ["mse_best", "match_prob"]:
    for which in ("selected", "fixed"):
      print(f"\n{field} ({which}):\n")
      print(markdown_table(res, field, which))
  ref = reference_table(res)
  if ref:
    print("\nzero-rate references (MSE per source pixel, no message):\n")
    print(ref)
  tr = [r for r in res["records"] if r.get("kind") == "training"]
  if tr:
    print("\ntraining / evaluation time per beta:")
    for r in tr:
      print(f"  beta={r['beta']:g}: train {r['train_seconds']:.0f} s, eval {r['eval_seconds']:.0f} s "
            f"({r['trials_per_second']:.1f} images x repeats / s)")
  meta = res.get("meta", {})
  if meta.get("wall_seconds") is not None:
    print(f"\nwall time of the run: {meta['wall_seconds']:.0f} s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
