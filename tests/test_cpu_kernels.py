# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
"""lcoupling.lm.cpu_kernels: the matrix product (AMX and AVX512-BF16) and the embedding gather (XLA FFI).

The product is checked against float64 within the worst-case bound of a float32 sum of K
products (each exact in float32: bfloat16 has 8 significant bits), |y - y*| <= gamma_K
sum_k |x_k w_k| with gamma_K = K u / (1 - K u), u = 2^-24 (Higham, Accuracy and Stability of
Numerical Algorithms, eq. 3.5); and for batch invariance: a row's result does not depend on
the rows beside it. Each test of the product runs once per instruction set (``isa``) and skips,
saying so, where the CPU lacks it (a Sapphire Rapids Xeon has both, an AMD Zen 4 only
AVX512-BF16; with neither, ``dense`` uses XLA's product, which the rest of the suite tests).
"""

from __future__ import annotations

import functools
import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcoupling.lm import cpu_kernels
from lcoupling.lm.model import dense, embed_lookup

needs_matmul = pytest.mark.skipif(not cpu_kernels.matmul_isas(), reason="this CPU has neither "
                                  "AMX-BF16 nor AVX512-BF16: lcoupling.lm.cpu_kernels.matmul_isas() is ()")
needs_build = pytest.mark.skipif(not cpu_kernels.built(), reason="no x86-64 Linux C++ compiler: "
                                 "lcoupling.lm.cpu_kernels.built() is False")


def _needs(isa):
  if isa not in cpu_kernels.matmul_isas():
    pytest.skip(f"this CPU cannot run the {isa} kernel (it has {cpu_kernels.matmul_isas() or 'none'})")


def _operands(rows, n, k, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(rows, k)), jnp.bfloat16)
  w = jnp.asarray(rng.normal(size=(n, k)) / np.sqrt(k), jnp.bfloat16)
  return x, w


@pytest.mark.parametrize("isa", cpu_kernels.ISAS)
@pytest.mark.parametrize("rows", [1, 5, 8, 16, 17, 33, 48])
@pytest.mark.parametrize("n,k", [(64, 32), (192, 96), (128, 1536)])
def test_matmul_t_within_the_float32_summation_bound(rows, n, k, isa):
  _needs(isa)
  x, w = _operands(rows, n, k)
  y = np.asarray(jax.jit(functools.partial(cpu_kernels.matmul_t, isa=isa))(x, w))
  assert y.shape == (rows, n) and y.dtype == np.float32
  x64, w64 = np.asarray(x, np.float64), np.asarray(w, np.float64)
  exact = x64 @ w64.T
  u = 2.0 ** -24
  gamma = k * u / (1 - k * u)
  bound = gamma * (np.abs(x64) @ np.abs(w64).T)
  assert np.all(np.abs(y - exact) <= bound), np.max(np.abs(y - exact) - bound)


