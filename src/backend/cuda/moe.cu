#include "backend/cuda/moe.cuh"

namespace braid::cuda {
namespace {

constexpr int kTopKMaxExperts = 8192;  // the taken-flags live in shared memory

// Whether (value a, index ia) ranks before (value b, index ib): larger values first,
// equal values by lower index, NaN below every number. A total order, so every lane of
// the butterfly agrees and the result matches the CPU reference.
__device__ __forceinline__ bool ranks_before(float a, int ia, float b, int ib) {
  if (isnan(b)) return !isnan(a) || ia < ib;
  if (isnan(a)) return false;
  return a > b || (a == b && ia < ib);
}

// One warp per row: k rounds of a warp-wide arg-max over the entries not yet taken.
__global__ void top_k_kernel(StridedTensor logits, int k, int32_t* out) {
  wait_for_producers();
  extern __shared__ uint8_t taken[];
  const int64_t row = blockIdx.x;
  const int experts = static_cast<int>(logits.ne[0]);
  const auto* values = reinterpret_cast<const float*>(logits.data + row * logits.nb[1]);
  const int lane = threadIdx.x;
  for (int e = lane; e < experts; e += 32) taken[e] = 0;
  __syncwarp();
  for (int round = 0; round < k; ++round) {
    float best = -INFINITY;
    int best_index = INT32_MAX;
    for (int e = lane; e < experts; e += 32) {
      if (!taken[e] && (best_index == INT32_MAX || ranks_before(values[e], e, best, best_index))) {
        best = values[e];
        best_index = e;
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, best, offset);
      const int other_index = __shfl_xor_sync(0xffffffffu, best_index, offset);
      if (other_index != INT32_MAX && (best_index == INT32_MAX || ranks_before(other, other_index, best, best_index))) {
        best = other;
        best_index = other_index;
      }
    }
    if (lane == 0) {
      out[row * k + round] = best_index;
      taken[best_index] = 1;
    }
    __syncwarp();
  }
}

// One thread per token.
__global__ void moe_weights_kernel(StridedTensor logits, StridedTensor ids, float* out) {
  wait_for_producers();
  const int64_t token = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (token >= ids.ne[1]) return;
  const int k = static_cast<int>(ids.ne[0]);
  const auto* row = reinterpret_cast<const float*>(logits.data + token * logits.nb[1]);
  const auto* selected = reinterpret_cast<const int32_t*>(ids.data + token * ids.nb[1]);
  float* weights = out + token * k;
  const float nan = __int_as_float(0x7fc00000);
  float max = -INFINITY;
  for (int s = 0; s < k; ++s) {
    const int e = selected[s];
    max = fmaxf(max, e >= 0 && e < logits.ne[0] ? row[e] : nan);
  }
  float sum = 0.0f;
  for (int s = 0; s < k; ++s) {
    const int e = selected[s];
    const float w = e >= 0 && e < logits.ne[0] ? expf(row[e] - max) : nan;
    weights[s] = w;
    sum += w;
  }
  const float inverse = 1.0f / sum;
  for (int s = 0; s < k; ++s) weights[s] *= inverse;
}

struct CombineSources {
  const uint8_t* y[kMoeMaxCombined];
  int64_t y_nb1[kMoeMaxCombined];
};

// Grid (column blocks, tokens).
__global__ void moe_combine_kernel(StridedTensor weights, CombineSources sources, int64_t d, float* out) {
  wait_for_producers();
  const int64_t token = blockIdx.y;
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= d) return;
  const auto* w = reinterpret_cast<const float*>(weights.data + token * weights.nb[1]);
  const int k = static_cast<int>(weights.ne[0]);
  float sum = 0.0f;
  for (int s = 0; s < k; ++s) {
    const auto* y = reinterpret_cast<const float*>(sources.y[s] + token * sources.y_nb1[s]);
    sum = fmaf(w[s], y[i], sum);
  }
  out[token * d + i] = sum;
}

}  // namespace

bool moe_supported(const Graph& graph, TensorId node) {
  const Tensor& t = graph[node];
  switch (t.op) {
    case Op::TopK: return graph[t.src[0]].ne[0] <= kTopKMaxExperts;
    case Op::MoeWeights: return true;
    case Op::MoeCombine: return t.src.size() - 1 <= static_cast<size_t>(kMoeMaxCombined) && t.ne[1] <= 65535;
    default: return false;
  }
}

void launch_top_k(const NodeLaunch& launch) {
  const StridedTensor logits = strided(launch.src(0), launch.src_data(0));
  const int k = launch.node.params.i[0];
  const auto rows = static_cast<unsigned>(logits.ne[1]);
  if (rows == 0) return;
  launch_kernel(top_k_kernel, rows, 32, static_cast<size_t>(logits.ne[0]), launch.ctx.stream, logits, k,
                reinterpret_cast<int32_t*>(launch.out_data()));
  launch.check_launch();
}

void launch_moe_weights(const NodeLaunch& launch) {
  const StridedTensor logits = strided(launch.src(0), launch.src_data(0));
  const StridedTensor ids = strided(launch.src(1), launch.src_data(1));
  if (ids.ne[1] == 0) return;
  launch_kernel(moe_weights_kernel, grid_size(ids.ne[1], 128), 128, 0, launch.ctx.stream, logits, ids,
                reinterpret_cast<float*>(launch.out_data()));
  launch.check_launch();
}

void launch_moe_combine(const NodeLaunch& launch) {
  const StridedTensor weights = strided(launch.src(0), launch.src_data(0));
  CombineSources sources{};
  const size_t count = launch.node.src.size() - 1;
  if (count > static_cast<size_t>(kMoeMaxCombined)) throw Error(launch.label() + ": too many expert outputs");
  for (size_t s = 0; s < count; ++s) {
    sources.y[s] = launch.src_data(s + 1);
    sources.y_nb1[s] = static_cast<int64_t>(launch.src(s + 1).nb[1]);
  }
  const int64_t d = launch.node.ne[0];
  const int64_t tokens = launch.node.ne[1];
  if (d == 0 || tokens == 0) return;
  const dim3 grid(grid_size(d, 256), static_cast<unsigned>(tokens));
  launch_kernel(moe_combine_kernel, grid, 256, 0, launch.ctx.stream, weights, sources, d,
                reinterpret_cast<float*>(launch.out_data()));
  launch.check_launch();
}

}  // namespace braid::cuda
