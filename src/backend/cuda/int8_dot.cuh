// The weight side of the int8 matrix-vector product (matvec_int8.cu, Note [Int8
// activations]): for each weight type, how kThreads threads load their part of one unit
// of 32 weights and multiply it with the matching 32 int8 values of x (scale d_x, sum
// s_x = d_x * sum(q_x)) through __dp4a.
//
// A unit is a legacy block (q8_0, q4_*, q5_*) or one 32-weight sub-block of a K-quant
// super-block (8 units of 256 weights share one block's scales), so the kernel walks every
// type the same way: load(row, unit, part) finds its bytes. The bit layouts are those of
// include/braid/quant/ (the one definition; braid::quant_detail unpacks the K-quant
// scales for both sides). Signed weights (q5_0, q6_K) are made signed bytes before the
// dot product (__vsub4 subtracts the offset in every byte), so they need no s_x term.
#pragma once

#include "backend/cuda/device_common.cuh"
#include "braid/quant/dequantize.h"

namespace braid::cuda {

constexpr int kDotBias = 0x4B400000;  // the bits of 1.5 * 2^23
__device__ __forceinline__ float unbias(int biased_sum) { return __int_as_float(biased_sum) - 12582912.0f; }

__device__ __forceinline__ int pair16(const uint16_t* p) {
  return static_cast<int>(static_cast<uint32_t>(__ldg(p)) | (static_cast<uint32_t>(__ldg(p + 1)) << 16));
}

template <DType W>
struct Int8Dot;

// q8_0: 4 threads a block; part p holds qs bytes 8p..8p+7.
template <>
struct Int8Dot<DType::Q8_0> {
  static constexpr int kThreads = 4;
  static constexpr int kBytes = sizeof(BlockQ8_0);
  static constexpr bool kNibbleOrder = false;
  struct Part {
    float d;
    int q0, q1;
  };
  using X = int2;
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + unit * kBytes);
    return {half_bits_to_float(__ldg(h)), pair16(h + 1 + 4 * part), pair16(h + 3 + 4 * part)};
  }
  __device__ static X load_x(const int8_t* block_q, int part) {
    return *reinterpret_cast<const int2*>(block_q + 8 * part);
  }
  __device__ static float add(float acc, const Part& w, X x, float2 ds) {
    const float sum = unbias(__dp4a(w.q1, x.y, __dp4a(w.q0, x.x, kDotBias)));
    return fmaf(w.d * ds.x, sum, acc);
  }
};

// The dot product of 8 nibble bytes, biased by kDotBias (low nibbles meet x.x, x.y; high nibbles x.z, x.w).
__device__ __forceinline__ int nibble_dot(int q0, int q1, int4 x) {
  int sum = __dp4a(q0 & 0x0f0f0f0f, x.x, kDotBias);
  sum = __dp4a(q1 & 0x0f0f0f0f, x.y, sum);
  sum = __dp4a((q0 >> 4) & 0x0f0f0f0f, x.z, sum);
  return __dp4a((q1 >> 4) & 0x0f0f0f0f, x.w, sum);
}

// q4_0: 2 threads a block; part p holds qs bytes 8p..8p+7 (16 values).
template <>
struct Int8Dot<DType::Q4_0> {
  static constexpr int kThreads = 2;
  static constexpr int kBytes = sizeof(BlockQ4_0);
  static constexpr bool kNibbleOrder = true;
  struct Part {
    float d;
    int q0, q1;
  };
  using X = int4;
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + unit * kBytes);
    return {half_bits_to_float(__ldg(h)), pair16(h + 1 + 4 * part), pair16(h + 3 + 4 * part)};
  }
  __device__ static X load_x(const int8_t* block_q, int part) {
    return *reinterpret_cast<const int4*>(block_q + 16 * part);
  }
  // Each of the two parts subtracts half of the block's 8 * s_x.
  __device__ static float add(float acc, const Part& w, X x, float2 ds) {
    const float sum = unbias(nibble_dot(w.q0, w.q1, x));
    return fmaf(w.d, fmaf(ds.x, sum, -4.0f * ds.y), acc);
  }
};

