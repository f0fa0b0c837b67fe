// The prompt path of mul_mat_id: batched GEMM over all experts. See matmul.cuh.
//
// The expert of each token is known only on the device, and the launch must not read it
// back (it is captured into CUDA graphs that replay with new ids). So every expert
// multiplies every token: one strided-batched cuBLAS GEMM writes
//   outputs[e] = w[e]^T x   (f32 [m, columns] per expert, in stream scratch)
// and a gather kernel copies column t of outputs[ids[slot, t]] to out[:, t]. That is
// `experts` times the flops needed, but each expert's weights are read once per call
// rather than once per token, which is what bounds a prompt on the matrix-vector kernel
// (a 512-token prompt re-read a 23 MB expert 512 times).
//
// Operands as in gemm.cu: activations rounded to the weight's 16-bit type, quantized
// weights dequantized to f16 (a tile of rows of every expert at a time), f32 weights
// multiplied in f32; accumulation always in f32. Tokens are processed in column tiles so
// that the per-expert outputs stay under kExpertOutputsCap bytes of scratch.
#include "backend/cuda/matmul.cuh"

#include <algorithm>

namespace braid::cuda {
namespace {

constexpr int64_t kDequantTileBytes = int64_t{64} << 20;   // f16 rows of all experts
constexpr size_t kScratchAlignment = 256;

size_t align_up(int64_t bytes) {
  const auto b = static_cast<size_t>(bytes);
  return (b + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment;
}

bool is_quantized(DType t) { return traits(t).quantized; }

// Where each temporary lives in scratch, for one node's shape.
struct ScratchLayout {
  int64_t columns = 0;       // tokens per column tile
  int64_t dequant_rows = 0;  // rows per expert per dequantized tile (quantized weights)
  size_t x16_offset = 0;     // activations of one tile in 16 bits (not for f32 weights)
  size_t w16_offset = 0;     // dequantized rows of every expert (quantized weights)
  size_t total = 0;          // outputs of every expert start at offset 0
};

ScratchLayout scratch_layout(DType type, int64_t k, int64_t m, int64_t n, int64_t experts) {
  ScratchLayout s;
  const int64_t column_bytes = std::max<int64_t>(1, experts * m * 4);
  s.columns = std::max<int64_t>(1, std::min(n, kExpertOutputsCap / column_bytes));
  size_t at = align_up(experts * m * s.columns * 4);
  s.x16_offset = at;
  if (type != DType::F32) at += align_up(k * s.columns * 2);
  s.w16_offset = at;
  if (is_quantized(type)) {
    s.dequant_rows = std::min(m, std::max<int64_t>(1, kDequantTileBytes / std::max<int64_t>(1, experts * k * 2)));
    at += align_up(experts * s.dequant_rows * k * 2);
  }
  s.total = at;
  return s;
}

// out[:, first + c] = outputs[ids[slot, first + c]][:, c] for the tile's columns c
// (grid.y); NaN for a token whose id names no expert, so a bad id shows instead of
// reading outside the outputs.
__global__ void gather_expert_columns_kernel(const float* outputs, int64_t m, int64_t columns, int experts,
                                             const int32_t* ids, int64_t ids_col_stride, int slot, int64_t first,
                                             float* out) {
  wait_for_producers();
  const int64_t column = blockIdx.y;
  const int64_t token = first + column;
  const int expert = ids[token * ids_col_stride + slot];
  const bool valid = expert >= 0 && expert < experts;
  const float* src = outputs + (static_cast<int64_t>(valid ? expert : 0) * columns + column) * m;
  float* dst = out + token * m;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < m;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[r] = valid ? src[r] : __int_as_float(0x7fc00000);
  }
}

// outputs[e] (rows x columns, leading dimension ldc, e-th at e * stride_c) = a[e]^T b for
// every expert e; a[e] is k x rows with leading dimension lda (weights: one row of k per
// output row), b is k x columns shared by all experts (batch stride 0).
void batched_gemm(const NodeLaunch& launch, cudaDataType_t type, const void* a, int64_t lda, int64_t stride_a,
                  const void* b, int64_t ldb, float* c, int64_t ldc, int64_t stride_c, int64_t rows, int64_t columns,
                  int64_t k, int experts) {
  const float one = 1.0f;
  const float zero = 0.0f;
  const std::string what = launch.label() + ": cublasGemmStridedBatchedEx";
  check(cublasGemmStridedBatchedEx(launch.ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows),
                                   static_cast<int>(columns), static_cast<int>(k), &one, a, type,
                                   static_cast<int>(lda), stride_a, b, type, static_cast<int>(ldb), 0, &zero, c,
                                   CUDA_R_32F, static_cast<int>(ldc), stride_c, experts, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT),
        what.c_str());
}

// Every expert times the tokens [first, first + columns) into outputs.
void multiply_all_experts(const NodeLaunch& launch, const ExpertGemmArgs& a, const ScratchLayout& s,
                          uint8_t* scratch, float* outputs, int64_t first, int64_t columns) {
  const float* x = a.x + first * a.x_col_stride;
  const int64_t stride_c = a.m * columns;
  if (a.w_type == DType::F32) {
    batched_gemm(launch, CUDA_R_32F, a.w, a.w_row_stride / 4, a.w_expert_stride / 4, x, a.x_col_stride, outputs,
                 a.m, stride_c, a.m, columns, a.k, a.experts);
    return;
  }
  void* x16 = scratch + s.x16_offset;
  convert_columns(launch, a.w_type, x, a.x_col_stride, a.k, columns, x16);
  if (a.w_type == DType::F16 || a.w_type == DType::BF16) {
    const cudaDataType_t type = a.w_type == DType::F16 ? CUDA_R_16F : CUDA_R_16BF;
    batched_gemm(launch, type, a.w, a.w_row_stride / 2, a.w_expert_stride / 2, x16, a.k, outputs, a.m, stride_c,
                 a.m, columns, a.k, a.experts);
    return;
  }
  // Quantized: rows [row, row + rows) of every expert to f16, one batched GEMM into
  // those rows of every expert's outputs, repeat.
  auto* w16 = reinterpret_cast<__half*>(scratch + s.w16_offset);
  const int64_t expert_tile = s.dequant_rows * a.k;  // elements
  for (int64_t row = 0; row < a.m; row += s.dequant_rows) {
    const int64_t rows = std::min(s.dequant_rows, a.m - row);
    for (int e = 0; e < a.experts; ++e) {
      dequantize_rows(launch, a.w_type, a.w + e * a.w_expert_stride + row * a.w_row_stride, a.w_row_stride, a.k,
                      rows, w16 + e * expert_tile);
    }
    batched_gemm(launch, CUDA_R_16F, w16, a.k, expert_tile, x16, a.k, outputs + row, a.m, stride_c, rows, columns,
                 a.k, a.experts);
  }
}

}  // namespace

