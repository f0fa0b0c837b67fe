// The persistent kernel's tasks: what one plan step is on the device (PersistentStep) and
// the tile function of each op, which runs tile `tile` of a step's `tiles` with the whole
// block (kPersistentThreads threads).
//
// Every tile function calls the row, element or block functions that the op's own kernels
// call (norm.cuh, matvec_rows.cuh, rope.cuh, attention_decode.cuh, elementwise.cuh,
// get_rows.cuh): one implementation of each op's arithmetic, so a tile computes the bits
// the graph executor computes for the same rows. A step's work units (rows of a product or
// a norm, (head group, token) pairs of rope and kv_write, (head, query) pairs of attention,
// elements of the rest) are split evenly over its tiles: tile t takes units
// [units * t / tiles, units * (t + 1) / tiles).
#pragma once

#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/get_rows.cuh"
#include "backend/cuda/matvec_rows.cuh"
#include "backend/cuda/norm.cuh"
#include "backend/cuda/rope.cuh"

namespace braid::cuda {

// The block size of the persistent kernel: the matrix-vector kernel's block (a row of
// several warps is a whole block there too) and the rope and kv_write kernels'.
inline constexpr int kPersistentThreads = 128;
static_assert(kPersistentThreads == kMatvecFastThreads && kPersistentThreads == kRopeThreads,
              "a tile runs the row functions with the block size of their kernels");
static_assert(kPersistentThreads == kTiledMinWarps * 32, "attention tiles: one computing warp, all loading");

enum class TaskKind : int32_t { GetRows, RmsNorm, Matvec, Rope, KvWrite, Attention, Binary, Unary };

struct GetRowsTask {
  StridedTensor table;
  DType type;
  const int32_t* ids;
  float* out;
};
struct RmsNormTask {
  StridedTensor x;
  const float* weight;  // null without one
  float eps;
  int lanes;  // rms_norm_lanes of the row: the kernel's block size
  float* out;
};
struct MatvecTask {
  MatvecArgs args;  // one column (n == 1), no ids
  DType type;
  MatvecShape shape;
};
struct RopeTask {  // rope and kv_write
  StridedTensor x;
  const int32_t* positions;
  RopeParams rope;
  void* out;      // rope: f32 [head_dim, heads, n]; kv_write: the cache
  DType type;     // kv_write: the cache's type
  int64_t slots;  // kv_write: the cache's rows
  int groups;     // head groups of kRopeHeadsPerBlock
};
struct AttentionTask {
  AttentionArgs args;  // partial: this step's own scratch when chunks > 1
  DType type;          // the caches'
};
struct ElementwiseTask {
  StridedTensor a, b;  // b unused by unary ops
  float* out;
  float factor;  // scale
  int op;        // Binary or Unary, by kind
};

struct PersistentStep {
  TaskKind kind;
  int32_t tiles;       // the schedule's (tiles_of)
  int32_t first_task;  // its tickets are first_task .. first_task + tiles - 1
  int64_t units;       // work units split over the tiles
  union Payload {
    Payload() {}
    GetRowsTask get_rows;
    RmsNormTask norm;
    MatvecTask matvec;
    RopeTask rope;
    AttentionTask attention;
    ElementwiseTask elementwise;
  } task;
};

// Shared memory of the tile functions (one task at a time: a union).
// Rows of a long-row product that a block reads at once (matvec_fast_block_rows).
inline constexpr int kBlockRows = 4;

union PersistentShared {
  AttentionTiles attention;
  MatvecPartials<1> matvec;
  MatvecPartials<kBlockRows> matvec_rows;
  float norm[32];
};

__device__ __forceinline__ int64_t tile_begin(const PersistentStep& s, int tile) { return s.units * tile / s.tiles; }

template <DType W>
__device__ __forceinline__ void matvec_tile(const MatvecTask& t, int64_t begin, int64_t end, PersistentShared& shared) {
  if (t.shape == MatvecShape::FastBlock) {
    // kBlockRows rows at a time (their loads in flight together), then the rest one by one.
    int64_t row = begin;
    for (; row + kBlockRows <= end; row += kBlockRows) {
      matvec_fast_block_rows<W, kBlockRows>(t.args, row, shared.matvec_rows);
      __syncthreads();  // the partial sums are rewritten by the next rows
    }
    for (; row < end; ++row) {
      matvec_fast_row<W, 1, kMatvecFastThreads>(t.args, row, 0, shared.matvec);
      __syncthreads();
    }
  } else {
    for (int64_t row = begin + threadIdx.x / 32; row < end; row += kPersistentThreads / 32) {
      matvec_fast_row<W, 1, 32>(t.args, row, 0, shared.matvec);
    }
  }
}

__device__ __forceinline__ void run_matvec(const MatvecTask& t, int64_t begin, int64_t end, PersistentShared& shared) {
  if (t.shape == MatvecShape::Generic) {
    for (int64_t row = begin + threadIdx.x / 32; row < end; row += kPersistentThreads / 32) {
      matvec_generic_row(t.args, t.type, row, 0);
    }
    return;
  }
  switch (t.type) {
    case DType::F32: matvec_tile<DType::F32>(t, begin, end, shared); return;
    case DType::F16: matvec_tile<DType::F16>(t, begin, end, shared); return;
    default: matvec_tile<DType::BF16>(t, begin, end, shared); return;
  }
}

template <typename T>
__device__ __forceinline__ void kv_write_tile(const RopeTask& t, int64_t begin, int64_t end) {
  for (int64_t u = begin; u < end; ++u) {
    kv_write_block<T>(t.x, t.positions, t.rope, static_cast<T*>(t.out), t.slots, static_cast<int>(u % t.groups),
                      u / t.groups);
  }
}

// A (head, query) pair: the tiled kernel's block with one computing warp, chunk by chunk,
// then (split mode) the merge, as the graph executor's two kernels do it. Its tiles are
// loaded in kAttentionLoadPasses rounds: with all 16 loads in flight the kernel took 168
// registers a thread (3 blocks a multiprocessor), every other tile needing at most 80;
// in four rounds, about 100, which the kernel caps at 96 (5 blocks; a few dozen bytes spill).
inline constexpr int kAttentionLoadPasses = 4;

template <typename T>
__device__ __forceinline__ void attention_tile(const AttentionArgs& a, int64_t begin, int64_t end,
                                               PersistentShared& shared) {
  for (int64_t u = begin; u < end; ++u) {
    const int head = static_cast<int>(u % a.heads);
    const int query = static_cast<int>(u / a.heads);
    const TiledShape one{1, 1};
    if (a.chunks == 1) {
      attention_tiled_block<T, kAttentionLoadPasses>(a, one, 0, head, query, shared.attention);
    } else {
      const int live = (live_length(a, query) + a.chunk - 1) / a.chunk;
      for (int c = 0; c < live; ++c) {
        attention_tiled_block<T, kAttentionLoadPasses>(a, one, c, head, query, shared.attention);
      }
      __syncthreads();  // the chunks' partial results (global memory, this block's) are written
      attention_merge_block(a, head, query);
    }
    __syncthreads();  // shared tiles are reused by the next pair
  }
}

__device__ __forceinline__ void elementwise_tile(TaskKind kind, const ElementwiseTask& t, int64_t begin, int64_t end) {
  const int64_t width = t.a.ne[0];
  for (int64_t e = begin + threadIdx.x; e < end; e += kPersistentThreads) {
    const int64_t row = e / width, i = e % width;
    const auto* a_row = reinterpret_cast<const float*>(t.a.row_data(row));
    float* out_row = t.out + row * width;
    if (kind == TaskKind::Unary) {
      if (t.op == static_cast<int>(Unary::Scale)) {
        unary_element<Unary::Scale>(a_row, t.factor, out_row, i);
      } else {
        unary_element<Unary::Silu>(a_row, t.factor, out_row, i);
      }
      continue;
    }
    const auto* b_row = reinterpret_cast<const float*>(broadcast_row_address(t.a, t.b, row));
    const bool same_width = t.b.ne[0] == width;
    switch (static_cast<Binary>(t.op)) {
      case Binary::Add: binary_element<Binary::Add>(a_row, b_row, t.b.ne[0], same_width, out_row, i); break;
      case Binary::Mul: binary_element<Binary::Mul>(a_row, b_row, t.b.ne[0], same_width, out_row, i); break;
      case Binary::Swiglu: binary_element<Binary::Swiglu>(a_row, b_row, t.b.ne[0], same_width, out_row, i); break;
    }
  }
}

// Note [Weight prefetch while waiting]: a task of a product usually waits for the step
// before it (its input), but its weights were written by no kernel, so while one thread
// waits, the block asks L2 for the tile's weight rows (prefetch.global.L2, a hint that
// cannot fault inside the rows and changes no value): the step's first loads then hit L2
// instead of paying DRAM latency after the wait, the gap a kernel boundary leaves idle.
// (Compare Note [Weight prefetch] in device_common.cuh for the int8 kernel.)
__device__ __forceinline__ void prefetch_tile_weights(const PersistentStep& s, int tile) {
  if (s.kind != TaskKind::Matvec) return;
  const MatvecTask& t = s.task.matvec;
  const int64_t row_bytes = t.args.k * (t.type == DType::F32 ? 4 : 2);
  const int64_t end = tile_begin(s, tile + 1);
  for (int64_t row = tile_begin(s, tile); row < end; ++row) {
    const uint8_t* w = t.args.w + row * t.args.w_row_stride;
    for (int64_t offset = threadIdx.x * 128; offset < row_bytes; offset += kPersistentThreads * 128) {
      asm volatile("prefetch.global.L2 [%0];" ::"l"(w + offset));
    }
  }
}

// Tile `tile` of step s, by the whole block. The task is copied out of the descriptor
// (global memory) first: otherwise every store of a tile could alias it, and the compiler
// would reload the operands after each one.
__device__ __forceinline__ void run_tile(const PersistentStep& s, int tile, PersistentShared& shared) {
  const int64_t begin = tile_begin(s, tile);
  const int64_t end = tile_begin(s, tile + 1);
  switch (s.kind) {
    case TaskKind::GetRows: {
      const GetRowsTask t = s.task.get_rows;
      const int64_t cols = t.table.ne[0];
      for (int64_t e = begin + threadIdx.x; e < end; e += kPersistentThreads) {
        get_rows_element(t.table, t.type, t.ids, t.out, e / cols, e % cols);
      }
      return;
    }
    case TaskKind::RmsNorm: {
      const RmsNormTask t = s.task.norm;
      const int64_t cols = t.x.ne[0];
      for (int64_t row = begin; row < end; ++row) {
        rms_norm_row(reinterpret_cast<const float*>(t.x.row_data(row)), cols, t.weight, t.eps, t.out + row * cols,
                     t.lanes, shared.norm);
      }
      return;
    }
    case TaskKind::Matvec: {
      const MatvecTask t = s.task.matvec;
      run_matvec(t, begin, end, shared);
      return;
    }
    case TaskKind::Rope: {
      const RopeTask t = s.task.rope;
      for (int64_t u = begin; u < end; ++u) {
        rope_block(t.x, t.positions, t.rope, static_cast<float*>(t.out), static_cast<int>(u % t.groups), u / t.groups);
      }
      return;
    }
    case TaskKind::KvWrite: {
      const RopeTask t = s.task.rope;
      switch (t.type) {
        case DType::F32: kv_write_tile<float>(t, begin, end); return;
        case DType::F16: kv_write_tile<__half>(t, begin, end); return;
        default: kv_write_tile<__nv_bfloat16>(t, begin, end); return;
      }
    }
    case TaskKind::Attention: {
      const AttentionTask& t = s.task.attention;  // (a copy would cost 32 registers a thread)
      switch (t.type) {
        case DType::F32: attention_tile<float>(t.args, begin, end, shared); return;
        case DType::F16: attention_tile<__half>(t.args, begin, end, shared); return;
        default: attention_tile<__nv_bfloat16>(t.args, begin, end, shared); return;
      }
    }
    case TaskKind::Binary:
    case TaskKind::Unary: {
      const ElementwiseTask t = s.task.elementwise;
      elementwise_tile(s.kind, t, begin, end);
      return;
    }
  }
}

}  // namespace braid::cuda
