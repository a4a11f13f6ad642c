// Copyright 2026 The lcoupling Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Two XLA FFI custom calls for language-model decoding on x86-64 CPUs.
//
// lcoupling_bf16_matmul_t: y[R, N] (float32) = x[R, K] (bfloat16) times w[N, K]
// (bfloat16) transposed, for the 1 to 48 rows of a decode or verification step.
// Such a step multiplies a few rows by every weight matrix: the work is reading
// the weights once, at memory bandwidth. Two implementations, chosen by the `isa`
// attribute:
//  * AMX (Intel Sapphire Rapids and later): each 16 x 32 block of w is loaded as
//    an AMX tile straight from the [N, K] layout (a strided tile load) and
//    multiplied by a tile of x's rows packed in bfloat16 pairs (VNNI layout);
//    products accumulate in float32 tiles, up to 48 rows of x per pass over w.
//  * AVX512-BF16 (AMD Zen 4 and later, Intel Cooper Lake and later): vdpbf16ps on
//    512-bit registers of w's and x's rows, with w prefetched into L2 ahead of use.
// Blocks of 16-64 rows of w are shared between the calling thread and tasks on
// XLA's intra-op thread pool (measured against threads of our own that spin
// between calls: those were 5 ms faster for one row and 10-35 ms slower for 4 to
// 40 rows of Qwen2.5-Coder-1.5B with AMX).
//
// lcoupling_take_rows: rows of an embedding table (see TakeRows).
//
// Built by lcoupling/lm/cpu_kernels.py at first use (the system's C++ compiler,
// cached by the hash of this file and jaxlib's version), which registers both;
// lcoupling_matmul_isas() says which implementations run on this CPU.

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

// ---- AVX512-BF16 (AMD Zen 4 and later, Intel Cooper Lake and later) ----------------------
//
// vdpbf16ps adds to each of 16 float32 lanes the two products of a bfloat16 pair, so one
// 512-bit register of w's row n (32 consecutive k) against one of x's row r gives 16 partial
// sums of y[r, n]; they are added up at the end. NW = 8 or 4 rows of w are multiplied by
// G <= kMaxGroup rows of x at a time (NW x G accumulators in registers); for more than
// kMaxGroup rows of x the same 8 rows of w are read again from the cache. Each (r, n) has
// its own accumulator, whatever the other rows: a row's result does not depend on the rows
// beside it.

constexpr int kMaxGroup = 6;  // rows of x per register block
// Each load of w also asks for the line this many bytes further on into the L2 cache (w is
// read front to back). Without it, 4-10 rows of x took 40-90 % longer than one (the window
// of loads in flight fills with products). Qwen2.5-Coder-1.5B's projections (2.6 GB) on a
// 2-core AMD EPYC (Zen 4), one process, best of 9, 1 / 4 / 8 / 10 / 40 rows: none 76 / 107 /
// 130 / 144 / 360 ms; 16 KB 59 / 64 / 95 / 103 / 309; 32 KB 60 / 70 / 86 / 89 / 297; 64 KB
// 61 / 69 / 89 / 88 / 289; 16 KB into L1 75 / 100 / 124 / 129 / 345. Near the end of w the
// address is past the buffer: a prefetch is a hint and never faults.
constexpr int kPrefetchAhead = 32 * 1024;

bool CpuHasAvx512Bf16() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
}

// y[r0 + g, n0 + j] for g < G, j < NW: NW x G accumulators, G rows of x in registers, w's
// rows loaded one register at a time (NW x G + G + 1 of the 32 zmm registers).
template <int NW, int G>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void DotBlock(
    const uint16_t* w, const uint16_t* x, float* y, int64_t k_dim, int64_t n_dim, int r0,
    int64_t n0) {
  __m512 acc[NW][G];
#pragma GCC unroll 8
  for (int j = 0; j < NW; ++j)
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) acc[j][g] = _mm512_setzero_ps();
  const uint16_t* wj = w + n0 * k_dim;
  const uint16_t* xg = x + static_cast<int64_t>(r0) * k_dim;
  for (int64_t k = 0; k < k_dim; k += 32) {
    __m512bh xv[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g)
      xv[g] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(xg + g * k_dim + k));
#pragma GCC unroll 8
    for (int j = 0; j < NW; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(wj + j * k_dim + k) + kPrefetchAhead, _MM_HINT_T1);
      const __m512bh wv = reinterpret_cast<__m512bh>(_mm512_loadu_si512(wj + j * k_dim + k));
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) acc[j][g] = _mm512_dpbf16_ps(acc[j][g], wv, xv[g]);
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 8
    for (int j = 0; j < NW; ++j) y[(r0 + g) * n_dim + n0 + j] = _mm512_reduce_add_ps(acc[j][g]);
}

// y[r0 + g, n0 + j] for g < G, j < 8.
template <int G>
void DotGroup(const uint16_t* w, const uint16_t* x, float* y, int64_t k_dim, int64_t n_dim,
              int r0, int64_t n0) {
  if constexpr (G <= 2) {
    DotBlock<8, G>(w, x, y, k_dim, n_dim, r0, n0);
  } else {
    DotBlock<4, G>(w, x, y, k_dim, n_dim, r0, n0);
    DotBlock<4, G>(w, x, y, k_dim, n_dim, r0, n0 + 4);
  }
}

