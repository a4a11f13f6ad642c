# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Joint training of the β-VAE, side projection and estimator (docs/method.md §5.3).

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
once even across resumptions; read them with :func:`read_metrics`), the model
hyper-parameters to ``workdir/model.json`` (a resume with different ones is
refused).

Accelerators. The training images live on the device; a step is one jitted
call. ``steps_per_call = S > 1`` runs ``S`` steps per call (a
:func:`jax.lax.scan` over the epoch's index blocks, uploaded once per epoch),
so the host dispatches ``ceil(steps / S)`` calls per epoch and reads nothing
back until the epoch ends. :func:`train_betas` trains the models of several
β together as ONE vmapped model (they share the key, hence the
initialisation, the example order and the crops, and differ only in β): on a
GPU, five small models cost about one. ``compute_dtype = "bfloat16"`` runs the
networks in bfloat16 (parameters, optimiser and losses stay float32); the
evaluation always loads the float32 model. With the defaults (``S = 1``,
float32, one β at a time) the arithmetic is exactly that of one jitted step
per batch.

Config fields (a ``ConfigDict`` or a dict; :func:`default_config` lists them):
``beta``, ``epochs``, ``batch_size``, ``learning_rate``, ``b1``, ``b2``,
``crop_size``, ``recon_reduction``, ``widths`` (``latent_dim``, ``channels``,
``hidden``, ``side_features``, ``side_hidden``, ``estimator_hidden``, ``dropout``),
optionally ``image_shape`` (default MNIST's ``(28, 28)``), ``steps_per_call``
(default 1), ``compute_dtype`` (default ``"float32"``) and ``checkpoint_dir``
(used when no ``workdir`` is passed).

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
from collections.abc import Mapping, Sequence

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
    "COMPUTE_DTYPES",
    "default_config",
    "validate_config",
    "model_kwargs",
    "make_model",
    "make_optimizer",
    "train",
    "train_betas",
    "default_workdir",
    "is_trained",
    "load_trained",
    "read_metrics",
    "make_train_step",
    "batch_arrays",
]

#: Layer sizes of the paper's MNIST networks (docs/method.md §5.3).
PAPER_WIDTHS = dict(latent_dim=4, channels=128, hidden=512, side_features=128, side_hidden=256,
                    estimator_hidden=256, dropout=0.5)
#: A narrow variant for quick runs (same depth, ~1/4 width).
QUICK_WIDTHS = dict(latent_dim=4, channels=32, hidden=128, side_features=32, side_hidden=64,
                    estimator_hidden=64, dropout=0.5)
#: ``config.compute_dtype`` values.
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}

_INIT, _ORDER, _CROP, _STEP = 0, 1, 2, 3
_TRAIN_FIELDS = ("beta", "epochs", "batch_size", "learning_rate", "b1", "b2", "crop_size",
                 "recon_reduction")
_MNIST_SHAPE = tuple(vae_lib.MNIST_SHAPE)


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


def _image_shape(config) -> tuple[int, ...]:
  shape = _get(config, "image_shape")
  shape = _MNIST_SHAPE if shape is None else tuple(int(d) for d in shape)
  try:
    vae_lib._geometry(shape)
  except ValueError as e:
    raise ValueError(f"config.{e}") from e
  return shape


def model_kwargs(config) -> dict:
  """Constructor arguments of :class:`SourceCoder` from ``config``.

  ``widths`` + ``crop_size`` (+ ``image_shape`` when it is not MNIST's, so the
  ``model.json`` of an MNIST model does not depend on it).
  """
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
  shape = _image_shape(config)
  crop = _int_field(config, "crop_size")
  data_lib.geometry_of(shape).check_crop_size(crop)
  out = {**{k: (float(v) if k == "dropout" else int(v)) for k, v in widths.items()}, "crop_size": crop}
  if shape != _MNIST_SHAPE:
    out["image_shape"] = list(shape)
  return out


def _compute_dtype(config):
  name = _get(config, "compute_dtype", "float32") or "float32"
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"config.compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {name!r}")
  return COMPUTE_DTYPES[name]


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
  if _get(config, "steps_per_call") is not None:
    _int_field(config, "steps_per_call")
  _compute_dtype(config)
  model_kwargs(config)


