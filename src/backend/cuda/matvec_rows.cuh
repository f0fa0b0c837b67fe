// The rows of the f32/f16/bf16 matrix-vector product (matvec.cu, see matmul.cuh): the
// arithmetic of one output row, shared by the kernels of matvec.cu (a grid of rows) and the
// persistent kernel's tiles (a range of rows a task), so both give the same bits.
//
// Two row shapes. The fast one reads the row in 16-byte chunks (weight_chunks.cuh):
// kRowThreads threads per row, a warp (short rows) or a block of kMatvecFastThreads (long
// ones). The generic one (misaligned rows or columns, odd views) reads one element per lane
// per step, a warp per row. matvec_shape picks, on the host, for both executors.
#pragma once

#include "backend/cuda/matmul.cuh"
#include "backend/cuda/weight_chunks.cuh"

namespace braid::cuda {

inline constexpr int kMatvecGenericWarps = 4;   // generic kernel: one warp per row, four rows a block
inline constexpr int kMatvecFastThreads = 128;  // fast kernel: a block of this many threads

// Which row function a product takes: generic, or fast with 32 or kMatvecFastThreads
// threads a row.
enum class MatvecShape { Generic, FastWarp, FastBlock };
MatvecShape matvec_shape(DType w_type, const MatvecArgs& args);

// Resolves the row's weights, x and out; false when the row is idle. With ids
// (mul_mat_id), `token` picks the column and its expert comes from device memory.
__device__ __forceinline__ bool matvec_locate(const MatvecArgs& a, int64_t row, int64_t token, const uint8_t*& w,
                                              const float*& x, float*& out, int& columns) {
  w = a.w;
  x = a.x;
  out = a.out;
  columns = a.n;
  if (a.ids != nullptr) {
    const int expert = a.ids[token * a.ids_col_stride + a.slot];
    x += token * a.x_col_stride;
    out += token * a.m;
    columns = 1;
    if (expert < 0 || expert >= a.experts) {  // a bad id poisons the result instead of reading out of bounds
      if (threadIdx.x % 32 == 0) out[row] = __int_as_float(0x7fc00000);
      return false;
    }
    w += static_cast<int64_t>(expert) * a.w_expert_stride;
  }
  w += row * a.w_row_stride;
  return true;
}

template <int kElements, int NC>
__device__ __forceinline__ void matvec_accumulate(const float* v, const float* x, int64_t x_col_stride, int columns,
                                                  float* acc) {
#pragma unroll
  for (int c = 0; c < NC; ++c) {
    if (c < columns) {
      const auto* x4 = reinterpret_cast<const float4*>(x + c * x_col_stride);
#pragma unroll
      for (int j = 0; j < kElements / 4; ++j) {
        const float4 xv = x4[j];
        acc[c] = fmaf(v[4 * j], xv.x, acc[c]);
        acc[c] = fmaf(v[4 * j + 1], xv.y, acc[c]);
        acc[c] = fmaf(v[4 * j + 2], xv.z, acc[c]);
        acc[c] = fmaf(v[4 * j + 3], xv.w, acc[c]);
      }
    }
  }
}

// Shared memory of matvec_fast_row with a block per row: one partial sum per warp and column.
template <int NC>
struct MatvecPartials {
  float sums[kMatvecFastThreads / 32][NC];
};

// Fast path (rows and x columns aligned for the chunk loads, checked on the host): output
// row `row`, by the kRowThreads threads threadIdx.x / kRowThreads * kRowThreads ... of the
// block; with kRowThreads == kMatvecFastThreads the whole block calls it with one row
// (it synchronizes the block once, and `partials` must not be reused before the block
// synchronizes again). Every thread strides over the row's chunks with four loads in
// flight before the first use, so even a matrix of a few hundred rows keeps enough bytes
// in flight to run at memory bandwidth. The per-thread sums are combined in a fixed order
// (warp butterflies, then the warps of the row in index order).
template <DType W, int NC, int kRowThreads>
__device__ __forceinline__ void matvec_fast_row(const MatvecArgs& a, int64_t row, int64_t token,
                                                MatvecPartials<NC>& partials) {
  using Chunk = WeightChunk<W>;
  constexpr int kUnroll = 4;
  constexpr int kRowWarps = kRowThreads / 32;
  const int thread = threadIdx.x % kRowThreads;
  const uint8_t* w;
  const float* x;
  float* out;
  int columns;
  if (!matvec_locate(a, row, token, w, x, out, columns)) return;

  float acc[NC];
#pragma unroll
  for (int c = 0; c < NC; ++c) acc[c] = 0.0f;
  const int64_t chunks = a.k / Chunk::kElements;
  int64_t ch = thread;
  for (; ch + (kUnroll - 1) * kRowThreads < chunks; ch += kUnroll * kRowThreads) {
    float v[kUnroll][Chunk::kElements];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) Chunk::load(w + (ch + u * kRowThreads) * Chunk::kBytes, v[u]);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      matvec_accumulate<Chunk::kElements, NC>(v[u], x + (ch + u * kRowThreads) * Chunk::kElements, a.x_col_stride,
                                              columns, acc);
    }
  }
  for (; ch < chunks; ch += kRowThreads) {
    float v[Chunk::kElements];
    Chunk::load(w + ch * Chunk::kBytes, v);
    matvec_accumulate<Chunk::kElements, NC>(v, x + ch * Chunk::kElements, a.x_col_stride, columns, acc);
  }
  // Elements past the last whole chunk (f32/f16/bf16 rows whose length is not a multiple
  // of the chunk; quantized rows always are).
  for (int64_t i = chunks * Chunk::kElements + thread; i < a.k; i += kRowThreads) {
    const float v = load_element(W, w, i);
#pragma unroll
    for (int c = 0; c < NC; ++c) {
      if (c < columns) acc[c] = fmaf(v, x[c * a.x_col_stride + i], acc[c]);
    }
  }
