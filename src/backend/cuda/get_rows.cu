#include "backend/cuda/get_rows.cuh"

namespace braid::cuda {
namespace {

constexpr int kGetRowsThreads = 256;

__global__ void get_rows_kernel(StridedTensor table, DType type, const int32_t* ids, float* out) {
  wait_for_producers();
  const int64_t i = blockIdx.x;
  const int64_t id = ids[i];
  const int64_t cols = table.ne[0];
  float* out_row = out + i * cols;
  if (id < 0 || id >= table.ne[1]) {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out_row[c] = __int_as_float(0x7fc00000);
    return;
  }
  const uint8_t* row = table.data + id * table.nb[1];
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out_row[c] = load_element(type, row, c);
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
