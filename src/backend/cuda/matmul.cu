// Op entries of mul_mat and mul_mat_id: unpack the node, pick the kernel. See matmul.cuh.
#include "backend/cuda/matmul.cuh"

#include <algorithm>

namespace braid::cuda {
namespace {

bool is_weight_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || traits(t).quantized; }

// Whether mul_mat_id takes the batched expert GEMM rather than the matrix-vector kernel.
// The GEMM reads every expert's weights once and multiplies each by every token (experts
// times the flops needed); the matrix-vector kernel reads one expert's weights per token.
// With more tokens than kMatvecMaxColumns and at least as many tokens as experts, the
// GEMM reads no more weight bytes and runs on tensor cores. Only while every expert's
// outputs fit the scratch cap in one column tile: the multi-tile path gave wrong,
// run-dependent results on the H100 (5000 tokens x 4096 rows x 8 experts) and is not
// used until that is understood; longer prompts take the (slower) matrix-vector path.
bool mul_mat_id_uses_gemm(const Graph& graph, const Tensor& t) {
  const Tensor& w = graph[t.src[0]];
  const Tensor& x = graph[t.src[1]];
  const int64_t n = x.ne[1];
  const bool one_tile = w.ne[2] * w.ne[1] * 4 <= kExpertOutputsCap / std::max<int64_t>(n, 1);
  return t.op == Op::MulMatId && n > kMatvecMaxColumns && n >= w.ne[2] && one_tile && w.ne[0] <= INT32_MAX &&
         w.ne[1] <= INT32_MAX && gemm_supported(w.type, static_cast<int64_t>(w.nb[1]), static_cast<int64_t>(x.nb[1]));
}

// Whether mul_mat takes the tensor-core product (matmul_mma.cu): weights of an int8 type
// (the blocks MmaWeights reads), kMatvecMaxColumns < n <= kMmaMaxColumns, whole blocks, a
// row stride the kernel's loads allow and shared memory for its stages on this device. The
// alignment of the weights' first byte is checked at launch, where weights the int8
// kernels cannot read take the generic matrix-vector kernel.
bool mul_mat_uses_mma(const Graph& graph, const Tensor& t) {
  if (t.op != Op::MulMat) return false;
  const Tensor& w = graph[t.src[0]];
  const int64_t n = graph[t.src[1]].ne[1];
  if (n <= kMatvecMaxColumns || n > kMmaMaxColumns || w.ne[1] > INT32_MAX) return false;
  MatvecArgs shape;
  shape.w_row_stride = static_cast<int64_t>(w.nb[1]);
  shape.k = w.ne[0];
  return int8_matvec_ok(w.type, shape) && half_mma_fits(w.type, n);
}

// Whether mul_mat (no ids) takes the matrix-vector kernel. Quantized weights do up to
// kMatvecMaxColumns columns (x is read as int8 blocks); 16- and 32-bit weights up to
// kMatvecMaxFloatColumns, because their kernel reads every column of x from L2 for each
// 16 bytes of weights: on the H200, llama-1b's products took 29 us a node at 8 columns
// against 10 at one, where cuBLAS takes 17 at 64. Up to kMatvecMaxColumns, operands that
// cuBLAS cannot take stay on the matrix-vector kernel.
bool mul_mat_uses_matvec(const Graph& graph, const Tensor& t) {
  const Tensor& w = graph[t.src[0]];
  const Tensor& x = graph[t.src[1]];
  const int64_t n = x.ne[1];
  if (n > kMatvecMaxColumns) return false;
  if (traits(w.type).quantized || n <= kMatvecMaxFloatColumns) return true;
  return !gemm_supported(w.type, static_cast<int64_t>(w.nb[1]), static_cast<int64_t>(x.nb[1]));
}

// out += plus after a cuBLAS product (mul_mat_add with more than kMatvecMaxColumns columns).
__global__ void add_in_place_kernel(float* out, const float* plus, int64_t count) {
  wait_for_producers();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] += plus[i];
  }
}

}  // namespace

void launch_mul_mat(const NodeLaunch& launch) {
  const Tensor& w = launch.src(0);
  const Tensor& x = launch.src(1);
  const int64_t k = w.ne[0];
  const int64_t m = w.ne[1];
  const int64_t n = x.ne[1];
  const auto* x_data = reinterpret_cast<const float*>(launch.src_data(1));
  auto* out = reinterpret_cast<float*>(launch.out_data());
  const auto x_col_stride = static_cast<int64_t>(x.nb[1] / 4);
  const float* plus = launch.node.src.size() > 2 ? reinterpret_cast<const float*>(launch.src_data(2)) : nullptr;
  const bool mma = mul_mat_uses_mma(launch.graph, launch.node);
  if (mma || mul_mat_uses_matvec(launch.graph, launch.node)) {
    MatvecArgs args;
    args.w = launch.src_data(0);
    args.w_row_stride = static_cast<int64_t>(w.nb[1]);
    args.x = x_data;
    args.x_col_stride = x_col_stride;
    args.out = out;
    args.k = k;
    args.m = m;
    args.n = static_cast<int>(n);
    args.plus = plus;
    if (mma && int8_matvec_ok(w.type, args)) {
      launch_half_mma(launch, w.type, args);
    } else {
      launch_matvec(launch, w.type, args);
    }
    return;
  }
  launch_gemm(launch, w.type, launch.src_data(0), static_cast<int64_t>(w.nb[1]), x_data, x_col_stride, out, k, m, n);
  if (plus != nullptr) {
    const int64_t count = m * n;
    const auto blocks = static_cast<unsigned>(std::min<int64_t>((count + 255) / 256, 65535));
    launch_kernel(add_in_place_kernel, blocks, 256, 0, launch.ctx.stream, out, plus, count);
    launch.check_launch();
  }
}