def make_model(key: jax.Array, config, *, compute: bool = False) -> vae_lib.SourceCoder:
  """A freshly initialised :class:`SourceCoder` (parameters from ``key``).

  ``compute=True`` builds it with ``config.compute_dtype`` (the training
  model); otherwise float32 (parameters are float32 either way).
  """
  dtype = _compute_dtype(config) if compute else None
  return vae_lib.SourceCoder(**model_kwargs(config), dtype=dtype, rngs=nnx.Rngs(params=key))


def make_optimizer(config) -> optax.GradientTransformation:
  """``optax.adam(learning_rate, b1, b2)``."""
  return optax.adam(float(_get(config, "learning_rate")), b1=float(_get(config, "b1")),
                    b2=float(_get(config, "b2")))


def batch_arrays(key: jax.Array, images: jax.Array, indices: jax.Array, *, crop_size: int
                 ) -> tuple[jax.Array, jax.Array]:
  """``(source [B, *source_shape], side [B, c, c(, C)])`` of the examples ``indices`` (in ``[-1, 1]``)."""
  return data_lib.split_source_side(key, images[indices], indices, crop_size=crop_size)


def _step_fields(config):
  return (str(_get(config, "recon_reduction")), int(_get(config, "crop_size")),
          float(_get(config, "learning_rate")), float(_get(config, "b1")), float(_get(config, "b2")))


def _step_body(graphdef, reduction, crop_size, learning_rate, b1, b2):
  """``body(params, opt_state, beta, images, indices, crop_key, step_key)``: one Adam step."""
  tx = optax.adam(learning_rate, b1=b1, b2=b2)

  def loss_fn(params, source, side, key, beta):
    model = nnx.merge(graphdef, params)
    return vae_lib.vae_loss(model, key, source, side, beta=beta, reduction=reduction, train=True)

  def body(params, opt_state, beta, images, indices, crop_key, step_key):
    source, side = batch_arrays(crop_key, images, indices, crop_size=crop_size)
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, source, side, step_key,
                                                                     beta)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, metrics

  return body


def make_train_step(graphdef, config):
  """A jitted ``step(params, opt_state, images, indices, crop_key, step_key)``.

  ``params`` is the pure-dict state of the model; returns
  ``(params, opt_state, metrics)``. Cached per (model structure, loss/optimizer
  fields), so resuming in the same process does not recompile.
  """
  return _make_train_step(graphdef, float(_get(config, "beta")), *_step_fields(config))


@functools.lru_cache(maxsize=16)
def _make_train_step(graphdef, beta, reduction, crop_size, learning_rate, b1, b2):
  body = _step_body(graphdef, reduction, crop_size, learning_rate, b1, b2)

  @jax.jit
  def step(params, opt_state, images, indices, crop_key, step_key):
    return body(params, opt_state, beta, images, indices, crop_key, step_key)  # beta: a constant

  return step


@functools.lru_cache(maxsize=16)
def _make_multi_step(graphdef, beta, reduction, crop_size, learning_rate, b1, b2, joint):
  """``steps(params, opt_state, beta, images, index_block [S, B], crop_key, step_stream, first_step)``.

  A scan over ``S`` steps (global steps ``first_step + i``, step keys
  ``fold_in(step_stream, first_step + i)``). Returns the parameters, the
  optimiser state and the sums of the metrics over the ``S`` steps. ``joint``:
  the parameters, optimiser state and ``beta`` carry a leading β axis (vmap).
  """
  body = _step_body(graphdef, reduction, crop_size, learning_rate, b1, b2)
  if joint:
    body = jax.vmap(body, in_axes=(0, 0, 0, None, None, None, None))
  else:
    body = functools.partial(_static_beta, body, beta)

  @jax.jit
  def steps(params, opt_state, betas, images, index_block, crop_key, step_stream, first_step):
    def one(carry, xs):
      params, opt_state, sums = carry
      i, idx = xs
      key = jax.random.fold_in(step_stream, first_step + i)
      params, opt_state, m = body(params, opt_state, betas, images, idx, crop_key, key)
      return (params, opt_state, jax.tree.map(jnp.add, sums, m)), None

    n = index_block.shape[0]
    shapes = jax.eval_shape(lambda: body(params, opt_state, betas, images, index_block[0], crop_key,
                                         step_stream)[2])
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    (params, opt_state, sums), _ = jax.lax.scan(
        one, (params, opt_state, zeros), (jnp.arange(n, dtype=jnp.int32), index_block))
    return params, opt_state, sums

  return steps


