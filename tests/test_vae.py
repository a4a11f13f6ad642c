# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""β-VAE / projection / estimator modules and their training (docs/method.md §5.3)."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from scipy import stats

from lcoupling import data as data_lib
from lcoupling.compression import train as T
from lcoupling.compression import vae as V

TINY = dict(latent_dim=4, channels=8, hidden=16, side_features=8, side_hidden=8, estimator_hidden=8,
            dropout=0.5)


def _tiny_config(**kw):
  cfg = T.default_config()
  cfg.widths = dict(TINY)
  cfg.update(dict(epochs=3, batch_size=16, crop_size=7, beta=0.5))
  cfg.update(kw)
  return cfg


def _digits(n, seed=0):
  """Synthetic 'digits': blurry random strokes, uint8 [n, 28, 28]."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:28, :28]
  out = np.zeros((n, 28, 28))
  for i in range(n):
    for _ in range(3):
      cy, cx, s = rng.uniform(6, 22), rng.uniform(6, 22), rng.uniform(2, 4)
      out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
  return (255 * np.clip(out, 0, 1)).astype(np.uint8)


# --------------------------------------------------------------------------
# Modules.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("crop", [14, 7])
def test_output_shapes(crop):
  m = V.SourceCoder(crop_size=crop, **TINY, rngs=nnx.Rngs(0))
  a = jax.random.uniform(jax.random.key(0), (3, 28, 14), minval=-1, maxval=1)
  t = jax.random.uniform(jax.random.key(1), (3, crop, crop), minval=-1, maxval=1)

  @nnx.jit  # one compilation instead of op-by-op dispatch
  def outputs(m, a, t):
    mean, logvar = V.encode_posterior(m, a)
    mean2, _ = V.encode_posterior(m, data_lib.source_canvas(a))  # a canvas works too
    return (mean, logvar, mean2, V.reconstruct(m, mean, t), V.log_density_ratio(m, mean, t),
            V.reconstruct(m, mean, t, dropout_key=jax.random.key(1)))

  mean, logvar, mean2, rec, logits, rec_dropout = outputs(m, a, t)
  assert mean.shape == logvar.shape == (3, 4)
  np.testing.assert_array_equal(mean, mean2)
  assert rec.shape == (3, 28, 14) and float(jnp.abs(rec).max()) < 1.0
  assert logits.shape == (3,)
  assert not np.array_equal(rec_dropout, rec)  # dropout is active only with a key
  with pytest.raises(ValueError, match="source must have shape"):
    V.encode_posterior(m, jnp.zeros((3, 28, 10)))


def test_paper_layer_sizes():
  m = nnx.eval_shape(lambda: T.make_model(jax.random.key(0), T.default_config()))
  assert m.encoder.conv1.kernel.shape == (3, 3, 1, 128)
  assert m.encoder.conv2.strides in (2, (2, 2)) and m.encoder.conv3.kernel.shape == (3, 3, 128, 128)
  assert m.encoder.fc1.kernel.shape == (6272, 512) and m.encoder.fc2.kernel.shape == (512, 8)
  assert m.decoder.fc1.kernel.shape == (132, 512) and m.decoder.fc2.kernel.shape == (512, 6272)
  assert m.decoder.up1.kernel.shape[-2:] == (128, 64) and m.decoder.up2.kernel.shape[-2:] == (64, 32)
  assert m.decoder.up3.kernel.shape[-2:] == (32, 1) and m.decoder.dropout.rate == 0.5
  assert m.projection.fc2.kernel.shape[-1] == 128


def test_kl_closed_form_matches_monte_carlo():
  rng = np.random.default_rng(0)
  mean = jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)
  logvar = jnp.asarray(rng.normal(scale=0.7, size=(3, 4)), jnp.float32)
  kl = np.asarray(V.gaussian_kl(mean, logvar))
  n = 200_000
  w = V.sample_posterior(jax.random.key(0), jnp.broadcast_to(mean, (n, 3, 4)),
                         jnp.broadcast_to(logvar, (n, 3, 4)))
  ratio = np.asarray(V.gaussian_log_density(w, mean, logvar) - V.gaussian_log_density(w), np.float64)
  est, se = ratio.mean(0), ratio.std(0) / math.sqrt(n)
  # |z| < 4.4 is two-sided alpha ~ 1e-5 per entry.
  assert np.all(np.abs(est - kl) < 4.4 * se + 1e-4), (est, kl, se)
  # The log density itself against scipy.
  x = rng.normal(size=(5, 4))
  want = stats.multivariate_normal(np.asarray(mean[0]), np.diag(np.exp(np.asarray(logvar[0])))).logpdf(x)
  np.testing.assert_allclose(V.gaussian_log_density(jnp.asarray(x), mean[0], logvar[0]), want, rtol=1e-5)


def test_one_training_step_decreases_the_loss():
  cfg = _tiny_config()
  x = _digits(16)
  model = T.make_model(jax.random.key(0), cfg)
  g, st = nnx.split(model)
  params = nnx.to_pure_dict(st)
  opt_state = T.make_optimizer(cfg).init(params)
  idx = jnp.arange(16)
  crop_key = jax.random.key(1)
  source, side = T.batch_arrays(crop_key, jnp.asarray(x), idx, crop_size=7)

  @jax.jit
  def _eval_loss(p):
    return V.vae_loss(nnx.merge(g, p), jax.random.key(9), source, side, beta=0.5, train=False)[0]

  eval_loss = lambda p: float(_eval_loss(p))

  before = eval_loss(params)
  step = T.make_train_step(g, cfg)
  params2, _, metrics = step(params, opt_state, jnp.asarray(x), idx, crop_key, jax.random.key(2))
  after = eval_loss(params2)
  assert after < before, (before, after)
  assert set(metrics) >= {"loss", "mse", "kl", "est_bce", "est_acc"}


def test_estimator_recovers_gaussian_log_density_ratio():
  r"""w | t ~ N(rho t, 1 - rho^2), t ~ N(0, 1): log p(w|t)/p(w) in closed form."""
  rho = 0.8
  est = V.Estimator(latent_dim=1, crop_size=1, hidden=64, rngs=nnx.Rngs(0))
  g, st = nnx.split(est)
  params = nnx.to_pure_dict(st)
  tx = optax.adam(3e-3)
  opt = tx.init(params)

  def sample(key, n):
    kt, ke = jax.random.split(key)
    t = jax.random.normal(kt, (n, 1))
    w = rho * t + math.sqrt(1 - rho**2) * jax.random.normal(ke, (n, 1))
    return w, t.reshape(n, 1, 1)

  @jax.jit
  def step(params, opt, key):
    w, t = sample(jax.random.fold_in(key, 0), 512)
    loss_fn = lambda p: V.estimator_loss(nnx.merge(g, p), jax.random.fold_in(key, 1), w, t)[0]
    loss, grads = jax.value_and_grad(loss_fn)(params)
    upd, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, upd), opt, loss

  key = jax.random.key(0)
  for s in range(1500):
    params, opt, _ = step(params, opt, jax.random.fold_in(key, s))
  w, t = sample(jax.random.key(123), 4000)
  h = np.asarray(V.log_density_ratio(nnx.merge(g, params), w, t))
  truth = np.asarray(V.gaussian_log_density(w, rho * t[:, :, 0], math.log(1 - rho**2))
                     - V.gaussian_log_density(w))
  corr = np.corrcoef(h, truth)[0, 1]
  mae = np.mean(np.abs(h - truth))
  print(f"estimator: corr={corr:.4f} mae={mae:.4f}")
  assert corr > 0.97 and mae < 0.15, (corr, mae)


# --------------------------------------------------------------------------
# Training, checkpoints, resumption.
# --------------------------------------------------------------------------


def _leaves_equal(a, b):
  sa, sb = nnx.to_pure_dict(nnx.state(a)), nnx.to_pure_dict(nnx.state(b))
  return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), sa, sb)))


def test_resumed_training_equals_uninterrupted(tmp_path):
  cfg = _tiny_config()  # same as the one-step test: the jitted step is cached
  x = _digits(40)
  key = jax.random.key(11)
  full = T.train(key, cfg, x, tmp_path / "full", progress=False)
  part = T.train(key, cfg, x, tmp_path / "resumed", progress=False, stop_after_epoch=1)
  assert not _leaves_equal(part, full)
  resumed = T.train(key, cfg, x, tmp_path / "resumed", progress=False)
  assert _leaves_equal(resumed, full)
  assert _leaves_equal(T.load_trained(tmp_path / "resumed"), full)
  lines = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
  assert [e["epoch"] for e in lines] == [0, 1, 2]  # each epoch logged once
  full_lines = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
  assert [e["loss"] for e in lines] == [e["loss"] for e in full_lines]
  # A finished work directory just loads; another config is refused.
  assert _leaves_equal(T.train(key, cfg, x, tmp_path / "full", progress=False), full)
  with pytest.raises(ValueError, match="holds a VAE trained with"):
    T.train(key, _tiny_config(beta=0.25), x, tmp_path / "full", progress=False)


def test_config_validation_names_the_field():
  with pytest.raises(ValueError, match="config.beta"):
    T.validate_config(_tiny_config(beta=-1.0))
  with pytest.raises(ValueError, match="config.batch_size"):
    T.validate_config(_tiny_config(batch_size=1))
  with pytest.raises(ValueError, match="config.recon_reduction"):
    T.validate_config(_tiny_config(recon_reduction="max"))
  bad = _tiny_config()
  bad.widths = dict(TINY, channels=10)
  with pytest.raises(ValueError, match="config.widths.channels"):
    T.validate_config(bad)
  bad.widths = dict(TINY, depth=3)
  with pytest.raises(ValueError, match="config.widths has unknown fields"):
    T.validate_config(bad)
  with pytest.raises(ValueError, match="config.crop_size"):
    T.validate_config(_tiny_config(crop_size=20))


def test_default_workdir_from_config(tmp_path):
  with pytest.raises(ValueError, match="config.checkpoint_dir"):
    T.default_workdir(_tiny_config())
  assert T.default_workdir(_tiny_config(checkpoint_dir=str(tmp_path))) == tmp_path / "beta=0.5"
  with pytest.raises(FileNotFoundError, match="no trained VAE"):
    T.load_trained(config=_tiny_config(checkpoint_dir=str(tmp_path)))


# --------------------------------------------------------------------------
# Accelerator paths: several steps per call, several betas as one vmapped model, bfloat16.
# --------------------------------------------------------------------------


def _max_abs_diff(a, b):
  sa, sb = nnx.to_pure_dict(nnx.state(a)), nnx.to_pure_dict(nnx.state(b))
  return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(jnp.max(jnp.abs(x - y))), sa, sb)))


@pytest.mark.slow  # four compilations of the training step: ~1-3 min on 2 cores
def test_scan_steps_and_joint_betas_match_the_one_step_training(tmp_path):
  cfg = _tiny_config(epochs=2)
  x = _digits(40)  # 2 steps of 16 per epoch
  key = jax.random.key(11)
  ref = T.train(key, cfg, x, tmp_path / "ref", progress=False)
  scan = T.train(key, _tiny_config(epochs=2, steps_per_call=2), x, tmp_path / "scan", progress=False)
  assert _max_abs_diff(scan, ref) < 1e-5  # the same steps, one call per epoch
  dirs = [tmp_path / "j50", tmp_path / "j25"]
  part = T.train_betas(key, _tiny_config(epochs=2, steps_per_call=2), [0.5, 0.25], x, dirs,
                       progress=False, stop_after_epoch=1)
  assert len(part) == 2 and _max_abs_diff(part[0], ref) > 1e-6
  joint = T.train_betas(key, _tiny_config(epochs=2, steps_per_call=2), [0.5, 0.25], x, dirs,
                        progress=False)  # resumed together from epoch 1
  assert _max_abs_diff(joint[0], ref) < 1e-5  # beta 0.5 of the joint model = its own training
  assert _max_abs_diff(joint[1], ref) > 1e-4  # beta 0.25 is another model
  assert _leaves_equal(T.load_trained(dirs[1]), joint[1])  # per-beta checkpoints
  for d in dirs:
    assert [e["epoch"] for e in T.read_metrics(d)] == [0, 1]
    assert json.loads((d / "model.json").read_text())["beta"] in (0.5, 0.25)


def test_bfloat16_training_keeps_float32_parameters(tmp_path):
  cfg = _tiny_config(epochs=1, compute_dtype="bfloat16")
  model = T.train(jax.random.key(3), cfg, _digits(32), tmp_path / "bf16", progress=False)
  leaves = jax.tree.leaves(nnx.to_pure_dict(nnx.state(model)))
  assert all(leaf.dtype == jnp.float32 for leaf in leaves)
  assert model.encoder.fc1.dtype is None  # the returned model evaluates in float32
  (m,) = T.read_metrics(tmp_path / "bf16")
  assert all(math.isfinite(m[k]) for k in ("loss", "mse", "kl", "est_bce"))
  assert json.loads((tmp_path / "bf16" / "model.json").read_text())["compute_dtype"] == "bfloat16"
  with pytest.raises(ValueError, match="config.compute_dtype"):
    T.validate_config(_tiny_config(compute_dtype="float16"))


def test_color_geometry_shapes():
  m = V.SourceCoder(crop_size=16, image_shape=(32, 32, 3), **TINY, rngs=nnx.Rngs(0))
  a = jax.random.uniform(jax.random.key(0), (2, 32, 16, 3), minval=-1, maxval=1)
  t = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3), minval=-1, maxval=1)
  mean, _ = V.encode_posterior(m, a)
  assert m.encoder.fc1.kernel.shape == (8 * 8 * 8, 16) and m.decoder.up3.kernel.shape[-1] == 3
  assert V.reconstruct(m, mean, t).shape == (2, 32, 16, 3)
  assert V.log_density_ratio(m, mean, t).shape == (2,)
  assert V.codebook_log_density_ratio(m, mean, t[0]).shape == (2,)
  with pytest.raises(ValueError, match="config.crop_size must be in 1..16"):
    V.SourceCoder(crop_size=17, image_shape=(32, 32, 3), **TINY, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="source must have shape"):
    V.encode_posterior(m, jnp.zeros((2, 28, 14)))
