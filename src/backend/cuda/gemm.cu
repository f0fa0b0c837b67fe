// The cuBLAS path of mul_mat (batch > kMatvecMaxColumns). See matmul.cuh.
//
// cuBLAS is column-major. A weight matrix of m rows of k elements (row stride lda
// elements) is, to cuBLAS, a k x m matrix; out [m, n] = w^T x is therefore
// GEMM(op(A) = A^T, op(B) = B) with A = w, B = x (k x n), C = out (m x n, ldc = m).
#include "backend/cuda/matmul.cuh"

#include <algorithm>

namespace braid::cuda {
namespace {

// Quantized weights are dequantized into scratch at most this many bytes (of f16) at a
// time, so scratch stays bounded for large matrices (an LM head of 128k tokens is 1 GB in
// f16).
//
// Note [Slices along k]: a matrix larger than the cap is cut along k into slices of every
// row, and each slice's product is added to out (beta = 1 after the first). Cutting rows
// instead gave cuBLAS products of few rows: llama-7b's ffn_down (4096 rows of 11008) in
// row tiles of 32 MiB was three products of 1524 rows, 48 output tiles of 128 x 128 for
// 132 multiprocessors at a 512-token prompt. Slices keep every output tile in each product,
// but each slice after the first reads and writes out again and runs a shorter product: at
// a 64 MiB cap llama-7b's ffn products (86 MiB in f16) took two slices, and the 128 MiB cap
// that takes them whole gave Q4_K_M pp512 18108 -> 18539 t/s on the H200 (16 and 8 MiB:
// 15832 and 13942). Two slices with the second dequantized on a side stream during the
// first's product were slower still (22217 -> 20630): the two kernels share the SMs, and
// the product is bound by them.
constexpr int64_t kDequantSliceBytes = int64_t{128} << 20;
constexpr size_t kScratchAlignment = 256;

size_t align_up(size_t bytes) { return (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment; }

// Elements of k per slice: the fewest slices under the cap, of equal size in whole blocks.
int64_t dequant_slice(DType w_type, int64_t k, int64_t m) {
  const int64_t block = traits(w_type).block_elements;
  const int64_t slices = std::max<int64_t>(1, (m * k * 2 + kDequantSliceBytes - 1) / kDequantSliceBytes);
  const int64_t blocks = (k / block + slices - 1) / slices;
  return std::min(k, blocks * block);
}

// x [k, n] f32 (column stride in floats) -> contiguous 16-bit [k, n]: a column per grid
// row, eight elements a thread (two 16-byte loads, one 16-byte store) where `vectors`
// says the addresses allow it. (It was one element a thread with a 64-bit division for
// its column: on the H200 ~3 us for llama-7b's 4096 x 64, run before every batched
// product.)
template <typename T>
__global__ void convert_columns_kernel(const float* x, int64_t x_col_stride, int64_t k, int64_t n, T* out,
                                       bool vectors) {
  wait_for_producers();
  constexpr int kPer = 8;
  for (int64_t column = blockIdx.y; column < n; column += gridDim.y) {
    const float* from = x + column * x_col_stride;
    T* to = out + column * k;
    for (int64_t i = kPer * (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x); i < k;
         i += kPer * static_cast<int64_t>(gridDim.x) * blockDim.x) {
      if (vectors && i + kPer <= k) {
        const float4 a = *reinterpret_cast<const float4*>(from + i);
        const float4 b = *reinterpret_cast<const float4*>(from + i + 4);
        alignas(16) const T v[kPer] = {from_float<T>(a.x), from_float<T>(a.y), from_float<T>(a.z), from_float<T>(a.w),
                                       from_float<T>(b.x), from_float<T>(b.y), from_float<T>(b.z), from_float<T>(b.w)};
        *reinterpret_cast<uint4*>(to + i) = *reinterpret_cast<const uint4*>(v);
      } else {
        for (int64_t j = i; j < k && j < i + kPer; ++j) to[j] = from_float<T>(from[j]);
      }
    }
  }
}

// c = a^T b, or c += a^T b with accumulate.
void gemm(const NodeLaunch& launch, cudaDataType_t type, const void* a, int64_t lda, const void* b, int64_t ldb,
          float* c, int64_t m, int64_t n, int64_t k, int64_t ldc, bool accumulate = false) {
  const float one = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  const std::string what = launch.label() + ": cublasGemmEx";
  check(cublasGemmEx(launch.ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m), static_cast<int>(n),
                     static_cast<int>(k), &one, a, type, static_cast<int>(lda), b, type, static_cast<int>(ldb),
                     &beta, c, CUDA_R_32F, static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        what.c_str());
}

}  // namespace

void convert_columns(const NodeLaunch& launch, DType w_type, const float* x, int64_t x_col_stride, int64_t k,
                     int64_t n, void* out) {
  if (k == 0 || n == 0) return;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((k + 8 * 256 - 1) / (8 * 256), 65535)),
                  static_cast<unsigned>(std::min<int64_t>(n, 65535)));
  const bool vectors = k % 8 == 0 && x_col_stride % 4 == 0 && aligned16(x) && aligned16(out);
  cudaStream_t stream = launch.ctx.stream;
  if (w_type == DType::BF16) {
    launch_kernel(convert_columns_kernel<__nv_bfloat16>, grid, 256, 0, stream, x, x_col_stride, k, n,
                  static_cast<__nv_bfloat16*>(out), vectors);
  } else {
    launch_kernel(convert_columns_kernel<__half>, grid, 256, 0, stream, x, x_col_stride, k, n, static_cast<__half*>(out),
                  vectors);
  }
  launch.check_launch();
}

