// The AVX2 product kernels. With int8 activations, a weight part of 32 elements is unpacked in registers to
// signed int8 (the integers of QuantDot<T>::ints, quant/dot.h), multiplied with the
// activation block by maddubs (unsigned |q| times x with q's sign, pairs summed to int16,
// no overflow: |q| <= 128, |x| <= 127) and madd (to int32, eight sums: lanes 0-3 cover
// elements 0-15, lanes 4-7 elements 16-31, the two halves of quant/dot.h). The sums are
// scaled per half and accumulated in f32. With f32 activations, the part's integers are
// widened to f32, mapped to the weights' values and multiplied with the activations by FMA. f16 weights are widened by
// F16C, bf16 by a shift.
//
// Compiled for every x86-64 (the functions carry the target attribute), called only
// where simd_supported().
#include "backend/cpu/fast_product.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>
#include <vector>

#include "braid/quant/dot.h"

#define BRAID_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace braid::cpu::detail {
namespace {

BRAID_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

BRAID_AVX2 inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Shifts every byte right by `bits` (0..7) and keeps `mask` of it.
BRAID_AVX2 inline __m256i shifted_bits(__m256i v, int bits, int mask) {
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(bits)), _mm256_set1_epi8(static_cast<char>(mask)));
}

// quant_detail::nibble32 of 16 bytes: elements 0-15 the low nibbles, 16-31 the high ones.
BRAID_AVX2 inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i low = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low), _mm_and_si128(v, low));
}

// quant_detail::bit32 of qh[4] as 0x10 in byte j where bit j is set.
BRAID_AVX2 inline __m256i fifth_bits32(const uint8_t* qh) {
  uint32_t word;
  std::memcpy(&word, qh, sizeof word);
  const __m256i spread = _mm256_shuffle_epi8(  // byte j gets qh byte j / 8
      _mm256_set1_epi32(static_cast<int>(word)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));  // byte j: 1 << j % 8
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
}

// The integers of part `part` of a block, as QuantDot<T>::ints writes them.
template <DType T>
BRAID_AVX2 inline __m256i part_ints(const typename QuantDot<T>::Block& b, int part) {
  const __m256i eight = _mm256_set1_epi8(8), sixteen = _mm256_set1_epi8(16);
  if constexpr (T == DType::Q8_0) {
    return load32(b.qs);
  } else if constexpr (T == DType::Q4_0) {
    return _mm256_sub_epi8(nibbles32(b.qs), eight);
  } else if constexpr (T == DType::Q4_1) {
    return nibbles32(b.qs);
  } else if constexpr (T == DType::Q5_0) {
    return _mm256_sub_epi8(_mm256_or_si256(nibbles32(b.qs), fifth_bits32(b.qh)), sixteen);
  } else if constexpr (T == DType::Q5_1) {
    return _mm256_or_si256(nibbles32(b.qs), fifth_bits32(b.qh));
  } else if constexpr (T == DType::Q2_K) {
    return shifted_bits(load32(b.qs + (part / 4) * 32), 2 * (part % 4), 3);
  } else if constexpr (T == DType::Q3_K) {
    const __m256i low = shifted_bits(load32(b.qs + (part / 4) * 32), 2 * (part % 4), 3);
    const __m256i high = shifted_bits(load32(b.hmask), part, 1);  // 1: no -4 offset
    return _mm256_sub_epi8(_mm256_add_epi8(low, _mm256_slli_epi16(high, 2)), _mm256_set1_epi8(4));
  } else if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    const __m256i q = shifted_bits(load32(b.qs + (part / 2) * 32), 4 * (part % 2), 0x0f);
    if constexpr (T == DType::Q4_K) {
      return q;
    } else {
      return _mm256_or_si256(q, _mm256_slli_epi16(shifted_bits(load32(b.qh), part, 1), 4));
    }
  } else {
    static_assert(T == DType::Q6_K);
    const int half = part / 4, quarter = part % 4;
    const __m256i low = shifted_bits(load32(b.ql + half * 64 + (quarter % 2) * 32), 4 * (quarter / 2), 0x0f);
    const __m256i high = shifted_bits(load32(b.qh + half * 32), 2 * quarter, 3);
    return _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(high, 4)), _mm256_set1_epi8(32));
  }
}

