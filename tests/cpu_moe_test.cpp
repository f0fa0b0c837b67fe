// CPU reference kernels of mixture-of-experts routing: TopK, MoeWeights, MoeCombine,
// and the whole route (top_k -> weights -> mul_mat_id per slot -> combine).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "op_harness.h"
#include "test_support.h"

namespace braid {
namespace {

using test::flat;
using test::nmse_below;
using test::OpGraph;
using Shape = Graph::Shape;

// Indices of the k largest values, largest first, ties to the lower index.
std::vector<int32_t> top_k_reference(const std::vector<float>& column, int k) {
  std::vector<int32_t> idx(column.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return column[static_cast<size_t>(a)] > column[static_cast<size_t>(b)]; });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

TEST(CpuMoe, TopKPicksTheLargestWithTiesToTheLowerIndex) {
  std::vector<float> logits = test::random_floats(8 * 5, 171, -3.0f, 3.0f);
  // Token 1: ties everywhere; token 2: a tie straddling the cut at k = 3.
  for (size_t e = 0; e < 8; ++e) logits[8 + e] = static_cast<float>(e % 3);
  logits[16 + 6] = 9.0f;
  logits[16 + 1] = 5.0f;
  logits[16 + 5] = 5.0f;
  logits[16 + 3] = 5.0f;
  OpGraph g;
  const TensorId x = g.input("logits", DType::F32, {8, 5, 1, 1}, logits);
  const TensorId top = ops::top_k(g.graph(), x, 3);
  g.finish({top});
  g.run_cpu();
  const std::vector<int32_t> got = g.read_i32(top);
  for (size_t t = 0; t < 5; ++t) {
    const std::vector<float> column(logits.begin() + static_cast<long>(8 * t), logits.begin() + static_cast<long>(8 * t + 8));
    const std::vector<int32_t> want = top_k_reference(column, 3);
    EXPECT_EQ(std::vector<int32_t>(got.begin() + static_cast<long>(3 * t), got.begin() + static_cast<long>(3 * t + 3)), want)
        << "token " << t;
  }
  EXPECT_EQ((std::vector<int32_t>(got.begin() + 3, got.begin() + 6)), (std::vector<int32_t>{2, 5, 1}));
  EXPECT_EQ((std::vector<int32_t>(got.begin() + 6, got.begin() + 9)), (std::vector<int32_t>{6, 1, 3}));
  EXPECT_TRUE(g.guards_intact());
}

TEST(CpuMoe, WeightsAreTheSoftmaxOfTheSelectedLogits) {
  const std::vector<int32_t> chosen = {3, 0, 1, 1, 7, 2};  // [2, 3]
  OpGraph g;
  const TensorId x = g.random_input("logits", DType::F32, {8, 3, 1, 1}, 181, -4.0f, 4.0f);
  const TensorId ids = g.ids("ids", {2, 3, 1, 1}, chosen);
  const TensorId w = ops::moe_weights(g.graph(), x, ids);
  g.finish({w});
  g.run_cpu();
  const std::vector<float> xv = g.read(x), wv = g.read(w);
  std::vector<double> expected;
  for (int64_t t = 0; t < 3; ++t) {
    const double a = xv[flat({8, 3, 1, 1}, chosen[static_cast<size_t>(2 * t)], t)];
    const double b = xv[flat({8, 3, 1, 1}, chosen[static_cast<size_t>(2 * t + 1)], t)];
    expected.push_back(std::exp(a) / (std::exp(a) + std::exp(b)));
    expected.push_back(std::exp(b) / (std::exp(a) + std::exp(b)));
    EXPECT_NEAR(wv[static_cast<size_t>(2 * t)] + wv[static_cast<size_t>(2 * t + 1)], 1.0, 1e-6);
  }
  EXPECT_TRUE(nmse_below(wv, expected, 1e-13));
}

TEST(CpuMoe, WeightsRejectExpertIdsOutOfRange) {
  OpGraph g;
  const TensorId x = g.random_input("logits", DType::F32, {4, 2, 1, 1}, 182);
  const TensorId ids = g.ids("ids", {1, 2, 1, 1}, {0, 4});
  const TensorId w = ops::moe_weights(g.graph(), x, ids);
  g.finish({w});
  EXPECT_THROW(g.run_cpu(), Error);
}

// One expert output is a strided view (the first half of wider rows).
TEST(CpuMoe, CombineSumsWeightedExpertOutputs) {
  const Shape yn{16, 3, 1, 1};
  OpGraph g;
  const TensorId w = g.random_input("w", DType::F32, {2, 3, 1, 1}, 191, 0.0f, 1.0f);
  const TensorId y0 = g.random_input("y0", DType::F32, yn, 192);
  const TensorId wide = g.random_input("wide", DType::F32, {32, 3, 1, 1}, 193);
  const TensorId y1 = ops::view(g.graph(), wide, yn, g.graph()[wide].nb, 0);
  const TensorId out = ops::moe_combine(g.graph(), w, {y0, y1});
  g.finish({out});
  g.run_cpu();
  const std::vector<float> wv = g.read(w), a = g.read(y0), b = g.read(y1);
  std::vector<double> expected;
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t i = 0; i < 16; ++i) {
      expected.push_back(static_cast<double>(wv[flat({2, 3, 1, 1}, 0, t)]) * a[flat(yn, i, t)] +
                         static_cast<double>(wv[flat({2, 3, 1, 1}, 1, t)]) * b[flat(yn, i, t)]);
    }
  EXPECT_TRUE(nmse_below(g.read(out), expected, 1e-13));
  EXPECT_TRUE(g.guards_intact());
}

// The whole mixture for 4 tokens over 4 experts, 2 per token, against a direct float64
// evaluation of sum_s softmax(selected)_s * W_{e_s} x.
TEST(CpuMoe, RoutedMixtureMatchesReference) {
  const int64_t k = 32, m = 8, experts = 4, n = 4;
  OpGraph g;
  const TensorId x = g.random_input("x", DType::F32, {k, n, 1, 1}, 201);
  const TensorId logits = g.random_input("logits", DType::F32, {experts, n, 1, 1}, 202, -2.0f, 2.0f);
  const TensorId w = g.random_weight("w", DType::F32, {k, m, experts, 1}, 203);
  Graph& gr = g.graph();
  const TensorId ids = ops::top_k(gr, logits, 2);
  const TensorId mix = ops::moe_weights(gr, logits, ids);
  const TensorId out = ops::moe_combine(gr, mix, {ops::mul_mat_id(gr, w, x, ids, 0), ops::mul_mat_id(gr, w, x, ids, 1)});
  g.finish({out});
  g.run_cpu();
  const std::vector<float> xv = g.read(x), lv = g.read(logits), wv = g.read(w);
  std::vector<double> expected(static_cast<size_t>(m * n));
  for (int64_t t = 0; t < n; ++t) {
    const std::vector<float> column(lv.begin() + t * experts, lv.begin() + (t + 1) * experts);
    const std::vector<int32_t> top = top_k_reference(column, 2);
    const double e0 = std::exp(column[static_cast<size_t>(top[0])]), e1 = std::exp(column[static_cast<size_t>(top[1])]);
    for (int s = 0; s < 2; ++s) {
      const double weight = (s == 0 ? e0 : e1) / (e0 + e1);
      for (int64_t j = 0; j < m; ++j) {
        double dot = 0;
        for (int64_t i = 0; i < k; ++i) dot += wv[flat({k, m, experts, 1}, i, j, top[static_cast<size_t>(s)])] * xv[flat({k, n, 1, 1}, i, t)];
        expected[flat({m, n, 1, 1}, j, t)] += weight * dot;
      }
    }
  }
  EXPECT_TRUE(nmse_below(g.read(out), expected, 1e-12));
  EXPECT_TRUE(g.guards_intact());
}

}  // namespace
}  // namespace braid
