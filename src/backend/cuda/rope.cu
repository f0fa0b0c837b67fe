#include "backend/cuda/rope.cuh"

namespace braid::cuda {
namespace {

// One block per (group of kRopeHeadsPerBlock heads, token).
__global__ void rope_kernel(StridedTensor x, const int32_t* positions, RopeParams p, float* out) {
  wait_for_producers();
  rope_block(x, positions, p, out, static_cast<int>(blockIdx.x), blockIdx.y);
}

}  // namespace

void launch_rope(const NodeLaunch& launch) {
  const StridedTensor x = strided(launch.src(0), launch.src_data(0));
  const RopeParams p = rope_params(launch, 2);
  if (x.ne[1] == 0 || x.ne[2] == 0) return;
  if (x.ne[2] > 65535) throw Error(launch.label() + ": more than 65535 tokens");
  launch_kernel(rope_kernel, rope_grid(x.ne[1], x.ne[2]), kRopeThreads, 0, launch.ctx.stream, x,
                reinterpret_cast<const int32_t*>(launch.src_data(1)), p, reinterpret_cast<float*>(launch.out_data()));
  launch.check_launch();
}

}  // namespace braid::cuda