// QuantDot<T>::affine; the legacy formats (scale d, offset m or 0) convert their f16
// fields with F16C instead of in software.
template <DType T>
BRAID_AVX2 inline void part_affine(const typename QuantDot<T>::Block& b, int part, float* scale, float* offset) {
  if constexpr (QuantDot<T>::kParts == 1) {
    scale[0] = scale[1] = _cvtsh_ss(b.d);
    if constexpr (QuantDot<T>::kOffsets) offset[0] = offset[1] = _cvtsh_ss(b.m);
  } else {
    QuantDot<T>::affine(b, part, scale, offset);
  }
}

// Formats whose integers are never negative: maddubs takes them as they are, without the
// sign transfer that signed ones need.
template <DType T>
constexpr bool kUnsignedInts =
    T == DType::Q4_1 || T == DType::Q5_1 || T == DType::Q2_K || T == DType::Q4_K || T == DType::Q5_K;

// Row j against tokens t0 .. t0 + N - 1.
template <DType T, int N>
BRAID_AVX2 void quantized_tile(const RowProduct& p, int64_t j, int t0) {
  using D = QuantDot<T>;
  const auto* blocks = reinterpret_cast<const typename D::Block*>(p.w + static_cast<size_t>(j) * p.w_stride);
  const BlockQ8Act* x[N];
  __m256 acc[N];
  float offsets[N];
  for (int t = 0; t < N; ++t) {
    x[t] = static_cast<const BlockQ8Act*>(p.x[t0 + t]);
    acc[t] = _mm256_setzero_ps();
    offsets[t] = 0;
  }
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t parts = p.k / kQuantBlock;
  for (int64_t part = 0; part < parts; ++part) {
    const auto& block = blocks[part / D::kParts];
    const int sub = static_cast<int>(part % D::kParts);
    const __m256i q = part_ints<T>(block, sub);
    const __m256i magnitude = kUnsignedInts<T> ? q : _mm256_sign_epi8(q, q);
    float scale[2], offset[2] = {0, 0};
    part_affine<T>(block, sub, scale, offset);
    const bool one_scale = D::kParts == 1;  // the legacy formats scale all 32 alike
    const __m256 scales =
        one_scale ? _mm256_set1_ps(scale[0]) : _mm256_set_m128(_mm_set1_ps(scale[1]), _mm_set1_ps(scale[0]));
    for (int t = 0; t < N; ++t) {
      const BlockQ8Act& a = x[t][part];
      const __m256i xs = kUnsignedInts<T> ? load32(a.qs) : _mm256_sign_epi8(load32(a.qs), q);
      const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, xs), ones);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(scales, _mm256_set1_ps(a.d)), acc[t]);
      if constexpr (D::kOffsets) {
        if (one_scale) {
          offsets[t] += offset[0] * a.sum;
        } else {
          offsets[t] += offset[0] * a.half_sum[0] + offset[1] * a.half_sum[1];
        }
      }
    }
  }
  for (int t = 0; t < N; ++t) p.y[t0 + t][j] = horizontal_sum(acc[t]) + offsets[t];
}

// A part's 32 integers widened to f32 and mapped to the weights' values (scale * q +
// offset, by FMA): elements 0-7 in w[0], 8-15 in w[1], 16-23 in w[2], 24-31 in w[3].
template <DType T>
BRAID_AVX2 inline void dequantized_part(const typename QuantDot<T>::Block& block, int sub, __m256 w[4]) {
  const __m256i q = part_ints<T>(block, sub);
  float scale[2], offset[2] = {0, 0};
  part_affine<T>(block, sub, scale, offset);
  const __m256 scale0 = _mm256_set1_ps(scale[0]), scale1 = _mm256_set1_ps(scale[1]);
  const __m128i low = _mm256_castsi256_si128(q), high = _mm256_extracti128_si256(q, 1);
  w[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(low));
  w[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(low, low)));
  w[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(high));
  w[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(high, high)));
  if constexpr (QuantDot<T>::kOffsets) {
    const __m256 offset0 = _mm256_set1_ps(offset[0]), offset1 = _mm256_set1_ps(offset[1]);
    w[0] = _mm256_fmadd_ps(w[0], scale0, offset0);
    w[1] = _mm256_fmadd_ps(w[1], scale0, offset0);
    w[2] = _mm256_fmadd_ps(w[2], scale1, offset1);
    w[3] = _mm256_fmadd_ps(w[3], scale1, offset1);
  } else {
    w[0] = _mm256_mul_ps(w[0], scale0);
    w[1] = _mm256_mul_ps(w[1], scale0);
    w[2] = _mm256_mul_ps(w[2], scale1);
    w[3] = _mm256_mul_ps(w[3], scale1);
  }
}

