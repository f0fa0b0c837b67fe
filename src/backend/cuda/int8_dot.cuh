// The weight side of the int8 matrix-vector product (matvec_int8.cu, Note [Int8
// activations]): for each weight type, how kThreads threads load their part of one unit
// of kUnit weights and multiply it with the matching int8 values of x (per 32 values a
// scale d_x and a sum s_x = d_x * sum(q_x)) through __dp4a.
//
// A unit is a legacy block of 32 weights (q8_0, q4_*, q5_*: 2 or 4 threads a block) or a
// whole K-quant super-block of 256 (8 threads, each 32 weights of two or four of its
// 32-weight sub-blocks), so that a K-quant thread unpacks the super-block's scales once for
// 32 weights and loads its weight bytes in one 16-byte load (q4_K, q5_K) instead of
// unpacking per 8 weights (Note [K-quant units]). The bit layouts are those of
// include/braid/quant/ (the one definition; braid::quant_detail unpacks the K-quant scales
// for both sides). Signed weights (q5_0, q6_K) are made signed bytes before the dot
// product (__vsub4 subtracts the offset in every byte), so they need no s_x term.
//
// Each type gives: kUnit, kThreads, kAlign (the byte alignment its loads need of the
// weights and their row stride, checked on the host), kNibbleOrder (x stored in the
// nibble order of matvec_int8.cu), load(row, unit, part) -> Part, load_x(column's q_x,
// column's (d_x, s_x), unit, part) -> X, and add(acc, Part, X).
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

// The x of one legacy block as one thread needs it: its int8 values (8 or 16 bytes of the
// block, the part's) and the block's (d_x, s_x).
template <typename Q>
struct XBlock {
  Q q;
  float2 ds;
};

// What the legacy types share: a unit is one block of 32 weights; part p meets bytes
// sizeof(Q) p.. of the block's x.
template <typename Q>
struct LegacyUnit {
  static constexpr int kUnit = kQuantBlock;
  using X = XBlock<Q>;
  __device__ static X load_x(const int8_t* xq, const float2* xds, int64_t unit, int part) {
    return {*reinterpret_cast<const Q*>(xq + unit * kQuantBlock + sizeof(Q) * part), xds[unit]};
  }
};

// q8_0: 4 threads a block; part p holds qs bytes 8p..8p+7.
template <>
struct Int8Dot<DType::Q8_0> : LegacyUnit<int2> {
  static constexpr int kThreads = 4;
  static constexpr int kBytes = sizeof(BlockQ8_0);
  static constexpr int kAlign = 2;
  static constexpr bool kNibbleOrder = false;
  struct Part {
    float d;
    int q0, q1;
  };
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + unit * kBytes);
    return {half_bits_to_float(__ldg(h)), pair16(h + 1 + 4 * part), pair16(h + 3 + 4 * part)};
  }
  __device__ static float add(float acc, const Part& w, const X& x) {
    const float sum = unbias(__dp4a(w.q1, x.q.y, __dp4a(w.q0, x.q.x, kDotBias)));
    return fmaf(w.d * x.ds.x, sum, acc);
  }
};

// The dot product of 8 nibble bytes, biased by kDotBias (low nibbles meet x.x, x.y; high nibbles x.z, x.w).
__device__ __forceinline__ int nibble_dot(int q0, int q1, int4 x) {
  int sum = __dp4a(q0 & 0x0f0f0f0f, x.x, kDotBias);
  sum = __dp4a(q1 & 0x0f0f0f0f, x.y, sum);
  sum = __dp4a((q0 >> 4) & 0x0f0f0f0f, x.z, sum);
  return __dp4a((q1 >> 4) & 0x0f0f0f0f, x.w, sum);
}

// The dot product of four signed (or unsigned 5-bit) weight words with 16 x bytes, biased.
__device__ __forceinline__ int dot16(const int (&q)[4], int4 x) {
  int sum = __dp4a(q[0], x.x, kDotBias);
  sum = __dp4a(q[1], x.y, sum);
  sum = __dp4a(q[2], x.z, sum);
  return __dp4a(q[3], x.w, sum);
}

// q4_0: 2 threads a block; part p holds qs bytes 8p..8p+7 (16 values).
template <>
struct Int8Dot<DType::Q4_0> : LegacyUnit<int4> {
  static constexpr int kThreads = 2;
  static constexpr int kBytes = sizeof(BlockQ4_0);
  static constexpr int kAlign = 2;
  static constexpr bool kNibbleOrder = true;
  struct Part {
    float d;
    int q0, q1;
  };
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const auto* h = reinterpret_cast<const uint16_t*>(row + unit * kBytes);
    return {half_bits_to_float(__ldg(h)), pair16(h + 1 + 4 * part), pair16(h + 3 + 4 * part)};
  }
  // Each of the two parts subtracts half of the block's 8 * s_x.
  __device__ static float add(float acc, const Part& w, const X& x) {
    const float sum = unbias(nibble_dot(w.q0, w.q1, x.q));
    return fmaf(w.d, fmaf(x.ds.x, sum, -4.0f * x.ds.y), acc);
  }
};