bool gemm_supported(DType w_type, int64_t w_row_stride, int64_t x_col_stride_bytes) {
  switch (w_type) {
    case DType::F32: return w_row_stride % 4 == 0 && x_col_stride_bytes % 4 == 0;
    case DType::F16:
    case DType::BF16: return w_row_stride % 2 == 0;
    case DType::I32: return false;
    default: return w_row_stride % 2 == 0;  // quantized: dequantized to f16 first
  }
}

size_t gemm_scratch_bytes(DType w_type, int64_t k, int64_t m, int64_t n) {
  if (w_type == DType::F32) return 0;
  const size_t x_bytes = align_up(static_cast<size_t>(k * n) * 2);
  if (w_type == DType::F16 || w_type == DType::BF16) return x_bytes;
  return x_bytes + align_up(static_cast<size_t>(m * dequant_slice(w_type, k, m)) * 2);
}

void launch_gemm(const NodeLaunch& launch, DType w_type, const uint8_t* w, int64_t w_row_stride, const float* x,
                 int64_t x_col_stride, float* out, int64_t k, int64_t m, int64_t n) {
  if (m == 0 || n == 0) return;
  if (w_type == DType::F32) {
    gemm(launch, CUDA_R_32F, w, w_row_stride / 4, x, x_col_stride, out, m, n, k, m);
    return;
  }
  launch.require_scratch(gemm_scratch_bytes(w_type, k, m, n));
  auto* scratch = static_cast<uint8_t*>(launch.ctx.scratch);
  convert_columns(launch, w_type, x, x_col_stride, k, n, scratch);
  if (w_type == DType::BF16) {
    gemm(launch, CUDA_R_16BF, w, w_row_stride / 2, scratch, k, out, m, n, k, m);
    return;
  }
  const auto* x16 = reinterpret_cast<const __half*>(scratch);
  if (w_type == DType::F16) {
    gemm(launch, CUDA_R_16F, w, w_row_stride / 2, x16, k, out, m, n, k, m);
    return;
  }
  // Quantized: dequantize a slice of k of every row, add its product to out, repeat
  // (Note [Slices along k]).
  auto* w16 = reinterpret_cast<__half*>(scratch + align_up(static_cast<size_t>(k * n) * 2));
  const int64_t slice = dequant_slice(w_type, k, m);
  for (int64_t first = 0; first < k; first += slice) {
    const int64_t width = std::min(slice, k - first);
    dequantize_rows(launch, w_type, w + row_bytes(w_type, first), w_row_stride, width, m, w16);
    gemm(launch, CUDA_R_16F, w16, width, x16 + first, k, out, m, n, width, m, first > 0);
  }
}

}  // namespace braid::cuda
