# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Joint training of the β-VAE, side projection and estimator (gls-notes §5.2).

All networks of :class:`~lcoupling.compression.vae.SourceCoder` are trained
together on :func:`~lcoupling.compression.vae.vae_loss` (β-VAE loss + estimator
BCE) with one optax Adam (lr 1e-3, betas (0.9, 0.99)), batch 64, 30 epochs.

Randomness (every stream a ``fold_in`` of the training key, never call order):

* ``fold_in(key, 0)``: parameter initialisation;
* ``fold_in(key, 1)``: example order, epoch ``e`` uses
  :func:`lcoupling.data.epoch_permutation` ``(·, e, n)`` (remainder dropped);
* ``fold_in(fold_in(key, 2), e)``: side-information crops of epoch ``e`` (a
  fresh crop of every image each epoch, keyed by the example index);
* ``fold_in(fold_in(key, 3), s)``: posterior sample, dropout and estimator
  pairs of global step ``s``.

Checkpoints: an ``orbax.checkpoint.CheckpointManager`` in ``workdir/checkpoints``
saves ``{params, opt_state}`` after every epoch (checkpoint ``e`` = ``e`` epochs
done). :func:`train` resumes from the latest one; because every random number
is a function of ``(key, epoch, step)`` the resumed run ends with the same
parameters as an uninterrupted one (a run killed mid-epoch redoes that epoch).
Per-epoch metrics go to ``workdir/metrics.jsonl`` (one line per epoch, written
once even across resumptions), the model hyper-parameters to
``workdir/model.json`` (a resume with different ones is refused).

Config fields (a ``ConfigDict`` or a dict; :func:`default_config` lists them):
``beta``, ``epochs``, ``batch_size``, ``learning_rate``, ``b1``, ``b2``,
``crop_size``, ``recon_reduction``, ``widths`` (``latent_dim``, ``channels``,
``hidden``, ``side_features``, ``side_hidden``, ``estimator_hidden``, ``dropout``)
and optionally ``checkpoint_dir`` (used when no ``workdir`` is passed).

Example:
  >>> cfg = default_config(quick=True)
  >>> cfg.widths.channels, cfg.epochs, cfg.batch_size
  (32, 30, 64)
"""

from __future__ import annotations

import functools
import json
import math
import os
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from lcoupling import data as data_lib
from lcoupling import results
from lcoupling.compression import vae as vae_lib

__all__ = [
    "PAPER_WIDTHS",
    "QUICK_WIDTHS",
    "default_config",
    "validate_config",
    "model_kwargs",
    "make_model",
    "make_optimizer",
    "train",
    "default_workdir",
    "load_trained",
    "make_train_step",
    "batch_arrays",
]

#: Layer sizes of gls-notes §5.2.
PAPER_WIDTHS = dict(latent_dim=4, channels=128, hidden=512, side_features=128, side_hidden=256,
                    estimator_hidden=256, dropout=0.5)
#: A narrow variant for quick runs (same depth, ~1/4 width).
QUICK_WIDTHS = dict(latent_dim=4, channels=32, hidden=128, side_features=32, side_hidden=64,
                    estimator_hidden=64, dropout=0.5)

_INIT, _ORDER, _CROP, _STEP = 0, 1, 2, 3
_TRAIN_FIELDS = ("beta", "epochs", "batch_size", "learning_rate", "b1", "b2", "crop_size",
                 "recon_reduction")


def default_config(quick: bool = False) -> ml_collections.ConfigDict:
  """The training fields with the paper's values (``quick``: :data:`QUICK_WIDTHS`)."""
  return ml_collections.ConfigDict(dict(
      beta=0.15, epochs=30, batch_size=64, learning_rate=1e-3, b1=0.9, b2=0.99, crop_size=14,
      recon_reduction="sum", widths=dict(QUICK_WIDTHS if quick else PAPER_WIDTHS),
      checkpoint_dir=""))


def _get(config, name, default=None):
  if isinstance(config, Mapping):
    return config.get(name, default)
  return config.get(name, default) if hasattr(config, "get") else getattr(config, name, default)


