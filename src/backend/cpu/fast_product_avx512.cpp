// Prompt-sized products over dequantized f32 rows with AVX-512, where the processor has it.
//
// The AVX2 kernels multiply a row with a token in two accumulators of 8 lanes: elements
// 16i .. 16i + 7 into the even one, 16i + 8 .. 16i + 15 into the odd one, then sum
// even + odd across lanes (float_row, fast_product_avx2.cpp). Here one 16-lane register
// holds both: lanes 0-7 are the even accumulator, 8-15 the odd one, each lane receiving
// the same multiply-adds in the same order; its two halves are added and summed as
// there. So every token's result is the same bits as on the AVX2 path, and half as many
// instructions compute it, with 32 registers for twice the tokens per row read.
//
// Compiled for every x86-64 (the functions carry the target attribute), called only
// where avx512_supported().
#include "backend/cpu/fast_product.h"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)

#include <immintrin.h>

#define BRAID_AVX512 __attribute__((target("avx512f,avx2,fma")))

namespace braid::cpu::detail {
namespace {

// Tokens per tile: the tile's activations (tokens * k floats) should stay in L1 (48 KiB
// here) while the tile runs over the rows.
constexpr int64_t kTileBytes = 36 * 1024;

BRAID_AVX512 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Rows j .. j + R - 1 (at w, k floats apart) against tokens xs[0 .. N - 1] into y[t][j + r]:
// two rows share each activation load.
template <int R, int N>
BRAID_AVX512 void row_tile(const float* w, int64_t k, const void* const* xs, float* const* y, int64_t j) {
  const float* x[N];
  __m512 acc[R][N];
  for (int t = 0; t < N; ++t) {
    x[t] = static_cast<const float*>(xs[t]);
    for (int r = 0; r < R; ++r) acc[r][t] = _mm512_setzero_ps();
  }
  for (int64_t i = 0; i < k; i += 16) {
    __m512 w16[R];
    for (int r = 0; r < R; ++r) w16[r] = _mm512_loadu_ps(w + r * k + i);
    for (int t = 0; t < N; ++t) {
      const __m512 x16 = _mm512_loadu_ps(x[t] + i);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(w16[r], x16, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < N; ++t) {
      const __m256 even = _mm512_castps512_ps256(acc[r][t]);
      const __m256 odd = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r][t]), 1));
      y[t][j + r] = horizontal_sum(_mm256_add_ps(even, odd));
    }
  }
}

// Rows [begin, end) against tokens t0 .. t0 + N - 1, two rows at a time.
template <int N>
BRAID_AVX512 void rows_tile(const float* rows, const RowProduct& p, int64_t begin, int64_t end, int t0) {
  int64_t j = begin;
  for (; j + 2 <= end; j += 2) row_tile<2, N>(rows + (j - begin) * p.k, p.k, p.x + t0, p.y + t0, j);
  if (j < end) row_tile<1, N>(rows + (j - begin) * p.k, p.k, p.x + t0, p.y + t0, j);
}

// Tiles of N tokens, then the rest.
template <int N>
BRAID_AVX512 void tiles(const float* rows, const RowProduct& p, int64_t begin, int64_t end) {
  int t0 = 0;
  for (; t0 + N <= p.n; t0 += N) rows_tile<N>(rows, p, begin, end, t0);
  switch (p.n - t0) {
    case 7: return rows_tile<7>(rows, p, begin, end, t0);
    case 6: return rows_tile<6>(rows, p, begin, end, t0);
    case 5: return rows_tile<5>(rows, p, begin, end, t0);
    case 4: return rows_tile<4>(rows, p, begin, end, t0);
    case 3: return rows_tile<3>(rows, p, begin, end, t0);
    case 2: return rows_tile<2>(rows, p, begin, end, t0);
    case 1: return rows_tile<1>(rows, p, begin, end, t0);
    default: return;
  }
}

}  // namespace

bool avx512_supported() {
  static const bool supported = [] {
    if (const char* env = std::getenv("BRAID_CPU_SIMD"); env && std::strcmp(env, "0") == 0) return false;
    __builtin_cpu_init();
    return simd_supported() && __builtin_cpu_supports("avx512f");
  }();
  return supported;
}

BRAID_AVX512 void float_rows_avx512(const float* rows, const RowProduct& p, int64_t begin, int64_t end) {
  const int64_t row_bytes = p.k * static_cast<int64_t>(sizeof(float));
  if (8 * row_bytes <= kTileBytes) return tiles<8>(rows, p, begin, end);
  if (6 * row_bytes <= kTileBytes) return tiles<6>(rows, p, begin, end);
  tiles<4>(rows, p, begin, end);
}

}  // namespace braid::cpu::detail

#else  // not x86-64

namespace braid::cpu::detail {
bool avx512_supported() { return false; }
void float_rows_avx512(const float*, const RowProduct&, int64_t, int64_t) {}
}  // namespace braid::cpu::detail

#endif