// q4_1: 2 threads a block, as q4_0; blocks are 4-byte aligned (checked on the host).
template <>
struct Int8Dot<DType::Q4_1> {
  static constexpr int kThreads = 2;
  static constexpr int kBytes = sizeof(BlockQ4_1);
  static constexpr bool kNibbleOrder = true;
  struct Part {
    float d, m;
    int q0, q1;
  };
  using X = int4;
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const auto* words = reinterpret_cast<const uint32_t*>(row + unit * kBytes);
    const uint32_t dm = __ldg(words);
    return {half_bits_to_float(static_cast<uint16_t>(dm & 0xffffu)), half_bits_to_float(static_cast<uint16_t>(dm >> 16)),
            static_cast<int>(__ldg(words + 1 + 2 * part)), static_cast<int>(__ldg(words + 2 + 2 * part))};
  }
  __device__ static X load_x(const int8_t* block_q, int part) {
    return *reinterpret_cast<const int4*>(block_q + 16 * part);
  }
  // Each of the two parts adds half of the block's m * s_x.
  __device__ static float add(float acc, const Part& w, X x, float2 ds) {
    const float sum = unbias(nibble_dot(w.q0, w.q1, x));
    return fmaf(w.d * ds.x, sum, fmaf(0.5f * w.m, ds.y, acc));
  }
};

// Bits 0-3 of `bits` to bit 4 of bytes 0-3 (the fifth bit of four 5-bit weights): the
// multiplication copies bit i to bit 8 i + ... without carries between the copies.
__device__ __forceinline__ int spread4_to_bit4(uint32_t bits) {
  return static_cast<int>(((bits & 0x0fu) * 0x00204081u & 0x01010101u) << 4);
}

// q5_0: as q4_0 (2 threads a unit, nibble order) plus a fifth bit from qh; w = d * (q - 16).
template <>
struct Int8Dot<DType::Q5_0> {
  static constexpr int kThreads = 2;
  static constexpr int kBytes = sizeof(BlockQ5_0);
  static constexpr bool kNibbleOrder = true;
  struct Part {
    float d;
    int q[4];  // signed bytes: elements 8p..8p+7, then 16+8p..16+8p+7
  };
  using X = int4;
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + unit * kBytes);  // 2-byte aligned
    const uint32_t qh = static_cast<uint32_t>(pair16(h + 1));
    const int q0 = pair16(h + 3 + 4 * part), q1 = pair16(h + 5 + 4 * part);
    const uint32_t low = qh >> (8 * part), high = qh >> (16 + 8 * part);  // bits of elements 8p.., 16+8p..
    Part w;
    w.d = half_bits_to_float(__ldg(h));
    w.q[0] = __vsub4((q0 & 0x0f0f0f0f) | spread4_to_bit4(low), 0x10101010);
    w.q[1] = __vsub4((q1 & 0x0f0f0f0f) | spread4_to_bit4(low >> 4), 0x10101010);
    w.q[2] = __vsub4(((q0 >> 4) & 0x0f0f0f0f) | spread4_to_bit4(high), 0x10101010);
    w.q[3] = __vsub4(((q1 >> 4) & 0x0f0f0f0f) | spread4_to_bit4(high >> 4), 0x10101010);
    return w;
  }
  __device__ static X load_x(const int8_t* block_q, int part) {
    return *reinterpret_cast<const int4*>(block_q + 16 * part);
  }
  __device__ static float add(float acc, const Part& w, X x, float2 ds) {
    int sum = __dp4a(w.q[0], x.x, kDotBias);
    sum = __dp4a(w.q[1], x.y, sum);
    sum = __dp4a(w.q[2], x.z, sum);
    sum = __dp4a(w.q[3], x.w, sum);
    return fmaf(w.d * ds.x, unbias(sum), acc);
  }
};

