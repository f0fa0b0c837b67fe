// Batched decode attention: one query per sequence, each in its own region of the cache
// (the decode steps of braid serve and `bench --parallel` past the split limit).
//
// Note [Batched decode attention]: the tiled kernel gives each (head, query) pair of such a
// step a block of its own (the queries' regions differ, so no key tile serves two of them),
// and in that block one warp computes: lane j scores key j of a tile with a head_dim-long
// chain of dependent FMAs while three warps wait at the barrier, and the next tile is not
// loaded until the last is used: on the H200, 257 us for 64 sequences of 256 rows of
// llama-7b's heads (1.0 TB/s of f16 cache). Here every lane computes and nothing passes
// through shared memory until the end: a group of kLanes lanes takes one key at a time (each
// lane kDims of its dimensions, 16-byte loads), the kGroups groups of the block take keys g,
// g + kGroups, ... and each keeps its own online softmax; a group issues the loads of
// kKeysInFlight keys and values before it uses the first. At the end the groups are merged
// in shared memory, in group order, so the result does not depend on timing. The same 64
// sequences: 79 us (3.4 TB/s); at 16 sequences 68 -> 24 us.
#include "backend/cuda/attention_decode.cuh"

namespace braid::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kLanes = 8;                   // lanes that share a key
constexpr int kGroups = kThreads / kLanes;  // keys the block scores at once
constexpr int kKeysInFlight = 2;            // keys a group loads before it scores the first

// kDims consecutive cache elements of a key or value row, as loaded (16-byte words).
template <typename T, int kDims>
struct Slice {
  static constexpr int kWords = kDims * static_cast<int>(sizeof(T)) / 16;
  static_assert(kWords >= 1 && kDims * sizeof(T) % 16 == 0, "whole 16-byte words");
  uint4 word[kWords];

  __device__ void load(const T* p) {
#pragma unroll
    for (int i = 0; i < kWords; ++i) word[i] = reinterpret_cast<const uint4*>(p)[i];
  }
  __device__ float at(int d) const {
    constexpr int kPerWord = 16 / static_cast<int>(sizeof(T));
    const T* values = reinterpret_cast<const T*>(&word[d / kPerWord]);
    return to_float(values[d % kPerWord]);
  }
};

