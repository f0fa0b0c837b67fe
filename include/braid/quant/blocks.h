// ggml's quantized block layouts, byte for byte as GGUF files store them, so tensor data
// of a file is used as it is. This header is the one definition of each layout: the host
// dequantizer and quantizers (types.cpp, src/quant/), the CPU backend and the CUDA kernels
// all read blocks through it and through quant/dequantize.h. It compiles as plain C++
// and under nvcc.
//
// Legacy formats hold 32 elements with one f16 scale (and a minimum for the _1 types).
// K-quant formats hold a super-block of 256 elements in 8 or 16 sub-blocks; each
// sub-block has a small integer scale (and minimum) that multiplies the super-block's f16
// scale (and minimum scale). See quant/dequantize.h for the arithmetic.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define BRAID_HOST_DEVICE __host__ __device__
#else
#define BRAID_HOST_DEVICE
#endif

namespace braid {

inline constexpr int kQuantBlock = 32;   // elements of a legacy block (ggml's QK4_0 ... QK8_0)
inline constexpr int kSuperBlock = 256;  // elements of a K-quant super-block (ggml's QK_K)
inline constexpr int kKScaleBytes = 12;  // Q3_K's 16 6-bit scales, Q4_K/Q5_K's 8+8 6-bit scales and mins

struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQuantBlock];
};
struct BlockQ4_0 {
  uint16_t d;                   // f16 scale; value = d * (q - 8)
  uint8_t qs[kQuantBlock / 2];  // element j in low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_1 {
  uint16_t d;  // f16 scale; value = d * q + m
  uint16_t m;  // f16 minimum
  uint8_t qs[kQuantBlock / 2];
};
struct BlockQ5_0 {
  uint16_t d;                   // f16 scale; value = d * (q - 16)
  uint8_t qh[4];                // bit j (little-endian 32-bit word): bit 4 of element j
  uint8_t qs[kQuantBlock / 2];  // low 4 bits, nibbles as in Q4_0
};
struct BlockQ5_1 {
  uint16_t d;  // f16 scale; value = d * q + m
  uint16_t m;  // f16 minimum
  uint8_t qh[4];
  uint8_t qs[kQuantBlock / 2];
};
struct BlockQ2_K {
  uint8_t scales[kSuperBlock / 16];  // sub-block (16 elements) s: scale in the low nibble, min in the high
  uint8_t qs[kSuperBlock / 4];       // 2-bit q; see Q2K element()
  uint16_t d;                        // f16 scale of the scales
  uint16_t dmin;                     // f16 scale of the mins
};
struct BlockQ3_K {
  uint8_t hmask[kSuperBlock / 8];  // bit i/32 of hmask[i%32] set: q has no -4 offset
  uint8_t qs[kSuperBlock / 4];     // low 2 bits of q, laid out as Q2_K's
  uint8_t scales[kKScaleBytes];    // 16 6-bit scales, biased by 32
  uint16_t d;                      // f16 scale of the scales
};
struct BlockQ4_K {
  uint16_t d;                      // f16 scale of the scales
  uint16_t dmin;                   // f16 scale of the mins
  uint8_t scales[kKScaleBytes];    // 8 6-bit scales and 8 6-bit mins, one per 32 elements
  uint8_t qs[kSuperBlock / 2];     // 64 elements per 32 bytes: low nibbles, then high nibbles
};
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kSuperBlock / 8];  // bit i/32 of qh[i%32]: bit 4 of element i
  uint8_t qs[kSuperBlock / 2];
};
struct BlockQ6_K {
  uint8_t ql[kSuperBlock / 2];      // low 4 bits
  uint8_t qh[kSuperBlock / 4];      // high 2 bits
  int8_t scales[kSuperBlock / 16];  // one per 16 elements
  uint16_t d;                       // f16 scale of the scales; value = d * scale * (q - 32)
};

static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// IEEE half to float, exact; the same bits on host and device. The device converts with
// one instruction: the portable bit arithmetic below is some twenty, and kernels that
// unpack blocks (prompts' dequantization above all) were bound by such arithmetic.
BRAID_HOST_DEVICE inline float half_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#else
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf, nan
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  return __builtin_bit_cast(float, bits);
#endif
}

}  // namespace braid
