// Weight chunks: the unit one lane reads and dequantizes in registers per step of the
// matrix-vector kernel (f32, f16, bf16; quantized weights take the int8 kernels of
// matvec_int8.cu there), and of the dequantize-to-f16 kernel of the cuBLAS path.
//
//   f32:        4 elements, one 16-byte load
//   f16, bf16:  8 elements, one 16-byte load
//   q8_0, q4_0, q4_1: one 32-element block (34, 18, 20 bytes; only 2-byte aligned, so
//               read as 16-bit words; a warp still covers one contiguous span)
//
// Note [Integer to float]: converting an int with I2F runs at a quarter of the FMA rate
// on sm_90, which would make batch-1 q4_0 compute-bound. A small integer q is instead
// placed in the mantissa of 2^23 (bits 0x4B000000 | q) and 2^23 is subtracted: one
// logic op and one add, exact for 0 <= q < 2^23.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

__device__ __forceinline__ float small_uint_to_float(uint32_t q, float minus_offset) {
  return __uint_as_float(0x4B000000u | q) + minus_offset;  // minus_offset = -(2^23 + bias)
}

// A 16-byte chunk of weights, read once per call. (A non-caching load hint,
// ld.global.nc.L1::no_allocate, measured slower on the H100 for 4096-wide f16 rows:
// 1436 against 1794 GB/s; bench/NOTES.md.)
__device__ __forceinline__ uint4 load_streamed16(const uint8_t* p) { return *reinterpret_cast<const uint4*>(p); }

template <DType W>
struct WeightChunk;

template <>
struct WeightChunk<DType::F32> {
  static constexpr int kElements = 4;
  static constexpr int kBytes = 16;
  static constexpr bool kVectorAligned = true;  // needs 16-byte aligned rows
  __device__ static void load(const uint8_t* p, float* v) {
    const uint4 w = load_streamed16(p);
    v[0] = __uint_as_float(w.x);
    v[1] = __uint_as_float(w.y);
    v[2] = __uint_as_float(w.z);
    v[3] = __uint_as_float(w.w);
  }
};

template <>
struct WeightChunk<DType::F16> {
  static constexpr int kElements = 8;
  static constexpr int kBytes = 16;
  static constexpr bool kVectorAligned = true;
  __device__ static void load(const uint8_t* p, float* v) {
    const uint4 w = load_streamed16(p);
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&words[i]));
      v[2 * i] = f.x;
      v[2 * i + 1] = f.y;
    }
  }
};

template <>
struct WeightChunk<DType::BF16> {
  static constexpr int kElements = 8;
  static constexpr int kBytes = 16;
  static constexpr bool kVectorAligned = true;
  __device__ static void load(const uint8_t* p, float* v) {
    const uint4 w = load_streamed16(p);
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[2 * i] = __uint_as_float(words[i] << 16);
      v[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
  }
};

template <>
struct WeightChunk<DType::Q8_0> {
  static constexpr int kElements = kQuantBlock;
  static constexpr int kBytes = sizeof(BlockQ8_0);
  static constexpr bool kVectorAligned = false;
  __device__ static void load(const uint8_t* p, float* v) {
    const auto* words = reinterpret_cast<const uint16_t*>(p);
    const float d = half_bits_to_float(words[0]);
#pragma unroll
    for (int i = 0; i < kQuantBlock / 2; ++i) {
      // Flipping the sign bit maps int8 q to q + 128 in 0..255.
      const uint32_t pair = static_cast<uint32_t>(words[1 + i]) ^ 0x8080u;
      v[2 * i] = d * small_uint_to_float(pair & 0xffu, -8388736.0f);  // -(2^23 + 128)
      v[2 * i + 1] = d * small_uint_to_float(pair >> 8, -8388736.0f);
    }
  }
};

template <>
struct WeightChunk<DType::Q4_0> {
  static constexpr int kElements = kQuantBlock;
  static constexpr int kBytes = sizeof(BlockQ4_0);
  static constexpr bool kVectorAligned = false;
  __device__ static void load(const uint8_t* p, float* v) {
    const auto* words = reinterpret_cast<const uint16_t*>(p);
    const float d = half_bits_to_float(words[0]);
#pragma unroll
    for (int i = 0; i < kQuantBlock / 4; ++i) {  // bytes 2i, 2i+1 of qs
      const uint32_t pair = words[1 + i];
      v[2 * i] = d * small_uint_to_float(pair & 0x0fu, -8388616.0f);  // -(2^23 + 8)
      v[2 * i + 16] = d * small_uint_to_float((pair >> 4) & 0x0fu, -8388616.0f);
      v[2 * i + 1] = d * small_uint_to_float((pair >> 8) & 0x0fu, -8388616.0f);
      v[2 * i + 17] = d * small_uint_to_float(pair >> 12, -8388616.0f);
    }
  }
};

template <>
struct WeightChunk<DType::Q4_1> {
  static constexpr int kElements = kQuantBlock;
  static constexpr int kBytes = sizeof(BlockQ4_1);
  static constexpr bool kVectorAligned = false;
  __device__ static void load(const uint8_t* p, float* v) {
    const auto* words = reinterpret_cast<const uint16_t*>(p);
    const float d = half_bits_to_float(words[0]);
    const float m = half_bits_to_float(words[1]);
#pragma unroll
    for (int i = 0; i < kQuantBlock / 4; ++i) {
      const uint32_t pair = words[2 + i];
      v[2 * i] = fmaf(d, small_uint_to_float(pair & 0x0fu, -8388608.0f), m);
      v[2 * i + 16] = fmaf(d, small_uint_to_float((pair >> 4) & 0x0fu, -8388608.0f), m);
      v[2 * i + 1] = fmaf(d, small_uint_to_float((pair >> 8) & 0x0fu, -8388608.0f), m);
      v[2 * i + 17] = fmaf(d, small_uint_to_float(pair >> 12, -8388608.0f), m);
    }
  }
};

}  // namespace braid::cuda
