// Causal attention over a KV cache, and kv_write (storing new keys/values in the cache).
//
// q is [head_dim, heads, n] (strided in dims 1..2), the caches [head_dim, kv_heads, ctx]
// (contiguous, f32/f16/bf16). Query i sees cache slots first..positions[i], where first is 0
// or, with the node's region (a batch of sequences), the start of positions[i]'s region;
// positions are read from device memory, so one launch configuration (sized for ctx, or
// for one region) serves every step. With a region the blocks never share key tiles
// between queries (theirs may lie in different regions) and prompts stay off the
// tensor-core kernel.
// Query head h reads kv head h / (heads / kv_heads) (grouped-query attention).
//
// Note [Flash-decoding]: with few queries, one block per (query, head) would leave most
// of the GPU idle. The slots are instead split into fixed chunks; the grid covers the
// whole cache, and chunks past a query's live length exit at once. Each live chunk
// writes its running max, sum of exponentials and unnormalized output to scratch; a
// second kernel merges the chunks in ascending order (deterministic). With many queries
// (prompts) a single chunk spans the cache and writes the output directly.
//
// Decode steps take one of three kernels. Head sizes up to 128 use the tiled kernel: a
// warp per (head, query) pair, the heads of one kv group (and several queries) in one
// block, so each tile of keys and values loaded into shared memory serves all of them; lane
// j scores key j of a tile and the warp keeps an online softmax. Larger heads use the
// general kernel: a block per (chunk, head, query), slots scored a warp at a time. Decode
// batches past the split limit with regions (a query per sequence) and head size 64 or 128
// take the batched decode kernel (attention_batch.cu): a block per (head, query), a key per
// eight lanes.
// Prompts (at least kPromptAttentionMinQueries queries) with head size 64 or 128 run on
// tensor cores instead (attention_prompt.cu), in 16-bit inputs with f32 accumulation.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

inline constexpr int kAttentionMaxHeadDim = 512;
// More than the split limit of decode (8 queries), so these nodes never need scratch.
inline constexpr int kPromptAttentionMinQueries = 16;

void launch_attention(const NodeLaunch& launch);
size_t attention_scratch_bytes(const Graph& graph, TensorId node);
bool attention_supported(const Graph& graph, TensorId node);

void launch_kv_write(const NodeLaunch& launch);

// Four consecutive cache elements as floats; p is aligned to four elements.
__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 load4(const __half* p) {
  const uint2 bits = *reinterpret_cast<const uint2*>(p);
  const float2 lo = __half22float2(*reinterpret_cast<const __half2*>(&bits.x));
  const float2 hi = __half22float2(*reinterpret_cast<const __half2*>(&bits.y));
  return {lo.x, lo.y, hi.x, hi.y};
}
__device__ __forceinline__ float4 load4(const __nv_bfloat16* p) {
  const uint2 bits = *reinterpret_cast<const uint2*>(p);
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&bits.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&bits.y));
  return {lo.x, lo.y, hi.x, hi.y};
}

// The operands of an attention node as its kernels take them (by value).
struct AttentionOperands {
  const uint8_t* q;
  int64_t q_nb1, q_nb2;  // bytes
  const void* k;
  const void* v;
  const int32_t* positions;
  float* out;  // [head_dim, heads, n]
  int head_dim, heads, kv_heads, ctx, n;
  int region;  // Op::Attention's region: 0, every query sees rows 0..position; else its region's
  float scale;
};
AttentionOperands attention_operands(const NodeLaunch& launch);

// The tensor-core prompt kernel: whether it takes a node of this shape on this device.
bool prompt_attention_ok(int64_t head_dim, int64_t queries);
void launch_prompt_attention(const NodeLaunch& launch, const AttentionOperands& operands);

}  // namespace braid::cuda