def _int_field(config, name, lo=1, prefix="config."):
  v = _get(config, name)
  if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
    raise TypeError(f"{prefix}{name} must be an int, got {v!r}")
  if v < lo:
    raise ValueError(f"{prefix}{name} must be >= {lo}, got {v}")
  return int(v)


def _float_field(config, name, lo, hi, prefix="config.", lo_open=False):
  v = _get(config, name)
  if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
    raise TypeError(f"{prefix}{name} must be a number, got {v!r}")
  v = float(v)
  if not (math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi):
    raise ValueError(f"{prefix}{name} must be in {'(' if lo_open else '['}{lo}, {hi}], got {v}")
  return v


def model_kwargs(config) -> dict:
  """Constructor arguments of :class:`SourceCoder` from ``config`` (``widths`` + ``crop_size``)."""
  widths = dict(PAPER_WIDTHS)
  given = _get(config, "widths") or {}
  given = given.to_dict() if hasattr(given, "to_dict") else dict(given)
  unknown = set(given) - set(PAPER_WIDTHS)
  if unknown:
    raise ValueError(f"config.widths has unknown fields {sorted(unknown)}; known: {sorted(PAPER_WIDTHS)}")
  widths.update(given)
  for name in ("latent_dim", "channels", "hidden", "side_features", "side_hidden", "estimator_hidden"):
    _int_field(widths, name, prefix="config.widths.")
  if widths["channels"] % 4:
    raise ValueError(f"config.widths.channels must be divisible by 4, got {widths['channels']}")
  _float_field(widths, "dropout", 0.0, 1.0, prefix="config.widths.")
  if float(widths["dropout"]) >= 1.0:
    raise ValueError(f"config.widths.dropout must be < 1, got {widths['dropout']}")
  crop = _int_field(config, "crop_size")
  if crop > data_lib.SOURCE_WIDTH:
    raise ValueError(f"config.crop_size must be in 1..{data_lib.SOURCE_WIDTH}, got {crop}")
  return {**{k: (float(v) if k == "dropout" else int(v)) for k, v in widths.items()}, "crop_size": crop}


def validate_config(config) -> None:
  """Raises ``ValueError``/``TypeError`` naming the bad training field."""
  for name in _TRAIN_FIELDS:
    if _get(config, name) is None:
      raise ValueError(f"config.{name} is required for VAE training")
  _float_field(config, "beta", 0.0, 1e6)
  _int_field(config, "epochs")
  _int_field(config, "batch_size", lo=2)
  _float_field(config, "learning_rate", 0.0, 10.0, lo_open=True)
  _float_field(config, "b1", 0.0, 1.0)
  _float_field(config, "b2", 0.0, 1.0)
  if _get(config, "recon_reduction") not in ("sum", "mean"):
    raise ValueError(f"config.recon_reduction must be 'sum' or 'mean', got {_get(config, 'recon_reduction')!r}")
  model_kwargs(config)


def make_model(key: jax.Array, config) -> vae_lib.SourceCoder:
  """A freshly initialised :class:`SourceCoder` (parameters from ``key``)."""
  return vae_lib.SourceCoder(**model_kwargs(config), rngs=nnx.Rngs(params=key))


def make_optimizer(config) -> optax.GradientTransformation:
  """``optax.adam(learning_rate, b1, b2)``."""
  return optax.adam(float(_get(config, "learning_rate")), b1=float(_get(config, "b1")),
                    b2=float(_get(config, "b2")))


def batch_arrays(key: jax.Array, images: jax.Array, indices: jax.Array, *, crop_size: int
                 ) -> tuple[jax.Array, jax.Array]:
  """``(source [B, 28, 14], side [B, c, c])`` of the examples ``indices`` (in ``[-1, 1]``)."""
  return data_lib.split_source_side(key, images[indices], indices, crop_size=crop_size)


def make_train_step(graphdef, config):
  """A jitted ``step(params, opt_state, images, indices, crop_key, step_key)``.

  ``params`` is the pure-dict state of the model; returns
  ``(params, opt_state, metrics)``. Cached per (model structure, loss/optimizer
  fields), so resuming in the same process does not recompile.
  """
  return _make_train_step(graphdef, float(_get(config, "beta")), str(_get(config, "recon_reduction")),
                          int(_get(config, "crop_size")), float(_get(config, "learning_rate")),
                          float(_get(config, "b1")), float(_get(config, "b2")))


