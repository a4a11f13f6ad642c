# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
r"""Two CPU kernels for decoding: a ``bfloat16`` matrix product and an embedding gather.

A decode or verification step multiplies 1-48 rows by every weight matrix; its
cost is reading the weights once. XLA's CPU backend streams ``bfloat16`` weights
well below memory bandwidth for so few rows (``benchmarks/dense.py``: 1.2x the
bandwidth floor on a Xeon with AMX, 2.0x on an AMD EPYC). :func:`matmul_t` does the
product on the CPU's own ``bfloat16`` instructions: Intel's AMX tiles (``"amx"``,
each 16 x 32 block of ``w [out, in]`` loaded straight from memory) or AVX512-BF16's
``vdpbf16ps`` (``"avx512_bf16"``, AMD Zen 4 and later, Intel Cooper Lake and
later; the weights prefetched into L2 ahead of use). :func:`take_rows` gathers
embedding rows, where XLA, inside a decoding loop, copies or converts the whole
``bfloat16`` table on every call (0.47 GB for Qwen2.5-Coder-1.5B).
:func:`lcoupling.lm.model.dense` and :func:`~lcoupling.lm.model.embed_lookup` use
them on the CPU when they are here.

Both are `XLA FFI <https://docs.jax.dev/en/latest/ffi.html>`_ custom calls in
``cpu_kernels.cc`` (beside this file), compiled with the system's C++ compiler
(``$CXX`` or ``g++``) at first use and cached under ``$XDG_CACHE_HOME/lcoupling``
(default ``~/.cache/lcoupling``) by the hash of the source and of jaxlib's
version, written atomically. :func:`built` is ``False`` off x86-64 Linux or
without a compiler (the reason is logged once), and :func:`matmul_isas` is empty
also where the CPU has neither instruction set (or the kernel is refused AMX); the
model then uses XLA's own operations. :func:`matmul_t` sums in ``float32`` in
another order than XLA's kernel (and each instruction set in its own): results
agree to ``float32`` rounding, not bit for bit, and every row's result is
independent of the other rows.

Example (any machine: falls back to XLA where the kernels are not here)::

  >>> import jax.numpy as jnp
  >>> x = jnp.ones((2, 64), jnp.bfloat16); w = jnp.ones((128, 64), jnp.bfloat16)
  >>> y = matmul_t(x, w) if matmul_isa() else jnp.dot(x, w.T, preferred_element_type=jnp.float32)
  >>> y.shape, y.dtype, float(y[1, 5])
  ((2, 128), dtype('float32'), 64.0)
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["amx", "built", "describe", "matmul_isa", "matmul_isas", "matmul_t", "take_rows",
           "supports", "ISAS", "MAX_ROWS"]

#: The most rows one :func:`matmul_t` takes (three 16-row tiles of x); more rows are
#: compute-bound work that XLA's own kernel does at matrix-unit speed.
MAX_ROWS = 48

_SOURCE = pathlib.Path(__file__).with_name("cpu_kernels.cc")
_MATMUL, _TAKE = "lcoupling_bf16_matmul_t", "lcoupling_take_rows"
_log = logging.getLogger(__name__)


def _cache_dir() -> pathlib.Path:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(base) / "lcoupling" / "kernels"


def _cpuinfo(field: str) -> str | None:
  """The value of the first ``field`` line of ``/proc/cpuinfo`` (``None`` without one)."""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith(field):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return None


def _cpu_flags() -> set[str]:
  return set((_cpuinfo("flags") or "").split())


def compile_library(out_dir: pathlib.Path | None = None) -> pathlib.Path:
  """Compiles ``cpu_kernels.cc`` (once per source and jaxlib version); returns the library's path.

  Raises:
    RuntimeError: no C++ compiler, or the compiler failed (its message included).
  """
  import jaxlib  # noqa: PLC0415  (its version keys the cache)

  key = hashlib.sha256(_SOURCE.read_bytes() + jaxlib.__version__.encode()).hexdigest()[:16]
  out = (out_dir or _cache_dir()) / f"cpu_kernels-{key}.so"
  if out.exists():
    return out
  compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
  if compiler is None:
    raise RuntimeError("no C++ compiler ($CXX or g++) to build lcoupling/lm/cpu_kernels.cc")
  out.parent.mkdir(parents=True, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
    tmp_out = pathlib.Path(tmp) / out.name
    cmd = [compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-pthread", "-w",
           f"-I{jax.ffi.include_dir()}", str(_SOURCE), "-o", str(tmp_out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
      raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    os.replace(tmp_out, out)  # atomic; a concurrent build writes the same bytes
  return out


@functools.cache
def _library():
  if platform.system() != "Linux" or platform.machine() != "x86_64":
    _log.info("lcoupling CPU kernels off: not x86-64 Linux")
    return None
  try:
    lib = ctypes.cdll.LoadLibrary(str(compile_library()))
  except (OSError, RuntimeError) as e:
    _log.warning("lcoupling CPU kernels off, XLA's operations used instead: %s", e)
    return None
  for name, symbol in ((_MATMUL, lib.LcouplingBf16MatmulT), (_TAKE, lib.LcouplingTakeRows)):
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(symbol), platform="cpu")
  return lib


def built() -> bool:
  """Whether the kernels are built and registered here (x86-64 Linux with a C++ compiler)."""
  return _library() is not None


#: The instruction sets :func:`matmul_t` can use, best first, and their ids in ``cpu_kernels.cc``.
ISAS = ("amx", "avx512_bf16")
_ISA_IDS = {"avx512_bf16": 1, "amx": 2}
_ISA_FLAGS = {"amx": {"amx_bf16", "amx_tile"},
              "avx512_bf16": {"avx512f", "avx512bw", "avx512_bf16"}}


@functools.cache
def matmul_isas() -> tuple[str, ...]:
  """The instruction sets :func:`matmul_t` runs with here, best first (a sub-tuple of :data:`ISAS`).

  ``"amx"``: Intel AMX-BF16 tiles (Sapphire Rapids and later), where the kernel is granted them
  (``arch_prctl``). ``"avx512_bf16"``: the ``vdpbf16ps`` instruction (AMD Zen 4 and later, Intel
  Cooper Lake and later). Empty where neither is here or the kernels are not :func:`built`.
  """
  flags = _cpu_flags()
  wanted = [isa for isa in ISAS if _ISA_FLAGS[isa] <= flags]
  if not wanted:
    _log.info("lcoupling matrix-product kernel off: this CPU has neither AMX-BF16 nor AVX512-BF16")
    return ()
  lib = _library()
  if lib is None:
    return ()
  mask = lib.lcoupling_matmul_isas()
  granted = tuple(isa for isa in wanted if mask & _ISA_IDS[isa])
  if "amx" in wanted and "amx" not in granted:
    _log.info("lcoupling AMX kernel off: the kernel refused AMX (arch_prctl)")
  return granted


def matmul_isa() -> str | None:
  """The instruction set :func:`matmul_t` uses by default here (the first of :func:`matmul_isas`).

  ``None`` where there is none.
  """
  isas = matmul_isas()
  return isas[0] if isas else None


def amx() -> bool:
  """Whether :func:`matmul_t` can run on AMX tiles here (``"amx" in matmul_isas()``)."""
  return "amx" in matmul_isas()


def describe() -> str:
  """The CPU's model name and the kernels used on it, for benchmark headers.

  For example ``"AMD EPYC; matmul_t: avx512_bf16; take_rows: on"``.
  """
  name = _cpuinfo("model name") or platform.processor() or platform.machine()
  gather = "on" if built() else "off (XLA)"
  return f"{name}; matmul_t: {matmul_isa() or 'off (XLA)'}; take_rows: {gather}"


def supports(rows: jax.Array, w: jax.Array) -> bool:
  """Whether :func:`matmul_t` takes these operands (dtypes and shapes; not whether it is built)."""
  return (rows.dtype == jnp.bfloat16 and w.dtype == jnp.bfloat16 and rows.ndim == 2
          and w.ndim == 2 and 1 <= rows.shape[0] <= MAX_ROWS and rows.shape[1] == w.shape[1]
          and w.shape[1] % 32 == 0 and w.shape[0] % 64 == 0)


def matmul_t(rows: jax.Array, w: jax.Array, *, isa: str | None = None) -> jax.Array:
  """``float32[R, N]``: ``rows [R, K]`` times ``w [N, K]`` transposed, by the CPU's bfloat16 units.

  Args:
    rows: ``bfloat16[R, K]``, ``1 <= R <=`` :data:`MAX_ROWS`, ``K`` a multiple of 32.
    w: ``bfloat16[N, K]``, ``N`` a multiple of 64.
    isa: one of :data:`ISAS`; default :func:`matmul_isa`. The two sum each row's products in
      different orders (both in ``float32``).

  Raises:
    ValueError: operands the kernel does not take (see :func:`supports`), or an unknown ``isa``.
    RuntimeError: the kernel (or that ``isa``) does not run here (see :func:`matmul_isas`).
  """
  if not supports(rows, w):
    raise ValueError(f"matmul_t: needs bfloat16 rows [R, K] (1 <= R <= {MAX_ROWS}, K % 32 == 0) "
                     f"and w [N, K] (N % 64 == 0); got rows {rows.dtype}{list(rows.shape)}, "
                     f"w {w.dtype}{list(w.shape)}")
  if isa is not None and isa not in ISAS:
    raise ValueError(f"matmul_t: isa must be one of {ISAS}, got {isa!r}")
  isa = isa or matmul_isa()
  if isa is None or isa not in matmul_isas():
    raise RuntimeError(f"matmul_t: no {isa or 'AMX or AVX512-BF16'} kernel on this machine (it "
                       f"has {matmul_isas() or 'none'}; see lcoupling.lm.cpu_kernels.matmul_isas)")
  out = jax.ShapeDtypeStruct((rows.shape[0], w.shape[0]), jnp.float32)
  return jax.ffi.ffi_call(_MATMUL, out, vmap_method="sequential")(
      rows, w, isa=np.int32(_ISA_IDS[isa]))


def take_rows(table: jax.Array, index: jax.Array) -> jax.Array:
  """``table[clip(index, 0, V - 1)]`` for a table ``[V, D]`` and integer ``index`` of any shape.

  Raises:
    ValueError: a table that is not 2-D.
    RuntimeError: the kernels are not :func:`built` here.
  """
  if table.ndim != 2:
    raise ValueError(f"take_rows: table must be [V, D], got shape {list(table.shape)}")
  if not built():
    raise RuntimeError("take_rows: the CPU kernels are not built here (see lcoupling.lm.cpu_kernels)")
  flat = index.reshape(-1).astype(jnp.int32)
  out = jax.ShapeDtypeStruct((flat.shape[0], table.shape[1]), table.dtype)
  rows = jax.ffi.ffi_call(_TAKE, out, vmap_method="sequential")(table, flat)
  return rows.reshape(*index.shape, table.shape[1])
