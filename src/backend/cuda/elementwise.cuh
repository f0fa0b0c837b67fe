// Element-wise ops: add, mul (b broadcast by repetition), scale, silu, swiglu, copy.
// Sources may be strided in dimensions 1..3; results are contiguous. One block per row
// for the f32 ops; copy handles any strides (permuted views) and converts types.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

void launch_binary(const NodeLaunch& launch);  // Add, Mul, Swiglu
void launch_unary(const NodeLaunch& launch);   // Scale, Silu
void launch_copy(const NodeLaunch& launch);
bool copy_supported(const Graph& graph, TensorId node);

}  // namespace braid::cuda
