#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/matmul.cuh"

#include <algorithm>

namespace braid::cuda {
namespace {

constexpr int kAttentionThreads = 128;
constexpr int kAttentionTile = 128;  // slots scored per pass through shared memory
constexpr int kDimsPerThread = kAttentionMaxHeadDim / kAttentionThreads;

// One block per (chunk, head, query).
template <typename T>
__global__ void __launch_bounds__(kAttentionThreads) attention_kernel(AttentionArgs a) {
  wait_for_producers();
  __shared__ float q_scaled[kAttentionMaxHeadDim];
  __shared__ float scores[kAttentionTile];
  __shared__ float reduce_scratch[32];
  const int chunk = blockIdx.x;
  const int head = blockIdx.y;
  const int query = blockIdx.z;
  const int length = live_length(a, query);
  const int begin = chunk * a.chunk;
  const int end = min(begin + a.chunk, length);
  const int hd = a.head_dim;
  float* out = a.out + (static_cast<int64_t>(query) * a.heads + head) * hd;
  if (begin >= end) {
    // Past the live length. Split mode: the merge kernel skips this chunk. Single
    // chunk (no visible slot at all, a negative position): the output is zero.
    if (a.chunks == 1) {
      for (int d = threadIdx.x; d < hd; d += blockDim.x) out[d] = 0.0f;
    }
    return;
  }
  const int kv_head = head / (a.heads / a.kv_heads);
  const auto* q = reinterpret_cast<const float*>(a.q + query * a.q_nb2 + head * a.q_nb1);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) q_scaled[d] = q[d] * a.scale;
  const int64_t slot_stride = static_cast<int64_t>(a.kv_heads) * hd;
  const int64_t first = first_row(a, query);
  const T* k = static_cast<const T*>(a.k) + static_cast<int64_t>(kv_head) * hd + first * slot_stride;
  const T* v = static_cast<const T*>(a.v) + static_cast<int64_t>(kv_head) * hd + first * slot_stride;
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int warps = blockDim.x / 32;

  float running_max = -INFINITY;
  float running_sum = 0.0f;
  float acc[kDimsPerThread];
#pragma unroll
  for (int r = 0; r < kDimsPerThread; ++r) acc[r] = 0.0f;
  __syncthreads();  // q_scaled ready

  for (int tile = begin; tile < end; tile += kAttentionTile) {
    const int count = min(kAttentionTile, end - tile);
    // Scores: one warp per slot, lanes across the head dimension.
    for (int j = warp; j < count; j += warps) {
      const T* key = k + (tile + j) * slot_stride;
      float dot = 0.0f;
      for (int d = lane; d < hd; d += 32) dot = fmaf(q_scaled[d], to_float(key[d]), dot);
      dot = warp_sum(dot);
      if (lane == 0) scores[j] = dot;
    }
    __syncthreads();
    float tile_max = -INFINITY;
    for (int j = threadIdx.x; j < count; j += blockDim.x) tile_max = fmaxf(tile_max, scores[j]);
    tile_max = block_reduce<true>(tile_max, reduce_scratch);
    const float new_max = fmaxf(running_max, tile_max);
    float tile_sum = 0.0f;
    for (int j = threadIdx.x; j < count; j += blockDim.x) {
      const float p = expf(scores[j] - new_max);
      scores[j] = p;
      tile_sum += p;
    }
    tile_sum = block_reduce<false>(tile_sum, reduce_scratch);  // also publishes scores[]
    const float correction = expf(running_max - new_max);    // 0 on the first tile
    running_sum = running_sum * correction + tile_sum;
    running_max = new_max;
#pragma unroll
    for (int r = 0; r < kDimsPerThread; ++r) {
      const int d = threadIdx.x + r * kAttentionThreads;
      if (d < hd) {
        float sum = 0.0f;
        for (int j = 0; j < count; ++j) sum = fmaf(scores[j], to_float(v[(tile + j) * slot_stride + d]), sum);
        acc[r] = acc[r] * correction + sum;
      }
    }
    __syncthreads();  // scores are rewritten by the next tile
  }

