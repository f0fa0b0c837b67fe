#include "backend/cuda/norm.cuh"

#include "backend/cuda/quantize_x.cuh"

namespace braid::cuda {
namespace {

// A block of rms_norm_lanes(cols) threads per row. weight is null when the node has none.
// With an int8 copy to write, each thread quantizes the elements it has just written
// (cols is then a multiple of 32, so each warp's elements are whole blocks).
__global__ void rms_norm_kernel(StridedTensor x, const float* weight, float eps, float* out, Int8Out int8) {
  wait_for_producers();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int64_t cols = x.ne[0];
  float* out_row = out + row * cols;
  rms_norm_row(reinterpret_cast<const float*>(x.row_data(row)), cols, weight, eps, out_row, blockDim.x, scratch);
  if (int8.q == nullptr) return;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) store_int8_copy(int8, row, i, out_row[i]);
}

}  // namespace

void launch_rms_norm(const NodeLaunch& launch) {
  const StridedTensor x = strided(launch.src(0), launch.src_data(0));
  const auto* weight = launch.node.src.size() > 1 ? reinterpret_cast<const float*>(launch.src_data(1)) : nullptr;
  const auto rows = static_cast<unsigned>(x.rows());
  if (rows == 0 || x.ne[0] == 0) return;
  launch_kernel(rms_norm_kernel, rows, rms_norm_lanes(x.ne[0]), 0, launch.ctx.stream, x, weight,
                launch.node.params.f[0], reinterpret_cast<float*>(launch.out_data()),
                int8_out(launch.out_int8));
  launch.check_launch();
}

}  // namespace braid::cuda
