// Integer dot products between quantized weights and quantized activations, as ggml's CPU
// path computes them: the activation row is rounded once per product to int8 blocks of 32
// (BlockQ8Act), and every weight format is seen in units of 32 elements ("parts", the
// unit of dequantize_part) as
//
//     value[i] = scale[i / 16] * q[i] + offset[i / 16],   q[i] a small signed integer,
//
// two halves of 16 because Q2_K, Q3_K and Q6_K scale every 16 elements. The dot product
// of a weight part with an activation block (x[i] ~ d * xq[i]) is then
//
//     d * (scale[0] * sum_lo(q * xq) + scale[1] * sum_hi(q * xq)) + offset[0] * s[0] + offset[1] * s[1]
//
// with s[h] = d * sum of xq over half h, stored in the activation block (the legacy
// formats, whose two offsets are one, use the whole block's sum instead, as ggml does). The integer sums
// are what SIMD code computes (src/backend/cpu/fast_dot_avx2.cpp); QuantDot<T>::ints is the
// portable unpacking it must equal, and both use QuantDot<T>::affine for the scales, which
// decode the same bits as quant/dequantize.h (tests/quant_dot_test.cpp checks that
// scale * q + offset reproduces QuantFormat<T>::element).
#pragma once

#include <cmath>
#include <cstdint>

#include "braid/quant/dequantize.h"