// Row j against tokens t0 .. t0 + N - 1, f32 activations: each part dequantized once per
// tile (dequantized_part), then multiplied with each token's activations into two
// accumulators per token (even and odd groups of 8).
template <DType T, int N>
BRAID_AVX2 void dequantized_tile(const RowProduct& p, int64_t j, int t0) {
  using D = QuantDot<T>;
  const auto* blocks = reinterpret_cast<const typename D::Block*>(p.w + static_cast<size_t>(j) * p.w_stride);
  const float* x[N];
  __m256 even[N], odd[N];
  for (int t = 0; t < N; ++t) {
    x[t] = static_cast<const float*>(p.x[t0 + t]);
    even[t] = odd[t] = _mm256_setzero_ps();
  }
  const int64_t parts = p.k / kQuantBlock;
  for (int64_t part = 0; part < parts; ++part) {
    __m256 w[4];
    dequantized_part<T>(blocks[part / D::kParts], static_cast<int>(part % D::kParts), w);
    for (int t = 0; t < N; ++t) {
      const float* xp = x[t] + part * kQuantBlock;
      even[t] = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(xp), even[t]);
      odd[t] = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xp + 8), odd[t]);
      even[t] = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xp + 16), even[t]);
      odd[t] = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xp + 24), odd[t]);
    }
  }
  for (int t = 0; t < N; ++t) p.y[t0 + t][j] = horizontal_sum(_mm256_add_ps(even[t], odd[t]));
}

// Row j dequantized to f32 (dequantized_part, the same values), for products with many
// tokens: unpacking a part costs about as much as four tokens' multiply-adds on it.
template <DType T>
BRAID_AVX2 void dequantize_row(const RowProduct& p, int64_t j, float* out) {
  using D = QuantDot<T>;
  const auto* blocks = reinterpret_cast<const typename D::Block*>(p.w + static_cast<size_t>(j) * p.w_stride);
  const int64_t parts = p.k / kQuantBlock;
  for (int64_t part = 0; part < parts; ++part, out += kQuantBlock) {
    __m256 w[4];
    dequantized_part<T>(blocks[part / D::kParts], static_cast<int>(part % D::kParts), w);
    for (int i = 0; i < 4; ++i) _mm256_storeu_ps(out + 8 * i, w[i]);
  }
}

template <DType T>
BRAID_AVX2 inline __m256 load8(const uint8_t* w, int64_t i) {
  if constexpr (T == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + i);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(w) + i));
    if constexpr (T == DType::F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <DType T>
BRAID_AVX2 inline float load1(const uint8_t* w, int64_t i) {
  if constexpr (T == DType::F32) return reinterpret_cast<const float*>(w)[i];
  const uint16_t h = reinterpret_cast<const uint16_t*>(w)[i];
  if constexpr (T == DType::F16) return _cvtsh_ss(h);
  return bf16_to_f32(h);
}

// Weight row w (k elements) against the N tokens x[0 .. N - 1] into y[t][j]: two
// accumulators per token (even and odd groups of 8), then a scalar tail.
template <DType T, int N>
BRAID_AVX2 void float_row(const uint8_t* w, int64_t k, const void* const* xs, float* const* y, int64_t j) {
  const float* x[N];
  __m256 even[N], odd[N];
  for (int t = 0; t < N; ++t) {
    x[t] = static_cast<const float*>(xs[t]);
    even[t] = odd[t] = _mm256_setzero_ps();
  }
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    const __m256 w0 = load8<T>(w, i), w1 = load8<T>(w, i + 8);
    for (int t = 0; t < N; ++t) {
      even[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[t] + i), even[t]);
      odd[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[t] + i + 8), odd[t]);
    }
  }
  for (int t = 0; t < N; ++t) {
    float sum = horizontal_sum(_mm256_add_ps(even[t], odd[t]));
    for (int64_t r = i; r < k; ++r) sum += load1<T>(w, r) * x[t][r];
    y[t][j] = sum;
  }
}

template <DType T, int N>
BRAID_AVX2 void float_tile(const RowProduct& p, int64_t j, int t0) {
  float_row<T, N>(p.w + static_cast<size_t>(j) * p.w_stride, p.k, p.x + t0, p.y + t0, j);
}

