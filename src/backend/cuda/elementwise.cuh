// Element-wise ops: add, mul (b broadcast by repetition), scale, silu, swiglu, copy.
// Sources may be strided in dimensions 1..3; results are contiguous. One block per row
// for the f32 ops; copy handles any strides (permuted views) and converts types.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

// The arithmetic of one element, shared by the kernels (elementwise.cu) and the persistent
// kernel's tiles.
enum class Binary { Add, Mul, Swiglu };
enum class Unary { Scale, Silu };

__device__ __forceinline__ float silu(float v) { return v / (1.0f + expf(-v)); }

template <Binary kOp>
__device__ __forceinline__ float apply(float a, float b) {
  if constexpr (kOp == Binary::Add) return a + b;
  if constexpr (kOp == Binary::Mul) return a * b;
  return silu(a) * b;
}

// b's indices wrap (broadcast by repetition): b's row is a's row index taken modulo each
// of b's dimensions.
__device__ __forceinline__ const uint8_t* broadcast_row_address(const StridedTensor& a, const StridedTensor& b,
                                                                int64_t row) {
  const int64_t i1 = row % a.ne[1];
  const int64_t i2 = (row / a.ne[1]) % a.ne[2];
  const int64_t i3 = row / (a.ne[1] * a.ne[2]);
  return b.data + (i1 % b.ne[1]) * b.nb[1] + (i2 % b.ne[2]) * b.nb[2] + (i3 % b.ne[3]) * b.nb[3];
}

// out_row[i] from a's row and b's row (b broadcast along dimension 0 when narrower).
template <Binary kOp>
__device__ __forceinline__ void binary_element(const float* a_row, const float* b_row, int64_t b_width,
                                               bool same_width, float* out_row, int64_t i) {
  out_row[i] = apply<kOp>(a_row[i], b_row[same_width ? i : i % b_width]);
}

template <Unary kOp>
__device__ __forceinline__ void unary_element(const float* a_row, float factor, float* out_row, int64_t i) {
  out_row[i] = kOp == Unary::Scale ? a_row[i] * factor : silu(a_row[i]);
}

void launch_binary(const NodeLaunch& launch);  // Add, Mul, Swiglu
void launch_unary(const NodeLaunch& launch);   // Scale, Silu
void launch_copy(const NodeLaunch& launch);
bool copy_supported(const Graph& graph, TensorId node);

}  // namespace braid::cuda
