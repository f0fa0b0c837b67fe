#include "backend/cuda/get_rows.cuh"

namespace braid::cuda {
namespace {

constexpr int kGetRowsThreads = 256;

__global__ void get_rows_kernel(StridedTensor table, DType type, const int32_t* ids, float* out) {
  wait_for_producers();
  for (int64_t c = threadIdx.x; c < table.ne[0]; c += blockDim.x) get_rows_element(table, type, ids, out, blockIdx.x, c);
}

}  // namespace

void launch_get_rows(const NodeLaunch& launch) {
  const StridedTensor table = strided(launch.src(0), launch.src_data(0));
  const int64_t n = launch.src(1).ne[0];
  if (n == 0) return;
  launch_kernel(get_rows_kernel, static_cast<unsigned>(n), kGetRowsThreads, 0, launch.ctx.stream, table,
                launch.src(0).type, reinterpret_cast<const int32_t*>(launch.src_data(1)),
                reinterpret_cast<float*>(launch.out_data()));
  launch.check_launch();
}

}  // namespace braid::cuda