// Tiles of four tokens over the rows given, then the remaining one to three tokens.
template <template <DType, int> class Tile, DType T>
BRAID_AVX2 void tiled_rows(const RowProduct& p, int64_t begin, int64_t end) {
  int t0 = 0;
  for (; t0 + 4 <= p.n; t0 += 4) {
    for (int64_t j = begin; j < end; ++j) Tile<T, 4>::run(p, j, t0);
  }
  const int rest = p.n - t0;
  for (int64_t j = begin; j < end; ++j) {
    if (rest == 3) Tile<T, 3>::run(p, j, t0);
    if (rest == 2) Tile<T, 2>::run(p, j, t0);
    if (rest == 1) Tile<T, 1>::run(p, j, t0);
  }
}

// Products with at least this many tokens dequantize their rows once (dequantize_row)
// rather than once per tile of tokens.
constexpr int kTokensToDequantizeOnce = 8;
// Tokens per tile over dequantized rows: two accumulators per token and the row's two
// groups of 8 take 14 of AVX2's 16 registers.
constexpr int kWideTile = 6;

// Quantized weights, f32 activations. For many tokens the rows are dequantized once into
// a buffer and multiplied as f32 rows (float_row): the values and the order of the
// multiply-adds are those of dequantized_tile (element i of a part in group i / 8, groups
// alternating between the even and odd accumulators), so every token's result is the
// same bits whichever way its product runs.
template <template <DType, int> class Tile, DType T, bool kAvx512>
BRAID_AVX2 void dequantized_rows(const RowProduct& p, int64_t begin, int64_t end) {
  if (p.n < kTokensToDequantizeOnce) return tiled_rows<Tile, T>(p, begin, end);
  thread_local std::vector<float> rows;
  rows.resize(static_cast<size_t>((end - begin) * p.k));
  for (int64_t j = begin; j < end; ++j) dequantize_row<T>(p, j, rows.data() + (j - begin) * p.k);
  if (kAvx512) return float_rows_avx512(rows.data(), p, begin, end);
  auto row = [&](int64_t j) { return reinterpret_cast<const uint8_t*>(rows.data() + (j - begin) * p.k); };
  int t0 = 0;
  for (; t0 + kWideTile <= p.n; t0 += kWideTile) {
    for (int64_t j = begin; j < end; ++j) float_row<DType::F32, kWideTile>(row(j), p.k, p.x + t0, p.y + t0, j);
  }
  const int rest = p.n - t0;
  for (int64_t j = begin; j < end; ++j) {
    const uint8_t* w = row(j);
    switch (rest) {
      case 5: float_row<DType::F32, 5>(w, p.k, p.x + t0, p.y + t0, j); break;
      case 4: float_row<DType::F32, 4>(w, p.k, p.x + t0, p.y + t0, j); break;
      case 3: float_row<DType::F32, 3>(w, p.k, p.x + t0, p.y + t0, j); break;
      case 2: float_row<DType::F32, 2>(w, p.k, p.x + t0, p.y + t0, j); break;
      case 1: float_row<DType::F32, 1>(w, p.k, p.x + t0, p.y + t0, j); break;
      default: break;
    }
  }
}

template <DType T, int N>
struct QuantizedTile {
  BRAID_AVX2 static void run(const RowProduct& p, int64_t j, int t0) { quantized_tile<T, N>(p, j, t0); }
};
template <DType T, int N>
struct DequantizedTile {
  BRAID_AVX2 static void run(const RowProduct& p, int64_t j, int t0) { dequantized_tile<T, N>(p, j, t0); }
};
template <DType T, int N>
struct FloatTile {
  BRAID_AVX2 static void run(const RowProduct& p, int64_t j, int t0) { float_tile<T, N>(p, j, t0); }
};

}  // namespace

BRAID_AVX2 float dot_f32_avx2(const float* a, const float* b, int64_t n) {
  __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    even = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), even);
    odd = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), odd);
  }
  float sum = horizontal_sum(_mm256_add_ps(even, odd));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

BRAID_AVX2 inline int sum8(__m256i s) {
  __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
  return _mm_cvtsi128_si32(h);
}

