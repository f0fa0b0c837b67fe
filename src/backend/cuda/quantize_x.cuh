// The quantization of one block of 32 activation values to int8 (Note [Int8 activations],
// matvec_int8.cu), written once for both kernels that do it: the quantization kernel in
// front of an int8 product (8 lanes a block, 4 values each), and the producers that write
// their output's int8 copy themselves (Note [Shared int8 activations], shared_int8.h:
// rms_norm, swiglu and attention, a warp a block, one value a lane). The largest magnitude and the sum
// of the int8 values are exact whatever the lanes' order, so both give the same bits.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

// Where element j (0..31) of a block sits in nibble order: the x values of qs bytes
// 8p..8p+7 (elements 8p..8p+7 in the low nibbles, 16+8p..16+8p+7 in the high ones) are
// bytes 16p..16p+15.
__device__ __forceinline__ int nibble_order_position(int j) { return (j % 16) / 8 * 16 + j / 16 * 8 + j % 8; }

// max(|a|, |b|) that keeps NaN, so a NaN in x makes the scale (and the results) NaN.
__device__ __forceinline__ float nan_max(float a, float b) { return (a > b || a != a) ? a : b; }

// A block of 32 values held by 32 / N consecutive lanes (aligned to their count), N values
// each; every lane of the warp must call it. Sets this lane's int8 values and returns the
// block's (d_x, d_x * sum(q_x)) to every lane of the block.
template <int N>
__device__ __forceinline__ float2 quantize_x_block(const float (&v)[N], int (&q)[N]) {
  constexpr int kLanes = 32 / N;
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < N; ++i) amax = nan_max(fabsf(v[i]), amax);
#pragma unroll
  for (int offset = 1; offset < kLanes; offset <<= 1) amax = nan_max(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  const float d = amax / 127.0f;
  const float inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
  int sum = 0;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    q[i] = __float2int_rn(v[i] * inverse);  // |q| <= 127
    sum += q[i];
  }
#pragma unroll
  for (int offset = 1; offset < kLanes; offset <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  return make_float2(d, d * static_cast<float>(sum));
}

// Where a producer writes its output's int8 copy: column c's values at q + c * k, its
// blocks' (d_x, s_x) at ds + c * (k / 32) (Int8Columns' layout, matmul.cuh). q is null
// when the node has no copy to write.
struct Int8Out {
  int8_t* q = nullptr;
  float2* ds = nullptr;
  int64_t k = 0;
  bool nibble_order = false;
};

// Element `i` of column `column`, value v, into its copy: the whole warp calls it for 32
// consecutive elements of one column, i a multiple of 32 in lane 0.
__device__ __forceinline__ void store_int8_copy(const Int8Out& out, int64_t column, int64_t i, float v) {
  const float value[1] = {v};
  int q[1];
  const float2 ds = quantize_x_block<1>(value, q);
  const int j = static_cast<int>(i % 32);
  out.q[column * out.k + i - j + (out.nibble_order ? nibble_order_position(j) : j)] = static_cast<int8_t>(q[0]);
  if (j == 0) out.ds[column * (out.k / 32) + i / 32] = ds;
}

// Where the producer writes `copy` (matvec_int8.cu); q null when `copy` is.
Int8Out int8_out(const SharedInt8* copy);

}  // namespace braid::cuda
