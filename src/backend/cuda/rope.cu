#include "backend/cuda/rope.cuh"

namespace braid::cuda {
namespace {

// One block per (group of kRopeHeadsPerBlock heads, token).
__global__ void rope_kernel(StridedTensor x, const int32_t* positions, RopeParams p, float* out) {
  wait_for_producers();
  const int64_t token = blockIdx.y;
  const int head0 = static_cast<int>(blockIdx.x) * kRopeHeadsPerBlock;
  const int head_end = min(head0 + kRopeHeadsPerBlock, static_cast<int>(x.ne[1]));
  const int64_t head_dim = x.ne[0];
  float* out_token = out + token * x.ne[1] * head_dim;
  rope_heads(
      p, static_cast<double>(positions[token]), head0, head_end, head_dim,
      [&](int h) { return reinterpret_cast<const float*>(x.data + h * x.nb[1] + token * x.nb[2]); },
      [&](int h, int64_t d, float v) { out_token[h * head_dim + d] = v; });
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
