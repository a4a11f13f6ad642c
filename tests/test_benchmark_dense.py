# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""benchmarks/dense.py: every variant computes the same pass, and the table prints."""

from __future__ import annotations

import importlib.util
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

_PATH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "dense.py"
_spec = importlib.util.spec_from_file_location("bench_dense", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_variants_agree_and_the_table_prints(capsys):
  layers = bench.weights(1)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, bench.D)), jnp.bfloat16)
  ref = np.asarray(bench.forward(bench.VARIANTS["dense"])(layers, x), np.float32)
  for name in ("xla", "min2", "pad16", "pairs", "wxt", "reduce"):
    got = np.asarray(bench.forward(bench.VARIANTS[name])(layers, x), np.float32)
    np.testing.assert_allclose(got, ref, rtol=2e-2, atol=2e-2, err_msg=name)
  bench.main(["--layers", "1", "--rows", "1,3", "--variants", "dense,pairs", "--reps", "1"])
  out = capsys.readouterr().out
  assert "| variant | M = 1 | M = 3 |" in out
  assert [line.count("x)") for line in out.splitlines() if line.startswith(("| dense", "| pairs"))] == [2, 2]
  with pytest.raises(SystemExit):
    bench.main(["--variants", "dense,nope"])
