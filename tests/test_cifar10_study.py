# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""The CIFAR-10 image compression study end to end on ``tfds.testing.mock_data``.

A module of its own (split from ``test_image_codec.py``) so that
pytest-xdist can run it beside that module's end-to-end MNIST run.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from lcoupling import data as data_lib
from lcoupling import runner
from lcoupling.studies.image_codec import report

REPO = pathlib.Path(__file__).resolve().parent.parent
#: Tiny VAE widths (as in ``test_image_codec.TINY_WIDTHS``).
TINY_WIDTHS = dict(latent_dim=4, channels=8, hidden=16, side_features=8, side_hidden=8,
                   estimator_hidden=8, dropout=0.5)


# --------------------------------------------------------------------------
# CIFAR-10 end to end on tfds.testing.mock_data (no network, no TensorFlow).
# --------------------------------------------------------------------------


def test_cifar10_end_to_end_on_mock_data(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds  # noqa: PLC0415

  from lcoupling.data import loading  # noqa: PLC0415

  # mock_data serves random examples and makes download_and_prepare a no-op; the
  # check that preparing has its dependencies (TensorFlow) is what mocking replaces.
  monkeypatch.setattr(loading, "_missing_prepare_deps", lambda: [])
  overrides = {"num_train_images": 48, "num_test_images": 24, "train.epochs": 1,
               "train.batch_size": 16, "train.widths": dict(TINY_WIDTHS), "betas": (0.15,),
               "num_codewords_grid": (64,), "num_bins": (4, 16), "num_decoders": 2, "num_repeats": 1,
               "chunk_size": 12, "num_examples": 2, "fixed_num_codewords": 64,
               "data_dir": str(tmp_path / "data")}  # checkpoints: {workdir}/checkpoints
  exp = runner.load_experiment(str(REPO / "configs" / "cifar10.py") + ":quick", overrides)
  with tfds.testing.mock_data(num_examples=48, policy=tfds.testing.MockPolicy.USE_CODE):
    x, y = data_lib.load_cifar10(tmp_path / "data", "test[:5]")
    assert x.shape[1:] == (32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    res = runner.run(exp, tmp_path / "run", progress=False)
  assert res["meta"]["complete"] and res["meta"]["study"] == "cifar10"
  cells = [r for r in res["records"] if r["kind"] == "cell"]
  assert len(cells) == 2 * 2 * 2 and all(0 < r["mse_best"] <= 1 for r in cells)
  cell = {(r["scheme"], r["K"], r["L_max"]): r for r in cells}
  assert cell["gls", 1, 4]["mse_best"] == cell["baseline", 1, 4]["mse_best"]
  assert all("paper_mse_k1" not in r for r in cells)  # no CIFAR-10 anchors in the repository
  ex = next(r for r in res["records"] if r["kind"] == "examples")
  assert ex["image_shape"] == [32, 32, 3] and ex["recon_shape"] == [2, 32, 16, 3]
  tr = next(r for r in res["records"] if r["kind"] == "training")
  assert tr["num_train_images"] == 48 and len(tr["epoch"]) == 1
  figs = sorted(p.name for p in (tmp_path / "run" / "figures").glob("*.png"))
  assert figs == ["cifar10_examples.png", "cifar10_rd.png", "cifar10_rd_decoders.png",
                  "cifar10_training.png"]
  assert report.main([str(tmp_path / "run")]) == 0
  assert any((tmp_path / "run" / "checkpoints").glob("cifar10_quick-*/beta=0.15/model.json"))
  # betas is a sweep field: the finished run takes another beta (nothing computed here) and keeps
  # its point, where any other change is refused.
  more = runner.load_experiment(str(REPO / "configs" / "cifar10.py") + ":quick",
                                {**overrides, "betas": (0.15, 0.55)})
  part = runner.run(more, tmp_path / "run", progress=False, max_points=0)
  assert (part["meta"]["num_points_done"], part["meta"]["num_points"]) == (1, 2)
  assert [r for r in part["records"] if r["kind"] == "cell"] == cells
  other = runner.load_experiment(str(REPO / "configs" / "cifar10.py") + ":quick",
                                 {**overrides, "num_repeats": 2})
  with pytest.raises(ValueError, match="config.num_repeats: 1 -> 2"):
    runner.run(other, tmp_path / "run", progress=False, max_points=0)
