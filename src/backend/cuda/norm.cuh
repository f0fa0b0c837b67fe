// rms_norm: y = x / sqrt(mean(x^2) + eps) * weight, one block per row. The sum of squares
// is a fixed-order block reduction, so results are deterministic.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

void launch_rms_norm(const NodeLaunch& launch);

}  // namespace braid::cuda
