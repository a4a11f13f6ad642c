# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Image compression study: lossy compression with side information at ``K`` decoders.

The MNIST (paper §5, Tables 13-14, Figures 3-4) and CIFAR-10 (paper App. D.4,
Tables 15-16) experiments of Rowan, Phan & Khisti (NeurIPS 2025,
arXiv:2506.05632) are ONE study over an image dataset with a source /
side-information split (docs/method.md §5.3), chosen by ``config.dataset``
(:data:`lcoupling.data.DATASETS`): the source ``A`` is the right half of an
image (MNIST 28×14, CIFAR-10 32×16×3), decoder ``k`` holds its own random
``c×c`` crop ``T_k`` of the left half (:func:`lcoupling.data.side_crops`). A
β-VAE (:mod:`lcoupling.compression.vae`) trained per β gives the posterior
:math:`p_{W|A}(\cdot|a) = \mathcal N(\mu(a), \operatorname{diag} e^{\ell(a)})`
of a 4-d latent with prior :math:`p_W = \mathcal N(0, I)`, a decoder
:math:`g(w, t)` and an estimator :math:`h(w, t) \approx \log
p_{W|T}(w|t)/p_W(w)`. The codec (:mod:`lcoupling.compression.codec`) draws ``N``
codewords :math:`U_j \sim p_W` and uses the log weights

.. math::
   \log\lambda_j = \log \mathcal N(U_j; \mu(a), e^{\ell(a)}) - \log \mathcal N(U_j; 0, I),
   \qquad \log\mu^{(k)}_j = h(U_j, t_k),

the reconstruction of decoder ``k`` is :math:`\hat A_k = g(U_{X_k}, t_k)`.