// q4_1: 2 threads a block, as q4_0; blocks are 4-byte aligned (checked on the host).
template <>
struct Int8Dot<DType::Q4_1> : LegacyUnit<int4> {
  static constexpr int kThreads = 2;
  static constexpr int kBytes = sizeof(BlockQ4_1);
  static constexpr int kAlign = 4;
  static constexpr bool kNibbleOrder = true;
  struct Part {
    float d, m;
    int q0, q1;
  };
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const auto* words = reinterpret_cast<const uint32_t*>(row + unit * kBytes);
    const uint32_t dm = __ldg(words);
    return {half_bits_to_float(static_cast<uint16_t>(dm & 0xffffu)), half_bits_to_float(static_cast<uint16_t>(dm >> 16)),
            static_cast<int>(__ldg(words + 1 + 2 * part)), static_cast<int>(__ldg(words + 2 + 2 * part))};
  }
  // Each of the two parts adds half of the block's m * s_x.
  __device__ static float add(float acc, const Part& w, const X& x) {
    const float sum = unbias(nibble_dot(w.q0, w.q1, x.q));
    return fmaf(w.d * x.ds.x, sum, fmaf(0.5f * w.m, x.ds.y, acc));
  }
};

// Bits 0-3 of `bits` to bit 4 of bytes 0-3 (the fifth bit of four 5-bit weights): the
// multiplication copies bit i to bit 8 i + ... without carries between the copies.
__device__ __forceinline__ int spread4_to_bit4(uint32_t bits) {
  return static_cast<int>(((bits & 0x0fu) * 0x00204081u & 0x01010101u) << 4);
}

// q5_0: as q4_0 (2 threads a unit, nibble order) plus a fifth bit from qh; w = d * (q - 16).
template <>
struct Int8Dot<DType::Q5_0> : LegacyUnit<int4> {
  static constexpr int kThreads = 2;
  static constexpr int kBytes = sizeof(BlockQ5_0);
  static constexpr int kAlign = 2;
  static constexpr bool kNibbleOrder = true;
  struct Part {
    float d;
    int q[4];  // signed bytes: elements 8p..8p+7, then 16+8p..16+8p+7
  };
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
  __device__ static float add(float acc, const Part& w, const X& x) {
    return fmaf(w.d * x.ds.x, unbias(dot16(w.q, x.q)), acc);
  }
};

// q5_1: as q4_1 plus the fifth bit; w = d * q + m. Blocks are 4-byte aligned.
template <>
struct Int8Dot<DType::Q5_1> : LegacyUnit<int4> {
  static constexpr int kThreads = 2;
  static constexpr int kBytes = sizeof(BlockQ5_1);
  static constexpr int kAlign = 4;
  static constexpr bool kNibbleOrder = true;
  struct Part {
    float d, m;
    int q[4];
  };
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
  // Each of the two parts adds half of the unit's m * s_x.
  __device__ static float add(float acc, const Part& w, const X& x) {
    return fmaf(w.d * x.ds.x, unbias(dot16(w.q, x.q)), fmaf(0.5f * w.m, x.ds.y, acc));
  }
};

// Note [K-quant units]: a K-quant super-block (256 weights, 8 sub-blocks of 32) is one
// unit of 8 threads, each owning 32 weights, so that the super-block's header (d, dmin,
// the packed 6-bit scales) is decoded per 32 weights, not per 8, and the weight bytes
// come in wide loads. For q4_K and q5_K, thread t owns qs bytes 16 t..16 t+15: their low
// nibbles are weights 16 (t % 2).. of sub-block a = 2 (t / 2), their high nibbles the
// same weights of sub-block b = a + 1. For q6_K, thread t = 4 h + s owns weights
// 8 s..8 s+7 of sub-blocks 4 h..4 h+3 (ql, qh and scales as q6_K lays them out).

// The x of a q4_K/q5_K thread: 16 values of sub-blocks a and b each, and their (d_x, s_x).
struct XPair {
  int4 a, b;
  float2 ds_a, ds_b;
};
__device__ __forceinline__ XPair load_x_pair(const int8_t* xq, const float2* xds, int64_t unit, int part) {
  const int a = 2 * (part / 2);
  const int8_t* q = xq + unit * kSuperBlock + 16 * (part % 2);
  const float2* ds = xds + unit * (kSuperBlock / kQuantBlock);
  return {*reinterpret_cast<const int4*>(q + a * kQuantBlock), *reinterpret_cast<const int4*>(q + (a + 1) * kQuantBlock),
          ds[a], ds[a + 1]};
}