size_t expert_gemm_scratch_bytes(DType w_type, int64_t k, int64_t m, int64_t n, int64_t experts) {
  return scratch_layout(w_type, k, m, n, experts).total;
}

void launch_expert_gemm(const NodeLaunch& launch, const ExpertGemmArgs& a) {
  if (a.m == 0 || a.n == 0) return;
  BRAID_ASSERT(a.experts > 0);
  if (a.n > 65535) throw Error(launch.label() + ": more than 65535 tokens");
  const ScratchLayout s = scratch_layout(a.w_type, a.k, a.m, a.n, a.experts);
  launch.require_scratch(s.total);
  auto* scratch = static_cast<uint8_t*>(launch.ctx.scratch);
  auto* outputs = reinterpret_cast<float*>(scratch);
  for (int64_t first = 0; first < a.n; first += s.columns) {
    const int64_t columns = std::min(s.columns, a.n - first);
    multiply_all_experts(launch, a, s, scratch, outputs, first, columns);
    const dim3 grid(std::min(grid_size(a.m, 256), 1024u), static_cast<unsigned>(columns));
    launch_kernel(gather_expert_columns_kernel, grid, 256, 0, launch.ctx.stream, outputs, a.m, columns, a.experts,
                  a.ids, a.ids_col_stride, a.slot, first, a.out);
    launch.check_launch();
  }
}

}  // namespace braid::cuda
