#include "backend/cuda/attention.cuh"
#include "backend/cuda/rope.cuh"

#include <algorithm>

namespace braid::cuda {
namespace {

constexpr int kAttentionThreads = 128;
constexpr int kAttentionTile = 128;  // slots scored per pass through shared memory
constexpr int kDimsPerThread = kAttentionMaxHeadDim / kAttentionThreads;
constexpr int kSplitMaxQueries = 8;  // more queries than this: one chunk per (query, head)
static_assert(kPromptAttentionMinQueries > kSplitMaxQueries, "the prompt kernel has no split form");
constexpr int kMinChunk = 128;
constexpr int kMaxChunks = 256;

// The decode kernels' arguments: the operands and the split into chunks.
struct AttentionArgs : AttentionOperands {
  float* partial;  // split mode: [n][heads][chunks][2 + head_dim]
  int chunk, chunks;
};

struct Split {
  int chunk;
  int chunks;
};

// Head sizes up to this use the tiled kernel (attention_tiled_kernel); larger ones the
// general kernel.
constexpr int kTiledMaxHeadDim = 128;
constexpr int kTileKeys = 32;         // keys per shared-memory tile of the tiled kernel
constexpr int kTiledMaxWarps = 8;     // (head, query) pairs per block of the tiled kernel
// Keys per chunk of the tiled kernel in split mode: one tile, so a decode step early in
// the context still spreads over (live keys / 32) x heads blocks instead of a few.
constexpr int kTiledChunk = kTileKeys;
constexpr int kTiledMinWarps = 4;     // warps that load each tile, even when fewer compute

bool use_tiled(int64_t head_dim) { return head_dim <= kTiledMaxHeadDim; }

// The chunking of a node: fixed by its shapes, never by the live length.
Split split_for(int64_t ctx, int64_t queries, int64_t head_dim) {
  const int64_t min_chunk = use_tiled(head_dim) ? kTiledChunk : kMinChunk;
  if (queries > kSplitMaxQueries || ctx <= min_chunk) return {static_cast<int>(std::max<int64_t>(ctx, 1)), 1};
  const int64_t by_limit = (ctx + kMaxChunks - 1) / kMaxChunks;
  const int64_t chunk = std::max<int64_t>(min_chunk, (by_limit + min_chunk - 1) / min_chunk * min_chunk);
  return {static_cast<int>(chunk), static_cast<int>((ctx + chunk - 1) / chunk)};
}

// How the tiled kernel groups (head, query) pairs into the warps of a block: heads of
// one kv group share a block, so each key/value tile in shared memory serves every
// head of the group and several queries.
struct TiledShape {
  int heads_per_block;
  int queries_per_block;
  __host__ __device__ int warps() const { return heads_per_block * queries_per_block; }
};

TiledShape tiled_shape(int heads, int kv_heads, int queries, int region) {
  const int group = heads / kv_heads;
  const int per_block = group <= kTiledMaxWarps && kTiledMaxWarps % group == 0 ? group : 1;
  if (region > 0) return {per_block, 1};  // queries of one block could see different regions
  return {per_block, std::max(1, std::min(kTiledMaxWarps / per_block, queries))};
}

// The first cache row the query sees: 0, or the start of its region.
__device__ __forceinline__ int first_row(const AttentionArgs& a, int query) {
  const int p = a.positions[query];
  return a.region > 0 && p > 0 ? p - p % a.region : 0;
}

// The rows the query sees, counted from first_row.
__device__ __forceinline__ int live_length(const AttentionArgs& a, int query) {
  return max(min(max(a.positions[query] + 1, 0), a.ctx) - first_row(a, query), 0);
}

// Rows the chunks of a node span: the whole cache, or one region.
int64_t attended_span(const Tensor& node, const Tensor& k_cache) {
  return node.params.i[0] > 0 ? node.params.i[0] : k_cache.ne[2];
}

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

// Copies `count` slots of keys and values (head_dim `hd`) into shared memory as floats.
// A decode step is latency bound here: with head_dim a multiple of four every thread
// issues all of its vector loads before its first store, so the tile costs one round
// trip to memory instead of one per element.
template <typename T>
__device__ __forceinline__ void load_tile(const T* k, const T* v, int64_t slot_stride, int count, int hd,
                                          float (*keys)[kTiledMaxHeadDim + 1], float (*values)[kTiledMaxHeadDim]) {
  if (hd % 4 != 0) {
    for (int i = threadIdx.x; i < count * hd; i += blockDim.x) {
      const int j = i / hd, d = i % hd;
      keys[j][d] = to_float(k[j * slot_stride + d]);
      values[j][d] = to_float(v[j * slot_stride + d]);
    }
    return;
  }
  constexpr int kMaxLoads = kTileKeys * kTiledMaxHeadDim / 4 / (kTiledMinWarps * 32);
  const int quads = count * hd / 4;
  float4 key_quads[kMaxLoads], value_quads[kMaxLoads];
#pragma unroll
  for (int u = 0; u < kMaxLoads; ++u) {
    const int i = threadIdx.x + u * blockDim.x;
    if (i < quads) {
      const int j = 4 * i / hd, d = 4 * i % hd;
      key_quads[u] = load4(k + j * slot_stride + d);
      value_quads[u] = load4(v + j * slot_stride + d);
    }
  }
#pragma unroll
  for (int u = 0; u < kMaxLoads; ++u) {
    const int i = threadIdx.x + u * blockDim.x;
    if (i < quads) {
      const int j = 4 * i / hd, d = 4 * i % hd;
      keys[j][d] = key_quads[u].x;
      keys[j][d + 1] = key_quads[u].y;
      keys[j][d + 2] = key_quads[u].z;
      keys[j][d + 3] = key_quads[u].w;
      *reinterpret_cast<float4*>(&values[j][d]) = value_quads[u];
    }
  }
}

// The tiled kernel: one warp per (head, query) pair, up to kTiledMaxWarps pairs per block
// sharing one kv head. Keys and values pass through shared memory kTileKeys at a time;
// lane j scores key j of the tile, the warp keeps an online softmax, and lane l
// accumulates output dimensions l, l+32, ... Grid: (chunks, head blocks, query blocks).
template <typename T>
__global__ void __launch_bounds__(kTiledMaxWarps * 32) attention_tiled_kernel(AttentionArgs a, TiledShape shape) {
  wait_for_producers();
  constexpr int kDims = kTiledMaxHeadDim / 32;
  __shared__ float q_scaled[kTiledMaxWarps][kTiledMaxHeadDim];
  __shared__ float keys[kTileKeys][kTiledMaxHeadDim + 1];  // +1: lane j reads row j without bank conflicts
  __shared__ __align__(16) float values[kTileKeys][kTiledMaxHeadDim];  // float4 stores
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int hd = a.head_dim;
  const int head = blockIdx.y * shape.heads_per_block + warp % shape.heads_per_block;
  const int query = blockIdx.z * shape.queries_per_block + warp / shape.heads_per_block;
  // Warps past shape.warps() only help load the tiles (decode with one head per block).
  const bool active = warp < shape.warps() && query < a.n;
  const int kv_head = (blockIdx.y * shape.heads_per_block) / (a.heads / a.kv_heads);
  const int begin = blockIdx.x * a.chunk;

  // This warp's keys: [begin, end); the block's: up to the longest of its queries.
  const int end = active ? min(begin + a.chunk, live_length(a, query)) : begin;
  int block_end = begin;
  for (int qi = 0; qi < shape.queries_per_block; ++qi) {
    const int qq = blockIdx.z * shape.queries_per_block + qi;
    if (qq < a.n) block_end = max(block_end, min(begin + a.chunk, live_length(a, qq)));
  }
  float* out = a.out + (static_cast<int64_t>(query) * a.heads + head) * hd;
  if (active && begin >= end && a.chunks == 1) {  // no visible slot at all: zero output
    for (int d = lane; d < hd; d += 32) out[d] = 0.0f;
  }
  if (begin >= block_end) return;  // the whole block is past its live lengths

  if (active) {
    const auto* q = reinterpret_cast<const float*>(a.q + query * a.q_nb2 + head * a.q_nb1);
    for (int d = lane; d < hd; d += 32) q_scaled[warp][d] = q[d] * a.scale;  // warp < kTiledMaxWarps
  }
  const int64_t slot_stride = static_cast<int64_t>(a.kv_heads) * hd;
  // The block's first row: its queries' (one query per block when there are regions).
  const int64_t first = first_row(a, min(static_cast<int>(blockIdx.z) * shape.queries_per_block, a.n - 1));
  const T* k = static_cast<const T*>(a.k) + static_cast<int64_t>(kv_head) * hd + first * slot_stride;
  const T* v = static_cast<const T*>(a.v) + static_cast<int64_t>(kv_head) * hd + first * slot_stride;
  float running_max = -INFINITY, running_sum = 0.0f;
  float acc[kDims];
#pragma unroll
  for (int r = 0; r < kDims; ++r) acc[r] = 0.0f;

  for (int tile = begin; tile < block_end; tile += kTileKeys) {
    const int count = min(kTileKeys, block_end - tile);
    __syncthreads();  // the previous tile is no longer read (and q_scaled is written)
    load_tile(k + tile * slot_stride, v + tile * slot_stride, slot_stride, count, hd, keys, values);
    __syncthreads();
    if (tile >= end) continue;  // this warp's query sees none of this tile
    const bool visible = lane < count && tile + lane < end;
    float score = -INFINITY;
    if (visible) {
      score = 0.0f;
      for (int d = 0; d < hd; ++d) score = fmaf(q_scaled[warp][d], keys[lane][d], score);
    }
    const float new_max = fmaxf(running_max, warp_max(score));  // finite: key `tile` is visible
    const float p = visible ? expf(score - new_max) : 0.0f;
    const float correction = expf(running_max - new_max);  // 0 on the first tile
    running_sum = running_sum * correction + warp_sum(p);
    running_max = new_max;
#pragma unroll
    for (int r = 0; r < kDims; ++r) acc[r] *= correction;
    for (int j = 0; j < count; ++j) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
      for (int r = 0; r < kDims; ++r) {
        const int d = lane + 32 * r;
        if (d < hd) acc[r] = fmaf(pj, values[j][d], acc[r]);
      }
    }
  }
  if (!active || begin >= end) return;
  if (a.chunks == 1) {
    const float inverse = 1.0f / running_sum;
#pragma unroll
    for (int r = 0; r < kDims; ++r) {
      const int d = lane + 32 * r;
      if (d < hd) out[d] = acc[r] * inverse;
    }
    return;
  }
  float* partial =
      a.partial + ((static_cast<int64_t>(query) * a.heads + head) * a.chunks + blockIdx.x) * (2 + hd);
  if (lane == 0) {
    partial[0] = running_max;
    partial[1] = running_sum;
  }
#pragma unroll
  for (int r = 0; r < kDims; ++r) {
    const int d = lane + 32 * r;
    if (d < hd) partial[2 + d] = acc[r];
  }
}

// One block per (head, query): merges the live chunks in ascending order.
__global__ void attention_merge_kernel(AttentionArgs a) {
  wait_for_producers();
  const int head = blockIdx.x;
  const int query = blockIdx.y;
  const int hd = a.head_dim;
  const int length = live_length(a, query);
  const int live = (length + a.chunk - 1) / a.chunk;
  float* out = a.out + (static_cast<int64_t>(query) * a.heads + head) * hd;
  const float* partials = a.partial + (static_cast<int64_t>(query) * a.heads + head) * a.chunks * (2 + hd);
  float max = -INFINITY;
  for (int c = 0; c < live; ++c) max = fmaxf(max, partials[c * (2 + hd)]);
  float sum = 0.0f;
  for (int c = 0; c < live; ++c) sum += partials[c * (2 + hd) + 1] * expf(partials[c * (2 + hd)] - max);
  const float inverse = live > 0 ? 1.0f / sum : 0.0f;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float value = 0.0f;
    for (int c = 0; c < live; ++c) {
      const float* p = partials + c * (2 + hd);
      value = fmaf(p[2 + d], expf(p[0] - max), value);
    }
    out[d] = value * inverse;
  }
}