def _static_beta(body, beta, params, opt_state, betas, *args):
  del betas
  return body(params, opt_state, beta, *args)


def _model_meta(config) -> dict:
  meta = {"model": model_kwargs(config), **{k: _get(config, k) for k in _TRAIN_FIELDS}}
  if (_get(config, "compute_dtype", "float32") or "float32") != "float32":
    meta["compute_dtype"] = _get(config, "compute_dtype")  # float32 models keep the old model.json
  return meta


def _checkpoint_manager(ckpt_dir: pathlib.Path, max_to_keep: int | None = 2):
  import orbax.checkpoint as ocp

  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(ckpt_dir.resolve(), options=options)


def _restore(mngr, epoch: int, template):
  import orbax.checkpoint as ocp

  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
  return mngr.restore(epoch, args=ocp.args.StandardRestore(abstract))


def _save_args(tree):
  import orbax.checkpoint as ocp

  return ocp.args.StandardSave(tree)


def _logged_epochs(metrics_path: pathlib.Path) -> set[int]:
  entries = results.repair_jsonl(metrics_path) if metrics_path.exists() else []
  return {int(e["epoch"]) for e in entries if "epoch" in e}


def read_metrics(workdir: os.PathLike) -> list[dict]:
  """The per-epoch training metrics of ``workdir`` (``metrics.jsonl``), one dict per epoch.

  Sorted by epoch (0-based ``epoch``; a torn last line is dropped; an epoch
  logged twice keeps its last entry). Fields: ``epoch``, ``step``, ``seconds``
  and the means over the epoch's steps of ``loss, vae, mse, kl, est_bce,
  est_acc`` (:func:`~lcoupling.compression.vae.vae_loss`). ``[]`` when nothing
  was logged.
  """
  path = pathlib.Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return []
  entries, _ = results.read_jsonl(path)
  by_epoch = {int(e["epoch"]): e for e in entries if "epoch" in e}
  return [by_epoch[e] for e in sorted(by_epoch)]


def default_workdir(config) -> pathlib.Path:
  """``config.checkpoint_dir / f"beta={config.beta:g}"`` (one directory per β)."""
  ckpt = _get(config, "checkpoint_dir")
  if not ckpt:
    raise ValueError("config.checkpoint_dir must be set when train()/load_trained() get no workdir")
  return pathlib.Path(ckpt) / f"beta={float(_get(config, 'beta')):g}"


def is_trained(workdir: os.PathLike, epochs: int) -> bool:
  """Whether ``workdir`` holds the model and its checkpoint after ``epochs`` epochs."""
  workdir = pathlib.Path(workdir)
  return (workdir / "model.json").is_file() and (workdir / "checkpoints" / str(int(epochs))).is_dir()


def _check_images(train_images, config) -> np.ndarray:
  images = np.asarray(train_images)
  shape = _image_shape(config)
  if images.ndim != 1 + len(shape) or images.shape[1:] != shape or images.dtype != np.uint8:
    raise ValueError(f"train_images must be uint8 [n, {', '.join(map(str, shape))}], got "
                     f"{images.dtype} {images.shape}")
  return images


def _prepare_workdir(config, workdir) -> pathlib.Path:
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
  return workdir


def _epoch_blocks(order_key, epoch, n, batch_size, steps_per_call):
  """The epoch's index batches as ``[num_batches, B]`` blocks of at most ``steps_per_call`` rows."""
  perm = data_lib.epoch_permutation(order_key, epoch, n)
  nb = data_lib.num_batches(n, batch_size)
  batches = perm[:nb * batch_size].reshape(nb, batch_size)
  return [batches[i:i + steps_per_call] for i in range(0, nb, steps_per_call)]


