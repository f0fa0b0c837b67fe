// mul_mat (w [k, m] times x [k, n] -> f32 [m, n]) and mul_mat_id (the expert of each token
// chosen on the device from ids [used, n]).
//
// Batch n <= kMatvecMaxColumns (token generation; 4 for unquantized weights) is
// memory-bound: the matrix-vector kernel (matvec.cu) reads every weight byte once for all
// n columns, 16-byte loads, warp-shuffle reductions in a fixed order. For quantized weights
// x is first quantized to int8 blocks in the stream's scratch and the products run on
// __dp4a (matvec_int8.cu, Note [Int8 activations]). Quantized weights with int8 kernels
// take the tensor-core product up to kMmaMaxColumns columns (batched decode; matmul_mma.cu,
// Note [Half tensor-core product]): weights dequantized to f16 in registers, x in f16. Larger
// batches (prompts) go to cuBLAS (gemm.cu): activations are converted to the weight's
// 16-bit type in scratch, quantized weights are dequantized to f16 in scratch slice by
// slice along k, and the product accumulates in f32.
//
// mul_mat_id never reads ids on the host (its launch is captured into CUDA graphs that
// replay with new ids). Up to kMatvecMaxColumns tokens, or fewer tokens than experts, it
// runs the matrix-vector kernel with one grid row per token, the expert read from ids on
// the device. Larger batches (prompts) take gemm_experts.cu: one strided-batched cuBLAS
// GEMM multiplies every token by every expert into scratch, and a gather kernel keeps
// each token's column of its own expert.
#pragma once

#include "backend/cuda/device_common.cuh"