void launch_mul_mat_id(const NodeLaunch& launch) {
  const Tensor& w = launch.src(0);
  const Tensor& x = launch.src(1);
  const Tensor& ids = launch.src(2);
  if (mul_mat_id_uses_gemm(launch.graph, launch.node)) {
    ExpertGemmArgs args;
    args.w_type = w.type;
    args.w = launch.src_data(0);
    args.w_row_stride = static_cast<int64_t>(w.nb[1]);
    args.w_expert_stride = static_cast<int64_t>(w.nb[2]);
    args.x = reinterpret_cast<const float*>(launch.src_data(1));
    args.x_col_stride = static_cast<int64_t>(x.nb[1] / 4);
    args.out = reinterpret_cast<float*>(launch.out_data());
    args.k = w.ne[0];
    args.m = w.ne[1];
    args.n = x.ne[1];
    args.experts = static_cast<int>(w.ne[2]);
    args.ids = reinterpret_cast<const int32_t*>(launch.src_data(2));
    args.ids_col_stride = static_cast<int64_t>(ids.nb[1] / 4);
    args.slot = launch.node.params.i[0];
    launch_expert_gemm(launch, args);
    return;
  }
  MatvecArgs args;
  args.w = launch.src_data(0);
  args.w_row_stride = static_cast<int64_t>(w.nb[1]);
  args.w_expert_stride = static_cast<int64_t>(w.nb[2]);
  args.x = reinterpret_cast<const float*>(launch.src_data(1));
  args.x_col_stride = static_cast<int64_t>(x.nb[1] / 4);
  args.out = reinterpret_cast<float*>(launch.out_data());
  args.k = w.ne[0];
  args.m = w.ne[1];
  args.n = static_cast<int>(x.ne[1]);
  args.ids = reinterpret_cast<const int32_t*>(launch.src_data(2));
  args.ids_col_stride = static_cast<int64_t>(ids.nb[1] / 4);
  args.slot = launch.node.params.i[0];
  args.experts = static_cast<int>(w.ne[2]);
  launch_matvec(launch, w.type, args);
}

// mul_mat_id and quantized weights up to kMmaMaxColumns: the int8 (or f16) copy of x (reported
// even when odd alignment sends a node to the generic kernel, which needs none).
size_t mul_mat_scratch_bytes(const Graph& graph, TensorId node) {
  const Tensor& t = graph[node];
  if (t.op != Op::MulMat && t.op != Op::MulMatId) return 0;
  const Tensor& w = graph[t.src[0]];
  const int64_t n = graph[t.src[1]].ne[1];
  if (t.op == Op::MulMatId && mul_mat_id_uses_gemm(graph, t)) {
    return expert_gemm_scratch_bytes(w.type, w.ne[0], w.ne[1], n, w.ne[2]);
  }
  if (mul_mat_uses_mma(graph, t)) return half_mma_scratch_bytes(w.ne[0], w.ne[1], n);
  const bool matvec = t.op == Op::MulMatId || mul_mat_uses_matvec(graph, t);
  if (matvec) return int8_matvec_type(w.type) ? int8_matvec_scratch_bytes(w.ne[0], n) : 0;
  return gemm_scratch_bytes(w.type, w.ne[0], w.ne[1], n);
}

bool mul_mat_reads_int8_x(const Graph& graph, TensorId node, const uint8_t* w) {
  const Tensor& t = graph[node];
  if (t.op != Op::MulMat || mul_mat_uses_mma(graph, t) || !mul_mat_uses_matvec(graph, t)) return false;
  const Tensor& weights = graph[t.src[0]];
  MatvecArgs args;  // what launch_mul_mat gives the int8 kernel, as far as int8_matvec_ok reads it
  args.w = w;
  args.w_row_stride = static_cast<int64_t>(weights.nb[1]);
  args.k = weights.ne[0];
  return int8_matvec_ok(weights.type, args);
}

bool mul_mat_uses_cublas(const Graph& graph, TensorId node) {
  const Tensor& t = graph[node];
  if (t.op == Op::MulMatId) return mul_mat_id_uses_gemm(graph, t);
  return t.op == Op::MulMat && !mul_mat_uses_matvec(graph, t) && !mul_mat_uses_mma(graph, t);
}

bool mul_mat_supported(const Graph& graph, TensorId node) {
  const Tensor& t = graph[node];
  const Tensor& w = graph[t.src[0]];
  const Tensor& x = graph[t.src[1]];
  if (!is_weight_type(w.type) || x.type != DType::F32 || x.nb[1] % 4 != 0) return false;
  if (t.op == Op::MulMatId) {
    const Tensor& ids = graph[t.src[2]];
    return x.ne[1] <= 65535 && ids.nb[1] % 4 == 0 && w.ne[2] <= INT32_MAX;
  }
  if (x.ne[1] <= kMatvecMaxColumns || mul_mat_uses_mma(graph, t)) return true;
  return x.ne[1] <= INT32_MAX && w.ne[1] <= INT32_MAX &&
         gemm_supported(w.type, static_cast<int64_t>(w.nb[1]), static_cast<int64_t>(x.nb[1]));
}

}  // namespace braid::cuda