// d * scale and -dmin * min / 2 of sub-blocks a and b (a even) of a q4_K/q5_K super-block.
// One 16-byte load brings the whole header (d, dmin and the 12 bytes of packed 6-bit scales
// and mins); the scales and mins of sub-blocks 0-3 and 4-7 are unpacked as the bytes of
// four words at once, with no branch on a and no byte loads (quant_detail::k_scale_min
// spells out the packing), and a byte becomes a float as 2^23 + byte (Note [Integer to
// float]). The products round once, as d * float(scale) does. The min carries the -1/2 of
// its two threads' halves (k_scale_min_add).
struct KScaleMinPair {
  float scale_a, min_a, scale_b, min_b;
};
__device__ __forceinline__ KScaleMinPair k_scale_min_pair(const uint8_t* block, int a) {
  const uint4 h = __ldg(reinterpret_cast<const uint4*>(block));
  const float d = half_bits_to_float(static_cast<uint16_t>(h.x & 0xffffu));
  const float half_dmin = -0.5f * half_bits_to_float(static_cast<uint16_t>(h.x >> 16));
  // Sub-blocks j < 4: low 6 bits of scale bytes j and j + 4. j >= 4: the nibbles of byte
  // j + 4 below the top 2 bits of bytes j - 4 and j.
  const bool low = a < 4;
  const uint32_t scales = low ? h.y & 0x3f3f3f3fu : (h.w & 0x0f0f0f0fu) | ((h.y >> 2) & 0x30303030u);
  const uint32_t mins = low ? h.z & 0x3f3f3f3fu : ((h.w >> 4) & 0x0f0f0f0fu) | ((h.z >> 2) & 0x30303030u);
  const int byte = a % 4;
  auto as_float = [](uint32_t word, int i) {  // 2^23 + byte i of word, then minus 2^23: exact
    return __int_as_float(static_cast<int>(__byte_perm(word, 0x4B000000u, 0x7540u | i))) - 8388608.0f;
  };
  return {d * as_float(scales, byte), half_dmin * as_float(mins, byte), d * as_float(scales, byte + 1),
          half_dmin * as_float(mins, byte + 1)};
}

// w = scale q - min on both sub-blocks; each of the two threads of a sub-block adds half of
// its min term (min * s_x), halved and negated by k_scale_min_pair.
__device__ __forceinline__ float k_scale_min_add(float acc, const KScaleMinPair& s, const int (&qa)[4],
                                                 const int (&qb)[4], const XPair& x) {
  acc = fmaf(s.scale_a * x.ds_a.x, unbias(dot16(qa, x.a)), fmaf(s.min_a, x.ds_a.y, acc));
  return fmaf(s.scale_b * x.ds_b.x, unbias(dot16(qb, x.b)), fmaf(s.min_b, x.ds_b.y, acc));
}

template <>
struct Int8Dot<DType::Q4_K> {
  static constexpr int kUnit = kSuperBlock;
  static constexpr int kThreads = 8;
  static constexpr int kAlign = 16;  // 144-byte blocks, qs at byte 16: one 16-byte load
  static constexpr bool kNibbleOrder = false;
  struct Part {
    KScaleMinPair s;
    int4 qs;  // 32 nibbles
  };
  using X = XPair;
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const uint8_t* block = row + unit * sizeof(BlockQ4_K);
    return {k_scale_min_pair(block, 2 * (part / 2)),
            __ldg(reinterpret_cast<const int4*>(block + offsetof(BlockQ4_K, qs)) + part)};
  }
  __device__ static X load_x(const int8_t* xq, const float2* xds, int64_t unit, int part) {
    return load_x_pair(xq, xds, unit, part);
  }
  __device__ static float add(float acc, const Part& w, const X& x) {
    const int q[4] = {w.qs.x, w.qs.y, w.qs.z, w.qs.w};
    int qa[4], qb[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      qa[i] = q[i] & 0x0f0f0f0f;
      qb[i] = (q[i] >> 4) & 0x0f0f0f0f;
    }
    return k_scale_min_add(acc, w.s, qa, qb, x);
  }
};

