// Dequantization of every block format of quant/blocks.h: the one place where nibbles,
// high bits and packed scales are unpacked. Host and device code call the same functions.
//
// QuantFormat<T> gives, for a quantized DType T, its Block struct, the elements of a
// block, and element(block, i): the value of element i as ggml computes it. The order of
// the float operations is ggml's (and gguf-py's), e.g. Q4_K is (d * sc) * q - (dmin * m),
// so the host results match gguf-py bit for bit (tests/quant_vectors_test.cpp). Under
// nvcc the compiler may fuse a multiply and an add, which changes the last bit only.
//
// dequantize_part(block, p, out) writes elements [32 p, 32 p + 32): the unit a CUDA
// thread or a CPU loop handles, the same for every format.
#pragma once

#include "braid/types.h"

namespace braid {

namespace quant_detail {

// Element j (0..31) of 16 bytes of nibbles: j < 16 in the low nibble of byte j, else the
// high nibble of byte j - 16 (Q4_0, Q4_1, Q5_0, Q5_1).
BRAID_HOST_DEVICE inline int nibble32(const uint8_t* qs, int j) {
  return j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
}

// Bit j of the little-endian 32-bit word in qh[4] (Q5_0, Q5_1).
BRAID_HOST_DEVICE inline int bit32(const uint8_t* qh, int j) { return (qh[j / 8] >> (j % 8)) & 1; }

// Element i (0..255) of 64 bytes of 2-bit values (Q2_K, Q3_K): each half of 128 elements
// uses 32 bytes; element i sits in byte (i / 128) * 32 + i % 32 at bits 2 * ((i % 128) / 32).
BRAID_HOST_DEVICE inline int two_bits(const uint8_t* qs, int i) {
  return (qs[(i / 128) * 32 + i % 32] >> (2 * ((i % 128) / 32))) & 3;
}

// Q4_K / Q5_K: scale and min of sub-block j (0..7), 6 bits each in 12 bytes. Bytes 0-3
// hold scales 0-3, bytes 4-7 mins 0-3 (low 6 bits); for j >= 4 the low 4 bits are in
// byte j + 4 (scale low nibble, min high nibble) and the top 2 bits in the spare top bits
// of bytes j - 4 (scale) and j (min).
BRAID_HOST_DEVICE inline void k_scale_min(const uint8_t* s, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q3_K: scale of sub-block s (0..15), minus its bias of 32. The low 4 bits are nibbles of
// bytes 0-7 (s < 8 low nibble of byte s, else high nibble of byte s - 8); the top 2 bits
// are bits 2 * (s / 4) of byte 8 + s % 4.
BRAID_HOST_DEVICE inline int q3_k_scale(const uint8_t* scales, int s) {
  const int low = s < 8 ? (scales[s] & 0x0f) : (scales[s - 8] >> 4);
  const int high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (low | (high << 4)) - 32;
}

}  // namespace quant_detail

template <DType T>
struct QuantFormat;

template <>
struct QuantFormat<DType::Q8_0> {
  using Block = BlockQ8_0;
  static constexpr int kElements = kQuantBlock;
  BRAID_HOST_DEVICE static float element(const Block& b, int i) {
    return half_to_float(b.d) * static_cast<float>(b.qs[i]);
  }
};

template <>
struct QuantFormat<DType::Q4_0> {
  using Block = BlockQ4_0;
  static constexpr int kElements = kQuantBlock;
  BRAID_HOST_DEVICE static float element(const Block& b, int i) {
    return half_to_float(b.d) * static_cast<float>(quant_detail::nibble32(b.qs, i) - 8);
  }
};

template <>
struct QuantFormat<DType::Q4_1> {
  using Block = BlockQ4_1;
  static constexpr int kElements = kQuantBlock;
  BRAID_HOST_DEVICE static float element(const Block& b, int i) {
    return half_to_float(b.d) * static_cast<float>(quant_detail::nibble32(b.qs, i)) + half_to_float(b.m);
  }
};

template <>
struct QuantFormat<DType::Q5_0> {
  using Block = BlockQ5_0;
  static constexpr int kElements = kQuantBlock;
  BRAID_HOST_DEVICE static float element(const Block& b, int i) {
    const int q = quant_detail::nibble32(b.qs, i) | (quant_detail::bit32(b.qh, i) << 4);
    return half_to_float(b.d) * static_cast<float>(q - 16);
  }
};

template <>
struct QuantFormat<DType::Q5_1> {
  using Block = BlockQ5_1;
  static constexpr int kElements = kQuantBlock;
  BRAID_HOST_DEVICE static float element(const Block& b, int i) {
    const int q = quant_detail::nibble32(b.qs, i) | (quant_detail::bit32(b.qh, i) << 4);
    return half_to_float(b.d) * static_cast<float>(q) + half_to_float(b.m);
  }
};

template <>
struct QuantFormat<DType::Q2_K> {
  using Block = BlockQ2_K;
  static constexpr int kElements = kSuperBlock;
  BRAID_HOST_DEVICE static float element(const Block& b, int i) {
    const int s = b.scales[i / 16];
    const float scale = half_to_float(b.d) * static_cast<float>(s & 0x0f);
    const float min = half_to_float(b.dmin) * static_cast<float>(s >> 4);
    return scale * static_cast<float>(quant_detail::two_bits(b.qs, i)) - min;
  }
};

template <>
struct QuantFormat<DType::Q3_K> {
  using Block = BlockQ3_K;
  static constexpr int kElements = kSuperBlock;
  BRAID_HOST_DEVICE static float element(const Block& b, int i) {
    const float scale = half_to_float(b.d) * static_cast<float>(quant_detail::q3_k_scale(b.scales, i / 16));
    const int high = (b.hmask[i % 32] >> (i / 32)) & 1;
    return scale * static_cast<float>(quant_detail::two_bits(b.qs, i) - (high ? 0 : 4));
  }
};

// Q4_K and Q5_K: d * scale and dmin * min of sub-block j (0..7).
template <typename Block>
BRAID_HOST_DEVICE inline void k_sub_block_scale_min(const Block& b, int j, float* scale, float* min) {
  int sc, m;
  quant_detail::k_scale_min(b.scales, j, &sc, &m);
  *scale = half_to_float(b.d) * static_cast<float>(sc);
  *min = half_to_float(b.dmin) * static_cast<float>(m);
}

template <>
struct QuantFormat<DType::Q4_K> {
  using Block = BlockQ4_K;
  static constexpr int kElements = kSuperBlock;
  // Sub-block j = i / 32; pairs of sub-blocks share 32 bytes (low nibbles, then high).
  BRAID_HOST_DEVICE static int q(const Block& b, int i) {
    const uint8_t byte = b.qs[(i / 64) * 32 + i % 32];
    return (i / 32) % 2 ? byte >> 4 : byte & 0x0f;
  }
  BRAID_HOST_DEVICE static float element(const Block& b, int i) {
    float scale, min;
    k_sub_block_scale_min(b, i / 32, &scale, &min);
    return scale * static_cast<float>(q(b, i)) - min;
  }
};

template <>
struct QuantFormat<DType::Q5_K> {
  using Block = BlockQ5_K;
  static constexpr int kElements = kSuperBlock;
  // As Q4_K, plus bit j of qh[i % 32] as bit 4.
  BRAID_HOST_DEVICE static int q(const Block& b, int i) {
    const uint8_t byte = b.qs[(i / 64) * 32 + i % 32];
    const int low = (i / 32) % 2 ? byte >> 4 : byte & 0x0f;
    return low | (((b.qh[i % 32] >> (i / 32)) & 1) << 4);
  }
  BRAID_HOST_DEVICE static float element(const Block& b, int i) {
    float scale, min;
    k_sub_block_scale_min(b, i / 32, &scale, &min);
    return scale * static_cast<float>(q(b, i)) - min;
  }
};

template <>
struct QuantFormat<DType::Q6_K> {
  using Block = BlockQ6_K;
  static constexpr int kElements = kSuperBlock;
  // Each half of 128 elements has 64 bytes of ql and 32 of qh. In a half, quarter
  // r = (i % 128) / 32: low 4 bits in ql[half * 64 + (r % 2) * 32 + i % 32] (low nibble for
  // r < 2, high for r >= 2), top 2 bits at bits 2 r of qh[half * 32 + i % 32]; minus 32.
  BRAID_HOST_DEVICE static int q(const Block& b, int i) {
    const int half = i / 128, quarter = (i % 128) / 32, l = i % 32;
    const uint8_t low_byte = b.ql[half * 64 + (quarter % 2) * 32 + l];
    const int low = quarter < 2 ? (low_byte & 0x0f) : (low_byte >> 4);
    const int high = (b.qh[half * 32 + l] >> (2 * quarter)) & 3;
    return (low | (high << 4)) - 32;
  }
  // d * the scale of the 16 elements around i.
  BRAID_HOST_DEVICE static float scale(const Block& b, int i) {
    return half_to_float(b.d) * static_cast<float>(b.scales[i / 16]);
  }
  BRAID_HOST_DEVICE static float element(const Block& b, int i) { return scale(b, i) * static_cast<float>(q(b, i)); }
};

// Elements [32 part, 32 part + 32) of a block.
template <DType T>
BRAID_HOST_DEVICE inline void dequantize_part(const typename QuantFormat<T>::Block& b, int part, float* out) {
  for (int j = 0; j < kQuantBlock; ++j) out[j] = QuantFormat<T>::element(b, part * kQuantBlock + j);
}

// Elements [8 g, 8 g + 8) of a block, equal to element()'s: the unit of one CUDA thread
// when prompts dequantize weights (16 bytes of f16 a store). The eight lie in one
// sub-block and in one run of packed bytes, so the K-quants decode the scale and the byte
// offsets once for the eight: per element this is a load, a shift and a multiply-add, which
// keeps the CUDA kernel that calls it bound by memory rather than by index arithmetic.
template <DType T>
BRAID_HOST_DEVICE inline void dequantize_eight(const typename QuantFormat<T>::Block& b, int g, float* out) {
  using F = QuantFormat<T>;
  if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    float scale, min;
    k_sub_block_scale_min(b, g / 4, &scale, &min);
    // F::q: sub-block g / 4 takes the low nibbles of its pair's 32 bytes when even, else the
    // high ones; Q5_K's bit 4 is bit g / 4 of qh[(8 g) % 32 + l].
    const uint8_t* qs = b.qs + (g / 8) * 32 + (8 * g) % 32;
    const int shift = (g / 4) % 2 ? 4 : 0;
    for (int l = 0; l < 8; ++l) {
      int q = (qs[l] >> shift) & 0x0f;
      if constexpr (T == DType::Q5_K) q |= ((b.qh[(8 * g) % 32 + l] >> (g / 4)) & 1) << 4;
      out[l] = scale * static_cast<float>(q) - min;
    }
  } else if constexpr (T == DType::Q6_K) {
    const float scale = F::scale(b, 8 * g);
    // F::q with half = g / 16 and quarter = (g % 16) / 4 fixed for the eight.
    const int half = g / 16, quarter = (g % 16) / 4, first = (8 * g) % 32;
    const uint8_t* ql = b.ql + half * 64 + (quarter % 2) * 32 + first;
    const uint8_t* qh = b.qh + half * 32 + first;
    const int low_shift = quarter < 2 ? 0 : 4;
    for (int l = 0; l < 8; ++l) {
      const int q = (((ql[l] >> low_shift) & 0x0f) | (((qh[l] >> (2 * quarter)) & 3) << 4)) - 32;
      out[l] = scale * static_cast<float>(q);
    }
  } else {
    for (int l = 0; l < 8; ++l) out[l] = F::element(b, 8 * g + l);
  }
}

// Element i of a row of blocks of type T (the row starts at a block boundary).
template <DType T>
BRAID_HOST_DEVICE inline float row_element(const uint8_t* row, int64_t i) {
  using F = QuantFormat<T>;
  const auto* block = reinterpret_cast<const typename F::Block*>(row) + i / F::kElements;
  return F::element(*block, static_cast<int>(i % F::kElements));
}

}  // namespace braid
