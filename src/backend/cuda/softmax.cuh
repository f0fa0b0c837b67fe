// softmax of each row of a * scale, one block per row: max, sum of exponentials, then
// the normalized write, each a fixed-order block reduction (deterministic).
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

void launch_softmax(const NodeLaunch& launch);

}  // namespace braid::cuda