  if (a.chunks == 1) {
    const float inverse = 1.0f / running_sum;
#pragma unroll
    for (int r = 0; r < kDimsPerThread; ++r) {
      const int d = threadIdx.x + r * kAttentionThreads;
      if (d < hd) out[d] = acc[r] * inverse;
    }
    return;
  }
  float* partial = a.partial + ((static_cast<int64_t>(query) * a.heads + head) * a.chunks + chunk) * (2 + hd);
  if (threadIdx.x == 0) {
    partial[0] = running_max;
    partial[1] = running_sum;
  }
#pragma unroll
  for (int r = 0; r < kDimsPerThread; ++r) {
    const int d = threadIdx.x + r * kAttentionThreads;
    if (d < hd) partial[2 + d] = acc[r];
  }
}

// The tiled kernel (attention_tiled_block). Grid: (chunks, head blocks, query blocks).
template <typename T>
__global__ void __launch_bounds__(kTiledMaxWarps * 32) attention_tiled_kernel(AttentionArgs a, TiledShape shape) {
  wait_for_producers();
  __shared__ AttentionTiles tiles;
  attention_tiled_block<T>(a, shape, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y),
                           static_cast<int>(blockIdx.z), tiles);
}

// One block per (head, query): merges the live chunks in ascending order.
__global__ void attention_merge_kernel(AttentionArgs a) {
  wait_for_producers();
  attention_merge_block(a, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y));
}

// One block per (group of kRopeHeadsPerBlock kv heads, token) (kv_write_block).
template <typename T>
__global__ void kv_write_kernel(StridedTensor x, const int32_t* positions, RopeParams rope, T* cache, int64_t ctx) {
  wait_for_producers();
  kv_write_block<T>(x, positions, rope, cache, ctx, static_cast<int>(blockIdx.x), blockIdx.y);
}

}  // namespace

size_t attention_scratch_bytes(const Graph& graph, TensorId node) {
  const Tensor& t = graph[node];
  if (t.op != Op::Attention) return 0;
  const Tensor& k = graph[t.src[1]];
  const Split split = split_for(attended_span(t, k), t.ne[2], t.ne[0]);
  if (split.chunks == 1) return 0;
  return static_cast<size_t>(t.ne[2] * t.ne[1] * split.chunks * (2 + t.ne[0])) * sizeof(float);
}

bool attention_supported(const Graph& graph, TensorId node) {
  const Tensor& t = graph[node];
  const Tensor& k = graph[t.src[1]];
  return t.ne[0] <= kAttentionMaxHeadDim && k.ne[2] <= INT32_MAX / 2 && t.ne[2] <= 65535 && t.ne[1] <= 65535 &&
         k.elements() > 0;
}

AttentionOperands attention_operands(const NodeLaunch& launch) {
  const Tensor& q = launch.src(0);
  const Tensor& k = launch.src(1);
  AttentionOperands a{};
  a.q = launch.src_data(0);
  a.q_nb1 = static_cast<int64_t>(q.nb[1]);
  a.q_nb2 = static_cast<int64_t>(q.nb[2]);
  a.k = launch.src_data(1);
  a.v = launch.src_data(2);
  a.positions = reinterpret_cast<const int32_t*>(launch.src_data(3));
  a.out = reinterpret_cast<float*>(launch.out_data());
  a.head_dim = static_cast<int>(q.ne[0]);
  a.heads = static_cast<int>(q.ne[1]);
  a.kv_heads = static_cast<int>(k.ne[1]);
  a.ctx = static_cast<int>(k.ne[2]);
  a.n = static_cast<int>(q.ne[2]);
  a.region = launch.node.params.i[0];
  a.scale = launch.node.params.f[0];
  return a;
}