// q5_K: as q4_K, plus bit j of qh[l] as the fifth bit of weight l of sub-block j.
template <>
struct Int8Dot<DType::Q5_K> {
  static constexpr int kUnit = kSuperBlock;
  static constexpr int kThreads = 8;
  static constexpr int kAlign = 16;  // 176-byte blocks, qh at byte 16, qs at 48
  static constexpr bool kNibbleOrder = false;
  struct Part {
    KScaleMinPair s;
    int qa[4], qb[4];  // 5-bit weights of sub-blocks a and b
  };
  using X = XPair;
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const uint8_t* block = row + unit * sizeof(BlockQ5_K);
    const int a = 2 * (part / 2);
    const int4 qs = __ldg(reinterpret_cast<const int4*>(block + offsetof(BlockQ5_K, qs)) + part);
    const int4 qh = __ldg(reinterpret_cast<const int4*>(block + offsetof(BlockQ5_K, qh)) + part % 2);
    const int q[4] = {qs.x, qs.y, qs.z, qs.w}, h[4] = {qh.x, qh.y, qh.z, qh.w};
    Part w;
    w.s = k_scale_min_pair(block, a);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t high = static_cast<uint32_t>(h[i]) >> a;
      w.qa[i] = (q[i] & 0x0f0f0f0f) | static_cast<int>((high & 0x01010101u) << 4);
      w.qb[i] = ((q[i] >> 4) & 0x0f0f0f0f) | static_cast<int>(((high >> 1) & 0x01010101u) << 4);
    }
    return w;
  }
  __device__ static X load_x(const int8_t* xq, const float2* xds, int64_t unit, int part) {
    return load_x_pair(xq, xds, unit, part);
  }
  __device__ static float add(float acc, const Part& w, const X& x) { return k_scale_min_add(acc, w.s, w.qa, w.qb, x); }
};

// q6_K: w = d * scale * (q - 32), q of 6 bits (4 in ql, 2 in qh), one int8 scale per 16
// weights. Sub-block j = 4 h + g of a super-block: its weights l = 0..31 are the low
// (g < 2) or high nibbles of ql bytes 64 h + 32 (g % 2) + l and bits 2 g of qh bytes
// 32 h + l. Blocks are 210 bytes: only 2-byte alignment, so 16-bit loads.
template <>
struct Int8Dot<DType::Q6_K> {
  static constexpr int kUnit = kSuperBlock;
  static constexpr int kThreads = 8;
  static constexpr int kAlign = 2;
  static constexpr bool kNibbleOrder = false;
  struct Part {
    float scale[4];  // d * scale of the part's 8 weights of each sub-block
    int ql0[2], ql1[2], qh[2];
  };
  struct X {
    int2 q[4];
    float d[4];
  };
  __device__ static Part load(const uint8_t* row, int64_t unit, int part) {
    const uint8_t* block = row + unit * sizeof(BlockQ6_K);
    const int h = part / 4, s = part % 4;
    const auto* ql = reinterpret_cast<const uint16_t*>(block + offsetof(BlockQ6_K, ql) + 64 * h + 8 * s);
    const auto* qh = reinterpret_cast<const uint16_t*>(block + offsetof(BlockQ6_K, qh) + 32 * h + 8 * s);
    const auto* scales = reinterpret_cast<const int8_t*>(block + offsetof(BlockQ6_K, scales)) + 8 * h + s / 2;
    const float d = half_bits_to_float(__ldg(reinterpret_cast<const uint16_t*>(block + offsetof(BlockQ6_K, d))));
    Part w;
#pragma unroll
    for (int g = 0; g < 4; ++g) w.scale[g] = d * static_cast<float>(__ldg(scales + 2 * g));
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      w.ql0[i] = pair16(ql + 2 * i);
      w.ql1[i] = pair16(ql + 16 + 2 * i);
      w.qh[i] = pair16(qh + 2 * i);
    }
    return w;
  }
  __device__ static X load_x(const int8_t* xq, const float2* xds, int64_t unit, int part) {
    const int h = part / 4, s = part % 4;
    X x;
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      const int64_t sub = unit * (kSuperBlock / kQuantBlock) + 4 * h + g;
      x.q[g] = *reinterpret_cast<const int2*>(xq + sub * kQuantBlock + 8 * s);
      x.d[g] = xds[sub].x;
    }
    return x;
  }
  __device__ static float add(float acc, const Part& w, const X& x) {
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      int sum = kDotBias;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint32_t low = static_cast<uint32_t>(g % 2 == 0 ? w.ql0[i] : w.ql1[i]) >> (4 * (g / 2));
        const uint32_t high = static_cast<uint32_t>(w.qh[i]) >> (2 * g);
        const int q = static_cast<int>(__vsub4((low & 0x0f0f0f0fu) | ((high & 0x03030303u) << 4), 0x20202020u));
        sum = __dp4a(q, i == 0 ? x.q[g].x : x.q[g].y, sum);
      }
      acc = fmaf(w.scale[g] * x.d[g], unbias(sum), acc);
    }
    return acc;
  }
};

}  // namespace braid::cuda