#pragma unroll
  for (int c = 0; c < NC; ++c) acc[c] = warp_sum(acc[c]);
  if constexpr (kRowWarps == 1) {
    if (thread == 0) {
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        if (c < columns) out[c * a.m + row] = with_plus(a, c * a.m + row, acc[c]);
      }
    }
  } else {
    static_assert(kRowThreads == kMatvecFastThreads, "a row of several warps takes the whole block");
    if (thread % 32 == 0) {
#pragma unroll
      for (int c = 0; c < NC; ++c) partials.sums[thread / 32][c] = acc[c];
    }
    __syncthreads();
    if (thread < NC && thread < columns) {
      float sum = 0.0f;
#pragma unroll
      for (int w2 = 0; w2 < kRowWarps; ++w2) sum += partials.sums[w2][thread];
      out[thread * a.m + row] = with_plus(a, thread * a.m + row, sum);
    }
  }
}

// kRows consecutive rows of one column (no ids) by the whole block, each with the bits
// matvec_fast_row<W, 1, kMatvecFastThreads> gives it: a thread reads the same chunks of
// each row and sums them in the same order, and the warps' sums are added in index order.
// What differs is what is in flight: the chunks of all kRows rows are loaded before any is
// used, so one block keeps kRows times the loads of one row waiting on memory (the
// persistent kernel's tiles, where a block runs rows one after another instead of a grid
// running them at once). `partials` must not be reused before the block synchronizes.
template <DType W, int kRows>
__device__ __forceinline__ void matvec_fast_block_rows(const MatvecArgs& a, int64_t first_row,
                                                       MatvecPartials<kRows>& partials) {
  using Chunk = WeightChunk<W>;
  constexpr int kWarps = kMatvecFastThreads / 32;
  const int thread = static_cast<int>(threadIdx.x) % kMatvecFastThreads;
  const uint8_t* w = a.w + first_row * a.w_row_stride;
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;
  const int64_t chunks = a.k / Chunk::kElements;
  for (int64_t ch = thread; ch < chunks; ch += kMatvecFastThreads) {
    float v[kRows][Chunk::kElements];
#pragma unroll
    for (int r = 0; r < kRows; ++r) Chunk::load(w + r * a.w_row_stride + ch * Chunk::kBytes, v[r]);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      matvec_accumulate<Chunk::kElements, 1>(v[r], a.x + ch * Chunk::kElements, a.x_col_stride, 1, &acc[r]);
    }
  }
  for (int64_t i = chunks * Chunk::kElements + thread; i < a.k; i += kMatvecFastThreads) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] = fmaf(load_element(W, w + r * a.w_row_stride, i), a.x[i], acc[r]);
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = warp_sum(acc[r]);
  if (thread % 32 == 0) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) partials.sums[thread / 32][r] = acc[r];
  }
  __syncthreads();
  if (thread < kRows) {
    float sum = 0.0f;
#pragma unroll
    for (int w2 = 0; w2 < kWarps; ++w2) sum += partials.sums[w2][thread];
    const int64_t row = first_row + thread;
    a.out[row] = with_plus(a, row, sum);
  }
}

// Generic path: output row `row` by one warp (lanes threadIdx.x % 32), one element per
// lane per step, any alignment and weight type.
__device__ __forceinline__ void matvec_generic_row(const MatvecArgs& a, DType type, int64_t row, int64_t token) {
  const int lane = threadIdx.x % 32;
  const uint8_t* w;
  const float* x;
  float* out;
  int columns;
  if (!matvec_locate(a, row, token, w, x, out, columns)) return;
  float acc[kMatvecMaxColumns] = {};
  for (int64_t i = lane; i < a.k; i += 32) {
    const float v = load_element(type, w, i);
#pragma unroll
    for (int c = 0; c < kMatvecMaxColumns; ++c) {
      if (c < columns) acc[c] = fmaf(v, x[c * a.x_col_stride + i], acc[c]);
    }
  }
#pragma unroll
  for (int c = 0; c < kMatvecMaxColumns; ++c) acc[c] = warp_sum(acc[c]);
  if (lane == 0) {
#pragma unroll
    for (int c = 0; c < kMatvecMaxColumns; ++c) {
      if (c < columns) out[c * a.m + row] = with_plus(a, c * a.m + row, acc[c]);
    }
  }
}

}  // namespace braid::cuda