def train(key: jax.Array, config, train_images, workdir: os.PathLike | None = None, *,
          progress: bool = True, stop_after_epoch: int | None = None) -> vae_lib.SourceCoder:
  """Trains (or resumes, or just loads) a :class:`SourceCoder`; returns it.

  Args:
    key: the training key (see the module docstring for its streams).
    config: training config (:func:`default_config` fields).
    train_images: ``uint8 [n, *image_shape]`` (e.g. ``load_mnist(data_dir, 'train')[0]``).
    workdir: directory for ``checkpoints/``, ``metrics.jsonl``, ``model.json``;
      default :func:`default_workdir` (``config.checkpoint_dir/beta=B``).
    progress: show a tqdm bar.
    stop_after_epoch: return once this many epochs are done (a time-boxed job;
      a later call resumes). ``None``: train all ``config.epochs``.

  Returns:
    The model (float32) after ``config.epochs`` epochs (or
    ``stop_after_epoch``). If the work directory already holds the final
    checkpoint, nothing is trained.
  """
  return train_betas(key, config, [float(_get(config, "beta"))], train_images, [workdir],
                     progress=progress, stop_after_epoch=stop_after_epoch)[0]


def _with_beta(config, beta):
  c = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  c["beta"] = float(beta)
  return ml_collections.ConfigDict(c)