void launch_attention(const NodeLaunch& launch) {
  const Tensor& q = launch.src(0);
  const Tensor& k = launch.src(1);
  AttentionArgs a{attention_operands(launch)};
  const Split split = split_for(attended_span(launch.node, k), q.ne[2], q.ne[0]);
  a.chunk = split.chunk;
  a.chunks = split.chunks;
  if (a.n == 0 || a.heads == 0 || a.head_dim == 0) return;
  // The output's int8 copy (Note [Shared int8 activations]): the tiled kernel and the merge
  // write it beside the output; after the other kernels, a quantization kernel does.
  const auto copy_after = [&] {
    if (launch.out_int8 != nullptr) write_shared_int8(launch, *launch.out_int8);
  };
  if (a.region == 0 && prompt_attention_ok(a.head_dim, a.n)) {
    launch_prompt_attention(launch, a);
    copy_after();
    return;
  }
  if (batch_attention_ok(a)) {
    launch_batch_attention(launch, a);
    copy_after();
    return;
  }
  if (a.chunks > 1) {
    launch.require_scratch(attention_scratch_bytes(launch.graph, launch.node.id));
    a.partial = static_cast<float*>(launch.ctx.scratch);
  }
  cudaStream_t stream = launch.ctx.stream;
  if (use_tiled(a.head_dim)) {
    a.int8 = int8_out(launch.out_int8);
    const TiledShape shape = tiled_shape(a.heads, a.kv_heads, a.n, a.region);
    const dim3 grid(static_cast<unsigned>(a.chunks), static_cast<unsigned>(a.heads / shape.heads_per_block),
                    static_cast<unsigned>((a.n + shape.queries_per_block - 1) / shape.queries_per_block));
    const unsigned threads = static_cast<unsigned>(std::max(shape.warps(), kTiledMinWarps) * 32);
    switch (k.type) {
      case DType::F32:
        launch_kernel(attention_tiled_kernel<float>, grid, threads, 0, stream, a, shape);
        break;
      case DType::F16:
        launch_kernel(attention_tiled_kernel<__half>, grid, threads, 0, stream, a, shape);
        break;
      case DType::BF16:
        launch_kernel(attention_tiled_kernel<__nv_bfloat16>, grid, threads, 0, stream, a, shape);
        break;
      default: throw Error(launch.label() + ": unsupported cache type");
    }
  } else {
    const dim3 grid(static_cast<unsigned>(a.chunks), static_cast<unsigned>(a.heads), static_cast<unsigned>(a.n));
    switch (k.type) {
      case DType::F32:
        launch_kernel(attention_kernel<float>, grid, kAttentionThreads, 0, stream, a);
        break;
      case DType::F16:
        launch_kernel(attention_kernel<__half>, grid, kAttentionThreads, 0, stream, a);
        break;
      case DType::BF16:
        launch_kernel(attention_kernel<__nv_bfloat16>, grid, kAttentionThreads, 0, stream, a);
        break;
      default:
        throw Error(launch.label() + ": unsupported cache type");
    }
  }
  launch.check_launch();
  if (a.chunks > 1) {
    const dim3 merge_grid(static_cast<unsigned>(a.heads), static_cast<unsigned>(a.n));
    launch_kernel(attention_merge_kernel, merge_grid, 128, 0, stream, a);
    launch.check_launch();
  }
  if (!use_tiled(a.head_dim)) copy_after();
}

void launch_kv_write(const NodeLaunch& launch) {
  const Tensor& cache = launch.src(0);
  const StridedTensor x = strided(launch.src(1), launch.src_data(1));
  const auto* positions = reinterpret_cast<const int32_t*>(launch.src_data(2));
  // The node aliases its cache: write through the cache operand's address.
  uint8_t* target = launch.memory[static_cast<size_t>(launch.node.src[0])];
  if (x.ne[1] == 0 || x.ne[2] == 0) return;
  if (x.ne[2] > 65535) throw Error(launch.label() + ": more than 65535 tokens");
  const dim3 grid = rope_grid(x.ne[1], x.ne[2]);
  cudaStream_t stream = launch.ctx.stream;
  const int64_t slots = cache.ne[2];
  const RopeParams rope = rope_params(launch, 3);
  switch (cache.type) {
    case DType::F32:
      launch_kernel(kv_write_kernel<float>, grid, kRopeThreads, 0, stream, x, positions, rope,
                    reinterpret_cast<float*>(target), slots);
      break;
    case DType::F16:
      launch_kernel(kv_write_kernel<__half>, grid, kRopeThreads, 0, stream, x, positions, rope,
                    reinterpret_cast<__half*>(target), slots);
      break;
    case DType::BF16:
      launch_kernel(kv_write_kernel<__nv_bfloat16>, grid, kRopeThreads, 0, stream, x, positions, rope,
                    reinterpret_cast<__nv_bfloat16*>(target), slots);
      break;
    default: throw Error(launch.label() + ": unsupported cache type");
  }
  launch.check_launch();
}

}  // namespace braid::cuda