// q5_1: as q4_1 plus the fifth bit; w = d * q + m. Blocks are 4-byte aligned.
template <>
struct Int8Dot<DType::Q5_1> {
  static constexpr int kThreads = 2;
  static constexpr int kBytes = sizeof(BlockQ5_1);
  static constexpr bool kNibbleOrder = true;
  struct Part {
    float d, m;
    int q[4];
  };
  using X = int4;
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const auto* words = reinterpret_cast<const uint32_t*>(row + unit * kBytes);
    const uint32_t dm = __ldg(words), qh = __ldg(words + 1);
    const int q0 = static_cast<int>(__ldg(words + 2 + 2 * part)), q1 = static_cast<int>(__ldg(words + 3 + 2 * part));
    const uint32_t low = qh >> (8 * part), high = qh >> (16 + 8 * part);
    Part w;
    w.d = half_bits_to_float(static_cast<uint16_t>(dm & 0xffffu));
    w.m = half_bits_to_float(static_cast<uint16_t>(dm >> 16));
    w.q[0] = (q0 & 0x0f0f0f0f) | spread4_to_bit4(low);
    w.q[1] = (q1 & 0x0f0f0f0f) | spread4_to_bit4(low >> 4);
    w.q[2] = ((q0 >> 4) & 0x0f0f0f0f) | spread4_to_bit4(high);
    w.q[3] = ((q1 >> 4) & 0x0f0f0f0f) | spread4_to_bit4(high >> 4);
    return w;
  }
  __device__ static X load_x(const int8_t* block_q, int part) {
    return *reinterpret_cast<const int4*>(block_q + 16 * part);
  }
  // Each of the two parts adds half of the unit's m * s_x.
  __device__ static float add(float acc, const Part& w, X x, float2 ds) {
    int sum = __dp4a(w.q[0], x.x, kDotBias);
    sum = __dp4a(w.q[1], x.y, sum);
    sum = __dp4a(w.q[2], x.z, sum);
    sum = __dp4a(w.q[3], x.w, sum);
    return fmaf(w.d * ds.x, unbias(sum), fmaf(0.5f * w.m, ds.y, acc));
  }
};

// The K-quants with a scale and a min per 32 weights (q4_K, q5_K): w = d sc q - dmin m.
// 4 threads a unit, 8 weights each (x in natural order); each adds a quarter of the
// unit's min term.
struct KScaleMinPart {
  float scale, min;  // d * sc and dmin * m of the unit
  int q0, q1;        // 8 unsigned weights
};
__device__ __forceinline__ KScaleMinPart k_scale_min_part(const uint8_t* block, int j) {
  const uint32_t dm = __ldg(reinterpret_cast<const uint32_t*>(block));
  int sc, m;
  quant_detail::k_scale_min(block + 4, j, &sc, &m);
  return {half_bits_to_float(static_cast<uint16_t>(dm & 0xffffu)) * static_cast<float>(sc),
          half_bits_to_float(static_cast<uint16_t>(dm >> 16)) * static_cast<float>(m), 0, 0};
}
__device__ __forceinline__ float k_scale_min_add(float acc, const KScaleMinPart& w, int2 x, float2 ds) {
  const float sum = unbias(__dp4a(w.q1, x.y, __dp4a(w.q0, x.x, kDotBias)));
  return fmaf(w.scale * ds.x, sum, fmaf(-0.25f * w.min, ds.y, acc));
}

template <>
struct Int8Dot<DType::Q4_K> {
  static constexpr int kThreads = 4;
  static constexpr bool kNibbleOrder = false;
  using Part = KScaleMinPart;
  using X = int2;
  // Unit j of a super-block: the low (j even) or high nibbles of qs bytes 32 (j / 2)...
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const uint8_t* block = row + unit / 8 * sizeof(BlockQ4_K);  // 4-byte aligned (checked on the host)
    const int j = static_cast<int>(unit % 8);
    Part w = k_scale_min_part(block, j);
    const auto* qs = reinterpret_cast<const uint32_t*>(block + offsetof(BlockQ4_K, qs) + 32 * (j / 2) + 8 * part);
    const int shift = 4 * (j % 2);
    w.q0 = static_cast<int>((__ldg(qs) >> shift) & 0x0f0f0f0fu);
    w.q1 = static_cast<int>((__ldg(qs + 1) >> shift) & 0x0f0f0f0fu);
    return w;
  }
  __device__ static X load_x(const int8_t* block_q, int part) { return *reinterpret_cast<const int2*>(block_q + 8 * part); }
  __device__ static float add(float acc, const Part& w, X x, float2 ds) { return k_scale_min_add(acc, w, x, ds); }
};

