// The decode side of attention (attention.cuh): the tiled kernel's block, the merge of
// flash-decoding's chunks and kv_write's block, as device functions of the block's
// coordinates. The kernels of attention.cu are thin wrappers around them, and the persistent
// kernel's tiles (src/backend/cuda/persistent) call the same functions, so both executors
// give the same bits for a (head, query) pair.
#pragma once

#include <algorithm>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/quantize_x.cuh"
#include "backend/cuda/rope.cuh"

namespace braid::cuda {

inline constexpr int kSplitMaxQueries = 8;  // more queries than this: one chunk per (query, head)
static_assert(kPromptAttentionMinQueries > kSplitMaxQueries, "the prompt kernel has no split form");
inline constexpr int kMinChunk = 128;
inline constexpr int kMaxChunks = 256;

// The decode kernels' arguments: the operands and the split into chunks.
struct AttentionArgs : AttentionOperands {
  float* partial;  // split mode: [n][heads][chunks][2 + head_dim]
  int chunk, chunks;
  // The output's int8 copy, read as [head_dim * heads, n] (Note [Shared int8 activations]);
  // written where the output is, by the single-chunk tiled block and the merge.
  Int8Out int8;
};

struct Split {
  int chunk;
  int chunks;
};

// Head sizes up to this use the tiled kernel (attention_tiled_kernel); larger ones the
// general kernel.
inline constexpr int kTiledMaxHeadDim = 128;
inline constexpr int kTileKeys = 32;         // keys per shared-memory tile of the tiled kernel
inline constexpr int kTiledMaxWarps = 8;     // (head, query) pairs per block of the tiled kernel
// Keys per chunk of the tiled kernel in split mode: one tile, so a decode step early in
// the context still spreads over (live keys / 32) x heads blocks instead of a few.
inline constexpr int kTiledChunk = kTileKeys;
inline constexpr int kTiledMinWarps = 4;     // warps that load each tile, even when fewer compute

inline bool use_tiled(int64_t head_dim) { return head_dim <= kTiledMaxHeadDim; }

// The chunking of a node: fixed by its shapes, never by the live length.
inline Split split_for(int64_t ctx, int64_t queries, int64_t head_dim) {
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

inline TiledShape tiled_shape(int heads, int kv_heads, int queries, int region) {
  const int group = heads / kv_heads;
  const int per_block = group <= kTiledMaxWarps && kTiledMaxWarps % group == 0 ? group : 1;
  if (region > 0) return {per_block, 1};  // queries of one block could see different regions
  return {per_block, std::max(1, std::min(kTiledMaxWarps / per_block, queries))};
}

// The batched decode kernel (attention_batch.cu, Note [Batched decode attention]): whether it
// takes the node (a query per region, one chunk, head size 64 or 128), and its launch.
bool batch_attention_ok(const AttentionArgs& a);
void launch_batch_attention(const NodeLaunch& launch, const AttentionArgs& a);

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
inline int64_t attended_span(const Tensor& node, const Tensor& k_cache) {
  return node.params.i[0] > 0 ? node.params.i[0] : k_cache.ne[2];
}

// The tiled kernel's shared memory.
struct AttentionTiles {
  float q_scaled[kTiledMaxWarps][kTiledMaxHeadDim];
  float keys[kTileKeys][kTiledMaxHeadDim + 1];  // +1: lane j reads row j without bank conflicts
  __align__(16) float values[kTileKeys][kTiledMaxHeadDim];  // float4 stores
};

// Copies `count` slots of keys and values (head_dim `hd`) into shared memory as floats.
// A decode step is latency bound here: with head_dim a multiple of four every thread
// issues all of its vector loads before its first store, so the tile costs one round
// trip to memory instead of one per element. kPasses > 1 splits those loads into rounds
// (a copy: the values in shared memory are the same), for a kernel that cannot spend 64
// registers on loads in flight (the persistent kernel, whose register count is its maximum
// over every op's tile).
template <typename T, int kPasses = 1>
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
  static_assert(kMaxLoads % kPasses == 0, "whole rounds of loads");
  constexpr int kLoads = kMaxLoads / kPasses;
  const int quads = count * hd / 4;
#pragma unroll 1
  for (int pass = 0; pass < kPasses; ++pass) {
    float4 key_quads[kLoads], value_quads[kLoads];
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      const int i = threadIdx.x + (pass * kLoads + u) * blockDim.x;
      if (i < quads) {
        const int j = 4 * i / hd, d = 4 * i % hd;
        key_quads[u] = load4(k + j * slot_stride + d);
        value_quads[u] = load4(v + j * slot_stride + d);
      }
    }
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      const int i = threadIdx.x + (pass * kLoads + u) * blockDim.x;
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
}

// The tiled kernel: one warp per (head, query) pair, up to kTiledMaxWarps pairs per block
// sharing one kv head. Keys and values pass through shared memory kTileKeys at a time;
// lane j scores key j of the tile, the warp keeps an online softmax, and lane l
// accumulates output dimensions l, l+32, ... The block is (chunk, head block, query block) of the grid
// (chunks, head blocks, query blocks); every thread of it calls this.
template <typename T, int kLoadPasses = 1>
__device__ __forceinline__ void attention_tiled_block(const AttentionArgs& a, TiledShape shape, int chunk,
                                                      int head_block, int query_block, AttentionTiles& tiles) {
  constexpr int kDims = kTiledMaxHeadDim / 32;
  auto& q_scaled = tiles.q_scaled;
  auto& keys = tiles.keys;
  auto& values = tiles.values;
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int hd = a.head_dim;
  const int head = head_block * shape.heads_per_block + warp % shape.heads_per_block;
  const int query = query_block * shape.queries_per_block + warp / shape.heads_per_block;
  // Warps past shape.warps() only help load the tiles (decode with one head per block).
  const bool active = warp < shape.warps() && query < a.n;
  const int kv_head = (head_block * shape.heads_per_block) / (a.heads / a.kv_heads);
  const int begin = chunk * a.chunk;

  // This warp's keys: [begin, end); the block's: up to the longest of its queries.
  const int end = active ? min(begin + a.chunk, live_length(a, query)) : begin;
  int block_end = begin;
  for (int qi = 0; qi < shape.queries_per_block; ++qi) {
    const int qq = query_block * shape.queries_per_block + qi;
    if (qq < a.n) block_end = max(block_end, min(begin + a.chunk, live_length(a, qq)));
  }
  float* out = a.out + (static_cast<int64_t>(query) * a.heads + head) * hd;
  if (active && begin >= end && a.chunks == 1) {  // no visible slot at all: zero output
    for (int d = lane; d < hd; d += 32) {
      out[d] = 0.0f;
      if (a.int8.q != nullptr) store_int8_copy(a.int8, query, static_cast<int64_t>(head) * hd + d, 0.0f);
    }
  }
  if (begin >= block_end) return;  // the whole block is past its live lengths

  if (active) {
    const auto* q = reinterpret_cast<const float*>(a.q + query * a.q_nb2 + head * a.q_nb1);
    for (int d = lane; d < hd; d += 32) q_scaled[warp][d] = q[d] * a.scale;  // warp < kTiledMaxWarps
  }
  const int64_t slot_stride = static_cast<int64_t>(a.kv_heads) * hd;
  // The block's first row: its queries' (one query per block when there are regions).
  const int64_t first = first_row(a, min(query_block * shape.queries_per_block, a.n - 1));
  const T* k = static_cast<const T*>(a.k) + static_cast<int64_t>(kv_head) * hd + first * slot_stride;
  const T* v = static_cast<const T*>(a.v) + static_cast<int64_t>(kv_head) * hd + first * slot_stride;
  float running_max = -INFINITY, running_sum = 0.0f;
  float acc[kDims];
#pragma unroll
  for (int r = 0; r < kDims; ++r) acc[r] = 0.0f;

  for (int tile = begin; tile < block_end; tile += kTileKeys) {
    const int count = min(kTileKeys, block_end - tile);
    __syncthreads();  // the previous tile is no longer read (and q_scaled is written)
    load_tile<T, kLoadPasses>(k + tile * slot_stride, v + tile * slot_stride, slot_stride, count, hd, keys, values);
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
      if (d < hd) {  // the whole warp, or none of it, where an int8 copy is written (hd % 32 == 0)
        out[d] = acc[r] * inverse;
        if (a.int8.q != nullptr) store_int8_copy(a.int8, query, static_cast<int64_t>(head) * hd + d, out[d]);
      }
    }
    return;
  }
  float* partial =
      a.partial + ((static_cast<int64_t>(query) * a.heads + head) * a.chunks + chunk) * (2 + hd);
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
__device__ __forceinline__ void attention_merge_block(const AttentionArgs& a, int head, int query) {
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
    if (a.int8.q != nullptr) store_int8_copy(a.int8, query, static_cast<int64_t>(head) * hd + d, out[d]);
  }
}

// One block per (group of kRopeHeadsPerBlock kv heads, token): cache[positions[i]][h][:] =
// x[:, h, i], its first rope.dims elements rotated first (rope_kv_write; none when
// rope.dims is 0).
template <typename T>
__device__ __forceinline__ void kv_write_block(const StridedTensor& x, const int32_t* positions, const RopeParams& rope,
                                               T* cache, int64_t ctx, int group, int64_t token) {
  const int64_t slot = positions[token];
  if (slot < 0 || slot >= ctx) return;  // outside the cache: nothing to store
  const int head0 = group * kRopeHeadsPerBlock;
  const int head_end = min(head0 + kRopeHeadsPerBlock, static_cast<int>(x.ne[1]));
  const int64_t head_dim = x.ne[0];
  T* slot_data = cache + slot * x.ne[1] * head_dim;
  rope_heads(
      rope, static_cast<double>(slot), head0, head_end, head_dim,
      [&](int h) { return reinterpret_cast<const float*>(x.data + h * x.nb[1] + token * x.nb[2]); },
      [&](int h, int64_t d, float v) { slot_data[h * head_dim + d] = from_float<T>(v); });
}

}  // namespace braid::cuda