// Rows [o, o + block) of w against every row of x: 8 rows of w at a time (read again from
// the cache for each group), against groups of at most kMaxGroup rows of x of near-equal
// sizes (8 rows: 4 + 4, not 6 + 2).
void DotRows(const uint16_t* w, const uint16_t* x, float* y, int64_t k_dim, int64_t n_dim,
             int rows, int64_t o, int64_t block) {
  const int groups = (rows + kMaxGroup - 1) / kMaxGroup;
  for (int64_t n0 = o; n0 < o + block; n0 += 8)
    for (int i = 0, r0 = 0; i < groups; ++i) {
      const int size = rows / groups + (i < rows % groups ? 1 : 0);
      switch (size) {
        case 1: DotGroup<1>(w, x, y, k_dim, n_dim, r0, n0); break;
        case 2: DotGroup<2>(w, x, y, k_dim, n_dim, r0, n0); break;
        case 3: DotGroup<3>(w, x, y, k_dim, n_dim, r0, n0); break;
        case 4: DotGroup<4>(w, x, y, k_dim, n_dim, r0, n0); break;
        case 5: DotGroup<5>(w, x, y, k_dim, n_dim, r0, n0); break;
        default: DotGroup<6>(w, x, y, k_dim, n_dim, r0, n0); break;
      }
      r0 += size;
    }
}

// ---- The custom call ---------------------------------------------------------------------

constexpr int32_t kIsaAvx512Bf16 = 1, kIsaAmx = 2;  // the `isa` attribute (and bits of the mask)

int32_t IsaMask() {
  static const int32_t mask =
      (CpuHasAvx512Bf16() ? kIsaAvx512Bf16 : 0) | (AmxGranted() ? kIsaAmx : 0);
  return mask;
}

// Work shared by the calling thread and pool tasks: blocks of w's rows taken in turn.
struct Job {
  int32_t isa;
  const uint16_t* w;
  const uint16_t* x;  // AMX: x packed (PackRows); AVX512-BF16: x as given
  float* y;
  int64_t k_dim, n_dim;
  int rows, nb;
  int64_t num_blocks, block;
  std::atomic<int64_t> next{0}, done{0};
};

template <int NB>
__attribute__((target("amx-tile,amx-bf16"))) void RunAmxBlocks(Job& job) {
  bool configured = false;
  for (int64_t i; (i = job.next.fetch_add(1, std::memory_order_relaxed)) < job.num_blocks;) {
    if (!configured) {
      ConfigureTiles<NB>(job.rows - 16 * (NB - 1));
      configured = true;
    }
    OutBlock<NB>(job.w, job.x, job.y, job.k_dim, job.n_dim, job.rows, i * job.block);
    job.done.fetch_add(1, std::memory_order_acq_rel);
  }
  if (configured) _tile_release();
}

void Run(Job& job) {
  if (job.isa == kIsaAvx512Bf16) {
    for (int64_t i; (i = job.next.fetch_add(1, std::memory_order_relaxed)) < job.num_blocks;) {
      DotRows(job.w, job.x, job.y, job.k_dim, job.n_dim, job.rows, i * job.block, job.block);
      job.done.fetch_add(1, std::memory_order_acq_rel);
    }
    return;
  }
  switch (job.nb) {
    case 1: RunAmxBlocks<1>(job); break;
    case 2: RunAmxBlocks<2>(job); break;
    default: RunAmxBlocks<3>(job); break;
  }
}

ffi::Error MatmulT(ffi::ThreadPool pool, ffi::Buffer<ffi::BF16> x, ffi::Buffer<ffi::BF16> w,
                   ffi::ResultBuffer<ffi::F32> y, int32_t isa) {
  const auto xd = x.dimensions(), wd = w.dimensions();
  if (xd.size() != 2 || wd.size() != 2 || xd[1] != wd[1])
    return ffi::Error::InvalidArgument("lcoupling_bf16_matmul_t: x [R, K] and w [N, K] expected");
  const int64_t rows = xd[0], k_dim = xd[1], n_dim = wd[0];
  if (rows < 1 || rows > 48 || k_dim % 32 != 0 || n_dim % 64 != 0)
    return ffi::Error::InvalidArgument(
        "lcoupling_bf16_matmul_t: needs 1 <= R <= 48, K % 32 == 0, N % 64 == 0");
  if ((isa != kIsaAmx && isa != kIsaAvx512Bf16) || !(IsaMask() & isa))
    return ffi::Error::Internal("lcoupling_bf16_matmul_t: the requested isa does not run here");
  thread_local std::vector<uint16_t> xp;
  auto job = std::make_shared<Job>();
  job->isa = isa;
  job->w = reinterpret_cast<const uint16_t*>(w.typed_data());
  job->y = y->typed_data();
  job->k_dim = k_dim;
  job->n_dim = n_dim;
  job->rows = static_cast<int>(rows);
  job->nb = static_cast<int>((rows + 15) / 16);
  if (isa == kIsaAmx) {
    PackRows(reinterpret_cast<const uint16_t*>(x.typed_data()), job->rows, k_dim, xp);
    job->x = xp.data();
    job->block = 16 * (job->nb == 1 ? 4 : job->nb == 2 ? 2 : 1);
  } else {
    job->x = reinterpret_cast<const uint16_t*>(x.typed_data());
    job->block = 64;
  }
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
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int32_t>("isa"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(LcouplingTakeRows, TakeRows,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::AnyBuffer>());

// Bit 0: AVX512-BF16 runs here; bit 1: AMX-BF16 runs here (the CPU has it and the kernel
// granted it to this process).
extern "C" int lcoupling_matmul_isas() { return IsaMask(); }