namespace braid::cuda {

inline constexpr int64_t kMatvecMaxColumns = 8;
// Quantized weights with int8 kernels (int8_matvec_type) take the tensor-core product from
// kMatvecMaxColumns + 1 up to this many columns (matmul_mma.cu).
inline constexpr int64_t kMmaMaxColumns = 128;
inline constexpr int64_t kMatvecMaxFloatColumns = 4;  // f32/f16/bf16 weights: see mul_mat_uses_matvec

// What the matrix-vector kernels need: row r of expert e of w starts at
// w + e * w_expert_stride + r * w_row_stride; column c of x at x + c * x_col_stride.
struct MatvecArgs {
  const uint8_t* w = nullptr;
  int64_t w_row_stride = 0;     // bytes
  int64_t w_expert_stride = 0;  // bytes (mul_mat_id)
  const float* x = nullptr;
  int64_t x_col_stride = 0;  // floats
  float* out = nullptr;      // [m, n] contiguous
  int64_t k = 0;
  int64_t m = 0;
  int n = 0;
  const int32_t* ids = nullptr;  // mul_mat_id: expert of token t is ids[t * ids_col_stride + slot]
  int64_t ids_col_stride = 0;    // elements
  int slot = 0;
  int experts = 0;
  const float* plus = nullptr;  // mul_mat_add: [m, n] contiguous, added to the product
};

// The value a matrix-vector kernel stores at out[i]: the product, plus a.plus[i] for
// mul_mat_add (added after the product is complete, as the CPU reference does).
__device__ __forceinline__ float with_plus(const MatvecArgs& a, int64_t i, float product) {
  return a.plus != nullptr ? product + a.plus[i] : product;
}

// Launches the matrix-vector product (n <= kMatvecMaxColumns, or any n with ids). Past
// kMatvecMaxColumns columns (up to kMmaMaxColumns) it takes only weights the int8
// kernels cannot read as they lie (int8_matvec_ok false), on the generic kernel 8 columns
// a launch.
void launch_matvec(const NodeLaunch& launch, DType w_type, const MatvecArgs& args);

// The int8 path (matvec_int8.cu): q8_0, q4_*, q5_*, q4_K, q5_K and q6_K weights whose blocks
// are aligned as it needs; it quantizes the x columns (all n tokens with ids) into
// ctx.scratch, which must hold int8_matvec_scratch_bytes(k, n), then launches the product
// on the same stream.
bool int8_matvec_type(DType w_type);
bool int8_matvec_ok(DType w_type, const MatvecArgs& args);
size_t int8_matvec_scratch_bytes(int64_t k, int64_t columns);
void launch_int8_matvec(const NodeLaunch& launch, DType w_type, const MatvecArgs& args, unsigned tokens);

// x quantized to int8 blocks of 32 in scratch (Note [Int8 activations]): column c's values
// at q + c * k, its blocks' (d_x, s_x = d_x * sum(q_x)) at ds + c * (k / 32). In nibble
// order (matvec_int8.cu) or plain order (element j of a block at byte j).
struct Int8Columns {
  const int8_t* q;
  const float2* ds;
};
// Quantizes `columns` columns of x (k a multiple of 32) into launch.ctx.scratch, which must
// hold int8_matvec_scratch_bytes(k, columns) (throws braid::Error otherwise), on the
// node's stream.
Int8Columns quantize_columns(const NodeLaunch& launch, const float* x, int64_t x_col_stride, int64_t k,
                             int64_t columns, bool nibble_order);
// Whether the int8 product of w_type reads x in nibble order (q4_*, q5_*) or plain order.
bool int8_nibble_order(DType w_type);

// Note [Shared int8 activations] (shared_int8.h): whether mul_mat `node` takes the int8
// matrix-vector kernel with its weights at `w`, so that it could read a shared int8 x;
// and the producer's side, where its own kernel does not: a quantization kernel after it,
// from the node's contiguous f32 output read as `copy`'s [k, columns].
bool mul_mat_reads_int8_x(const Graph& graph, TensorId node, const uint8_t* w);
void write_shared_int8(const NodeLaunch& launch, const SharedInt8& copy);

// The tensor-core product (matmul_mma.cu) for kMatvecMaxColumns < n <= kMmaMaxColumns, no
// ids, weights that int8_matvec_ok accepts: the weights dequantized to f16 in registers, x
// in f16 (Note [Half tensor-core product]); ctx.scratch must hold half_mma_scratch_bytes(k,
// m, n): the f16 copy of x, and partial sums where k is split.
void launch_half_mma(const NodeLaunch& launch, DType w_type, const MatvecArgs& args);
size_t half_mma_scratch_bytes(int64_t k, int64_t m, int64_t n);
// Whether the product's two stages for n columns of w_type fit the shared memory a block of
// the current device may opt in to: every width on an H100/H200 (227 KB), up to 64 columns
// on an A100 (163 KB), up to 32 and not q8_0 on sm_86/89 cards (99 KB). Nodes that do not
// fit take the dequantizing GEMM.
bool half_mma_fits(DType w_type, int64_t n);

// cuBLAS product of w [k, m] (row stride in bytes) and x [k, n] (column stride in floats).
void launch_gemm(const NodeLaunch& launch, DType w_type, const uint8_t* w, int64_t w_row_stride, const float* x,
                 int64_t x_col_stride, float* out, int64_t k, int64_t m, int64_t n);
size_t gemm_scratch_bytes(DType w_type, int64_t k, int64_t m, int64_t n);
bool gemm_supported(DType w_type, int64_t w_row_stride, int64_t x_col_stride_bytes);

// Pieces of the cuBLAS path that gemm_experts.cu shares (gemm.cu):
// x [k, n] f32 (column stride in floats) -> contiguous [k, n] of the weight's 16-bit type
// (bf16 for BF16 weights, f16 for every other type).
void convert_columns(const NodeLaunch& launch, DType w_type, const float* x, int64_t x_col_stride, int64_t k,
                     int64_t n, void* out);
// Rows [0, rows) of a quantized matrix -> contiguous f16 [rows, k].
void dequantize_rows(const NodeLaunch& launch, DType type, const uint8_t* w, int64_t w_row_stride, int64_t k,
                     int64_t rows, __half* out);

// mul_mat_id by batched GEMM over all experts (gemm_experts.cu); x is [k, n] with n <= 65535.
struct ExpertGemmArgs {
  DType w_type = DType::F32;
  const uint8_t* w = nullptr;
  int64_t w_row_stride = 0;     // bytes
  int64_t w_expert_stride = 0;  // bytes
  const float* x = nullptr;
  int64_t x_col_stride = 0;  // floats
  float* out = nullptr;      // [m, n] contiguous
  int64_t k = 0;
  int64_t m = 0;
  int64_t n = 0;
  int experts = 0;
  const int32_t* ids = nullptr;  // expert of token t is ids[t * ids_col_stride + slot]
  int64_t ids_col_stride = 0;    // elements
  int slot = 0;
};
// Most scratch bytes the batched expert GEMM may use for its per-expert outputs.
inline constexpr int64_t kExpertOutputsCap = int64_t{512} << 20;
void launch_expert_gemm(const NodeLaunch& launch, const ExpertGemmArgs& args);
size_t expert_gemm_scratch_bytes(DType w_type, int64_t k, int64_t m, int64_t n, int64_t experts);

void launch_mul_mat(const NodeLaunch& launch);
void launch_mul_mat_id(const NodeLaunch& launch);
size_t mul_mat_scratch_bytes(const Graph& graph, TensorId node);
bool mul_mat_uses_cublas(const Graph& graph, TensorId node);
bool mul_mat_supported(const Graph& graph, TensorId node);

}  // namespace braid::cuda
