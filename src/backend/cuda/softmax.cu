#include "backend/cuda/softmax.cuh"

namespace braid::cuda {
namespace {

constexpr int kSoftmaxThreads = 256;

__global__ void softmax_kernel(StridedTensor a, float scale, float* out) {
  wait_for_producers();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const int64_t cols = a.ne[0];
  const auto* a_row = reinterpret_cast<const float*>(a.row_data(row));
  float* out_row = out + row * cols;
  float max = -INFINITY;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) max = fmaxf(max, a_row[i] * scale);
  max = block_reduce<true>(max, scratch);
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const float e = expf(a_row[i] * scale - max);
    out_row[i] = e;
    sum += e;
  }
  sum = block_reduce<false>(sum, scratch);
  const float inverse = 1.0f / sum;
  // Each thread rescales exactly the elements it wrote, so no barrier is needed.
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) out_row[i] *= inverse;
}

}  // namespace

void launch_softmax(const NodeLaunch& launch) {
  const StridedTensor a = strided(launch.src(0), launch.src_data(0));
  const auto rows = static_cast<unsigned>(a.rows());
  if (rows == 0 || a.ne[0] == 0) return;
  launch_kernel(softmax_kernel, rows, kSoftmaxThreads, 0, launch.ctx.stream, a, launch.node.params.f[0],
                reinterpret_cast<float*>(launch.out_data()));
  launch.check_launch();
}

}  // namespace braid::cuda
