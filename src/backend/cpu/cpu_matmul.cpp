// Ops that read weights, possibly quantized: MulMat, MulMatId, GetRows.
//
// Weight rows are dequantized to f32 once per call (not once per token), then dotted
// with every token that needs them, accumulating in double. The activations are
// gathered into one contiguous f32 block first, so strided x costs nothing extra.
#include <fmt/format.h>

#include <vector>

#include "backend/cpu/cpu_kernels.h"

namespace braid::cpu {
namespace {

// x [k, n] (dimension 0 contiguous, any row stride) as contiguous f32, token-major.
std::vector<float> gather_tokens(const TensorView& x) {
  const int64_t k = x.ne[0];
  std::vector<float> tokens(static_cast<size_t>(k * x.ne[1]));
  for (int64_t t = 0; t < x.ne[1]; ++t) to_f32(x.type, x.row(t), tokens.data() + t * k, k);
  return tokens;
}

// Four partial sums: independent chains the CPU can overlap (k is usually a multiple
// of 32; the tail loop handles the rest).
double dot(const float* a, const float* b, int64_t k) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= k; i += 4) {
    s0 += static_cast<double>(a[i]) * b[i];
    s1 += static_cast<double>(a[i + 1]) * b[i + 1];
    s2 += static_cast<double>(a[i + 2]) * b[i + 2];
    s3 += static_cast<double>(a[i + 3]) * b[i + 3];
  }
  for (; i < k; ++i) s0 += static_cast<double>(a[i]) * b[i];
  return (s0 + s1) + (s2 + s3);
}

// out[:, t] = w x[:, t] for the tokens listed; `rows_of` gives weight row j's bytes.
template <typename RowBytes>
void multiply_tokens(const TensorView& w, RowBytes rows_of, const std::vector<float>& tokens,
                     const std::vector<int64_t>& token_ids, const TensorView& out) {
  const int64_t k = w.ne[0];
  const int64_t m = w.ne[1];
  std::vector<float> weight_row(static_cast<size_t>(k));
  for (int64_t j = 0; j < m; ++j) {
    to_f32(w.type, rows_of(j), weight_row.data(), k);
    for (int64_t t : token_ids) {
      auto* y = reinterpret_cast<float*>(out.row(t));
      y[j] = static_cast<float>(dot(weight_row.data(), tokens.data() + t * k, k));
    }
  }
}

void mul_mat(const NodeArgs& args) {
  const TensorView& w = args.src[0];
  const TensorView& x = args.src[1];
  const std::vector<float> tokens = gather_tokens(x);
  std::vector<int64_t> all(static_cast<size_t>(x.ne[1]));
  for (int64_t t = 0; t < x.ne[1]; ++t) all[static_cast<size_t>(t)] = t;
  multiply_tokens(w, [&](int64_t j) { return w.row(j); }, tokens, all, args.out);
  if (args.src.size() > 2) {  // mul_mat_add: the product rounded to f32, then the addition
    const TensorView& plus = args.src[2];
    for (int64_t t = 0; t < x.ne[1]; ++t) {
      auto* y = reinterpret_cast<float*>(args.out.row(t));
      const auto* p = reinterpret_cast<const float*>(plus.row(t));
      for (int64_t j = 0; j < w.ne[1]; ++j) y[j] += p[j];
    }
  }
}

// Token t uses expert ids[slot, t]; tokens are grouped by expert so that each expert's
// rows are dequantized once.
void mul_mat_id(const NodeArgs& args) {
  const TensorView& w = args.src[0];
  const TensorView& x = args.src[1];
  const int64_t experts = w.ne[2];
  const std::vector<std::vector<int64_t>> tokens_of = tokens_by_expert(args);
  const std::vector<float> tokens = gather_tokens(x);
  for (int64_t e = 0; e < experts; ++e) {
    if (tokens_of[static_cast<size_t>(e)].empty()) continue;
    multiply_tokens(w, [&](int64_t j) { return w.row(j, e); }, tokens, tokens_of[static_cast<size_t>(e)],
                    args.out);
  }
}

}  // namespace

std::vector<std::vector<int64_t>> tokens_by_expert(const NodeArgs& args) {
  const TensorView& ids = args.src[2];
  const int slot = args.node.params.i[0];
  const int64_t experts = args.src[0].ne[2];
  std::vector<std::vector<int64_t>> tokens_of(static_cast<size_t>(experts));
  for (int64_t t = 0; t < args.src[1].ne[1]; ++t) {
    const int32_t e = ids.i32(slot, t);
    if (e < 0 || e >= experts) {
      args.fail(fmt::format("token {} selects expert {}, but there are {} experts", t, e, experts));
    }
    tokens_of[static_cast<size_t>(e)].push_back(t);
  }
  return tokens_of;
}

void compute_matmul(const NodeArgs& args) {
  if (args.node.op == Op::MulMat) return mul_mat(args);
  BRAID_ASSERT(args.node.op == Op::MulMatId);
  mul_mat_id(args);
}

void compute_get_rows(const NodeArgs& args) {
  const TensorView& table = args.src[0];
  const TensorView& ids = args.src[1];
  const int64_t d = table.ne[0];
  for (int64_t i = 0; i < ids.ne[0]; ++i) {
    const int32_t r = ids.i32(i);
    if (r < 0 || r >= table.ne[1]) {
      args.fail(fmt::format("id {} at position {} is outside the table's {} rows", r, i, table.ne[1]));
    }
    to_f32(table.type, table.row(r), reinterpret_cast<float*>(args.out.row(i)), d);
  }
}

}  // namespace braid::cpu