namespace braid {

// One block of 32 activations rounded to int8: x[i] ~ d * qs[i], |qs[i]| <= 127. As in
// ggml's Q8_0 / Q8_1 blocks, the scale is rounded to f16 while the integers are rounded
// with the exact scale, so that the products equal ggml's CPU results (see
// quantize_activations).
struct BlockQ8Act {
  float d;            // an f16 value
  float sum;          // ggml's Q8_1 s: f16(exact d * (qs[0] + ... + qs[31]))
  float half_sum[2];  // d * (qs[0] + ... + qs[15]), d * (qs[16] + ... + qs[31])
  int8_t qs[kQuantBlock];
};

// Rounds k floats (k a multiple of 32) to k / 32 activation blocks, one scale per block:
// max |x| / 127 stored as f16, and x * (127 / max |x|) rounded to nearest even: ggml's
// quantize_row_q8_0 / q8_1 (AVX2 version), whose integer sums its dot products use.
inline void quantize_activations(const float* x, BlockQ8Act* out, int64_t k) {
  for (int64_t b = 0; b < k / kQuantBlock; ++b, x += kQuantBlock) {
    float amax = 0;
    for (int i = 0; i < kQuantBlock; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float inverse = amax != 0 ? 127.0f / amax : 0.0f;
    int sums[2] = {0, 0};
    for (int i = 0; i < kQuantBlock; ++i) {
      const int q = static_cast<int>(std::nearbyint(x[i] * inverse));
      out[b].qs[i] = static_cast<int8_t>(q);
      sums[i / 16] += q;
    }
    out[b].d = f16_to_f32(f32_to_f16(d));
    out[b].sum = f16_to_f32(f32_to_f16(d * static_cast<float>(sums[0] + sums[1])));
    out[b].half_sum[0] = out[b].d * static_cast<float>(sums[0]);
    out[b].half_sum[1] = out[b].d * static_cast<float>(sums[1]);
  }
}

// Part `part` of a block of T as small integers and two affine maps (see the top).
// kParts: parts per block; kOffsets: whether offset can be nonzero (formats with a
// minimum), so that symmetric formats skip that term.
template <DType T>
struct QuantDot;

template <>
struct QuantDot<DType::Q8_0> {
  using Block = BlockQ8_0;
  static constexpr int kParts = 1;
  static constexpr bool kOffsets = false;
  static void ints(const Block& b, int, int8_t* q) {
    for (int i = 0; i < kQuantBlock; ++i) q[i] = b.qs[i];
  }
  static void affine(const Block& b, int, float* scale, float* offset) {
    scale[0] = scale[1] = half_to_float(b.d);
    offset[0] = offset[1] = 0;
  }
};

template <>
struct QuantDot<DType::Q4_0> {
  using Block = BlockQ4_0;
  static constexpr int kParts = 1;
  static constexpr bool kOffsets = false;
  static void ints(const Block& b, int, int8_t* q) {
    for (int i = 0; i < kQuantBlock; ++i) q[i] = static_cast<int8_t>(quant_detail::nibble32(b.qs, i) - 8);
  }
  static void affine(const Block& b, int, float* scale, float* offset) {
    scale[0] = scale[1] = half_to_float(b.d);
    offset[0] = offset[1] = 0;
  }
};

template <>
struct QuantDot<DType::Q4_1> {
  using Block = BlockQ4_1;
  static constexpr int kParts = 1;
  static constexpr bool kOffsets = true;
  static void ints(const Block& b, int, int8_t* q) {
    for (int i = 0; i < kQuantBlock; ++i) q[i] = static_cast<int8_t>(quant_detail::nibble32(b.qs, i));
  }
  static void affine(const Block& b, int, float* scale, float* offset) {
    scale[0] = scale[1] = half_to_float(b.d);
    offset[0] = offset[1] = half_to_float(b.m);
  }
};

template <>
struct QuantDot<DType::Q5_0> {
  using Block = BlockQ5_0;
  static constexpr int kParts = 1;
  static constexpr bool kOffsets = false;
  static void ints(const Block& b, int, int8_t* q) {
    for (int i = 0; i < kQuantBlock; ++i) {
      q[i] = static_cast<int8_t>((quant_detail::nibble32(b.qs, i) | (quant_detail::bit32(b.qh, i) << 4)) - 16);
    }
  }
  static void affine(const Block& b, int, float* scale, float* offset) {
    scale[0] = scale[1] = half_to_float(b.d);
    offset[0] = offset[1] = 0;
  }
};

template <>
struct QuantDot<DType::Q5_1> {
  using Block = BlockQ5_1;
  static constexpr int kParts = 1;
  static constexpr bool kOffsets = true;
  static void ints(const Block& b, int, int8_t* q) {
    for (int i = 0; i < kQuantBlock; ++i) {
      q[i] = static_cast<int8_t>(quant_detail::nibble32(b.qs, i) | (quant_detail::bit32(b.qh, i) << 4));
    }
  }
  static void affine(const Block& b, int, float* scale, float* offset) {
    scale[0] = scale[1] = half_to_float(b.d);
    offset[0] = offset[1] = half_to_float(b.m);
  }
};

template <>
struct QuantDot<DType::Q2_K> {
  using Block = BlockQ2_K;
  static constexpr int kParts = kSuperBlock / kQuantBlock;
  static constexpr bool kOffsets = true;
  static void ints(const Block& b, int part, int8_t* q) {
    for (int i = 0; i < kQuantBlock; ++i) q[i] = static_cast<int8_t>(quant_detail::two_bits(b.qs, part * 32 + i));
  }
  static void affine(const Block& b, int part, float* scale, float* offset) {
    for (int h = 0; h < 2; ++h) {
      const int s = b.scales[2 * part + h];
      scale[h] = half_to_float(b.d) * static_cast<float>(s & 0x0f);
      offset[h] = -(half_to_float(b.dmin) * static_cast<float>(s >> 4));
    }
  }
};

template <>
struct QuantDot<DType::Q3_K> {
  using Block = BlockQ3_K;
  static constexpr int kParts = kSuperBlock / kQuantBlock;
  static constexpr bool kOffsets = false;
  static void ints(const Block& b, int part, int8_t* q) {
    for (int i = 0; i < kQuantBlock; ++i) {
      const int high = (b.hmask[i] >> part) & 1;
      q[i] = static_cast<int8_t>(quant_detail::two_bits(b.qs, part * 32 + i) - (high ? 0 : 4));
    }
  }
  static void affine(const Block& b, int part, float* scale, float* offset) {
    for (int h = 0; h < 2; ++h) {
      scale[h] = half_to_float(b.d) * static_cast<float>(quant_detail::q3_k_scale(b.scales, 2 * part + h));
      offset[h] = 0;
    }
  }
};

// Q4_K and Q5_K share their scales: part p is d * sc_p * q - dmin * m_p.
template <typename Block>
inline void k_scale_min_affine(const Block& b, int part, float* scale, float* offset) {
  float min;
  k_sub_block_scale_min(b, part, &scale[0], &min);
  scale[1] = scale[0];
  offset[0] = offset[1] = -min;
}

template <>
struct QuantDot<DType::Q4_K> {
  using Block = BlockQ4_K;
  static constexpr int kParts = kSuperBlock / kQuantBlock;
  static constexpr bool kOffsets = true;
  static void ints(const Block& b, int part, int8_t* q) {
    for (int i = 0; i < kQuantBlock; ++i) q[i] = static_cast<int8_t>(QuantFormat<DType::Q4_K>::q(b, part * 32 + i));
  }
  static void affine(const Block& b, int part, float* scale, float* offset) {
    k_scale_min_affine(b, part, scale, offset);
  }
};

template <>
struct QuantDot<DType::Q5_K> {
  using Block = BlockQ5_K;
  static constexpr int kParts = kSuperBlock / kQuantBlock;
  static constexpr bool kOffsets = true;
  static void ints(const Block& b, int part, int8_t* q) {
    for (int i = 0; i < kQuantBlock; ++i) q[i] = static_cast<int8_t>(QuantFormat<DType::Q5_K>::q(b, part * 32 + i));
  }
  static void affine(const Block& b, int part, float* scale, float* offset) {
    k_scale_min_affine(b, part, scale, offset);
  }
};

template <>
struct QuantDot<DType::Q6_K> {
  using Block = BlockQ6_K;
  static constexpr int kParts = kSuperBlock / kQuantBlock;
  static constexpr bool kOffsets = false;
  static void ints(const Block& b, int part, int8_t* q) {
    for (int l = 0; l < kQuantBlock; ++l) q[l] = static_cast<int8_t>(QuantFormat<DType::Q6_K>::q(b, part * 32 + l));
  }
  static void affine(const Block& b, int part, float* scale, float* offset) {
    for (int h = 0; h < 2; ++h) {
      scale[h] = half_to_float(b.d) * static_cast<float>(b.scales[2 * part + h]);
      offset[h] = 0;
    }
  }
};

// The dot product of part `part` of weight block b with activation block x, portably.
template <DType T>
inline float dot_part(const typename QuantDot<T>::Block& b, int part, const BlockQ8Act& x) {
  int8_t q[kQuantBlock];
  float scale[2], offset[2];
  QuantDot<T>::ints(b, part, q);
  QuantDot<T>::affine(b, part, scale, offset);
  int sums[2] = {0, 0};
  for (int i = 0; i < kQuantBlock; ++i) sums[i / 16] += q[i] * x.qs[i];
  float result = x.d * (scale[0] * static_cast<float>(sums[0]) + scale[1] * static_cast<float>(sums[1]));
  if (QuantDot<T>::kOffsets) {
    result += QuantDot<T>::kParts == 1 ? offset[0] * x.sum : offset[0] * x.half_sum[0] + offset[1] * x.half_sum[1];
  }
  return result;
}

}  // namespace braid