// One block per (group of kRopeHeadsPerBlock kv heads, token): cache[positions[i]][h][:] =
// x[:, h, i], its first rope.dims elements rotated first (rope_kv_write; none when
// rope.dims is 0).
template <typename T>
__global__ void kv_write_kernel(StridedTensor x, const int32_t* positions, RopeParams rope, T* cache, int64_t ctx) {
  wait_for_producers();
  const int64_t token = blockIdx.y;
  const int64_t slot = positions[token];
  if (slot < 0 || slot >= ctx) return;  // outside the cache: nothing to store
  const int head0 = static_cast<int>(blockIdx.x) * kRopeHeadsPerBlock;
  const int head_end = min(head0 + kRopeHeadsPerBlock, static_cast<int>(x.ne[1]));
  const int64_t head_dim = x.ne[0];
  T* slot_data = cache + slot * x.ne[1] * head_dim;
  rope_heads(
      rope, static_cast<double>(slot), head0, head_end, head_dim,
      [&](int h) { return reinterpret_cast<const float*>(x.data + h * x.nb[1] + token * x.nb[2]); },
      [&](int h, int64_t d, float v) { slot_data[h * head_dim + d] = from_float<T>(v); });
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
  if (a.region == 0 && prompt_attention_ok(a.head_dim, a.n)) {
    launch_prompt_attention(launch, a);
    return;
  }
  if (a.chunks > 1) {
    launch.require_scratch(attention_scratch_bytes(launch.graph, launch.node.id));
    a.partial = static_cast<float*>(launch.ctx.scratch);
  }
  cudaStream_t stream = launch.ctx.stream;
  if (use_tiled(a.head_dim)) {
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
