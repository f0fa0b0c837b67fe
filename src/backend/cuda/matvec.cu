// The matrix-vector kernels of mul_mat (batch <= 8) and mul_mat_id for f32, f16 and bf16
// weights, the generic fallback for odd alignments, and the dispatch (quantized weights
// go to the int8 kernels of matvec_int8.cu). See matmul.cuh.
//
// Layout of the work: one block per output row (see matvec_kernel). Thread t handles
// chunks t, t+128, ... of the row (weight_chunks.cuh), so each step of a warp reads one
// contiguous span of the row: 512 bytes for 16-bit weights. All NC columns of x are
// multiplied with each dequantized chunk, so the weights are read once per call.
#include <algorithm>

#include "backend/cuda/matvec_rows.cuh"

namespace braid::cuda {
namespace {

constexpr int kWarpsPerBlock = kMatvecGenericWarps;
constexpr int kFastThreads = kMatvecFastThreads;

// One block of kFastThreads per kFastThreads / kRowThreads rows (matvec_fast_row).
template <DType W, int NC, int kRowThreads>
__global__ void __launch_bounds__(kFastThreads) matvec_kernel(MatvecArgs a) {
  wait_for_producers();
  __shared__ MatvecPartials<NC> partials;
  constexpr int kRowsPerBlock = kFastThreads / kRowThreads;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kRowThreads;
  if (row >= a.m) return;  // whole warps (one row per block when a row takes several)
  matvec_fast_row<W, NC, kRowThreads>(a, row, blockIdx.y, partials);
}

// Fallback for misaligned rows or columns (odd views): a warp per row (matvec_generic_row).
__global__ void __launch_bounds__(kWarpsPerBlock * 32) matvec_generic_kernel(MatvecArgs a, DType type) {
  wait_for_producers();
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= a.m) return;
  matvec_generic_row(a, type, row, blockIdx.y);
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

template <DType W>
void launch_typed(MatvecShape shape, const MatvecArgs& a, unsigned tokens, cudaStream_t stream) {
  if (shape == MatvecShape::FastWarp) {
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

int64_t chunk_elements(DType type) {
  switch (type) {
    case DType::F32: return WeightChunk<DType::F32>::kElements;
    case DType::F16: return WeightChunk<DType::F16>::kElements;
    default: return WeightChunk<DType::BF16>::kElements;
  }
}

}  // namespace

// Quantized weights (here: those the int8 kernels cannot read as they lie) and odd
// alignments take the generic rows. Rows of at most two chunks a lane get a warp each (four
// rows a block); longer rows a whole block, which keeps more loads in flight per row.
MatvecShape matvec_shape(DType w_type, const MatvecArgs& args) {
  if (int8_matvec_type(w_type) || !fast_path_ok(w_type, args)) return MatvecShape::Generic;
  return args.k / chunk_elements(w_type) <= 64 ? MatvecShape::FastWarp : MatvecShape::FastBlock;
}

void launch_matvec(const NodeLaunch& launch, DType w_type, const MatvecArgs& args) {
  BRAID_ASSERT(args.ids != nullptr || args.n <= kMatvecMaxColumns ||
               (int8_matvec_type(w_type) && args.n <= kMmaMaxColumns && !int8_matvec_ok(w_type, args)));
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
  } else if (const MatvecShape shape = matvec_shape(w_type, args); shape == MatvecShape::Generic) {
    const dim3 grid(grid_size(args.m, kWarpsPerBlock), tokens);
    launch_kernel(matvec_generic_kernel, grid, kWarpsPerBlock * 32, 0, stream, args, w_type);
  } else {
    switch (w_type) {
      case DType::F32: launch_typed<DType::F32>(shape, args, tokens, stream); break;
      case DType::F16: launch_typed<DType::F16>(shape, args, tokens, stream); break;
      case DType::BF16: launch_typed<DType::BF16>(shape, args, tokens, stream); break;
      default: throw Error(launch.label() + ": unsupported weight type");
    }
  }
  launch.check_launch();
}

}  // namespace braid::cuda