@functools.lru_cache(maxsize=16)
def _make_train_step(graphdef, beta, reduction, crop_size, learning_rate, b1, b2):
  tx = optax.adam(learning_rate, b1=b1, b2=b2)

  def loss_fn(params, source, side, key):
    model = nnx.merge(graphdef, params)
    return vae_lib.vae_loss(model, key, source, side, beta=beta, reduction=reduction, train=True)

  @jax.jit
  def step(params, opt_state, images, indices, crop_key, step_key):
    source, side = batch_arrays(crop_key, images, indices, crop_size=crop_size)
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, source, side, step_key)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, metrics

  return step


def _model_meta(config) -> dict:
  return {"model": model_kwargs(config), **{k: _get(config, k) for k in _TRAIN_FIELDS}}


def _checkpoint_manager(ckpt_dir: pathlib.Path, max_to_keep: int | None = 2):
  import orbax.checkpoint as ocp

  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(ckpt_dir.resolve(), options=options)


def _restore(mngr, epoch: int, template):
  import orbax.checkpoint as ocp

  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
  return mngr.restore(epoch, args=ocp.args.StandardRestore(abstract))


def _logged_epochs(metrics_path: pathlib.Path) -> set[int]:
  entries = results.repair_jsonl(metrics_path) if metrics_path.exists() else []
  return {int(e["epoch"]) for e in entries if "epoch" in e}


def default_workdir(config) -> pathlib.Path:
  """``config.checkpoint_dir / f"beta={config.beta:g}"`` (one directory per β)."""
  ckpt = _get(config, "checkpoint_dir")
  if not ckpt:
    raise ValueError("config.checkpoint_dir must be set when train()/load_trained() get no workdir")
  return pathlib.Path(ckpt) / f"beta={float(_get(config, 'beta')):g}"


