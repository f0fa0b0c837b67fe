// rms_norm: y = x / sqrt(mean(x^2) + eps) * weight, one block per row. The sum of squares
// is a fixed-order block reduction, so results are deterministic.
//
// The row's arithmetic is rms_norm_row, shared by the kernel (one row a block) and the
// persistent kernel's tiles (src/backend/cuda/persistent). It is written for `lanes`
// logical threads, the width the kernel launches for the row (rms_norm_lanes): a block of
// fewer real threads plays several logical threads each and sums in their order, so both
// executors give the same bits for a row whatever their block size.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

// Logical threads of a row: wide rows get more so each issues few loads.
__host__ __device__ inline int rms_norm_lanes(int64_t cols) { return cols >= 2048 ? 1024 : cols >= 512 ? 256 : 128; }
inline constexpr int kRmsNormMaxSpread = 8;  // logical threads per real thread at most (1024 / 128)

// One row, by the whole block (every thread calls it). blockDim.x must divide `lanes`, at
// most kRmsNormMaxSpread times; scratch holds 32 floats of shared memory. weight may be null.
__device__ __forceinline__ void rms_norm_row(const float* x_row, int64_t cols, const float* weight, float eps,
                                             float* out_row, int lanes, float* scratch) {
  const int threads = blockDim.x;
  const int spread = lanes / threads;
  // Logical thread v = threadIdx.x + j * threads sums elements v, v + lanes, ...
  float squares[kRmsNormMaxSpread];
#pragma unroll
  for (int j = 0; j < kRmsNormMaxSpread; ++j) {
    squares[j] = 0.0f;
    if (j < spread) {
      for (int64_t i = threadIdx.x + j * threads; i < cols; i += lanes) squares[j] = fmaf(x_row[i], x_row[i], squares[j]);
    }
  }
  // block_reduce over the logical threads: each logical warp by the butterfly, then the
  // logical warps' sums by the butterfly over 32 slots (device_common.cuh).
  const int lane = threadIdx.x % 32;
  __syncthreads();  // an earlier reduction may still be reading scratch
#pragma unroll
  for (int j = 0; j < kRmsNormMaxSpread; ++j) {
    if (j < spread) {
      const float warp_total = warp_sum(squares[j]);
      if (lane == 0) scratch[(threadIdx.x + j * threads) / 32] = warp_total;
    }
  }
  __syncthreads();
  const float total = warp_sum(lane < lanes / 32 ? scratch[lane] : 0.0f);
  const float inverse_rms = 1.0f / sqrtf(total / static_cast<float>(cols) + eps);
  for (int64_t i = threadIdx.x; i < cols; i += threads) {
    const float y = x_row[i] * inverse_rms;
    out_row[i] = weight ? y * weight[i] : y;
  }
}

void launch_rms_norm(const NodeLaunch& launch);

}  // namespace braid::cuda