// quantize_activations (quant/dot.h), the same roundings: x * (127 / max |x|) rounded to
// nearest even (the default rounding mode of cvtps), scales rounded to f16 by F16C.
BRAID_AVX2 void quantize_activations_avx2(const float* x, BlockQ8Act* out, int64_t k) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < k / kQuantBlock; ++b, x += kQuantBlock) {
    __m256 v[4];
    __m256 largest = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + 8 * i);
      largest = _mm256_max_ps(largest, _mm256_andnot_ps(sign, v[i]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(largest), _mm256_extractf128_ps(largest, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    const float d = amax / 127.0f;
    const __m256 inverse = _mm256_set1_ps(amax != 0 ? 127.0f / amax : 0.0f);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inverse));
    const __m256i low = _mm256_add_epi32(q[0], q[1]), high = _mm256_add_epi32(q[2], q[3]);
    // packs interleave the 128-bit lanes; the permutation puts the 32 bytes in order.
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs),
                        _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    const int low_sum = sum8(low), high_sum = sum8(high);
    const float d16 = _cvtsh_ss(_cvtss_sh(d, 0));
    out[b].d = d16;
    out[b].sum = _cvtsh_ss(_cvtss_sh(d * static_cast<float>(low_sum + high_sum), 0));
    out[b].half_sum[0] = d16 * static_cast<float>(low_sum);
    out[b].half_sum[1] = d16 * static_cast<float>(high_sum);
  }
}

BRAID_AVX2 void axpy_f32_avx2(float* y, float a, const float* x, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

// The quantized kernel of f32 activations: the AVX-512 product over dequantized rows where
// asked for and supported, else the AVX2 one.
template <DType T>
ProductKernel dequantizing(bool avx512) {
  return avx512 && avx512_supported() ? dequantized_rows<DequantizedTile, T, true> : dequantized_rows<DequantizedTile, T, false>;
}

ProductKernel avx2_product_kernel(DType type, bool int8_activations, bool avx512) {
  if (!int8_activations) {
    switch (type) {
      case DType::Q8_0: return dequantizing<DType::Q8_0>(avx512);
      case DType::Q4_0: return dequantizing<DType::Q4_0>(avx512);
      case DType::Q4_1: return dequantizing<DType::Q4_1>(avx512);
      case DType::Q5_0: return dequantizing<DType::Q5_0>(avx512);
      case DType::Q5_1: return dequantizing<DType::Q5_1>(avx512);
      case DType::Q2_K: return dequantizing<DType::Q2_K>(avx512);
      case DType::Q3_K: return dequantizing<DType::Q3_K>(avx512);
      case DType::Q4_K: return dequantizing<DType::Q4_K>(avx512);
      case DType::Q5_K: return dequantizing<DType::Q5_K>(avx512);
      case DType::Q6_K: return dequantizing<DType::Q6_K>(avx512);
      default: break;
    }
  }
  switch (type) {
    case DType::F32: return tiled_rows<FloatTile, DType::F32>;
    case DType::F16: return tiled_rows<FloatTile, DType::F16>;
    case DType::BF16: return tiled_rows<FloatTile, DType::BF16>;
    case DType::Q8_0: return tiled_rows<QuantizedTile, DType::Q8_0>;
    case DType::Q4_0: return tiled_rows<QuantizedTile, DType::Q4_0>;
    case DType::Q4_1: return tiled_rows<QuantizedTile, DType::Q4_1>;
    case DType::Q5_0: return tiled_rows<QuantizedTile, DType::Q5_0>;
    case DType::Q5_1: return tiled_rows<QuantizedTile, DType::Q5_1>;
    case DType::Q2_K: return tiled_rows<QuantizedTile, DType::Q2_K>;
    case DType::Q3_K: return tiled_rows<QuantizedTile, DType::Q3_K>;
    case DType::Q4_K: return tiled_rows<QuantizedTile, DType::Q4_K>;
    case DType::Q5_K: return tiled_rows<QuantizedTile, DType::Q5_K>;
    case DType::Q6_K: return tiled_rows<QuantizedTile, DType::Q6_K>;
    case DType::I32: break;
  }
  return nullptr;
}

}  // namespace braid::cpu::detail

#else  // not x86-64: only the portable kernels

#include "braid/quant/dot.h"

namespace braid::cpu::detail {
ProductKernel avx2_product_kernel(DType, bool, bool) { return nullptr; }
float dot_f32_avx2(const float* a, const float* b, int64_t n) { return dot_f32_scalar(a, b, n); }
void axpy_f32_avx2(float* y, float a, const float* x, int64_t n) { axpy_f32_scalar(y, a, x, n); }
void quantize_activations_avx2(const float* x, BlockQ8Act* out, int64_t k) { quantize_activations(x, out, k); }
}  // namespace braid::cpu::detail

#endif
