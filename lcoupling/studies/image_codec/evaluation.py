# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Evaluation of the image compression study: one trial, the Monte-Carlo over test images, references.

One trial is one test image and every cell (docs/method.md §5.3): for every
``N`` of the grid it draws the codec's shared randomness from ONE seed (as
:func:`lcoupling.compression.shared_randomness` does for ``CodecSpec(N, K_max,
L, sample_prior=latent_prior)``), the ``K_max`` side crops, and evaluates both
schemes, every ``K' <= K_max`` and every rate with the codec's nested kernel
(:func:`lcoupling.compression.nested_decisions`). The decisions equal the
codec's :func:`~lcoupling.compression.encoder_index` /
:func:`~lcoupling.compression.decoder_index` run cell by cell with the same
seed (``tests/test_image_codec.py`` checks it).

Keys (every one a ``fold_in`` of the study key): repeat ``r`` and test image
``i`` use the trial key ``fold_in(fold_in(fold_in(key, 1), r), i)``
(:func:`trial_key`); inside a trial ``fold_in(trial_key, 0)`` is the codec's
shared seed and ``fold_in(trial_key, 1)`` the crop key (crop ``k`` from
``fold_in(fold_in(crop_key, 0), k)``). The evaluation randomness does not
depend on β, so every β sees the same codebooks and crops.

