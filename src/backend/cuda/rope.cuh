// Rotary position embedding. x is [head_dim, heads, n] (strided in dims 1..2), positions
// [n] are read from device memory. Pair i (0 <= i < dims/2) turns by
//   theta = position * base^(-2i/dims) * freq_scale;
// mode 0 pairs (x[2i], x[2i+1]), mode 2 (NeoX) pairs (x[i], x[i + dims/2]). Elements at
// or beyond `dims` pass through. theta and its sine and cosine are computed in double:
// at positions in the tens of thousands a float theta loses ~1e-3 radians.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

void launch_rope(const NodeLaunch& launch);

}  // namespace braid::cuda