template <>
struct Int8Dot<DType::Q5_K> {
  static constexpr int kThreads = 4;
  static constexpr bool kNibbleOrder = false;
  using Part = KScaleMinPart;
  using X = int2;
  // As q4_K, plus bit j of qh[l] as the fifth bit of weight l of unit j.
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const uint8_t* block = row + unit / 8 * sizeof(BlockQ5_K);
    const int j = static_cast<int>(unit % 8);
    Part w = k_scale_min_part(block, j);
    const auto* qs = reinterpret_cast<const uint32_t*>(block + offsetof(BlockQ5_K, qs) + 32 * (j / 2) + 8 * part);
    const auto* qh = reinterpret_cast<const uint32_t*>(block + offsetof(BlockQ5_K, qh) + 8 * part);
    const int shift = 4 * (j % 2);
    w.q0 = static_cast<int>(((__ldg(qs) >> shift) & 0x0f0f0f0fu) | (((__ldg(qh) >> j) & 0x01010101u) << 4));
    w.q1 = static_cast<int>(((__ldg(qs + 1) >> shift) & 0x0f0f0f0fu) | (((__ldg(qh + 1) >> j) & 0x01010101u) << 4));
    return w;
  }
  __device__ static X load_x(const int8_t* block_q, int part) { return *reinterpret_cast<const int2*>(block_q + 8 * part); }
  __device__ static float add(float acc, const Part& w, X x, float2 ds) { return k_scale_min_add(acc, w, x, ds); }
};

// q6_K: w = d * scale * (q - 32), q of 6 bits (4 in ql, 2 in qh), one int8 scale per 16
// weights. Unit j = 4 h + g of a super-block: its weights l = 0..31 are the low (g < 2) or
// high nibbles of ql bytes 64 h + 32 (g % 2) + l and bits 2 g of qh bytes 32 h + l. Blocks
// are 210 bytes: only 2-byte alignment, so 16-bit loads.
template <>
struct Int8Dot<DType::Q6_K> {
  static constexpr int kThreads = 4;
  static constexpr bool kNibbleOrder = false;
  struct Part {
    float scale;  // d * scale of this part's 16 weights
    int q0, q1;   // 8 signed weights
  };
  using X = int2;
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const uint8_t* block = row + unit / 8 * sizeof(BlockQ6_K);
    const int j = static_cast<int>(unit % 8), h = j / 4, g = j % 4;
    const auto* ql = reinterpret_cast<const uint16_t*>(block + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (g % 2) + 8 * part);
    const auto* qh = reinterpret_cast<const uint16_t*>(block + offsetof(BlockQ6_K, qh) + 32 * h + 8 * part);
    const int low_shift = 4 * (g / 2), high_shift = 2 * g;
    auto weights = [&](int word) {
      const uint32_t low = (static_cast<uint32_t>(pair16(ql + 2 * word)) >> low_shift) & 0x0f0f0f0fu;
      const uint32_t high = ((static_cast<uint32_t>(pair16(qh + 2 * word)) >> high_shift) & 0x03030303u) << 4;
      return static_cast<int>(__vsub4(low | high, 0x20202020u));
    };
    const auto* scales = reinterpret_cast<const int8_t*>(block + offsetof(BlockQ6_K, scales));
    const float d = half_bits_to_float(__ldg(reinterpret_cast<const uint16_t*>(block + offsetof(BlockQ6_K, d))));
    return {d * static_cast<float>(__ldg(scales + 2 * j + part / 2)), weights(0), weights(1)};
  }
  __device__ static X load_x(const int8_t* block_q, int part) { return *reinterpret_cast<const int2*>(block_q + 8 * part); }
  __device__ static float add(float acc, const Part& w, X x, float2 ds) {
    const float sum = unbias(__dp4a(w.q1, x.y, __dp4a(w.q0, x.x, kDotBias)));
    return fmaf(w.scale * ds.x, sum, acc);
  }
};

}  // namespace braid::cuda