// One block per (head, query).
template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kThreads) batch_attention_kernel(AttentionArgs a) {
  constexpr int kDims = kHeadDim / kLanes;
  __shared__ float group_max[kGroups], group_sum[kGroups];
  __shared__ float group_acc[kGroups][kHeadDim];
  wait_for_producers();
  const int head = static_cast<int>(blockIdx.x), query = static_cast<int>(blockIdx.y);
  const int group = static_cast<int>(threadIdx.x) / kLanes, part = static_cast<int>(threadIdx.x) % kLanes;
  const int length = live_length(a, query);
  float* out = a.out + (static_cast<int64_t>(query) * a.heads + head) * kHeadDim;
  if (length == 0) {  // no visible slot (a negative position): the output is zero
    for (int d = static_cast<int>(threadIdx.x); d < kHeadDim; d += kThreads) out[d] = 0.0f;
    return;
  }
  const auto* q = reinterpret_cast<const float*>(a.q + query * a.q_nb2 + head * a.q_nb1) + part * kDims;
  float q_scaled[kDims];
#pragma unroll
  for (int d = 0; d < kDims; ++d) q_scaled[d] = q[d] * a.scale;
  const int kv_head = head / (a.heads / a.kv_heads);
  const int64_t slot_stride = static_cast<int64_t>(a.kv_heads) * kHeadDim;
  const int64_t offset = first_row(a, query) * slot_stride + static_cast<int64_t>(kv_head) * kHeadDim + part * kDims;
  const T* k = static_cast<const T*>(a.k) + offset;
  const T* v = static_cast<const T*>(a.v) + offset;

  float running_max = -INFINITY, running_sum = 0.0f;
  float acc[kDims];
#pragma unroll
  for (int d = 0; d < kDims; ++d) acc[d] = 0.0f;
  // Every lane takes the same passes (the shuffles need the whole warp); a group's keys
  // past the length score -inf.
  for (int first = 0; first < length; first += kGroups * kKeysInFlight) {
    Slice<T, kDims> keys[kKeysInFlight], values[kKeysInFlight];
#pragma unroll
    for (int i = 0; i < kKeysInFlight; ++i) {
      const int slot = first + group + i * kGroups;
      if (slot < length) {
        keys[i].load(k + slot * slot_stride);
        values[i].load(v + slot * slot_stride);
      } else {  // zeros, so that the weight 0 of a key past the length meets no NaN
        keys[i] = {};
        values[i] = {};
      }
    }
    float score[kKeysInFlight];
    float new_max = running_max;
#pragma unroll
    for (int i = 0; i < kKeysInFlight; ++i) {
      float dot = 0.0f;
#pragma unroll
      for (int d = 0; d < kDims; ++d) dot = fmaf(q_scaled[d], keys[i].at(d), dot);
#pragma unroll
      for (int lane_mask = kLanes / 2; lane_mask > 0; lane_mask /= 2) {
        dot += __shfl_xor_sync(0xffffffffu, dot, lane_mask);
      }
      score[i] = first + group + i * kGroups < length ? dot : -INFINITY;
      new_max = fmaxf(new_max, score[i]);
    }
    if (new_max == -INFINITY) continue;  // this group has seen no visible key yet
    const float correction = expf(running_max - new_max);  // 0 on the first keys
    running_sum *= correction;
#pragma unroll
    for (int d = 0; d < kDims; ++d) acc[d] *= correction;
#pragma unroll
    for (int i = 0; i < kKeysInFlight; ++i) {
      const float p = expf(score[i] - new_max);  // 0 for a key past the length
      running_sum += p;
#pragma unroll
      for (int d = 0; d < kDims; ++d) acc[d] = fmaf(p, values[i].at(d), acc[d]);
    }
    running_max = new_max;
  }

  // Merge the groups, a thread per output dimension (groups with no key: max -inf, sum 0).
  if (part == 0) {
    group_max[group] = running_max;
    group_sum[group] = running_sum;
  }
#pragma unroll
  for (int d = 0; d < kDims; ++d) group_acc[group][part * kDims + d] = acc[d];
  __syncthreads();
  float max = -INFINITY;
#pragma unroll
  for (int g = 0; g < kGroups; ++g) max = fmaxf(max, group_max[g]);
  float sum = 0.0f;
#pragma unroll
  for (int g = 0; g < kGroups; ++g) sum += group_sum[g] * expf(group_max[g] - max);
  const float inverse = 1.0f / sum;
  for (int d = static_cast<int>(threadIdx.x); d < kHeadDim; d += kThreads) {
    float value = 0.0f;
#pragma unroll
    for (int g = 0; g < kGroups; ++g) value = fmaf(group_acc[g][d], expf(group_max[g] - max), value);
    out[d] = value * inverse;
  }
}

template <typename T>
void launch_typed(const AttentionArgs& a, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(a.heads), static_cast<unsigned>(a.n));
  if (a.head_dim == 64) {
    launch_kernel(batch_attention_kernel<T, 64>, grid, kThreads, 0, stream, a);
  } else {
    launch_kernel(batch_attention_kernel<T, 128>, grid, kThreads, 0, stream, a);
  }
}

}  // namespace

bool batch_attention_ok(const AttentionArgs& a) {
  return a.region > 0 && a.chunks == 1 && (a.head_dim == 64 || a.head_dim == 128);
}

void launch_batch_attention(const NodeLaunch& launch, const AttentionArgs& a) {
  BRAID_ASSERT(batch_attention_ok(a));
  cudaStream_t stream = launch.ctx.stream;
  switch (launch.src(1).type) {
    case DType::F32: launch_typed<float>(a, stream); break;
    case DType::F16: launch_typed<__half>(a, stream); break;
    case DType::BF16: launch_typed<__nv_bfloat16>(a, stream); break;
    default: throw Error(launch.label() + ": unsupported cache type");
  }
  launch.check_launch();
}

}  // namespace braid::cuda