Squared errors are computed per trial on the model's ``[-1, 1]`` pixels; the
study reports them on ``[0, 1]`` pixels (the paper's scale), which is exactly a
quarter (:func:`lcoupling.data.to_zero_one`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lcoupling import data as data_lib
from lcoupling import parallel
from lcoupling.compression import codec
from lcoupling.compression import vae as vae_lib
from lcoupling.studies import common

__all__ = [
    "SCHEME_NAMES",
    "EVAL_STREAM",
    "CODEC_SEED",
    "CROP_SEED",
    "METRICS",
    "PM1_TO_01",
    "latent_prior",
    "codec_spec",
    "trial_key",
    "trial_inputs",
    "trial_indices",
    "trial_outputs",
    "trial_fn",
    "evaluate",
    "example_record",
    "reference_record",
    "zero_rate_outputs",
    "encode_hex",
    "decode_hex",
]

#: Output order of the scheme axis.
SCHEME_NAMES = ("gls", "baseline")
#: ``fold_in`` stream of the study key for the evaluation (0 trains the VAEs).
EVAL_STREAM = 1
#: ``fold_in`` streams of a trial key.
CODEC_SEED, CROP_SEED = 0, 1
#: Per-trial metrics of every cell.
METRICS = ("mse_best", "mse_mean", "mse_first", "match_prob")
#: A squared error on ``[0, 1]`` pixels is this times the same error on ``[-1, 1]`` (exact).
PM1_TO_01 = 0.25


def latent_prior(key: jax.Array, num_codewords: int, dim: int = 4) -> jax.Array:
  """``p_W = N(0, I_dim)``: ``float32[N, dim]`` codewords (a codec ``sample_prior``)."""
  return jax.random.normal(key, (num_codewords, dim), jnp.float32)


def codec_spec(num_codewords: int, num_decoders: int, max_bins: int, scheme: str = "gls",
               latent_dim: int = 4) -> codec.CodecSpec:
  """The :class:`~lcoupling.compression.CodecSpec` of this study (latent prior ``N(0, I)``)."""
  prior = functools.partial(latent_prior, dim=int(latent_dim))
  return codec.CodecSpec(int(num_codewords), int(num_decoders), int(max_bins), scheme, prior)


def trial_key(key: jax.Array, repeat: int, index: int) -> jax.Array:
  """Key of test image ``index`` in repeat ``repeat``: ``fold_in(fold_in(fold_in(key, 1), r), i)``."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, EVAL_STREAM), repeat), index)


def _repeat_key(key, repeat):
  return jax.random.fold_in(jax.random.fold_in(key, EVAL_STREAM), repeat)


def _sq_axes(x):
  return tuple(range(1, x.ndim))


# --------------------------------------------------------------------------
# One trial.
# --------------------------------------------------------------------------


def trial_inputs(tkey, image, model, *, num_decoders, crop_size):
  """``(source, crops [K, c, c(, C)], posterior [2, d])`` of one trial (test image ``image``).

  ``image`` is ``uint8[H, W(, C)]``; the source is its right half in ``[-1, 1]``.
  """
  source = data_lib.source_of(image[None])[0]
  crops = data_lib.side_crops(jax.random.fold_in(tkey, CROP_SEED), image[None],
                              jnp.zeros((1,), jnp.int32), crop_size=crop_size,
                              num_decoders=num_decoders)[0]
  mean, logvar = vae_lib.encode_posterior(model, source[None])
  return source, crops, jnp.stack([mean[0], logvar[0]])


def trial_indices(tkey, image, model, *, num_codewords, num_decoders, max_bins, rates, crop_size,
                  capacity):
  """Codec decisions of one trial at one ``N`` for both schemes, every ``K'`` and rate.

  Args:
    tkey: the trial key (:func:`trial_key`).
    image: ``uint8[H, W(, C)]`` test image.
    model: a :class:`~lcoupling.compression.vae.SourceCoder`.
    num_codewords, num_decoders, max_bins, rates, crop_size: static sizes
      (``num_decoders`` is ``K_max``).
    capacity: width of the padded bin layout
      (:func:`lcoupling.compression.bin_capacity`).

  Returns:
    A dict: ``gls_enc int32[K']`` (encoder index for ``K' = 1..K``),
    ``gls_dec int32[K', R, k]``, ``bl_enc int32[]``, ``bl_dec int32[R, k]``,
    ``codebook [N, d]``, ``source``, ``crops [K, ...]``, ``overflow bool[]``.
  """
  source, crops, posterior = trial_inputs(tkey, image, model, num_decoders=num_decoders,
                                           crop_size=crop_size)
  spec = codec_spec(num_codewords, num_decoders, max_bins, "gls", model.latent_dim)
  shared = codec.shared_randomness(jax.random.fold_in(tkey, CODEC_SEED), spec)
  layout = codec.race_layout(shared.log_times, shared.counts, capacity)
  lam = vae_lib.posterior_log_weights(shared.codebook, posterior)
  mu = jax.vmap(lambda t: vae_lib.codebook_log_density_ratio(model, shared.codebook, t))(crops)
  r = codec.nested_decisions(layout, lam, mu[:, layout.index], rates)
  return dict(gls_enc=r.gls_encoder, gls_dec=r.gls_decoder, bl_enc=r.baseline_encoder,
              bl_dec=r.baseline_decoder, codebook=shared.codebook, source=source, crops=crops,
              overflow=layout.overflow)


@functools.lru_cache(maxsize=16)
def _entries(k_max, num_rates):
  """Static (K'-1, rate, k) of the live GLS decoders and (rate, k) of the baseline's."""
  gls = np.array([(kp, r, k) for kp in range(k_max) for r in range(num_rates) for k in range(kp + 1)],
                 np.int32).reshape(-1, 3)
  bl = np.array([(r, k) for r in range(num_rates) for k in range(k_max)], np.int32).reshape(-1, 2)
  return gls, bl


def _cell_metrics(model, r, rates, k_max):
  """``[2, K', R]`` best / mean / first squared error (``[-1, 1]`` pixels) and match of one trial."""
  gls_e, bl_e = _entries(k_max, len(rates))
  kp_i, r_i, k_i = (jnp.asarray(gls_e[:, j]) for j in range(3))
  br_i, bk_i = jnp.asarray(bl_e[:, 0]), jnp.asarray(bl_e[:, 1])
  idx = jnp.concatenate([r["gls_dec"][kp_i, r_i, k_i], r["bl_dec"][br_i, bk_i]])
  dec_k = jnp.concatenate([k_i, bk_i])
  recon = vae_lib.reconstruct(model, r["codebook"][idx], r["crops"][dec_k])  # [E, *source_shape]
  mse = jnp.mean((recon - r["source"]) ** 2, axis=_sq_axes(recon))
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

  ``index`` is the test image's index in ``images`` (``uint8[n, H, W(, C)]``);
  ``state`` the model's parameters (``nnx.split``). Returns ``mse_best,
  mse_mean, mse_first`` (squared errors per source value on ``[-1, 1]``
  pixels), ``match_prob``, each ``float32[G, 2, K, R]`` (``G`` indexes ``grid``,
  the scheme axis is :data:`SCHEME_NAMES`), and ``overflow bool[G]``.
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


def _static(config):
  grid = tuple(int(n) for n in config.num_codewords_grid)
  max_bins = int(max(config.num_bins))
  caps = tuple(codec.bin_capacity(n, max_bins) for n in grid)
  return dict(grid=grid, capacities=caps, num_decoders=int(config.num_decoders), max_bins=max_bins,
              rates=tuple(int(r) for r in config.num_bins), crop_size=int(config.crop_size))


def evaluate(key, config, model, images, *, mesh=None, progress=None) -> dict:
  """Per-repeat means over the test images of every cell.

  Returns ``{metric: float64[repeats, G, 2, K, R]}`` for :data:`METRICS`
  (squared errors on ``[-1, 1]`` pixels) plus ``n`` (images). Trials are
  mapped in chunks of ``config.chunk_size`` images, sharded over the devices
  of ``mesh`` (:func:`lcoupling.compression.iterate_trials_exact`: a trial
  whose labels overflow the padded bin layout, probability < 1e-20, is
  recomputed exactly).
  """
  graphdef, state = nnx.split(model)
  st = _static(config)
  images = jnp.asarray(images)
  n = int(images.shape[0])
  fn_at = lambda exact: trial_fn(graphdef, **(dict(st, capacities=st["grid"]) if exact else st))  # noqa: E731
  per_repeat = {m: [] for m in METRICS}
  for repeat in range(int(config.num_repeats)):
    sums = None
    for out in codec.iterate_trials_exact(fn_at, _repeat_key(key, repeat), n,
                                          chunk_size=int(config.chunk_size), mesh=mesh,
                                          args=(state, images)):
      part = {f: out[f].astype(np.float64).sum(0) for f in METRICS}
      sums = part if sums is None else {f: sums[f] + part[f] for f in METRICS}
      if progress is not None:
        progress(len(out["mse_best"]))
    for f in METRICS:
      per_repeat[f].append(sums[f] / n)
  res = {f: np.stack(v) for f, v in per_repeat.items()}
  res["n"] = n
  return res


# --------------------------------------------------------------------------
# Examples (Figure-3-like reconstructions).
# --------------------------------------------------------------------------


def encode_hex(x) -> str:
  """uint8 array -> hex string (row-major), the compact form stored in results.json."""
  return np.ascontiguousarray(np.asarray(x, np.uint8)).tobytes().hex()


def decode_hex(s: str, shape) -> np.ndarray:
  """Inverse of :func:`encode_hex`."""
  return np.frombuffer(bytes.fromhex(s), np.uint8).reshape(shape)


def _to_uint8(x):
  return np.clip(np.round((np.asarray(x, np.float64) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def example_outputs(tkey, index, state, images, *, graphdef, num_codewords, num_decoders, max_bins,
                    rates, crop_size, capacity):
  """Reconstructions of the ``K_max`` decoders of both schemes at one cell (one trial)."""
  model = nnx.merge(graphdef, state)
  r = trial_indices(tkey, images[index], model, num_codewords=num_codewords,
                    num_decoders=num_decoders, max_bins=max_bins, rates=rates, crop_size=crop_size,
                    capacity=capacity)
  out = {"overflow": r["overflow"]}
  for name, dec, enc in (("gls", r["gls_dec"][num_decoders - 1, 0], r["gls_enc"][num_decoders - 1]),
                         ("baseline", r["bl_dec"][0], r["bl_enc"])):
    recon = vae_lib.reconstruct(model, r["codebook"][dec], r["crops"])  # [K, *source_shape]
    out[name + "_recon"] = recon
    out[name + "_match"] = dec == enc
    out[name + "_mse"] = jnp.mean((recon - r["source"]) ** 2, axis=_sq_axes(recon))
  return out


@functools.lru_cache(maxsize=16)
def _example_fn(graphdef, num_codewords, num_decoders, max_bins, rates, crop_size, capacity):
  return functools.partial(example_outputs, graphdef=graphdef, num_codewords=num_codewords,
                           num_decoders=num_decoders, max_bins=max_bins, rates=rates,
                           crop_size=crop_size, capacity=capacity)


def example_record(key, config, model, images, beta: float, *, candidates: int = 64,
                   mesh=None) -> dict:
  """The Figure-3-like examples of one β (``kind = "examples"``), from repeat 0.

  Cell: ``N = config.fixed_num_codewords``, ``K = K_max``, ``L_max =
  config.example_num_bins``. Among the first ``candidates`` test images it takes
  up to ``num_examples // 2`` where some GLS decoder recovered the encoder's
  codeword (success) and fills up with failures, in index order. Images are
  stored as uint8 hex strings (:func:`encode_hex`); ``mse`` is on ``[0, 1]``
  pixels, ``mse_pm1`` on ``[-1, 1]``.
  """
  ne = int(config.num_examples)
  m = min(int(candidates), int(images.shape[0]))
  k_max, n = int(config.num_decoders), int(config.fixed_num_codewords)
  rate, max_bins = int(config.example_num_bins), int(max(config.num_bins))
  graphdef, state = nnx.split(model)
  fn_at = lambda exact: _example_fn(graphdef, n, k_max, max_bins, (rate,), int(config.crop_size),  # noqa: E731
                                    n if exact else codec.bin_capacity(n, max_bins))
  out = next(codec.iterate_trials_exact(fn_at, _repeat_key(key, 0), m, chunk_size=m, mesh=mesh,
                                        args=(state, jnp.asarray(images[:m]))))
  success = out["gls_match"].any(axis=1)
  good = [int(i) for i in np.flatnonzero(success)][: ne // 2]
  bad = [int(i) for i in np.flatnonzero(~success)][: ne - len(good)]
  chosen = sorted(good + bad)
  if len(chosen) < ne:
    chosen = sorted(set(chosen) | set(list(range(m))[: ne]))[:ne]
  crop = int(config.crop_size)
  geometry = data_lib.geometry_of(images.shape[1:])
  ex = []
  for i in chosen:
    ck = jax.random.fold_in(trial_key(key, 0, i), CROP_SEED)
    offs = np.asarray(data_lib.crop_offsets(ck, jnp.zeros((k_max,), jnp.int32), jnp.arange(k_max),
                                            crop_size=crop, geometry=geometry))
    e = {"index": i, "image": encode_hex(images[i]), "crop_offsets": offs.tolist()}
    for s in SCHEME_NAMES:
      e[s] = {"recon": encode_hex(_to_uint8(out[s + "_recon"][i])),
              "match": [bool(v) for v in out[s + "_match"][i]],
              "mse": [round(float(v) * PM1_TO_01, 6) for v in out[s + "_mse"][i]],
              "mse_pm1": [round(float(v), 5) for v in out[s + "_mse"][i]]}
    ex.append(e)
  return {"kind": "examples", "beta": float(beta), "N": n, "K": k_max, "L_max": rate,
          "crop_size": crop, "image_shape": list(geometry.image_shape),
          "recon_shape": [k_max, *geometry.source_shape],
          "encoding": "uint8 hex, row-major; pixels p/255*2-1 in [-1, 1]", "examples": ex}


# --------------------------------------------------------------------------
# Zero-rate references.
# --------------------------------------------------------------------------


def zero_rate_outputs(tkey, index, state, images, *, graphdef, num_decoders, crop_size):
  """``float32[K]``: squared error (``[-1, 1]``) of decoder ``k`` at the prior mean ``w = 0`` with its crop."""
  model = nnx.merge(graphdef, state)
  source, crops, _ = trial_inputs(tkey, images[index], model, num_decoders=num_decoders,
                                  crop_size=crop_size)
  w = jnp.zeros((num_decoders, model.latent_dim), jnp.float32)
  recon = vae_lib.reconstruct(model, w, crops)  # [K, *source_shape]
  return jnp.mean((recon - source) ** 2, axis=_sq_axes(recon))


@functools.lru_cache(maxsize=32)
def _zero_rate_fn(graphdef, num_decoders, crop_size):
  return functools.partial(zero_rate_outputs, graphdef=graphdef, num_decoders=num_decoders,
                           crop_size=crop_size)


def reference_record(key, config, model, images, train_mean, beta: float, *, mesh=None) -> dict:
  r"""Zero-rate references of one β (``kind = "reference"``), on repeat 0's crops.

  * ``mse_mean_image``: every decoder outputs the mean training right half
    ``train_mean`` (``float[*source_shape]`` in ``[-1, 1]``): what a decoder
    achieves with neither bits nor side information.
  * ``mse_zero_rate[K'-1]``: best over the first ``K'`` decoders of the squared
    error of :math:`g(0, t_k)`, the decoder at the prior mean ``w = 0`` -- its
    side information alone, no message. ``K' = 1`` is decoder 1. Trials are
    those of :func:`evaluate`'s repeat 0 (same keys, same crops).

  Values on ``[0, 1]`` pixels (``mse_*``) and on ``[-1, 1]`` (``mse_*_pm1``).
  A codec whose MSE at a rate exceeds these is worse than sending nothing.
  """
  graphdef, state = nnx.split(model)
  n = int(images.shape[0])
  fn = _zero_rate_fn(graphdef, int(config.num_decoders), int(config.crop_size))
  per = parallel.map_trials(fn, _repeat_key(key, 0), n, chunk_size=int(config.chunk_size),
                            mesh=mesh, args=(state, jnp.asarray(images)))  # [n, K]
  best = np.minimum.accumulate(np.asarray(per, np.float64), axis=1)  # best of the first K' decoders
  zero_rate = [common.mean_sem(best[:, k]) for k in range(best.shape[1])]
  source = np.asarray(data_lib.source_of(jnp.asarray(images)), np.float64)
  mean_image = float(np.mean((source - np.asarray(train_mean, np.float64)[None]) ** 2))
  rec = {"kind": "reference", "beta": float(beta), "num_test_images": n,
         "crop_size": int(config.crop_size)}
  for scale, suffix in ((PM1_TO_01, ""), (1.0, "_pm1")):
    rec["mse_mean_image" + suffix] = mean_image * scale
    rec["mse_zero_rate" + suffix] = [m * scale for m, _ in zero_rate]
    rec["mse_zero_rate_sem" + suffix] = [None if e is None else e * scale for _, e in zero_rate]
  return rec