**Metric.** ``mse`` is the mean squared error per source value on **[0, 1]
pixels** (the paper's scale: the MSE of the mean training right half of MNIST is
0.0686 on [0, 1], next to the paper's 0.0693 at 6 bits); ``mse_pm1`` is the same
on the networks' ``[-1, 1]`` pixels, exactly 4 times larger. Reported per
``(β, N, scheme, K, L_max)``: the best-of-K MSE (the paper's oracle:
:math:`\min_k`), the mean over the ``K`` decoders, decoder 1 alone and the
matching probability (some decoder recovers the encoder's codeword).

Modules: :mod:`.evaluation` (one trial, the Monte-Carlo over test images,
zero-rate references, examples), :mod:`.report` (tables, figures, the
``python -m`` printer); this one holds the study contract
(:mod:`lcoupling.studies`) and the data / model set-up.

Keys (every one a ``fold_in`` of ``key = jax.random.key(config.seed)``):
``fold_in(key, 0)`` trains every VAE (the same initialisation, order and crops
for every β: common random numbers across β); the evaluation's keys are
described in :mod:`.evaluation`.

Selection: as in the paper, ``(N, β)`` is chosen per ``(scheme, K, L_max)`` by
the lowest best-of-K MSE (mean over repeats, on the evaluation images
themselves); ``selected`` marks it. The fixed ``N = 2**7, β = 0.15`` slice is
the records with those values (``fixed_slice``).

Reference: Rowan, Phan & Khisti, NeurIPS 2025 (arXiv:2506.05632), §5 MNIST and
App. D.4 CIFAR-10; Phan, Khisti & Louizos, AISTATS 2024 (arXiv:2401.02609).

Example:
  >>> import jax, jax.numpy as jnp
  >>> u = latent_prior(jax.random.key(0), 5)
  >>> codec_spec(128, 4, 64).num_rows, u.shape
  (4, (5, 4))
"""

from __future__ import annotations

import math
import pathlib
import time

import jax
import numpy as np

from lcoupling import data as data_lib
from lcoupling import parallel, runner
from lcoupling.compression import codec
from lcoupling.compression import train as train_lib
from lcoupling.studies import common
from lcoupling.studies.image_codec import evaluation, report
from lcoupling.studies.image_codec.evaluation import (CODEC_SEED, CROP_SEED, EVAL_STREAM, METRICS,
                                                      PM1_TO_01, SCHEME_NAMES, codec_spec,
                                                      decode_hex, encode_hex, evaluate,
                                                      example_record, latent_prior,
                                                      reference_record, trial_indices, trial_inputs,
                                                      trial_key, trial_outputs)
from lcoupling.studies.image_codec.report import (PAPER_MSE_K1, main, markdown_table, plot,
                                                  reference_table, tables)
from lcoupling.validation import check_choice, is_int, is_number, need

__all__ = [
    "STUDY_NAMES",
    "PAPER_MSE_K1",
    "SCHEME_NAMES",
    "TRAIN_STREAM",
    "EVAL_STREAM",
    "CODEC_SEED",
    "CROP_SEED",
    "PM1_TO_01",
    "latent_prior",
    "codec_spec",
    "trial_key",
    "trial_inputs",
    "trial_indices",
    "trial_outputs",
    "evaluate",
    "example_record",
    "reference_record",
    "encode_hex",
    "decode_hex",
    "dataset_of",
    "train_config",
    "train_workdir",
    "load_images",
    "load_model",
    "train_mean_source",
    "validate",
    "run_point",
    "summarize",
    "plot",
    "markdown_table",
    "reference_table",
    "tables",
    "main",
]

#: The registry names (``config.study``) of this study (:data:`lcoupling.studies.STUDIES`).
STUDY_NAMES = report.STUDY_NAMES
#: ``fold_in`` stream of the study key that trains the VAEs.
TRAIN_STREAM = 0
#: Per-repeat fields of a cell record; the ``mse*`` ones also as ``mse*_pm1``.
_SUMMARY = tuple(f for m in METRICS for f in ((m, m + "_pm1") if m.startswith("mse") else (m,)))


# --------------------------------------------------------------------------
# Data and models.
# --------------------------------------------------------------------------


def dataset_of(config) -> data_lib.ImageDataset:
  """The :class:`lcoupling.data.ImageDataset` of ``config.dataset`` (default ``"mnist"``)."""
  return data_lib.get_dataset(config.get("dataset", "mnist"))


def train_config(config, beta: float):
  """The :mod:`lcoupling.compression.train` config of one β."""
  import ml_collections  # noqa: PLC0415

  t = config.train.to_dict() if hasattr(config.train, "to_dict") else dict(config.train)
  t.update(beta=float(beta), crop_size=int(config.crop_size), checkpoint_dir=str(config.checkpoint_dir),
           image_shape=tuple(dataset_of(config).image_shape))
  return ml_collections.ConfigDict(t)


def train_workdir(config, beta: float) -> pathlib.Path:
  """``CHECKPOINT_DIR/NAME-seedS-IMPL-nTRAIN/beta=B``: one training directory per β.

  The directory name holds everything that changes the training besides the
  fields ``train`` itself checks (``model.json``): the run name, the seed, the
  PRNG implementation and the number of training images. ``config`` must have
  its ``{workdir}`` placeholder resolved (the runner does;
  :func:`lcoupling.runner.resolve_workdir_paths` otherwise): a ``ValueError``
  says so instead of creating a directory literally named ``{workdir}``.
  """
  ckpt = str(config.checkpoint_dir)
  if runner.WORKDIR_PLACEHOLDER in ckpt:
    raise ValueError(
        f"config.checkpoint_dir = {ckpt!r} holds the unresolved {runner.WORKDIR_PLACEHOLDER} "
        "placeholder: pass the run's work directory (runner.resolve_workdir_paths(config, "
        "workdir); --workdir on the command line) or set config.checkpoint_dir to a directory")
  run = f"{config.name}-seed{config.seed}-{config.prng_impl}-n{config.num_train_images}"
  return pathlib.Path(ckpt) / run / f"beta={float(beta):g}"


def load_images(config, split: str) -> np.ndarray:
  """``uint8[n, H, W(, C)]``: the first ``config.num_{train,test}_images`` of ``split``."""
  n = int(config.num_train_images if split == "train" else config.num_test_images)
  return data_lib.load_images(dataset_of(config).name, config.data_dir, split,
                              config.get("data_source"), num=n)


def load_model(config, beta: float, *, key=None, train_if_missing: bool = False,
               progress: bool = False):
  """The trained VAE of ``beta`` (trains or resumes it if ``train_if_missing``).

  Returns ``(model, train_seconds)``; ``train_seconds`` is 0 when the final
  checkpoint already existed. With ``config.train.joint_betas`` the models of
  every β of ``config.betas`` that is not trained yet are trained together
  (:func:`lcoupling.compression.train.train_betas`, one vmapped model). Raises
  ``FileNotFoundError`` naming the directory and the command when it is
  missing and ``train_if_missing`` is false.
  """
  tcfg = train_config(config, beta)
  workdir = train_workdir(config, beta)
  epochs = int(tcfg.epochs)
  if train_lib.is_trained(workdir, epochs):
    return train_lib.load_trained(workdir, tcfg, epoch=epochs), 0.0
  if not train_if_missing:
    raise FileNotFoundError(
        f"{workdir}: no VAE trained for beta={beta:g}; run the study first "
        f"(python -m experiments.run --config {dataset_of(config).name}[:quick] --workdir DIR) "
        f"and pass the same --workdir DIR (or the same config.checkpoint_dir), or pass --train")
  if key is None:
    key = jax.random.key(config.seed, impl=config.prng_impl)
  t0 = time.perf_counter()
  images = load_images(config, "train")
  betas = [float(beta)]
  if bool(config.train.get("joint_betas", False)):
    betas += [float(b) for b in config.betas if float(b) != float(beta)
              and not train_lib.is_trained(train_workdir(config, b), epochs)]
  models = train_lib.train_betas(jax.random.fold_in(key, TRAIN_STREAM), tcfg, betas, images,
                                 [train_workdir(config, b) for b in betas], progress=progress)
  return models[0], time.perf_counter() - t0


def train_mean_source(config) -> np.ndarray:
  """``float64[*source_shape]``: the mean right half of the training images, in ``[-1, 1]``."""
  images = load_images(config, "train")
  return np.asarray(data_lib.source_of(images), np.float64).mean(0)


# --------------------------------------------------------------------------
# The study interface.
# --------------------------------------------------------------------------


def validate(config) -> None:
  """Raises ``ValueError`` naming the config field for any bad value."""
  ds = dataset_of(config)
  geometry = data_lib.geometry_of(ds.image_shape)
  for f in ("data_dir", "checkpoint_dir"):
    need(isinstance(config.get(f), str) and config.get(f),
          f"config.{f} must be a non-empty string, got {config.get(f)!r}")
  need(config.get("data_source") in ds.sources,
        f"config.data_source must be one of {ds.sources} for {ds.name}, got {config.get('data_source')!r}")
  for f, split in (("num_train_images", "train"), ("num_test_images", "test")):
    v, hi = config.get(f), ds.split_sizes[split]
    need(is_int(v) and 0 <= v <= hi, f"config.{f} must be an int in 0..{hi} (0 = all), got {v!r}")
  c = config.get("crop_size")
  need(is_int(c) and 1 <= c <= geometry.max_crop,
        f"config.crop_size must be an int in 1..{geometry.max_crop}, got {c!r}")
  betas = tuple(config.get("betas") or ())
  need(len(betas) >= 1, "config.betas must not be empty")
  for b in betas:
    need(is_number(b) and math.isfinite(b) and b >= 0, f"config.betas: values must be finite and >= 0, got {b!r}")
  need(len(set(betas)) == len(betas), f"config.betas has duplicates: {betas}")
  grid = tuple(config.get("num_codewords_grid") or ())
  need(len(grid) >= 1, "config.num_codewords_grid (N values) must not be empty")
  for n in grid:
    need(is_int(n) and n >= 1, f"config.num_codewords_grid: every N must be an int >= 1, got {n!r}")
  need(len(set(grid)) == len(grid), f"config.num_codewords_grid has duplicates: {grid}")
  rates = codec.check_rates(config.get("num_bins"), "config.num_bins")
  for f in ("num_decoders", "num_repeats", "chunk_size"):
    v = config.get(f)
    need(is_int(v) and v >= 1, f"config.{f} must be an int >= 1, got {v!r}")
  need(is_int(config.get("num_examples")) and config.num_examples >= 0,
        f"config.num_examples must be an int >= 0, got {config.get('num_examples')!r}")
  need(config.get("example_num_bins") in rates,
        f"config.example_num_bins must be one of config.num_bins {rates}, got "
        f"{config.get('example_num_bins')!r}")
  need(config.get("fixed_num_codewords") in grid,
        f"config.fixed_num_codewords must be in config.num_codewords_grid {grid}, got "
        f"{config.get('fixed_num_codewords')!r}")
  need(config.get("fixed_beta") in betas,
        f"config.fixed_beta must be in config.betas {betas}, got {config.get('fixed_beta')!r}")
  check_choice(config, "prng_impl", ("threefry2x32", "rbg", "unsafe_rbg"))
  need("train" in config, "config.train (the VAE training fields) is required")
  jb = config.train.get("joint_betas", False)
  need(isinstance(jb, bool), f"config.train.joint_betas must be a bool, got {jb!r}")
  try:
    train_lib.validate_config(train_config(config, betas[0]))
  except TypeError as e:
    raise ValueError(str(e).replace("config.", "config.train.", 1)) from e
  except ValueError as e:
    msg = str(e)
    if msg.startswith("config.") and not msg.startswith(("config.crop_size", "config.beta")):
      msg = "config.train." + msg[len("config."):]
    raise ValueError(msg) from e


def _training_record(config, beta, train_seconds, eval_seconds, load_seconds, n, reps):
  epochs = train_lib.read_metrics(train_workdir(config, beta))
  rec = {"kind": "training", "beta": float(beta), "epoch": [int(e["epoch"]) + 1 for e in epochs]}
  for f in ("loss", "vae", "kl", "est_bce", "est_acc", "seconds"):
    rec[f] = [float(e[f]) if e.get(f) is not None else None for e in epochs]
  rec["mse_pm1"] = [float(e["mse"]) if e.get("mse") is not None else None for e in epochs]
  rec["mse"] = [None if v is None else v * PM1_TO_01 for v in rec["mse_pm1"]]
  ds = dataset_of(config)
  rec.update(train_seconds=train_seconds, eval_seconds=eval_seconds, load_seconds=load_seconds,
             trials_per_second=n * reps / max(eval_seconds, 1e-9),
             num_train_images=int(config.num_train_images) or ds.split_sizes["train"])
  return rec


def run_point(key, config, point, *, mesh=None, progress=False):
  """One β: train (or resume / load) its VAE, then evaluate every cell on the test images.

  ``point = {"beta": b}``. Returns ``kind = "cell"`` records (one per ``(N,
  scheme, K, L_max)`` with per-repeat means ``*_repeats``; squared errors on
  ``[0, 1]`` pixels, and ``*_pm1_repeats`` on ``[-1, 1]``), one ``"training"``
  record (per-epoch metrics), one ``"reference"`` record (zero-rate MSEs,
  :func:`~.evaluation.reference_record`) and one ``"examples"`` record.
  """
  validate(config)
  beta = float(point["beta"])
  need(math.isfinite(beta) and beta >= 0, f"sweep point beta must be finite and >= 0, got {beta!r}")
  t0 = time.perf_counter()
  model, train_seconds = load_model(config, beta, key=key, train_if_missing=True, progress=progress)
  images = load_images(config, "test")
  n = int(images.shape[0])
  reps = int(config.num_repeats)
  bar = parallel.progress_bar(n * reps, f"{config.name} beta={beta:g} eval", enabled=bool(progress))
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
                 "rate_bits": math.log2(lm), "crop_size": int(config.crop_size),
                 "num_test_images": n, "num_repeats": reps}
          for f in METRICS:
            values = [float(v) for v in ev[f][:, gi, si, ki, ri]]
            if f.startswith("mse"):
              rec[f + "_repeats"] = [v * PM1_TO_01 for v in values]  # exact: a power of two
              rec[f + "_pm1_repeats"] = values
            else:
              rec[f + "_repeats"] = values
          records.append(rec)
  records.append(_training_record(config, beta, train_seconds, t2 - t1, t1 - t0 - train_seconds, n,
                                  reps))
  records.append(reference_record(key, config, model, images, train_mean_source(config), beta,
                                  mesh=mesh))
  if int(config.num_examples) > 0:
    records.append(example_record(key, config, model, images, beta, mesh=mesh))
  return records


def _select_key(r):
  return (r["mse_best"], r["N"], r["beta"])


def summarize(config, point_records):
  """Mean ± SEM over repeats per ``(β, N, scheme, K, L_max)``, the per-cell selection.

  ``selected`` marks, per ``(scheme, K, L_max)``, the ``(N, β)`` with the lowest
  best-of-K MSE (ties: smaller ``N``, then smaller β); ``fixed_slice`` marks
  ``N = config.fixed_num_codewords, β = config.fixed_beta``. The training,
  reference and example records pass through unchanged.
  """
  anchor = report.paper_anchor(dataset_of(config).name)
  cells, extra = [], []
  for recs in point_records:
    for r in recs:
      (cells if r.get("kind", "cell") == "cell" else extra).append(r)
  out = []
  for r in cells:
    rec = {k: r[k] for k in ("kind", "scheme", "K", "L_max", "rate_bits", "N", "beta")}
    rec["crop_size"] = r.get("crop_size", int(config.crop_size))
    for f in _SUMMARY:
      if f + "_repeats" in r:
        rec[f], rec[f + "_sem"] = common.mean_sem(np.asarray(r[f + "_repeats"], np.float64))
    rec["num_repeats"] = r["num_repeats"]
    rec["num_test_images"] = r["num_test_images"]
    rec["fixed_slice"] = bool(r["N"] == config.fixed_num_codewords
                              and float(r["beta"]) == float(config.fixed_beta))
    rec["selected"] = False
    if anchor and r["K"] == 1 and r["L_max"] in anchor:
      rec["paper_mse_k1"] = anchor[r["L_max"]]
    out.append(rec)
  groups: dict = {}
  for rec in out:
    groups.setdefault((rec["scheme"], rec["K"], rec["L_max"]), []).append(rec)
  for rs in groups.values():
    min(rs, key=_select_key)["selected"] = True
  out.sort(key=lambda r: (SCHEME_NAMES.index(r["scheme"]), r["K"], r["L_max"], r["N"], r["beta"]))
  extra.sort(key=lambda r: (r["kind"], r["beta"]))
  return out + extra