def train_betas(key: jax.Array, config, betas: Sequence[float], train_images,
                workdirs: Sequence[os.PathLike | None], *, progress: bool = True,
                stop_after_epoch: int | None = None) -> list[vae_lib.SourceCoder]:
  """Trains the models of several β together, as one vmapped model.

  Every β uses ``key`` (the same initialisation, example order, crops and step
  keys: common random numbers); the β axis is a ``vmap`` of the step. Each
  β has its own work directory, checkpoints and ``metrics.jsonl``, exactly
  as :func:`train` writes them, so a later :func:`train` / :func:`load_trained`
  of one β finds its model. One β is :func:`train` itself (no vmap). The
  models must be at the same epoch to be resumed together; otherwise each is
  trained on its own. The vmapped step may round differently from the
  single-β step (other fused kernels), so joint and separate training agree to
  float32 rounding, not bit for bit.

  Returns:
    One float32 model per β, in order.
  """
  betas = [float(b) for b in betas]
  if len(betas) < 1 or len(set(betas)) != len(betas):
    raise ValueError(f"config.betas must be non-empty and distinct, got {betas}")
  configs = [_with_beta(config, b) for b in betas]
  for c in configs:
    validate_config(c)
  images = _check_images(train_images, config)
  epochs = int(_get(config, "epochs"))
  batch_size = int(_get(config, "batch_size"))
  spc = int(_get(config, "steps_per_call", 1) or 1)
  n = images.shape[0]
  steps_per_epoch = data_lib.num_batches(n, batch_size)
  if steps_per_epoch < 1:
    raise ValueError(f"config.batch_size={batch_size} exceeds the number of training images ({n})")
  last = epochs if stop_after_epoch is None else min(epochs, int(stop_after_epoch))
  workdirs = [_prepare_workdir(c, w) for c, w in zip(configs, workdirs)]

  model = make_model(jax.random.fold_in(key, _INIT), config, compute=True)
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  tx = make_optimizer(config)
  opt_state = tx.init(params)
  mngrs = [_checkpoint_manager(w / "checkpoints") for w in workdirs]
  starts = [m.latest_step() or 0 for m in mngrs]
  for w, s in zip(workdirs, starts):
    if s > epochs:
      raise ValueError(f"{w}: checkpoint at epoch {s} > config.epochs={epochs}")
  if len(betas) > 1 and len(set(starts)) > 1:  # not resumable together: one at a time
    for m in mngrs:
      m.close()
    return [train_betas(key, c, [b], images, [w], progress=progress, stop_after_epoch=stop_after_epoch)[0]
            for c, b, w in zip(configs, betas, workdirs)]
  start = starts[0]
  template = {"params": params, "opt_state": opt_state}
  states = [_restore(m, start, template) if start else template for m in mngrs]
  joint = len(betas) > 1
  if joint:
    params = jax.tree.map(lambda *x: jnp.stack(x), *[s["params"] for s in states])
    opt_state = jax.tree.map(lambda *x: jnp.stack(x), *[s["opt_state"] for s in states])
  else:
    params, opt_state = states[0]["params"], states[0]["opt_state"]

  # Commit everything to one device: fresh and restored arrays then hit the same
  # compiled step (uncommitted vs committed inputs would compile it twice).
  device = jax.local_devices()[0]
  params, opt_state = jax.device_put((params, opt_state), device)
  metrics_paths = [w / "metrics.jsonl" for w in workdirs]
  logged = [_logged_epochs(p) for p in metrics_paths]
  if start < last:
    dev_images = jax.device_put(images, device)
    order_key = jax.random.fold_in(key, _ORDER)
    crop_stream = jax.random.fold_in(key, _CROP)
    step_stream = jax.random.fold_in(key, _STEP)
    fields = _step_fields(config)
    single = make_train_step(graphdef, configs[0]) if not joint and spc == 1 else None
    multi = None if single is not None else _make_multi_step(
        graphdef, betas[0] if not joint else None, *fields, joint)
    beta_arr = jax.device_put(jnp.asarray(betas, jnp.float32), device) if joint else None
    bar = None
    if progress:
      from tqdm.auto import tqdm
      label = ",".join(f"{b:g}" for b in betas)
      bar = tqdm(total=(last - start) * steps_per_epoch, desc=f"VAE beta={label}", unit="step",
                 dynamic_ncols=True)
    for epoch in range(start, last):
      t0 = time.time()
      crop_key = jax.random.fold_in(crop_stream, epoch)
      acc = None
      s0 = epoch * steps_per_epoch
      if single is not None:  # one jitted call per step (the reference arithmetic)
        for b, idx in enumerate(data_lib.iterate_batches(order_key, epoch, n, batch_size)):
          params, opt_state, m = single(params, opt_state, dev_images, jnp.asarray(idx), crop_key,
                                        jax.random.fold_in(step_stream, s0 + b))
          acc = m if acc is None else jax.tree.map(jnp.add, acc, m)
          if bar is not None:
            bar.update(1)
            if b % 50 == 0:
              bar.set_postfix(loss=f"{float(m['loss']):.3f}", mse=f"{float(m['mse']):.4f}",
                              kl=f"{float(m['kl']):.2f}")
      else:  # steps_per_call steps per jitted call (a scan), possibly vmapped over beta
        done = 0
        for block in _epoch_blocks(order_key, epoch, n, batch_size, spc):
          params, opt_state, sums = multi(params, opt_state, beta_arr, dev_images,
                                          jax.device_put(block, device), crop_key, step_stream,
                                          jnp.int32(s0 + done))
          acc = sums if acc is None else jax.tree.map(jnp.add, acc, sums)
          done += len(block)
          if bar is not None:
            bar.update(len(block))
      means = jax.tree.map(lambda v: np.asarray(v, np.float64) / steps_per_epoch, acc)
      seconds = time.time() - t0
      for i, (mngr, path) in enumerate(zip(mngrs, metrics_paths)):
        pick = (lambda x, i=i: x[i]) if joint else (lambda x: x)
        mngr.save(epoch + 1, args=_save_args({"params": jax.tree.map(pick, params),
                                               "opt_state": jax.tree.map(pick, opt_state)}))
        mngr.wait_until_finished()
        if epoch not in logged[i]:
          results.append_jsonl(path, {"epoch": epoch, "step": (epoch + 1) * steps_per_epoch,
                                      "seconds": seconds,
                                      **{k: float(pick(v)) for k, v in means.items()}})
    if bar is not None:
      bar.close()
  for m in mngrs:
    m.close()
  eval_graphdef = graphdef
  if _compute_dtype(config) is not None:  # evaluate in float32 (same parameters)
    eval_graphdef = nnx.graphdef(nnx.eval_shape(lambda: make_model(jax.random.key(0), config)))
  if joint:
    return [nnx.merge(eval_graphdef, jax.tree.map(lambda x, i=i: x[i], params)) for i in range(len(betas))]
  return [nnx.merge(eval_graphdef, params)]


def load_trained(workdir: os.PathLike | None = None, config=None, *, epoch: int | None = None
                 ) -> vae_lib.SourceCoder:
  """Loads the model of ``workdir`` (latest checkpoint, or ``epoch``), float32.

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
