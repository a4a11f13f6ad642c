# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""Tests of the image compression study (MNIST and CIFAR-10; docs/method.md §5.3) and its codec demo."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pathlib
import runpy
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from lcoupling import data as data_lib
from lcoupling import runner
from lcoupling.compression import codec as C
from lcoupling.compression import message as msg_lib
from lcoupling.compression import train as train_lib
from lcoupling.compression import vae
from lcoupling.studies import image_codec as M

REPO = pathlib.Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "data"

#: The reduced end-to-end run (a small slice of the real data): ~1 min on 2 cores.
E2E_OVERRIDES = {
    "num_train_images": 4000, "train.epochs": 1, "num_test_images": 300, "betas": (0.15,),
    "num_codewords_grid": (128,), "num_bins": (4, 16), "num_repeats": 2, "chunk_size": 150,
    "crop_size": 14, "data_dir": str(DATA_DIR),
}
TINY_WIDTHS = dict(latent_dim=4, channels=8, hidden=16, side_features=8, side_hidden=8,
                   estimator_hidden=8, dropout=0.5)


def _config_module(name="mnist"):
  spec = importlib.util.spec_from_file_location(f"{name}_config", REPO / "configs" / f"{name}.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def _have_data() -> bool:
  try:
    data_lib.load_mnist(DATA_DIR, "test[:1]")
    return True
  except data_lib.DataFileError:
    return False


needs_data = pytest.mark.skipif(not _have_data(), reason="MNIST not found: run `make data`")


def _tiny_model(crop_size=7, seed=0, image_shape=(28, 28)):
  return vae.SourceCoder(crop_size=crop_size, image_shape=image_shape, rngs=nnx.Rngs(seed),
                         **{k: v for k, v in TINY_WIDTHS.items() if k != "latent_dim"})


# --------------------------------------------------------------------------
# Config and validation.
# --------------------------------------------------------------------------


def test_config_variants_and_sweep():
  mod = _config_module()
  full = mod.get_config()
  assert tuple(full.betas) == (0.15, 0.35, 0.55, 0.75, 0.95)
  assert tuple(full.num_codewords_grid) == tuple(2**e for e in range(7, 13))
  assert tuple(full.num_bins) == (4, 8, 16, 32, 64) and full.num_decoders == 4
  assert full.num_repeats == 5 and full.num_test_images == 0 and full.num_train_images == 0
  assert full.crop_size == mod.DEFAULT_CROP and full.train.epochs == 30 and full.train.batch_size == 64
  assert full.train.learning_rate == 1e-3 and (full.train.b1, full.train.b2) == (0.9, 0.99)
  assert full.train.widths.channels == 128 and full.train.widths.latent_dim == 4
  assert (full.fixed_num_codewords, full.fixed_beta) == (128, 0.15)
  assert mod.get_sweep(full) == [{"beta": b} for b in (0.15, 0.35, 0.55, 0.75, 0.95)]
  M.validate(full)
  quick = mod.get_config("quick")
  M.validate(quick)
  assert len(quick.betas) == 2 and quick.train.widths.channels < full.train.widths.channels
  assert quick.num_test_images == 500
  other = 14 if mod.DEFAULT_CROP == 7 else 7
  assert {mod.get_config(v).crop_size for v in ("quick14", "full14", "gpu14")} == {14}
  assert mod.get_config("quick14").name != quick.name  # another run and checkpoint directory
  gpu = mod.get_config("gpu")
  M.validate(gpu)
  assert gpu.train.joint_betas and gpu.train.steps_per_call >= 937 and gpu.chunk_size >= 256
  assert (gpu.num_test_images, gpu.num_repeats, gpu.train.epochs) == (0, 5, 30)  # the paper protocol
  assert other in (7, 14)
  with pytest.raises(ValueError, match="unknown variant"):
    mod.get_config("bogus")
  cifar = _config_module("cifar10")
  for v in (None, "quick", "gpu"):
    c = cifar.get_config(v)
    M.validate(c)
    assert c.dataset == "cifar10" and c.study == "cifar10" and c.crop_size == 16
  # Checkpoints live in the run's work directory; one sweep point per beta.
  for m in (mod, cifar):
    assert {m.get_config(v).checkpoint_dir for v in (None, *m.VARIANTS)} == {"{workdir}/checkpoints"}
    assert m.SWEEP_FIELDS == ("betas",)
  assert runner.load_experiment("mnist:quick").sweep_fields == ("betas",)
  assert M.dataset_of(cifar.get_config()).image_shape == (32, 32, 3)


@pytest.mark.parametrize("field,value,match", [
    ("num_bins", (4, 6), "config.num_bins"),
    ("num_codewords_grid", (256, 512), "config.fixed_num_codewords"),
    ("betas", (0.35,), "config.fixed_beta"),
    ("betas", (), "config.betas"),
    ("crop_size", 15, "config.crop_size must be an int in 1..14"),
    ("num_decoders", 0, "config.num_decoders"),
    ("example_num_bins", 128, "config.example_num_bins"),
    ("data_source", "web", "config.data_source"),
    ("num_test_images", -1, "config.num_test_images"),
    ("dataset", "svhn", "config.dataset"),
    ("train.epochs", 0, "config.train.epochs"),
    ("train.widths.channels", 30, "config.train.widths.channels"),
    ("train.compute_dtype", "float16", "config.train.compute_dtype"),
    ("train.steps_per_call", 0, "config.train.steps_per_call"),
])
def test_validate_errors(field, value, match):
  c = _config_module().get_config("quick")
  node, *rest = field.split(".")
  if rest:
    target = c[node]
    for part in rest[:-1]:
      target = target[part]
    target[rest[-1]] = value
  else:
    c[field] = value
  with pytest.raises(ValueError, match=match):
    M.validate(c)


def test_validate_errors_cifar10():
  c = _config_module("cifar10").get_config("quick")
  c.crop_size = 17
  with pytest.raises(ValueError, match="config.crop_size must be an int in 1..16"):
    M.validate(c)
  c = _config_module("cifar10").get_config("quick")
  c.data_source = "offline"  # no offline CIFAR-10
  with pytest.raises(ValueError, match="config.data_source must be one of .'tfds',. for cifar10"):
    M.validate(c)
  c = _config_module("cifar10").get_config("quick")
  c.num_train_images = 60_000
  with pytest.raises(ValueError, match="config.num_train_images must be an int in 0..50000"):
    M.validate(c)


# --------------------------------------------------------------------------
# Log weights and the blocked trial vs the codec.
# --------------------------------------------------------------------------


def test_codebook_log_weights_match_pairwise_ones():
  model = _tiny_model()
  u = M.latent_prior(jax.random.key(1), 50)
  t = jax.random.uniform(jax.random.key(2), (7, 7), minval=-1, maxval=1)
  got = vae.codebook_log_density_ratio(model, u, t)
  ref = vae.log_density_ratio(model, u, jnp.broadcast_to(t, (50, 7, 7)))
  np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-5, atol=1e-5)
  # The encoder's weights are log N(u; mu, e^l) - log N(u; 0, I) (closed form).
  post = jnp.stack([jnp.full(4, 0.5), jnp.full(4, -1.0)])
  w = np.asarray(vae.posterior_log_weights(u, post))
  uu = np.asarray(u, np.float64)
  ref = (-0.5 * (((uu - 0.5) ** 2) / math.exp(-1.0) - 1.0).sum(1) + 0.5 * (uu ** 2).sum(1))
  np.testing.assert_allclose(w, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("image_shape,crop,k_max", [((28, 28), 7, 2), ((32, 32, 3), 16, 1)])
def test_trial_indices_equal_codec_per_cell(image_shape, crop, k_max):
  """The blocked trial == the codec run separately for every (scheme, K', rate, decoder)."""
  model = _tiny_model(crop, image_shape=image_shape)
  n, max_bins, rates = 96, 16, (4, 16)
  image = jnp.asarray(np.random.default_rng(0).integers(0, 256, image_shape), jnp.uint8)
  tkey = M.trial_key(jax.random.key(5), 0, 3)
  r = M.trial_indices(tkey, image, model, num_codewords=n, num_decoders=k_max, max_bins=max_bins,
                      rates=rates, crop_size=crop, capacity=C.bin_capacity(n, max_bins))
  _, crops, post = M.trial_inputs(tkey, image, model, num_decoders=k_max, crop_size=crop)
  assert crops.shape == (k_max, crop, crop) + image_shape[2:]
  seed = jax.random.fold_in(tkey, M.CODEC_SEED)
  dec_fn = vae.DecoderLogWeights(model.estimator)
  checked = 0
  for scheme in C.SCHEMES:
    for kp in range(1, k_max + 1):
      spec = M.codec_spec(n, kp, max_bins, scheme)
      np.testing.assert_array_equal(C.shared_randomness(seed, spec).codebook, r["codebook"])
      y, label = C.encoder_index(seed, spec, vae.posterior_log_weights, post)
      want_y = r["gls_enc"][kp - 1] if scheme == "gls" else r["bl_enc"]
      assert int(y) == int(want_y), (scheme, kp)
      for ri, lm in enumerate(rates):
        for k in range(kp):
          x = C.decoder_index(seed, spec, label, dec_fn, crops[k], num_bins=lm, decoder=k)
          want = r["gls_dec"][kp - 1, ri, k] if scheme == "gls" else r["bl_dec"][ri, k]
          assert int(x) == int(want), (scheme, kp, lm, k)
          checked += 1
  assert checked == 2 * 2 * k_max * (k_max + 1) // 2
  # K' = 1: GLS and the baseline are the same scheme.
  np.testing.assert_array_equal(r["gls_dec"][0, :, 0], r["bl_dec"][:, 0])


def test_cell_metrics_definitions():
  """best / mean / first / match of one trial against a direct NumPy computation."""
  model = _tiny_model(seed=3)
  n, k_max, rates = 64, 3, (4, 16)
  image = jnp.asarray(np.random.default_rng(1).integers(0, 256, (28, 28)), jnp.uint8)
  graphdef, state = nnx.split(model)
  out = M.trial_outputs(M.trial_key(jax.random.key(0), 0, 0), jnp.uint32(0), state, image[None],
                        graphdef=graphdef, grid=(n,), capacities=(n,), num_decoders=k_max,
                        max_bins=16, rates=rates, crop_size=7)
  r = M.trial_indices(M.trial_key(jax.random.key(0), 0, 0), image, model, num_codewords=n,
                      num_decoders=k_max, max_bins=16, rates=rates, crop_size=7, capacity=n)
  src = np.asarray(r["source"])

  def mse(idx, k):
    rec = vae.reconstruct(model, r["codebook"][idx][None], r["crops"][k][None])
    return float(((np.asarray(rec)[0] - src) ** 2).mean())

  for kp in range(1, k_max + 1):
    for ri in range(len(rates)):
      g = [mse(r["gls_dec"][kp - 1, ri, k], k) for k in range(kp)]
      b = [mse(r["bl_dec"][ri, k], k) for k in range(kp)]
      for si, v in enumerate((g, b)):
        np.testing.assert_allclose(out["mse_best"][0, si, kp - 1, ri], min(v), rtol=1e-5)
        np.testing.assert_allclose(out["mse_mean"][0, si, kp - 1, ri], np.mean(v), rtol=1e-5)
        np.testing.assert_allclose(out["mse_first"][0, si, kp - 1, ri], v[0], rtol=1e-5)
      gm = any(int(r["gls_dec"][kp - 1, ri, k]) == int(r["gls_enc"][kp - 1]) for k in range(kp))
      bm = any(int(r["bl_dec"][ri, k]) == int(r["bl_enc"]) for k in range(kp))
      assert bool(out["match_prob"][0, 0, kp - 1, ri]) == gm
      assert bool(out["match_prob"][0, 1, kp - 1, ri]) == bm


def test_reference_record_definitions():
  """Zero-rate references against a direct computation on [0, 1] pixels, image by image, in NumPy."""
  model = _tiny_model(seed=5)
  k_max, n = 3, 7
  images = np.random.default_rng(2).integers(0, 256, (n, 28, 28)).astype(np.uint8)
  train_mean = np.random.default_rng(3).uniform(-1, 1, (28, 14))
  key = jax.random.key(0)
  config = ml_collections.ConfigDict(dict(num_decoders=k_max, chunk_size=3, crop_size=7))
  ref = M.reference_record(key, config, model, images, train_mean, 0.5)
  per = np.zeros((n, k_max))
  for i in range(n):
    src, crops, _ = M.trial_inputs(M.trial_key(key, 0, i), jnp.asarray(images[i]), model,
                                   num_decoders=k_max, crop_size=7)
    for k in range(k_max):
      rec = np.asarray(vae.reconstruct(model, jnp.zeros((1, 4)), crops[k][None]))[0]
      # on [0, 1] pixels: the decoder's (v + 1) / 2 against the image's p / 255
      per[i, k] = (((rec.astype(np.float64) + 1) / 2 - images[i, :, 14:] / 255.0) ** 2).mean()
  best = np.minimum.accumulate(per, axis=1)
  np.testing.assert_allclose(ref["mse_zero_rate"], best.mean(0), rtol=1e-5)
  np.testing.assert_allclose(ref["mse_zero_rate_sem"], best.std(0, ddof=1) / np.sqrt(n), rtol=1e-4)
  want = ((images[:, :, 14:] / 255.0 - (train_mean + 1) / 2) ** 2).mean()
  np.testing.assert_allclose(ref["mse_mean_image"], want, rtol=1e-6)
  # [-1, 1] values: exactly 4 times (a power of two).
  assert ref["mse_mean_image_pm1"] == 4 * ref["mse_mean_image"]
  assert ref["mse_zero_rate_pm1"] == [4 * v for v in ref["mse_zero_rate"]]
  assert ref["kind"] == "reference" and ref["beta"] == 0.5 and ref["num_test_images"] == n
  assert ref["crop_size"] == 7


def test_summarize_selection_and_fixed_slice():
  c = _config_module().get_config("quick")  # betas (0.15, 0.55), N (128, 512)
  points = []
  for beta in (0.15, 0.55):
    recs = []
    for n in (128, 512):
      for scheme in ("gls", "baseline"):
        for k in (1, 2):
          base = 0.1 + 0.01 * k + (0.02 if beta == 0.15 else 0.0) - (0.005 if n == 512 else 0.0)
          rep = [base - 0.001, base + 0.001]
          recs.append({"kind": "cell", "beta": beta, "N": n, "scheme": scheme, "K": k, "L_max": 4,
                       "rate_bits": 2.0, "num_test_images": 10, "num_repeats": 2,
                       "mse_best_repeats": [v / 4 for v in rep], "mse_best_pm1_repeats": rep,
                       "mse_mean_repeats": [base / 4] * 2, "mse_mean_pm1_repeats": [base] * 2,
                       "mse_first_repeats": [base / 4] * 2, "mse_first_pm1_repeats": [base] * 2,
                       "match_prob_repeats": [0.5, 0.7]})
    recs.append({"kind": "training", "beta": beta, "epoch": [1], "loss": [1.0]})
    points.append(recs)
  out = M.summarize(c, points)
  cells = [r for r in out if r["kind"] == "cell"]
  assert len(cells) == 16 and sum(r["kind"] == "training" for r in out) == 2
  sel = [r for r in cells if r["selected"]]
  assert len(sel) == 4 and all(r["N"] == 512 and r["beta"] == 0.55 for r in sel)
  fixed = [r for r in cells if r["fixed_slice"]]
  assert len(fixed) == 4 and all(r["N"] == 128 and r["beta"] == 0.15 for r in fixed)
  r0 = cells[0]
  assert r0["mse_best_pm1_sem"] == pytest.approx(0.001) and r0["mse_best_sem"] == pytest.approx(0.00025)
  assert r0["match_prob"] == pytest.approx(0.6) and r0["match_prob_sem"] == pytest.approx(0.1)
  assert "paper_mse_k1" in r0 and r0["paper_mse_k1"] == M.PAPER_MSE_K1[4]
  table = M.markdown_table({"records": out})
  assert "GLS K=2" in table and "(N=512, β=0.55)" in table and "paper K=1" in table
  assert "±" in M.markdown_table({"records": out}, "mse_best", "fixed")


PRINTERS = ("toy", "gaussian", "mnist", "cifar10", "image_codec")


def _run_printer(module, path, monkeypatch):
  """``python -m lcoupling.studies.MODULE PATH`` in this process: the exit status."""
  monkeypatch.setattr(sys, "argv", [module, str(path)])
  with pytest.raises(SystemExit) as e:
    runpy.run_module(f"lcoupling.studies.{module}", run_name="__main__", alter_sys=False)
  return e.value.code


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy, imported
@pytest.mark.parametrize("study", ["toy", "gaussian", "mnist", "cifar10"])
def test_printers_refuse_results_of_another_study(study, tmp_path, capsys, monkeypatch):
  """One mechanism (studies.common.study_main) for every printer: the right one prints, every
  other one refuses with one line naming the file and the printer of those results."""
  run = tmp_path / "run"
  run.mkdir()
  res = {"schema": "lcoupling.results/1", "name": study, "meta": {"study": study, "config": {}},
         "records": []}
  (run / "results.json").write_text(json.dumps(res))
  accepts = {study} | ({"image_codec"} if study in M.STUDY_NAMES else set())
  for printer in PRINTERS:
    for path in (run, run / "results.json"):
      status = _run_printer(printer, path, monkeypatch)
      out = capsys.readouterr()
      if printer in accepts:
        assert status == 0 and not out.err, (printer, out.err)
        continue
      lines = out.err.splitlines()
      assert status == 1 and len(lines) == 1 and not out.out, (printer, out)
      assert lines[0].startswith(f"error: {run / 'results.json'} holds results of the {study!r} "
                                 f"study, not "), lines[0]
      assert lines[0].endswith(f": print them with python -m lcoupling.studies.{study} {path}")
      if printer == "image_codec":  # one printer for both image studies
        assert "not 'mnist' or 'cifar10'" in lines[0]


def test_image_printer_fields(tmp_path, capsys):
  cells = [{"kind": "cell", "scheme": s, "K": 1, "L_max": 4, "rate_bits": 2.0, "N": 128,
            "beta": 0.15, "mse_best": 0.1, "mse_best_sem": 0.01, "mse_mean": 0.2,
            "selected": True, "fixed_slice": True} for s in ("gls", "baseline")]
  res = {"schema": "lcoupling.results/1", "name": "m", "meta": {"study": "mnist", "config": {}},
         "records": cells}
  (tmp_path / "results.json").write_text(json.dumps(res))
  assert M.main([str(tmp_path), "mse_mean"]) == 0
  out = capsys.readouterr().out
  assert "mse_mean (selected):" in out and "| 4 | 2 | 0.2000 (N=128, β=0.15) |" in out
  assert M.main([str(tmp_path), "mse_maen"]) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: no record has the field 'mse_maen'") and "mse_mean" in err
  assert M.main([]) == 2
  assert "usage: python -m lcoupling.studies.image_codec" in capsys.readouterr().err


# --------------------------------------------------------------------------
# End to end (a reduced :quick run on a slice of the real data) + codec demo.
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
  if not _have_data():
    pytest.skip("MNIST not found: run `make data`")
  tmp = tmp_path_factory.mktemp("mnist_e2e")
  exp = runner.load_experiment(str(REPO / "configs" / "mnist.py") + ":quick", E2E_OVERRIDES)
  res = runner.run(exp, tmp / "run", progress=False)
  # The study's own config: checkpoint_dir = "{workdir}/checkpoints" resolved under tmp/run.
  config = runner.resolve_workdir_paths(exp.config, tmp / "run")
  return config, res, tmp


@needs_data
def test_end_to_end_quick_gls_vs_baseline(e2e, capsys):
  config, res, tmp = e2e
  assert res["meta"]["complete"]
  assert res["meta"]["config"]["checkpoint_dir"] == "{workdir}/checkpoints"  # as written
  assert config.checkpoint_dir == str((tmp / "run" / "checkpoints").resolve())
  assert train_lib.is_trained(M.train_workdir(config, 0.15), 1)  # the VAE is in the workdir
  cells = [r for r in res["records"] if r["kind"] == "cell"]
  assert len(cells) == 1 * 1 * 2 * 4 * 2  # beta x N x scheme x K x L_max
  for r in cells:
    for f in ("scheme", "K", "L_max", "rate_bits", "N", "beta", "mse_best", "mse_mean", "mse_first",
              "match_prob", "selected", "mse_best_sem", "match_prob_sem", "mse_best_pm1",
              "mse_best_pm1_sem", "crop_size"):
      assert f in r, f
    assert 0.0 < r["mse_best"] <= r["mse_mean"] + 1e-12 <= 1.0 and 0.0 <= r["match_prob"] <= 1.0
    for f in ("mse_best", "mse_mean", "mse_first", "mse_best_sem"):  # [0, 1] = [-1, 1] / 4, exactly
      pm1 = f.replace("_sem", "") + "_pm1" + ("_sem" if f.endswith("_sem") else "")
      assert r[f] == r[pm1] / 4, f
  cell = {(r["scheme"], r["K"], r["L_max"]): r for r in cells}
  # K = 1: GLS and the baseline are the same scheme (same key): identical numbers.
  for lm in (4, 16):
    g, b = cell["gls", 1, lm], cell["baseline", 1, lm]
    for f in ("mse_best", "mse_mean", "mse_first", "match_prob", "mse_best_sem"):
      assert g[f] == b[f], (lm, f)
  # K = 4 at the lowest rate: GLS's best-of-K MSE is below the baseline's.
  g, b = cell["gls", 4, 4], cell["baseline", 4, 4]
  assert g["mse_best"] < b["mse_best"], (g["mse_best"], b["mse_best"])
  assert g["match_prob"] > b["match_prob"]
  assert all(r["mse_best"] <= r["mse_first"] + 1e-12 for r in cells)
  kinds = {r["kind"] for r in res["records"]}
  assert kinds == {"cell", "training", "examples", "reference"}
  # Zero-rate references: the mean training right half, recomputed here on [0, 1] pixels in
  # NumPy, and the decoder at w = 0 (best of the first K' decoders: non-increasing in K').
  ref = next(r for r in res["records"] if r["kind"] == "reference")
  train = data_lib.load_mnist(DATA_DIR, f"train[:{config.num_train_images}]")[0]
  test = data_lib.load_mnist(DATA_DIR, f"test[:{config.num_test_images}]")[0]
  unit = lambda x: x[:, :, 14:].astype(np.float64) / 255.0  # noqa: E731
  want = np.mean((unit(test) - unit(train).mean(0)) ** 2)
  np.testing.assert_allclose(ref["mse_mean_image"], want, rtol=1e-5)
  zr = ref["mse_zero_rate"]
  assert len(zr) == 4 and all(a >= b for a, b in zip(zr, zr[1:])) and 0 < zr[-1] < 1
  assert "mean image" in M.reference_table(res)
  tr = next(r for r in res["records"] if r["kind"] == "training")
  assert tr["mse"] == [v / 4 for v in tr["mse_pm1"]] and len(tr["epoch"]) == 1
  ex = next(r for r in res["records"] if r["kind"] == "examples")
  assert len(ex["examples"]) == 6
  e0 = ex["examples"][0]
  assert M.decode_hex(e0["image"], (28, 28)).shape == (28, 28)
  assert M.decode_hex(e0["gls"]["recon"], tuple(ex["recon_shape"])).shape == (4, 28, 14)
  figs = sorted(p.name for p in (tmp / "run" / "figures").glob("*.png"))
  assert figs == ["mnist_examples.png", "mnist_rd.png", "mnist_rd_decoders.png", "mnist_training.png"]
  assert "GLS K=4" in M.markdown_table(res)
  assert M.main([str(tmp / "run")]) == 0
  assert "zero-rate references" in capsys.readouterr().out


@needs_data
def test_codec_demo_cli_round_trip(e2e, capsys):
  config, res, tmp = e2e
  out = tmp / "demo"
  args = [sys.executable, "-m", "experiments.mnist_codec", "--config=mnist:quick",
          f"--workdir={tmp / 'run'}", f"--out_dir={out}", "--num_bins=16", "--num_decoders=4",
          "--image_index=0"]
  for k, v in E2E_OVERRIDES.items():
    if isinstance(v, tuple):
      v = "(" + ",".join(str(x) for x in v) + ",)"
    args.append(f"--config.{k}={v}")
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
  proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  data = (out / "message.bin").read_bytes()
  header, payload = msg_lib.unpack_message(data)
  assert len(payload) == C.message_length(1, 16) == 1  # 4 bits, one byte
  assert len(data) == len(payload) + msg_lib.header_size(header)
  assert (header.num_bins, header.num_decoders, header.num_codewords, header.scheme) == (16, 4, 128, "gls")
  assert header.context["beta"] == 0.15 and header.context["image_index"] == 0
  assert (out / "codec_demo.png").stat().st_size > 1000
  s = json.loads((out / "summary.json").read_text())
  assert len(s["message_bits"]) == 4 and int(s["message_bits"], 2) == C.unpack_labels(payload, 16, 1)[0]
  assert s["payload_bytes"] == 1 and s["header_bytes"] == msg_lib.header_size(header)
  # The demo reproduces the study's trial (repeat 0, image 0) at that cell exactly.
  model, _ = M.load_model(config, 0.15)
  images, _ = data_lib.load_mnist(DATA_DIR, "test[:1]")
  r = M.trial_indices(M.trial_key(jax.random.key(config.seed), 0, 0), jnp.asarray(images[0]), model,
                      num_codewords=128, num_decoders=4, max_bins=16, rates=(16,), crop_size=14,
                      capacity=128)
  assert s["encoder_index"] == int(r["gls_enc"][3])
  assert s["decoder_index"] == [int(v) for v in r["gls_dec"][3, 0]]
  assert s["match"] == [int(v) == int(r["gls_enc"][3]) for v in r["gls_dec"][3, 0]]
  # A decoder with another L_max is refused by the command line, naming the field (its main() in
  # this process: the `python -m` entry point ran above, a second interpreter would add nothing).
  from experiments import mnist_codec  # noqa: PLC0415

  bad = [a for a in args[3:] if not a.startswith("--num_bins")] + ["--num_bins=8", "--mode=decode"]
  capsys.readouterr()
  assert mnist_codec.main(["mnist_codec", *bad]) == 1
  err = capsys.readouterr().err
  assert "message field 'num_bins' (L_max) is 16, but the decoder expects 8" in err, err[-2000:]


def _one_line_error(capsys):
  err = capsys.readouterr().err
  lines = [line for line in err.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: "), err
  return lines[0]


def test_codec_demo_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
  from experiments import mnist_codec  # noqa: PLC0415

  monkeypatch.chdir(tmp_path)  # nothing may be created here
  prog = "mnist_codec"
  out = f"--out_dir={tmp_path / 'out'}"
  # The default config keeps its VAEs in {workdir}/checkpoints: without --workdir, one line
  # naming the field and both fixes.
  assert mnist_codec.main([prog, out]) == 1
  line = _one_line_error(capsys)
  assert "config.checkpoint_dir = '{workdir}/checkpoints'" in line and "--workdir DIR" in line
  assert "--config.checkpoint_dir=PATH" in line
  # --workdir resolves it (here: no study ran there, so no VAE, named with the command).
  assert mnist_codec.main([prog, out, f"--workdir={tmp_path / 'study'}"]) == 1
  line = _one_line_error(capsys)
  assert str(tmp_path / "study" / "checkpoints" / "mnist_quick-seed0") in line
  assert "no VAE trained for beta=0.15" in line and "--workdir DIR" in line
  # An explicit checkpoint directory keeps working without --workdir.
  assert mnist_codec.main([prog, out, f"--config.checkpoint_dir={tmp_path / 'ck'}"]) == 1
  assert str(tmp_path / "ck" / "mnist_quick-seed0") in _one_line_error(capsys)
  # Usage errors: status 2, one line.
  assert mnist_codec.main([prog, "--bogus"]) == 2
  assert "Unknown command line flag 'bogus'" in _one_line_error(capsys)
  assert mnist_codec.main([prog, out, "--config.no_such_field=1"]) == 1
  assert "config.no_such_field: unknown config field" in _one_line_error(capsys)
  assert mnist_codec.main([prog, "--config=mnist:huge"]) == 1
  assert "unknown variant 'huge'" in _one_line_error(capsys)
  # A missing message file (decode) names it.
  assert mnist_codec.main([prog, out, "--mode=decode", f"--workdir={tmp_path / 'study'}"]) == 1
  assert "message.bin" in _one_line_error(capsys)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no literal {workdir} directory


# --------------------------------------------------------------------------
# Codec messages through the demo: every mismatch and corruption is refused.
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def codec_demo(e2e):
  """One message of the end-to-end run's model (K = 2, N = 128, L_max = 8, beta 0.15, image 3)."""
  from experiments import mnist_codec  # noqa: PLC0415

  config, _, tmp = e2e
  base = dict(num_bins=8, num_decoders=2, num_codewords=128, scheme="gls", beta=0.15, image_index=3)
  s = mnist_codec.run_codec(config, tmp / "enc", mode="encode", **base)
  return mnist_codec, config, base, tmp / "enc" / "message.bin", s


@needs_data
@pytest.mark.parametrize("change,field", [
    (dict(num_bins=16), "num_bins"),
    (dict(num_decoders=3), "num_decoders"),
    (dict(num_codewords=64), "num_codewords"),
    (dict(scheme="baseline"), "scheme"),
    (dict(beta=0.55), "context.beta"),
    (dict(image_index=4), "context.image_index"),
])
def test_codec_demo_refuses_a_mismatched_decoder(codec_demo, tmp_path, change, field):
  mnist_codec, config, base, path, _ = codec_demo
  with pytest.raises(msg_lib.MessageError, match=field.split(".")[-1]) as e:
    mnist_codec.run_codec(config, tmp_path, mode="decode", message_path=path, **{**base, **change})
  assert e.value.field == field
  assert not (tmp_path / "summary.json").exists()  # nothing decoded


@needs_data
def test_codec_demo_decodes_its_message_and_refuses_corruption(codec_demo, tmp_path):
  mnist_codec, config, base, path, enc = codec_demo
  s = mnist_codec.run_codec(config, tmp_path / "ok", mode="decode", message_path=path, **base)
  assert s["message_bits"] == enc["message_bits"] and len(s["decoder_index"]) == 2
  data = bytearray(path.read_bytes())
  for pos in (len(data) - 5, 6, 30):  # the payload, the L_max byte, the context
    bad = bytearray(data)
    bad[pos] ^= 0x01
    (tmp_path / "bad.bin").write_bytes(bytes(bad))
    with pytest.raises(msg_lib.MessageError, match="checksum") as e:
      mnist_codec.run_codec(config, tmp_path / "bad", mode="decode", message_path=tmp_path / "bad.bin",
                            **base)
    assert e.value.field == "checksum"
  cfg2 = ml_collections.ConfigDict(config.to_dict())
  cfg2.crop_size = 7  # the message was made with 14x14 side information
  with pytest.raises(msg_lib.MessageError, match="'crop_size' is 14, but the decoder expects 7"):
    mnist_codec.run_codec(cfg2, tmp_path / "x", mode="decode", message_path=path, **base)