def train(key: jax.Array, config, train_images, workdir: os.PathLike | None = None, *,
          progress: bool = True, stop_after_epoch: int | None = None) -> vae_lib.SourceCoder:
  """Trains (or resumes, or just loads) a :class:`SourceCoder`; returns it.

  Args:
    key: the training key (see the module docstring for its streams).
    config: training config (:func:`default_config` fields).
    train_images: ``uint8 [n, 28, 28]`` (e.g. ``load_mnist(data_dir, 'train')[0]``).
    workdir: directory for ``checkpoints/``, ``metrics.jsonl``, ``model.json``;
      default :func:`default_workdir` (``config.checkpoint_dir/beta=B``).
    progress: show a tqdm bar.
    stop_after_epoch: return once this many epochs are done (a time-boxed job;
      a later call resumes). ``None``: train all ``config.epochs``.

  Returns:
    The model after ``config.epochs`` epochs (or ``stop_after_epoch``). If the
    work directory already holds the final checkpoint, nothing is trained.
  """
  validate_config(config)
  images = np.asarray(train_images)
  if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
    raise ValueError(f"train_images must be uint8 [n, 28, 28], got {images.dtype} {images.shape}")
  epochs = int(_get(config, "epochs"))
  batch_size = int(_get(config, "batch_size"))
  n = images.shape[0]
  steps_per_epoch = data_lib.num_batches(n, batch_size)
  if steps_per_epoch < 1:
    raise ValueError(f"config.batch_size={batch_size} exceeds the number of training images ({n})")
  last = epochs if stop_after_epoch is None else min(epochs, int(stop_after_epoch))

  workdir = default_workdir(config) if workdir is None else pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  meta = _model_meta(config)
  meta_path = workdir / "model.json"
  if meta_path.exists():
    old = json.loads(meta_path.read_text())
    if old != json.loads(results.dumps(meta)):
      raise ValueError(f"{workdir}: holds a VAE trained with {old}, not {meta}; use another workdir")
  else:
    results.atomic_write_json(meta_path, meta)

  model = make_model(jax.random.fold_in(key, _INIT), config)
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  tx = make_optimizer(config)
  opt_state = tx.init(params)
  mngr = _checkpoint_manager(workdir / "checkpoints")
  start = mngr.latest_step() or 0
  if start > epochs:
    raise ValueError(f"{workdir}: checkpoint at epoch {start} > config.epochs={epochs}")
  if start:
    restored = _restore(mngr, start, {"params": params, "opt_state": opt_state})
    params, opt_state = restored["params"], restored["opt_state"]

  # Commit everything to one device: fresh and restored arrays then hit the same
  # compiled step (uncommitted vs committed inputs would compile it twice).
  device = jax.local_devices()[0]
  params, opt_state = jax.device_put((params, opt_state), device)
  metrics_path = workdir / "metrics.jsonl"
  logged = _logged_epochs(metrics_path)
  if start < last:
    step_fn = make_train_step(graphdef, config)
    dev_images = jax.device_put(images, device)
    order_key = jax.random.fold_in(key, _ORDER)
    crop_stream = jax.random.fold_in(key, _CROP)
    step_stream = jax.random.fold_in(key, _STEP)
    bar = None
    if progress:
      from tqdm.auto import tqdm
      bar = tqdm(total=(last - start) * steps_per_epoch, desc=f"VAE beta={_get(config, 'beta')}",
                 unit="step", dynamic_ncols=True)
    for epoch in range(start, last):
      t0 = time.time()
      crop_key = jax.random.fold_in(crop_stream, epoch)
      sums: dict[str, float] = {}
      acc = None
      for b, idx in enumerate(data_lib.iterate_batches(order_key, epoch, n, batch_size)):
        s = epoch * steps_per_epoch + b
        params, opt_state, m = step_fn(params, opt_state, dev_images, jnp.asarray(idx), crop_key,
                                       jax.random.fold_in(step_stream, s))
        acc = m if acc is None else jax.tree.map(jnp.add, acc, m)
        if bar is not None:
          bar.update(1)
          if b % 50 == 0:
            bar.set_postfix(loss=f"{float(m['loss']):.3f}", mse=f"{float(m['mse']):.4f}",
                            kl=f"{float(m['kl']):.2f}")
      sums = {k: float(v) / steps_per_epoch for k, v in acc.items()}
      mngr.save(epoch + 1, args=_save_args({"params": params, "opt_state": opt_state}))
      mngr.wait_until_finished()
      if epoch not in logged:
        results.append_jsonl(metrics_path, {"epoch": epoch, "step": (epoch + 1) * steps_per_epoch,
                                            "seconds": time.time() - t0, **sums})
    if bar is not None:
      bar.close()
  mngr.close()
  return nnx.merge(graphdef, params)


def _save_args(tree):
  import orbax.checkpoint as ocp

  return ocp.args.StandardSave(tree)


def load_trained(workdir: os.PathLike | None = None, config=None, *, epoch: int | None = None
                 ) -> vae_lib.SourceCoder:
  """Loads the model of ``workdir`` (latest checkpoint, or ``epoch``).

  ``workdir`` defaults to :func:`default_workdir` ``(config)``; the model's
  hyper-parameters are those stored in ``workdir/model.json``. Raises
  ``FileNotFoundError`` naming the directory when nothing was trained.
  """
  if workdir is None:
    if config is None:
      raise ValueError("load_trained needs a workdir or a config with checkpoint_dir")
    workdir = default_workdir(config)
  workdir = pathlib.Path(workdir)
  meta_path = workdir / "model.json"
  if not meta_path.exists():
    raise FileNotFoundError(f"{workdir}: no trained VAE here (model.json missing); run train() first")
  meta = json.loads(meta_path.read_text())
  kwargs = meta["model"]
  if config is not None and model_kwargs(config) != kwargs:
    raise ValueError(f"{workdir}: the stored model {kwargs} differs from config {model_kwargs(config)}")
  model = nnx.eval_shape(lambda: vae_lib.SourceCoder(**kwargs, rngs=nnx.Rngs(params=0)))
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  mngr = _checkpoint_manager(workdir / "checkpoints")
  step = mngr.latest_step() if epoch is None else epoch
  if step is None:
    raise FileNotFoundError(f"{workdir}/checkpoints: no checkpoint; run train() first")
  template = {"params": params, "opt_state": make_optimizer(meta).init(params)}
  restored = _restore(mngr, step, template)
  mngr.close()
  return nnx.merge(graphdef, restored["params"])