@pytest.mark.parametrize("isa", cpu_kernels.ISAS)
def test_matmul_t_rows_are_independent(isa):
  """Each row equals that row computed alone, bit for bit, whatever the rows beside it: the
  number of 16-row tiles (AMX: 1, 2 or 3) or of register groups (AVX512-BF16: 1-6 rows each)."""
  _needs(isa)
  x, w = _operands(48, 128, 256, seed=1)
  f = jax.jit(functools.partial(cpu_kernels.matmul_t, isa=isa))
  for rows in (1, 2, 3, 7, 8, 13, 16, 20, 40, 48):
    y = np.asarray(f(x[:rows], w))
    for r in {0, rows // 2, rows - 1}:
      np.testing.assert_array_equal(y[r], np.asarray(f(x[r:r + 1], w))[0], err_msg=f"{rows=} {r=}")


@pytest.mark.parametrize("rows,w,what", [
    (jnp.ones((1, 64), jnp.float32), jnp.ones((64, 64), jnp.bfloat16), "float32 rows"),
    (jnp.ones((1, 48), jnp.bfloat16), jnp.ones((64, 48), jnp.bfloat16), "K % 32"),
    (jnp.ones((1, 64), jnp.bfloat16), jnp.ones((40, 64), jnp.bfloat16), "N % 64"),
    (jnp.ones((49, 64), jnp.bfloat16), jnp.ones((64, 64), jnp.bfloat16), "49 rows"),
    (jnp.ones((0, 64), jnp.bfloat16), jnp.ones((64, 64), jnp.bfloat16), "no rows"),
])
def test_matmul_t_refuses_what_it_does_not_take(rows, w, what):
  assert not cpu_kernels.supports(rows, w), what
  with pytest.raises(ValueError, match="matmul_t: needs bfloat16 rows"):
    cpu_kernels.matmul_t(rows, w)


def test_matmul_t_refuses_an_instruction_set_it_cannot_use():
  x, w = _operands(1, 64, 32)
  with pytest.raises(ValueError, match=r"isa must be one of \('amx', 'avx512_bf16'\), got 'avx2'"):
    cpu_kernels.matmul_t(x, w, isa="avx2")
  missing = [isa for isa in cpu_kernels.ISAS if isa not in cpu_kernels.matmul_isas()]
  for isa in missing:  # e.g. "amx" on an AMD CPU
    with pytest.raises(RuntimeError, match=f"matmul_t: no {isa} kernel on this machine"):
      cpu_kernels.matmul_t(x, w, isa=isa)
  assert cpu_kernels.matmul_isa() == (cpu_kernels.matmul_isas() or (None,))[0]
  assert cpu_kernels.amx() == ("amx" in cpu_kernels.matmul_isas())


@needs_matmul
def test_dense_runs_the_kernel_for_bfloat16_rows():
  """``dense`` compiles to the kernel's custom call for 1-48 bfloat16 rows (vmapped rows
  joined), equals it, and keeps XLA's product for more rows and for float32."""
  x, w = _operands(3, 128, 64, seed=2)

  def targets(fn, *args):
    return re.findall(r'custom_call_target="(\w+)"', jax.jit(fn).lower(*args).compile().as_text())

  assert targets(dense, x, w) == ["lcoupling_bf16_matmul_t"]
  np.testing.assert_array_equal(np.asarray(dense(x, w, jnp.float32)),
                                np.asarray(cpu_kernels.matmul_t(x, w)))
  xs = x[:, None, :]  # 3 sequences of one row, vmapped: one 3-row call
  assert targets(jax.vmap(lambda v: dense(v, w)), xs) == ["lcoupling_bf16_matmul_t"]
  np.testing.assert_array_equal(np.asarray(jax.vmap(lambda v: dense(v, w, jnp.float32))(xs))[:, 0],
                                np.asarray(cpu_kernels.matmul_t(x, w)))
  assert "lcoupling_bf16_matmul_t" not in targets(dense, jnp.ones((49, 64), jnp.bfloat16), w)
  assert "lcoupling_bf16_matmul_t" not in targets(dense, x.astype(jnp.float32), w.astype(jnp.float32))


@needs_build
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_take_rows_is_take_with_clipped_ids(dtype):
  table = jnp.asarray(np.random.default_rng(3).normal(size=(97, 24)), dtype)
  ids = jnp.array([[3, 96, 0], [5, 5, 1]])
  got = jax.jit(cpu_kernels.take_rows)(table, ids)
  assert got.shape == (2, 3, 24) and got.dtype == table.dtype
  np.testing.assert_array_equal(np.asarray(got, np.float32),
                                np.asarray(jnp.take(table, ids, axis=0), np.float32))
  clipped = cpu_kernels.take_rows(table, jnp.array([-4, 97, 500]))
  np.testing.assert_array_equal(np.asarray(clipped, np.float32),
                                np.asarray(table, np.float32)[[0, 96, 96]])
  with pytest.raises(ValueError, match="table must be"):
    cpu_kernels.take_rows(table[0], ids)
  with pytest.raises(Exception, match=r"table \[V, D\] \(V >= 1\)"):  # no row to clip to
    jax.block_until_ready(cpu_kernels.take_rows(table[:0], ids))


@needs_build
def test_embedding_lookup_in_a_loop_copies_no_table():
  """In a decoding loop XLA hoisted a conversion of the bfloat16 table (to float32 for its gather,
  or the bit cast to uint16) out of the loop as a copy of the whole table on every call; the
  lookup now compiles to the kernel's gather, and nothing in the program has the table's size
  but the table itself."""
  v = 4099
  table = jnp.asarray(np.random.default_rng(4).normal(size=(v, 64)), jnp.bfloat16)

  @jax.jit
  def loop(table, ids):
    def body(i, acc):
      return acc + embed_lookup(table, (ids + i) % v).astype(jnp.float32).sum()
    return jax.lax.fori_loop(0, 3, body, 0.0)

  ids = jnp.array([[1, 4098]])
  want = sum(np.asarray(table, np.float32)[(np.array([1, 4098]) + i) % v].sum() for i in range(3))
  np.testing.assert_allclose(float(loop(table, ids)), want, rtol=1e-5)
  hlo = loop.lower(table, ids).compile().as_text()
  made = re.compile(rf"^\s*(ROOT )?%\S+ = \w+\[{v},64\]")  # an instruction whose result is table-sized
  table_sized = [line.strip()[:120] for line in hlo.splitlines() if made.match(line)
                 and not re.search(r"\b(parameter|get-tuple-element|tuple|bitcast)\(", line)]
  assert table_sized == [], table_sized
  assert 'custom_call_target="lcoupling_take_rows"' in hlo


@needs_build
def test_library_build_is_cached_and_atomic(tmp_path):
  path = cpu_kernels.compile_library(tmp_path)
  stamp = path.stat().st_mtime_ns
  assert cpu_kernels.compile_library(tmp_path) == path and path.stat().st_mtime_ns == stamp
  assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left behind


def test_without_the_kernels_the_model_uses_xla(monkeypatch, caplog):
  """No compiler (or no AMX): a warning, and ``dense`` / ``embed_lookup`` compile to XLA's own
  operations with the same results."""
  def no_compiler(out_dir=None):
    raise RuntimeError("no C++ compiler ($CXX or g++) to build lcoupling/lm/cpu_kernels.cc")

  x, w = _operands(2, 128, 64, seed=5)
  table = jnp.asarray(np.random.default_rng(6).normal(size=(33, 64)), jnp.bfloat16)
  ids = jnp.array([[0, 32, 7]])
  with_kernels = np.asarray(dense(x, w, jnp.float32)), np.asarray(embed_lookup(table, ids), np.float32)
  monkeypatch.setattr(cpu_kernels, "compile_library", no_compiler)
  cpu_kernels._library.cache_clear()
  cpu_kernels.matmul_isas.cache_clear()
  jax.clear_caches()  # traces of dense / embed_lookup made with the kernels
  try:
    with caplog.at_level(logging.WARNING, logger="lcoupling.lm.cpu_kernels"):
      assert not cpu_kernels.built() and cpu_kernels.matmul_isas() == ()
    assert "XLA's operations used instead: no C++ compiler" in caplog.text
    for fn, args in ((lambda x, w: dense(x, w, jnp.float32), (x, w)), (embed_lookup, (table, ids))):
      assert "custom_call_target" not in jax.jit(fn).lower(*args).compile().as_text()
    without = np.asarray(dense(x, w, jnp.float32)), np.asarray(embed_lookup(table, ids), np.float32)
    np.testing.assert_array_equal(without[1], with_kernels[1])
    x64, w64 = np.asarray(x, np.float64), np.asarray(w, np.float64)
    bound = 64 * 2.0 ** -24 / (1 - 64 * 2.0 ** -24) * (np.abs(x64) @ np.abs(w64).T)
    assert np.all(np.abs(without[0] - with_kernels[0]) <= 2 * bound)  # both within the bound
  finally:
    monkeypatch.undo()
    cpu_kernels._library.cache_clear()
    cpu_kernels.matmul_isas.cache_clear()
    jax.clear_caches()


@needs_matmul
def test_dense_gradients_and_vmapped_lookup_through_the_kernels():
  """Gradients of ``dense`` on the kernel's path are those of the product (the backward pass is
  XLA's), and a vmapped ``embed_lookup`` (the studies vmap whole decodes) gathers each row's ids."""
  x, w = _operands(3, 128, 64, seed=7)
  loss = lambda x, w: jnp.sum(dense(x, w, jnp.float32) ** 2)  # noqa: E731
  assert 'custom_call_target="lcoupling_bf16_matmul_t"' in jax.jit(loss).lower(x, w).compile().as_text()
  gx, gw = jax.grad(loss, argnums=(0, 1))(x, w)
  x64, w64 = np.asarray(x, np.float64), np.asarray(w, np.float64)
  y = x64 @ w64.T
  np.testing.assert_allclose(np.asarray(gx, np.float64), 2 * y @ w64, rtol=2e-2, atol=2e-2)  # bf16 out
  np.testing.assert_allclose(np.asarray(gw, np.float64), 2 * y.T @ x64, rtol=2e-2, atol=2e-2)
  table = jnp.asarray(np.random.default_rng(8).normal(size=(50, 64)), jnp.bfloat16)
  ids = jnp.array([[[1, 49]], [[0, 7]], [[3, 3]]])  # [B, 1, 2]
  got = jax.jit(jax.vmap(lambda t: embed_lookup(table, t)))(ids)
  np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(table, np.float32)[ids])
