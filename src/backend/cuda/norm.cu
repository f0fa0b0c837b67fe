#include "backend/cuda/norm.cuh"

namespace braid::cuda {
namespace {

// A block per row; wide rows get more threads so each thread issues few loads.
int norm_threads(int64_t cols) { return cols >= 2048 ? 1024 : cols >= 512 ? 256 : 128; }

// weight is null when the node has none.
__global__ void rms_norm_kernel(StridedTensor x, const float* weight, float eps, float* out) {
  wait_for_producers();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int64_t cols = x.ne[0];
  const auto* x_row = reinterpret_cast<const float*>(x.row_data(row));
  float squares = 0.0f;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) squares = fmaf(x_row[i], x_row[i], squares);
  squares = block_reduce<false>(squares, scratch);
  const float inverse_rms = 1.0f / sqrtf(squares / static_cast<float>(cols) + eps);
  float* out_row = out + row * cols;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const float y = x_row[i] * inverse_rms;
    out_row[i] = weight ? y * weight[i] : y;
  }
}

}  // namespace

void launch_rms_norm(const NodeLaunch& launch) {
  const StridedTensor x = strided(launch.src(0), launch.src_data(0));
  const auto* weight = launch.node.src.size() > 1 ? reinterpret_cast<const float*>(launch.src_data(1)) : nullptr;
  const auto rows = static_cast<unsigned>(x.rows());
  if (rows == 0 || x.ne[0] == 0) return;
  launch_kernel(rms_norm_kernel, rows, norm_threads(x.ne[0]), 0, launch.ctx.stream, x, weight, launch.node.params.f[0],
                reinterpret_cast<float*>(launch.out_data()));
  launch.check_launch();
}

}  // namespace braid::cuda
