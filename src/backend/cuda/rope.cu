#include "backend/cuda/rope.cuh"

namespace braid::cuda {
namespace {

constexpr int kRopeThreads = 64;

// One block per (head, token) row.
__global__ void rope_kernel(StridedTensor x, const int32_t* positions, RopeParams p, float* out) {
  wait_for_producers();
  const int64_t head = blockIdx.x;
  const int64_t token = blockIdx.y;
  const auto* x_row = reinterpret_cast<const float*>(x.data + head * x.nb[1] + token * x.nb[2]);
  float* out_row = out + (token * x.ne[1] + head) * x.ne[0];
  const double position = static_cast<double>(positions[token]);
  for (int i = threadIdx.x; i < p.dims / 2; i += blockDim.x) {
    const RotatedPair r = rotate_pair(x_row, i, p, position);
    out_row[r.first] = r.a;
    out_row[r.second] = r.b;
  }
  for (int64_t i = p.dims + threadIdx.x; i < x.ne[0]; i += blockDim.x) out_row[i] = x_row[i];
}

}  // namespace

void launch_rope(const NodeLaunch& launch) {
  const StridedTensor x = strided(launch.src(0), launch.src_data(0));
  const RopeParams p = rope_params(launch.node.params);
  if (x.ne[1] == 0 || x.ne[2] == 0) return;
  if (x.ne[2] > 65535) throw Error(launch.label() + ": more than 65535 tokens");
  const dim3 grid(static_cast<unsigned>(x.ne[1]), static_cast<unsigned>(x.ne[2]));
  launch_kernel(rope_kernel, grid, kRopeThreads, 0, launch.ctx.stream, x,
                reinterpret_cast<const int32_t*>(launch.src_data(1)), p, reinterpret_cast<float*>(launch.out_data()));
  launch.check_launch();
}

}  // namespace braid::cuda
