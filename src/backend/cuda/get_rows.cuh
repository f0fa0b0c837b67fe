// get_rows: out[:, i] = table[:, ids[i]] converted to f32, for every storage type. ids
// are read from device memory; an id outside the table yields a row of NaN (a kernel
// cannot throw, and NaN makes the bad id visible downstream instead of reading memory
// out of bounds).
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

void launch_get_rows(const NodeLaunch& launch);

}  // namespace braid::cuda
