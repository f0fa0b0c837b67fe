// The matrix-vector kernels of mul_mat (batch <= 8) and mul_mat_id for f32, f16 and bf16
// weights, the generic fallback for odd alignments, and the dispatch (quantized weights
// go to the int8 kernels of matvec_int8.cu). See matmul.cuh.
//
// Layout of the work: one block per output row (see matvec_kernel). Thread t handles
// chunks t, t+128, ... of the row (weight_chunks.cuh), so each step of a warp reads one
// contiguous span of the row: 512 bytes for 16-bit weights. All NC columns of x are
// multiplied with each dequantized chunk, so the weights are read once per call.
#include <algorithm>

#include "backend/cuda/matmul.cuh"
#include "backend/cuda/weight_chunks.cuh"

namespace braid::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;  // generic kernel: one warp per row
constexpr int kFastThreads = 128;  // fast kernel: one block per row

// Resolves the row's weights, x and out for this block; false when the row is idle.
// With ids (mul_mat_id), grid row y is the token and its expert comes from device memory.
__device__ __forceinline__ bool locate(const MatvecArgs& a, int64_t row, const uint8_t*& w, const float*& x,
                                       float*& out, int& columns) {
  w = a.w;
  x = a.x;
  out = a.out;
  columns = a.n;
  if (a.ids != nullptr) {
    const int64_t token = blockIdx.y;
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
__device__ __forceinline__ void accumulate(const float* v, const float* x, int64_t x_col_stride, int columns,
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

// Fast path: rows and x columns aligned for the chunk loads (checked on the host).
// kRowThreads threads per output row (a whole block of kFastThreads for long rows, one
// warp for short ones): every thread strides over the row's chunks with four loads in
// flight before the first use, so even a matrix of a few hundred rows keeps enough bytes
// in flight to run at memory bandwidth. The per-thread sums are combined in a fixed
// order (warp butterflies, then the warps of the row in index order).
template <DType W, int NC, int kRowThreads>
__global__ void __launch_bounds__(kFastThreads) matvec_kernel(MatvecArgs a) {
  wait_for_producers();
  using Chunk = WeightChunk<W>;
  constexpr int kUnroll = 4;
  constexpr int kRowsPerBlock = kFastThreads / kRowThreads;
  constexpr int kRowWarps = kRowThreads / 32;
  const int thread = threadIdx.x % kRowThreads;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kRowThreads;
  if (row >= a.m) return;  // whole warps: kRowThreads is a multiple of 32
  const uint8_t* w;
  const float* x;
  float* out;
  int columns;
  if (!locate(a, row, w, x, out, columns)) return;

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
      accumulate<Chunk::kElements, NC>(v[u], x + (ch + u * kRowThreads) * Chunk::kElements, a.x_col_stride,
                                       columns, acc);
    }
  }
  for (; ch < chunks; ch += kRowThreads) {
    float v[Chunk::kElements];
    Chunk::load(w + ch * Chunk::kBytes, v);
    accumulate<Chunk::kElements, NC>(v, x + ch * Chunk::kElements, a.x_col_stride, columns, acc);
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
    __shared__ float partial[kRowWarps][NC];  // one row per block here
    if (thread % 32 == 0) {
#pragma unroll
      for (int c = 0; c < NC; ++c) partial[thread / 32][c] = acc[c];
    }
    __syncthreads();
    if (thread < NC && thread < columns) {
      float sum = 0.0f;
#pragma unroll
      for (int w2 = 0; w2 < kRowWarps; ++w2) sum += partial[w2][thread];
      out[thread * a.m + row] = with_plus(a, thread * a.m + row, sum);
    }
  }
}

// Fallback for misaligned rows or columns (odd views): one element per lane per step.
__global__ void __launch_bounds__(kWarpsPerBlock * 32) matvec_generic_kernel(MatvecArgs a, DType type) {
  wait_for_producers();
  const int lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= a.m) return;
  const uint8_t* w;
  const float* x;
  float* out;
  int columns;
  if (!locate(a, row, w, x, out, columns)) return;
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

template <DType W, int kRowThreads>
void launch_shaped(const MatvecArgs& a, unsigned tokens, cudaStream_t stream) {
  const int columns = a.ids != nullptr ? 1 : a.n;
  const dim3 grid(grid_size(a.m, kFastThreads / kRowThreads), tokens);
  const dim3 block(kFastThreads);
  if (columns <= 1) {
    launch_kernel(matvec_kernel<W, 1, kRowThreads>, grid, block, 0, stream, a);
  } else if (columns <= 2) {
    launch_kernel(matvec_kernel<W, 2, kRowThreads>, grid, block, 0, stream, a);
  } else if (columns <= 4) {
    launch_kernel(matvec_kernel<W, 4, kRowThreads>, grid, block, 0, stream, a);
  } else {
    launch_kernel(matvec_kernel<W, 8, kRowThreads>, grid, block, 0, stream, a);
  }
}

// Rows of at most two chunks a lane get a warp each (four rows a block); longer rows a
// whole block, which keeps more loads in flight per row.
template <DType W>
void launch_typed(const MatvecArgs& a, unsigned tokens, cudaStream_t stream) {
  if (a.k / WeightChunk<W>::kElements <= 64) {
    launch_shaped<W, 32>(a, tokens, stream);
  } else {
    launch_shaped<W, kFastThreads>(a, tokens, stream);
  }
}

// Whether the chunk loads of the fast path are legal for these addresses and strides.
bool fast_path_ok(DType type, const MatvecArgs& a) {
  const bool x_ok = aligned16(a.x) && (a.x_col_stride * 4) % 16 == 0;
  const bool vector_weights = type == DType::F32 || type == DType::F16 || type == DType::BF16;
  const bool w_ok = vector_weights && aligned16(a.w) && a.w_row_stride % 16 == 0 && a.w_expert_stride % 16 == 0;
  return x_ok && w_ok;
}

}  // namespace

