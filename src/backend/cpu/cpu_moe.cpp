// Mixture-of-experts routing: TopK picks experts per token, MoeWeights turns their
// logits into mixing weights, MoeCombine sums the expert outputs with those weights.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "backend/cpu/cpu_kernels.h"

namespace braid::cpu {
namespace {

// Indices of the k largest logits of each column, largest first; ties go to the lower
// index so that every backend picks the same experts. NaN ranks below everything.
void top_k(const NodeArgs& args) {
  const TensorView& logits = args.src[0];
  const int64_t experts = logits.ne[0];
  const int64_t k = args.node.params.i[0];
  std::vector<int32_t> order(static_cast<size_t>(experts));
  for (int64_t t = 0; t < logits.ne[1]; ++t) {
    const auto* x = reinterpret_cast<const float*>(logits.row(t));
    const auto key = [x](int32_t e) { return std::isnan(x[e]) ? -INFINITY : x[e]; };
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return key(a) > key(b) || (key(a) == key(b) && a < b);
    });
    std::copy_n(order.begin(), k, reinterpret_cast<int32_t*>(args.out.row(t)));
  }
}

// w[s, t] = softmax over s of logits[ids[s, t], t].
void moe_weights(const NodeArgs& args) {
  const TensorView& logits = args.src[0];
  const TensorView& ids = args.src[1];
  const int64_t used = ids.ne[0];
  std::vector<double> selected(static_cast<size_t>(used));
  for (int64_t t = 0; t < ids.ne[1]; ++t) {
    const auto* x = reinterpret_cast<const float*>(logits.row(t));
    double max = -INFINITY;
    for (int64_t s = 0; s < used; ++s) {
      const int32_t e = ids.i32(s, t);
      if (e < 0 || e >= logits.ne[0]) {
        args.fail(fmt::format("token {} selects expert {}, but there are {} experts", t, e, logits.ne[0]));
      }
      selected[static_cast<size_t>(s)] = x[e];
      max = std::fmax(max, x[e]);
    }
    double sum = 0;
    for (double& v : selected) sum += v = std::exp(v - max);
    auto* w = reinterpret_cast<float*>(args.out.row(t));
    for (int64_t s = 0; s < used; ++s) w[s] = static_cast<float>(selected[static_cast<size_t>(s)] / sum);
  }
}

// out[:, t] = sum_s weights[s, t] * y_s[:, t], accumulated in double.
void moe_combine(const NodeArgs& args) {
  const TensorView& weights = args.src[0];
  const int64_t used = weights.ne[0];
  const int64_t d = args.out.ne[0];
  std::vector<double> acc(static_cast<size_t>(d));
  for (int64_t t = 0; t < args.out.ne[1]; ++t) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t s = 0; s < used; ++s) {
      const double w = weights.f32(s, t);
      const auto* y = reinterpret_cast<const float*>(args.src[static_cast<size_t>(1 + s)].row(t));
      for (int64_t i = 0; i < d; ++i) acc[static_cast<size_t>(i)] += w * y[i];
    }
    auto* out = reinterpret_cast<float*>(args.out.row(t));
    for (int64_t i = 0; i < d; ++i) out[i] = static_cast<float>(acc[static_cast<size_t>(i)]);
  }
}

}  // namespace

void compute_moe(const NodeArgs& args) {
  switch (args.node.op) {
    case Op::TopK:
      return top_k(args);
    case Op::MoeWeights:
      return moe_weights(args);
    case Op::MoeCombine:
      return moe_combine(args);
    default:
      BRAID_ASSERT(false && "not a mixture-of-experts op");
  }
}

}  // namespace braid::cpu
