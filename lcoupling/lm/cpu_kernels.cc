// Copyright 2026 The lcoupling Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Two XLA FFI custom calls for language-model decoding on x86-64 CPUs.
//
// lcoupling_bf16_matmul_t: y[R, N] (float32) = x[R, K] (bfloat16) times w[N, K]
// (bfloat16) transposed, for the few rows of a decode or verification step, on
// Intel AMX tiles. Such a step multiplies 1 to a few dozen rows by every weight
// matrix: the work is reading the weights once, at memory bandwidth. Each 16 x 32
// block of w is loaded as an AMX tile straight from the [N, K] layout (a strided
// tile load) and multiplied by a tile of x's rows packed in bfloat16 pairs (VNNI
// layout); products accumulate in float32 tiles, up to 48 rows of x per pass
// over w. Blocks of 16-64 rows of w are shared between the calling thread and
// tasks on XLA's intra-op thread pool (measured against threads of our own that
// spin between calls: those were 5 ms faster for one row and 10-35 ms slower for
// 4 to 40 rows of Qwen2.5-Coder-1.5B).
//
// lcoupling_take_rows: rows of an embedding table (see TakeRows).
//
// Built by lcoupling/lm/cpu_kernels.py at first use (the system's C++ compiler,
// cached by the hash of this file and jaxlib's version), which registers both;
// lcoupling_amx_supported() says whether this CPU grants AMX to the process.

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cpuid.h>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kArchReqXcompPerm = 0x1023;  // arch_prctl: request an extended state component
constexpr int kXfeatureXtiledata = 18;     // the AMX tile data component

bool CpuHasAmxBf16() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amx_bf16 = edx & (1u << 22), amx_tile = edx & (1u << 24);
  return amx_bf16 && amx_tile;
}

bool AmxGranted() {
  static const bool granted =
      CpuHasAmxBf16() && syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  return granted;
}

struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles: C (accumulators) tmm0..tmm(OB*NB-1), B (x) tmm4..tmm(3+NB), A (w) the rest.
// NB row blocks of x (16 rows each, the last `last_rows`), OB blocks of 16 rows of w.
template <int NB>
constexpr int kOutBlocks = NB == 1 ? 4 : NB == 2 ? 2 : 1;