void launch_matvec(const NodeLaunch& launch, DType w_type, const MatvecArgs& args) {
  BRAID_ASSERT(args.ids != nullptr || args.n <= kMatvecMaxColumns ||
               (int8_matvec_type(w_type) && args.n <= kInt8MmaMaxColumns && !int8_matvec_ok(w_type, args)));
  if (args.m == 0 || args.n == 0) return;
  const unsigned tokens = args.ids != nullptr ? static_cast<unsigned>(args.n) : 1u;
  if (tokens > 65535) throw Error(launch.label() + ": more than 65535 tokens");
  if (args.m > INT32_MAX) throw Error(launch.label() + ": too many rows");
  cudaStream_t stream = launch.ctx.stream;
  if (args.ids == nullptr && args.n > kMatvecMaxColumns && !int8_matvec_ok(w_type, args)) {
    // Weights the int8 kernel cannot read as they lie: the generic kernel, 8 columns a launch.
    for (int first = 0; first < args.n; first += static_cast<int>(kMatvecMaxColumns)) {
      MatvecArgs group = args;
      group.x += first * args.x_col_stride;
      group.out += first * args.m;
      if (group.plus != nullptr) group.plus += first * args.m;
      group.n = std::min(static_cast<int>(kMatvecMaxColumns), args.n - first);
      launch_kernel(matvec_generic_kernel, dim3(grid_size(args.m, kWarpsPerBlock)), kWarpsPerBlock * 32, 0, stream,
                    group, w_type);
    }
  } else if (int8_matvec_ok(w_type, args)) {
    launch_int8_matvec(launch, w_type, args, tokens);
  } else if (int8_matvec_type(w_type) || !fast_path_ok(w_type, args)) {
    const dim3 grid(grid_size(args.m, kWarpsPerBlock), tokens);
    launch_kernel(matvec_generic_kernel, grid, kWarpsPerBlock * 32, 0, stream, args, w_type);
  } else {
    switch (w_type) {
      case DType::F32: launch_typed<DType::F32>(args, tokens, stream); break;
      case DType::F16: launch_typed<DType::F16>(args, tokens, stream); break;
      case DType::BF16: launch_typed<DType::BF16>(args, tokens, stream); break;
      default: throw Error(launch.label() + ": unsupported weight type");
    }
  }
  launch.check_launch();
}

}  // namespace braid::cuda
