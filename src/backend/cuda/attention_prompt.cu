// Prompt attention on tensor cores (see attention.cuh): flash attention with WMMA tiles.
//
// A block takes 64 queries of one head, a warp 16 of them. For each tile of 64 keys the
// block stages the keys and values in shared memory as 16-bit floats; each warp computes
// its 16 x 64 scores S = (scale q) K^T on tensor cores (f32 accumulation), keeps an
// online softmax per query row in f32 (two lanes a row), writes P = exp(S - max) as
// 16-bit floats and adds P V into its output rows, which live in shared memory because a
// WMMA accumulator's element order is unspecified and rows must be rescaled by the
// softmax correction after every tile. Key tiles past the block's longest live length
// are skipped (the causal half of a prompt costs nothing).
//
// Precision: q, keys and values are rounded to f16 (bf16 for a bf16 cache, whose range
// f16 may not hold); scores, the softmax and the output accumulate in f32. The normalized
// squared error against the f64 reference is about 1e-7 (f16) and 1e-5 (bf16).
#include <mma.h>

#include "backend/cuda/attention.cuh"

namespace braid::cuda {
namespace {

using namespace nvcuda;

constexpr int kQueryTile = 64;  // queries per block
constexpr int kKeyTile = 64;    // keys per shared-memory tile
constexpr int kWarps = kQueryTile / 16;
constexpr int kThreads = kWarps * 32;

// The 16-bit type of the tiles for a cache of type T.
template <typename T>
struct TileOf {
  using type = __half;
};
template <>
struct TileOf<__nv_bfloat16> {
  using type = __nv_bfloat16;
};

[[maybe_unused]] __device__ __forceinline__ __half to_tile(float v, __half) { return __float2half_rn(v); }
[[maybe_unused]] __device__ __forceinline__ __nv_bfloat16 to_tile(float v, __nv_bfloat16) { return __float2bfloat16_rn(v); }

// Shared memory of one block, in elements; every row start and every 16-element column
// block is 32-byte aligned, as WMMA loads and stores need. The paddings (8 halves, 4
// floats) shift consecutive rows across banks.
template <int HD>
struct Layout {
  static constexpr int kLdTile = HD + 8;          // q, key and value tiles (16-bit)
  static constexpr int kLdScores = kKeyTile + 4;  // scores (f32)
  static constexpr int kLdP = kKeyTile + 8;       // probabilities (16-bit)
  static constexpr int kLdOut = HD + 4;           // output rows (f32)
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + 2 * kQueryTile * kLdTile;
  static constexpr size_t kV = kK + 2 * kKeyTile * kLdTile;
  static constexpr size_t kScores = kV + 2 * kKeyTile * kLdTile;
  static constexpr size_t kP = kScores + 4 * kQueryTile * kLdScores;
  static constexpr size_t kOut = kP + 2 * kQueryTile * kLdP;
  static constexpr size_t kBytes = kOut + 4 * kQueryTile * kLdOut;
};

[[maybe_unused]] __device__ __forceinline__ int live_length(const AttentionOperands& a, int query) {
  return query < a.n ? min(max(a.positions[query] + 1, 0), a.ctx) : 0;
}

// Four floats into four consecutive 16-bit tile elements (8-byte aligned).
template <typename E>
__device__ __forceinline__ void store4(E* p, float4 v) {
  const E packed[4] = {to_tile(v.x, E{}), to_tile(v.y, E{}), to_tile(v.z, E{}), to_tile(v.w, E{})};
  *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(packed);
}

// Keys and values [0, count) of a tile (zeros past count) into shared memory. The tile is
// read in rounds of kRound vector loads a thread per operand, all issued before the first
// store, so a round costs one trip to memory rather than one per element.
template <int HD, typename T, typename E>
__device__ __forceinline__ void load_tile(const T* k, const T* v, int64_t slot_stride, int count, E* k_tile,
                                          E* v_tile) {
  constexpr int kQuads = kKeyTile * HD / 4;
  constexpr int kRound = 8;
  for (int base = 0; base < kQuads; base += kThreads * kRound) {
    float4 keys[kRound], values[kRound];
#pragma unroll
    for (int u = 0; u < kRound; ++u) {
      const int i = base + u * kThreads + threadIdx.x;
      const int j = 4 * i / HD, d = 4 * i % HD;
      const bool present = i < kQuads && j < count;
      keys[u] = present ? load4(k + j * slot_stride + d) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      values[u] = present ? load4(v + j * slot_stride + d) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
#pragma unroll
    for (int u = 0; u < kRound; ++u) {
      const int i = base + u * kThreads + threadIdx.x;
      if (i < kQuads) {
        const int j = 4 * i / HD, d = 4 * i % HD;
        store4(k_tile + j * Layout<HD>::kLdTile + d, keys[u]);
        store4(v_tile + j * Layout<HD>::kLdTile + d, values[u]);
      }
    }
  }
}

template <int HD, typename T>
__global__ void __launch_bounds__(kThreads) prompt_attention_kernel(AttentionOperands a) {
  wait_for_producers();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using E = typename TileOf<T>::type;
  using L = Layout<HD>;
  extern __shared__ __align__(128) unsigned char shared[];
  E* q_tile = reinterpret_cast<E*>(shared + L::kQ);
  E* k_tile = reinterpret_cast<E*>(shared + L::kK);
  E* v_tile = reinterpret_cast<E*>(shared + L::kV);

  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int head = blockIdx.y;
  const int q0 = blockIdx.x * kQueryTile;
  const int kv_head = head / (a.heads / a.kv_heads);
  float* scores = reinterpret_cast<float*>(shared + L::kScores) + warp * 16 * L::kLdScores;
  E* probabilities = reinterpret_cast<E*>(shared + L::kP) + warp * 16 * L::kLdP;
  float* out_rows = reinterpret_cast<float*>(shared + L::kOut) + warp * 16 * L::kLdOut;

  // The block's longest live length: keys past it are seen by none of its queries.
  int block_end = max(live_length(a, q0 + lane), live_length(a, q0 + 32 + lane));
  for (int offset = 16; offset > 0; offset /= 2) {
    block_end = max(block_end, __shfl_xor_sync(0xffffffffu, block_end, offset));
  }

  // q (scaled) as 16-bit rows; rows past n are zero. Output rows start at zero.
  for (int i = threadIdx.x; i < kQueryTile * HD; i += kThreads) {
    const int row = i / HD, d = i % HD;
    const int query = q0 + row;
    float value = 0.0f;
    if (query < a.n) value = reinterpret_cast<const float*>(a.q + query * a.q_nb2 + head * a.q_nb1)[d] * a.scale;
    q_tile[row * L::kLdTile + d] = to_tile(value, E{});
  }
  for (int i = lane; i < 16 * HD; i += 32) out_rows[(i / HD) * L::kLdOut + i % HD] = 0.0f;
  __syncthreads();

  // Softmax state of this lane's row (two lanes a row, each over half the key tile).
  const int row = lane / 2;
  const int half = lane % 2;
  const int live = live_length(a, q0 + warp * 16 + row);
  float running_max = -INFINITY;
  float running_sum = 0.0f;

  const int64_t slot_stride = static_cast<int64_t>(a.kv_heads) * HD;
  const T* k = static_cast<const T*>(a.k) + static_cast<int64_t>(kv_head) * HD;
  const T* v = static_cast<const T*>(a.v) + static_cast<int64_t>(kv_head) * HD;
  for (int k0 = 0; k0 < block_end; k0 += kKeyTile) {
    __syncthreads();  // every warp is done with the previous tile
    load_tile<HD>(k + k0 * slot_stride, v + k0 * slot_stride, slot_stride, block_end - k0, k_tile, v_tile);
    __syncthreads();

    // S = q K^T for this warp's 16 rows.
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> s[kKeyTile / 16];
#pragma unroll
    for (int j = 0; j < kKeyTile / 16; ++j) wmma::fill_fragment(s[j], 0.0f);
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, E, wmma::row_major> qa;
      wmma::load_matrix_sync(qa, q_tile + warp * 16 * L::kLdTile + kk * 16, L::kLdTile);
#pragma unroll
      for (int j = 0; j < kKeyTile / 16; ++j) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, E, wmma::col_major> kb;
        wmma::load_matrix_sync(kb, k_tile + j * 16 * L::kLdTile + kk * 16, L::kLdTile);
        wmma::mma_sync(s[j], qa, kb, s[j]);
      }
    }
#pragma unroll
    for (int j = 0; j < kKeyTile / 16; ++j) {
      wmma::store_matrix_sync(scores + j * 16, s[j], L::kLdScores, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax: this lane's half row of the tile.
    const float* score_row = scores + row * L::kLdScores + half * (kKeyTile / 2);
    float tile_max = -INFINITY;
    for (int c = 0; c < kKeyTile / 2; ++c) {
      if (k0 + half * (kKeyTile / 2) + c < live) tile_max = fmaxf(tile_max, score_row[c]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float new_max = fmaxf(running_max, tile_max);
    float tile_sum = 0.0f;
    E* p_row = probabilities + row * L::kLdP + half * (kKeyTile / 2);
    for (int c = 0; c < kKeyTile / 2; ++c) {
      const bool visible = k0 + half * (kKeyTile / 2) + c < live;
      const float p = visible ? expf(score_row[c] - new_max) : 0.0f;  // new_max is finite when visible
      tile_sum += p;
      p_row[c] = to_tile(p, E{});
    }
    tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 1);
    const float correction = new_max == -INFINITY ? 1.0f : expf(running_max - new_max);  // 0 on the first keys
    running_sum = running_sum * correction + tile_sum;
    running_max = new_max;
    float* out_row = out_rows + row * L::kLdOut + half * (HD / 2);
    for (int d = 0; d < HD / 2; ++d) out_row[d] *= correction;
    __syncwarp();

    // out += P V.
#pragma unroll
    for (int n = 0; n < HD / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> o;
      wmma::load_matrix_sync(o, out_rows + n * 16, L::kLdOut, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kKeyTile / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, E, wmma::row_major> pa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, E, wmma::row_major> vb;
        wmma::load_matrix_sync(pa, probabilities + kk * 16, L::kLdP);
        wmma::load_matrix_sync(vb, v_tile + kk * 16 * L::kLdTile + n * 16, L::kLdTile);
        wmma::mma_sync(o, pa, vb, o);
      }
      wmma::store_matrix_sync(out_rows + n * 16, o, L::kLdOut, wmma::mem_row_major);
    }
    __syncwarp();
  }

  // Normalize and store; a query that sees no key (a negative position) gets zeros.
  const int query = q0 + warp * 16 + row;
  if (query < a.n) {
    const float inverse = running_sum > 0.0f ? 1.0f / running_sum : 0.0f;
    float* out = a.out + (static_cast<int64_t>(query) * a.heads + head) * HD;
    const float* out_row = out_rows + row * L::kLdOut;
    for (int d = half * (HD / 2); d < (half + 1) * (HD / 2); ++d) out[d] = out_row[d] * inverse;
  }
#else
  __trap();  // launched only on compute capability 8.0 and later (prompt_attention_ok)
#endif
}

template <int HD, typename T>
void launch_typed(const AttentionOperands& a, cudaStream_t stream) {
  constexpr size_t bytes = Layout<HD>::kBytes;
  // At every launch, not once: the attribute is the current device's, and the ranks of
  // tensor parallelism run on other devices (graph mode launches only when capturing).
  const cudaError_t configured =
      cudaFuncSetAttribute(prompt_attention_kernel<HD, T>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (configured != cudaSuccess) throw Error(std::string("prompt attention: ") + cudaGetErrorString(configured));
  const dim3 grid(static_cast<unsigned>((a.n + kQueryTile - 1) / kQueryTile), static_cast<unsigned>(a.heads));
  launch_kernel(prompt_attention_kernel<HD, T>, grid, kThreads, bytes, stream, a);
}

template <int HD>
void launch_for_cache(DType cache, const AttentionOperands& a, cudaStream_t stream) {
  switch (cache) {
    case DType::F32: launch_typed<HD, float>(a, stream); break;
    case DType::F16: launch_typed<HD, __half>(a, stream); break;
    case DType::BF16: launch_typed<HD, __nv_bfloat16>(a, stream); break;
    default: throw Error("prompt attention: unsupported cache type");
  }
}

// Shared memory a block may opt into on this device (0 when it cannot be read).
int device_attribute(cudaDeviceAttr attribute) {
  int device = 0, value = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  if (cudaDeviceGetAttribute(&value, attribute, device) != cudaSuccess) return 0;
  return value;
}

}  // namespace

// Tensor cores with 16-bit WMMA need compute capability 8.0 (bf16), and the block's
// shared memory must fit what the device lets one block opt into.
bool prompt_attention_ok(int64_t head_dim, int64_t queries) {
  static const int major = device_attribute(cudaDevAttrComputeCapabilityMajor);
  static const auto shared_limit = static_cast<size_t>(device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin));
  if (queries < kPromptAttentionMinQueries || major < 8) return false;
  if (head_dim == 64) return Layout<64>::kBytes <= shared_limit;
  if (head_dim == 128) return Layout<128>::kBytes <= shared_limit;
  return false;
}

void launch_prompt_attention(const NodeLaunch& launch, const AttentionOperands& a) {
  const DType cache = launch.src(1).type;
  if (a.head_dim == 64) {
    launch_for_cache<64>(cache, a, launch.ctx.stream);
  } else {
    launch_for_cache<128>(cache, a, launch.ctx.stream);
  }
  launch.check_launch();
}

}  // namespace braid::cuda
