// get_rows: out[:, i] = table[:, ids[i]] converted to f32, for every storage type. ids
// are read from device memory; an id outside the table yields a row of NaN (a kernel
// cannot throw, and NaN makes the bad id visible downstream instead of reading memory
// out of bounds).
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

// Element c of output row i, shared by the kernel and the persistent kernel's tiles.
__device__ __forceinline__ void get_rows_element(const StridedTensor& table, DType type, const int32_t* ids,
                                                 float* out, int64_t i, int64_t c) {
  const int64_t id = ids[i];
  const int64_t cols = table.ne[0];
  const bool inside = id >= 0 && id < table.ne[1];
  out[i * cols + c] = inside ? load_element(type, table.data + id * table.nb[1], c) : __int_as_float(0x7fc00000);
}

void launch_get_rows(const NodeLaunch& launch);

}  // namespace braid::cuda