template <int NB>
__attribute__((target("amx-tile,amx-bf16"))) void ConfigureTiles(int last_rows) {
  TileConfig cfg;
  constexpr int ob = kOutBlocks<NB>;
  for (int b = 0; b < ob; ++b)
    for (int j = 0; j < NB; ++j) {
      const int rows_j = j == NB - 1 ? last_rows : 16;
      cfg.rows[b * NB + j] = 16;
      cfg.colsb[b * NB + j] = rows_j * 4;
    }
  for (int j = 0; j < NB; ++j) {
    cfg.rows[4 + j] = 16;
    cfg.colsb[4 + j] = (j == NB - 1 ? last_rows : 16) * 4;
  }
  for (int t = 4 + NB; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
}

// The tile intrinsics are macros that paste their tile numbers into assembly: literals only.
template <int NB>
__attribute__((target("amx-tile,amx-bf16"))) void OutBlock(const uint16_t* w, const uint16_t* xp,
                                                          float* y, int64_t k_dim, int64_t n_dim,
                                                          int rows, int64_t o) {
  constexpr int ob = kOutBlocks<NB>;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  if constexpr (NB < 3) _tile_zero(3);
  const int64_t stride = k_dim * 2;
  const int64_t block_stride = 16 * k_dim;  // one row block of packed x
  for (int64_t k = 0; k < k_dim; k += 32) {
    const uint16_t* xk = xp + k * 16;  // packed: [NB][K/32][16 pairs][16 rows][2]
    const uint16_t* a = w + o * k_dim + k;
    if constexpr (NB == 1) {  // C: w blocks 0-3 x rows; B: tmm4; A: tmm5-7
      _tile_loadd(4, xk, 64);
      _tile_loadd(5, a, stride);
      _tile_dpbf16ps(0, 5, 4);
      _tile_loadd(6, a + 16 * k_dim, stride);
      _tile_dpbf16ps(1, 6, 4);
      _tile_loadd(7, a + 32 * k_dim, stride);
      _tile_dpbf16ps(2, 7, 4);
      _tile_loadd(5, a + 48 * k_dim, stride);
      _tile_dpbf16ps(3, 5, 4);
    } else if constexpr (NB == 2) {  // C: (w block, row block) 0:(0,0) 1:(0,1) 2:(1,0) 3:(1,1)
      _tile_loadd(4, xk, 64);
      _tile_loadd(5, xk + block_stride, 64);
      _tile_loadd(6, a, stride);
      _tile_dpbf16ps(0, 6, 4);
      _tile_dpbf16ps(1, 6, 5);
      _tile_loadd(7, a + 16 * k_dim, stride);
      _tile_dpbf16ps(2, 7, 4);
      _tile_dpbf16ps(3, 7, 5);
    } else {  // C: row blocks 0-2 of one w block; B: tmm4-6; A: tmm7
      _tile_loadd(4, xk, 64);
      _tile_loadd(5, xk + block_stride, 64);
      _tile_loadd(6, xk + 2 * block_stride, 64);
      _tile_loadd(7, a, stride);
      _tile_dpbf16ps(0, 7, 4);
      _tile_dpbf16ps(1, 7, 5);
      _tile_dpbf16ps(2, 7, 6);
    }
  }
  alignas(64) float c[16][16];
  for (int t = 0; t < ob * NB; ++t) {
    switch (t) {  // tile numbers must be constants
      case 0: _tile_stored(0, c, 64); break;
      case 1: _tile_stored(1, c, 64); break;
      case 2: _tile_stored(2, c, 64); break;
      case 3: _tile_stored(3, c, 64); break;
    }
    const int b = t / NB, j = t % NB;
    const int rows_j = j == NB - 1 ? rows - 16 * (NB - 1) : 16;
    for (int r = 0; r < rows_j; ++r) {
      float* yr = y + (16 * j + r) * n_dim + o + 16 * b;
      for (int i = 0; i < 16; ++i) yr[i] = c[i][r];
    }
  }
}

// Packs x[R, K] into [NB][K/32][16 pairs][16 rows][2] (rows past R are zero).
void PackRows(const uint16_t* x, int rows, int64_t k_dim, std::vector<uint16_t>& xp) {
  const int nb = (rows + 15) / 16;
  xp.assign(static_cast<size_t>(nb) * 16 * k_dim, 0);
  for (int r = 0; r < rows; ++r) {
    const uint32_t* xr = reinterpret_cast<const uint32_t*>(x + r * k_dim);  // bfloat16 pairs
    uint32_t* dst = reinterpret_cast<uint32_t*>(xp.data()) + (r / 16) * 8 * k_dim + r % 16;
    for (int64_t p = 0; p < k_dim / 2; ++p) dst[p * 16] = xr[p];  // pair p of row r
  }
}

// Work shared by the calling thread and pool tasks: blocks of w's rows taken in turn.
struct Job {
  const uint16_t* w;
  const uint16_t* xp;
  float* y;
  int64_t k_dim, n_dim;
  int rows, nb;
  int64_t num_blocks, block;
  std::atomic<int64_t> next{0}, done{0};
};

template <int NB>
__attribute__((target("amx-tile,amx-bf16"))) void RunBlocks(Job& job) {
  bool configured = false;
  for (int64_t i; (i = job.next.fetch_add(1, std::memory_order_relaxed)) < job.num_blocks;) {
    if (!configured) {
      ConfigureTiles<NB>(job.rows - 16 * (NB - 1));
      configured = true;
    }
    OutBlock<NB>(job.w, job.xp, job.y, job.k_dim, job.n_dim, job.rows, i * job.block);
    job.done.fetch_add(1, std::memory_order_acq_rel);
  }
  if (configured) _tile_release();
}

void Run(Job& job) {
  switch (job.nb) {
    case 1: RunBlocks<1>(job); break;
    case 2: RunBlocks<2>(job); break;
    default: RunBlocks<3>(job); break;
  }
}

ffi::Error MatmulT(ffi::ThreadPool pool, ffi::Buffer<ffi::BF16> x, ffi::Buffer<ffi::BF16> w,
                   ffi::ResultBuffer<ffi::F32> y) {
  const auto xd = x.dimensions(), wd = w.dimensions();
  if (xd.size() != 2 || wd.size() != 2 || xd[1] != wd[1])
    return ffi::Error::InvalidArgument("lcoupling_bf16_matmul_t: x [R, K] and w [N, K] expected");
  const int64_t rows = xd[0], k_dim = xd[1], n_dim = wd[0];
  if (rows < 1 || rows > 48 || k_dim % 32 != 0 || n_dim % 64 != 0)
    return ffi::Error::InvalidArgument(
        "lcoupling_bf16_matmul_t: needs 1 <= R <= 48, K % 32 == 0, N % 64 == 0");
  if (!AmxGranted()) return ffi::Error::Internal("lcoupling_bf16_matmul_t: AMX is not available");
  thread_local std::vector<uint16_t> xp;
  PackRows(reinterpret_cast<const uint16_t*>(x.typed_data()), static_cast<int>(rows), k_dim, xp);
  auto job = std::make_shared<Job>();
  job->w = reinterpret_cast<const uint16_t*>(w.typed_data());
  job->xp = xp.data();
  job->y = y->typed_data();
  job->k_dim = k_dim;
  job->n_dim = n_dim;
  job->rows = static_cast<int>(rows);
  job->nb = static_cast<int>((rows + 15) / 16);
  job->block = 16 * (job->nb == 1 ? 4 : job->nb == 2 ? 2 : 1);
  job->num_blocks = n_dim / job->block;
  // Below about a megabyte of weights, waking a pool thread costs more than it saves. A
  // task that starts after every block is taken returns at once (it holds the Job alive).
  if (n_dim * k_dim >= (int64_t{1} << 19))
    for (int64_t t = 1; t < std::min<int64_t>(pool.num_threads(), job->num_blocks); ++t)
      pool.Schedule([job] { Run(*job); });
  Run(*job);
  while (job->done.load(std::memory_order_acquire) < job->num_blocks) std::this_thread::yield();
  return ffi::Error::Success();
}

// out[i, :] = table[clip(index[i], 0, V - 1), :]: rows of an embedding table, copied.
// XLA's CPU backend, inside a decoding loop, hoists a conversion of a bfloat16 table
// (to float32 for its gather, or to uint16 bits) out of the loop as a copy of the
// whole table on every call; an opaque gather reads only the rows it needs.
ffi::Error TakeRows(ffi::AnyBuffer table, ffi::Buffer<ffi::S32> index,
                    ffi::Result<ffi::AnyBuffer> out) {
  const auto td = table.dimensions();
  const size_t n = index.element_count();
  if (td.size() != 2 || (td[0] == 0 && n > 0) || out->element_type() != table.element_type())
    return ffi::Error::InvalidArgument("lcoupling_take_rows: table [V, D] (V >= 1), index [n]");
  const int64_t v = td[0];
  const size_t row_bytes = td[1] * ffi::ByteWidth(table.element_type());
  if (out->size_bytes() != n * row_bytes)
    return ffi::Error::InvalidArgument("lcoupling_take_rows: out must be [n, D]");
  const auto* src = static_cast<const char*>(table.untyped_data());
  auto* dst = static_cast<char*>(out->untyped_data());
  const int32_t* idx = index.typed_data();
  for (size_t i = 0; i < n; ++i) {
    const int64_t r = std::min<int64_t>(std::max<int64_t>(idx[i], 0), v - 1);
    std::memcpy(dst + i * row_bytes, src + r * row_bytes, row_bytes);
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(LcouplingBf16MatmulT, MatmulT,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::BF16>>()
                                  .Arg<ffi::Buffer<ffi::BF16>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(LcouplingTakeRows, TakeRows,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::AnyBuffer>());

extern "C" int lcoupling_amx_supported() { return AmxGranted() ? 1 : 0; }
