// CPU reference kernels, element-wise and row-wise ops: each against a naive float64
// implementation written here, on random inputs, including strided views as sources.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <vector>

#include "op_harness.h"

namespace braid {
namespace {

using test::flat;
using test::nmse_below;
using test::OpGraph;
using Shape = Graph::Shape;

double silu(double x) { return x / (1.0 + std::exp(-x)); }

// Expected a (op) b with b repeated along every dimension; a and b in logical order.
std::vector<double> broadcast_reference(const std::vector<float>& a, Shape an, const std::vector<float>& b,
                                        Shape bn, bool multiply) {
  std::vector<double> y(a.size());
  for (int64_t i3 = 0; i3 < an[3]; ++i3)
    for (int64_t i2 = 0; i2 < an[2]; ++i2)
      for (int64_t i1 = 0; i1 < an[1]; ++i1)
        for (int64_t i0 = 0; i0 < an[0]; ++i0) {
          const double x = a[flat(an, i0, i1, i2, i3)];
          const double z = b[flat(bn, i0 % bn[0], i1 % bn[1], i2 % bn[2], i3 % bn[3])];
          y[flat(an, i0, i1, i2, i3)] = multiply ? x * z : x + z;
        }
  return y;
}

struct BroadcastCase {
  Shape a, b;
};
void PrintTo(const BroadcastCase& c, std::ostream* os) {
  *os << "a " << fmt::format("{}", fmt::join(c.a, "x")) << " b " << fmt::format("{}", fmt::join(c.b, "x"));
}

class BroadcastBinary : public ::testing::TestWithParam<BroadcastCase> {};

TEST_P(BroadcastBinary, AddAndMulMatchReference) {
  const auto [an, bn] = GetParam();
  for (bool multiply : {false, true}) {
    OpGraph g;
    const TensorId a = g.random_input("a", DType::F32, an, 11);
    const TensorId b = g.random_input("b", DType::F32, bn, 12);
    const TensorId y = multiply ? ops::mul(g.graph(), a, b) : ops::add(g.graph(), a, b);
    g.finish({y});
    g.run_cpu();
    EXPECT_TRUE(nmse_below(g.read(y), broadcast_reference(g.read(a), an, g.read(b), bn, multiply), 1e-14));
    EXPECT_TRUE(g.guards_intact());
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, BroadcastBinary,
                         ::testing::Values(BroadcastCase{{8, 6, 4, 2}, {8, 6, 4, 2}},
                                           BroadcastCase{{8, 6, 4, 2}, {4, 3, 2, 1}},
                                           BroadcastCase{{16, 5, 1, 1}, {16, 1, 1, 1}},
                                           BroadcastCase{{16, 5, 3, 1}, {1, 5, 1, 1}},
                                           BroadcastCase{{7, 3, 1, 1}, {1, 1, 1, 1}}));

TEST(CpuOps, AddReadsARowView) {
  OpGraph g;
  const TensorId m = g.random_input("m", DType::F32, {16, 5, 1, 1}, 21);
  const TensorId b = g.random_input("b", DType::F32, {16, 1, 1, 1}, 22);
  const TensorId r = ops::row(g.graph(), m, 3);
  const TensorId y = ops::add(g.graph(), r, b);
  g.finish({y});
  g.run_cpu();
  const std::vector<float> mv = g.read(m), bv = g.read(b);
  std::vector<double> expected(16);
  for (int i = 0; i < 16; ++i) expected[static_cast<size_t>(i)] = static_cast<double>(mv[flat({16, 5, 1, 1}, i, 3)]) + bv[static_cast<size_t>(i)];
  EXPECT_TRUE(nmse_below(g.read(y), expected, 1e-14));
  EXPECT_TRUE(g.guards_intact());
}

TEST(CpuOps, MulReadsAStridedViewOfEveryOtherRow) {
  OpGraph g;
  const TensorId m = g.random_input("m", DType::F32, {8, 6, 2, 1}, 23);
  const TensorId b = g.random_input("b", DType::F32, {8, 1, 1, 1}, 24);
  const size_t row = 8 * sizeof(float);
  // Rows 1, 3, 5 of each of the 2 matrices.
  const TensorId v = ops::view(g.graph(), m, {8, 3, 2, 1}, {4, 2 * row, 6 * row, 12 * row}, row);
  const TensorId y = ops::mul(g.graph(), v, b);
  g.finish({y});
  g.run_cpu();
  const std::vector<float> mv = g.read(m), bv = g.read(b);
  std::vector<double> expected;
  for (int i2 = 0; i2 < 2; ++i2)
    for (int i1 = 0; i1 < 3; ++i1)
      for (int i0 = 0; i0 < 8; ++i0) {
        expected.push_back(static_cast<double>(mv[flat({8, 6, 2, 1}, i0, 2 * i1 + 1, i2)]) * bv[static_cast<size_t>(i0)]);
      }
  EXPECT_TRUE(nmse_below(g.read(y), expected, 1e-14));
  EXPECT_TRUE(g.guards_intact());
}

TEST(CpuOps, ScaleSiluSwiglu) {
  OpGraph g;
  const Shape shape{32, 4, 3, 1};
  const TensorId a = g.random_input("a", DType::F32, shape, 31, -6.0f, 6.0f);
  const TensorId b = g.random_input("b", DType::F32, shape, 32, -2.0f, 2.0f);
  const TensorId scaled = ops::scale(g.graph(), a, -0.37f);
  const TensorId activated = ops::silu(g.graph(), a);
  const TensorId gated = ops::swiglu(g.graph(), a, b);
  g.finish({scaled, activated, gated});
  g.run_cpu();
  const std::vector<float> av = g.read(a), bv = g.read(b);
  std::vector<double> want_scaled, want_silu, want_swiglu;
  for (size_t i = 0; i < av.size(); ++i) {
    want_scaled.push_back(av[i] * static_cast<double>(-0.37f));
    want_silu.push_back(silu(av[i]));
    want_swiglu.push_back(silu(av[i]) * bv[i]);
  }
  EXPECT_TRUE(nmse_below(g.read(scaled), want_scaled, 1e-14));
  EXPECT_TRUE(nmse_below(g.read(activated), want_silu, 1e-13));
  EXPECT_TRUE(nmse_below(g.read(gated), want_swiglu, 1e-13));
  EXPECT_TRUE(g.guards_intact());
}

TEST(CpuOps, SoftmaxMatchesReferenceAndRowsSumToOne) {
  OpGraph g;
  const Shape shape{50, 7, 2, 1};
  const TensorId a = g.random_input("a", DType::F32, shape, 41, -20.0f, 20.0f);
  const TensorId y = ops::softmax(g.graph(), a, 0.7f);
  g.finish({y});
  g.run_cpu();
  const std::vector<float> av = g.read(a), yv = g.read(y);
  std::vector<double> expected(av.size());
  for (size_t r = 0; r < av.size() / 50; ++r) {
    double sum = 0;
    for (size_t i = 0; i < 50; ++i) sum += std::exp(0.7f * static_cast<double>(av[r * 50 + i]));
    for (size_t i = 0; i < 50; ++i) expected[r * 50 + i] = std::exp(0.7f * static_cast<double>(av[r * 50 + i])) / sum;
    double row_sum = 0;
    for (size_t i = 0; i < 50; ++i) row_sum += yv[r * 50 + i];
    EXPECT_NEAR(row_sum, 1.0, 1e-5) << "row " << r;
  }
  EXPECT_TRUE(nmse_below(yv, expected, 1e-12));
  EXPECT_TRUE(g.guards_intact());
}

TEST(CpuOps, SoftmaxIsStableForLargeLogits) {
  OpGraph g;
  const TensorId a = g.input("a", DType::F32, {4, 1, 1, 1}, {1000.0f, 1001.0f, 999.0f, -1000.0f});
  const TensorId y = ops::softmax(g.graph(), a);
  g.finish({y});
  g.run_cpu();
  const double z = 1 + std::exp(1.0) + std::exp(-1.0);
  EXPECT_TRUE(nmse_below(g.read(y), std::vector<double>{1 / z, std::exp(1.0) / z, std::exp(-1.0) / z, 0.0}, 1e-12));
}

class RmsNorm : public ::testing::TestWithParam<bool> {};

TEST_P(RmsNorm, MatchesReferenceOnAStridedView) {
  const bool with_weight = GetParam();
  OpGraph g;
  const Shape whole{64, 6, 2, 1};
  const TensorId x = g.random_input("x", DType::F32, whole, 51, -3.0f, 3.0f);
  const TensorId w = with_weight ? g.random_input("w", DType::F32, {32, 1, 1, 1}, 52) : kNoTensor;
  // The second half of every row: [32, 6, 2] with the source's strides.
  const Tensor& xt = g.graph()[x];
  const TensorId half = ops::view(g.graph(), x, {32, 6, 2, 1}, xt.nb, 32 * sizeof(float));
  const float eps = 1e-5f;
  const TensorId y = ops::rms_norm(g.graph(), half, w, eps);
  g.finish({y});
  g.run_cpu();
  const std::vector<float> xv = g.read(x);
  const std::vector<float> wv = with_weight ? g.read(w) : std::vector<float>(32, 1.0f);
  std::vector<double> expected;
  for (int r = 0; r < 12; ++r) {
    double squares = 0;
    for (int i = 0; i < 32; ++i) squares += std::pow(static_cast<double>(xv[flat(whole, 32 + i, r)]), 2);
    const double rms = std::sqrt(squares / 32 + static_cast<double>(eps));
    for (int i = 0; i < 32; ++i) expected.push_back(xv[flat(whole, 32 + i, r)] / rms * wv[static_cast<size_t>(i)]);
  }
  EXPECT_TRUE(nmse_below(g.read(y), expected, 1e-13));
  EXPECT_TRUE(g.guards_intact());
}

INSTANTIATE_TEST_SUITE_P(Weight, RmsNorm, ::testing::Bool());

struct CopyCase {
  DType from, to;
  double limit;
};
void PrintTo(const CopyCase& c, std::ostream* os) { *os << name(c.from) << " to " << name(c.to); }

class CopyPermuted : public ::testing::TestWithParam<CopyCase> {};

// A permuted (and a transposed) source becomes contiguous in the node's type.
TEST_P(CopyPermuted, GathersAndConverts) {
  const auto [from, to, limit] = GetParam();
  OpGraph g;
  const Shape shape{6, 5, 4, 3};
  const TensorId a = g.random_input("a", from, shape, 61, -4.0f, 4.0f);
  const TensorId permuted = ops::permute(g.graph(), a, {2, 0, 3, 1});  // -> [5, 3, 6, 4]
  const TensorId y = ops::copy(g.graph(), permuted, to);
  const TensorId plane = ops::view(g.graph(), a, {6, 5, 1, 1}, g.graph()[a].nb, 0);
  const TensorId transposed_copy = ops::copy(g.graph(), ops::transpose(g.graph(), plane), to);
  g.finish({y, transposed_copy});
  g.run_cpu();
  const std::vector<float> av = g.read(a);
  const Shape out_shape = g.graph()[y].ne;
  ASSERT_EQ(out_shape, (Shape{5, 3, 6, 4}));
  std::vector<double> expected(av.size());
  for (int64_t i3 = 0; i3 < 3; ++i3)
    for (int64_t i2 = 0; i2 < 4; ++i2)
      for (int64_t i1 = 0; i1 < 5; ++i1)
        for (int64_t i0 = 0; i0 < 6; ++i0) expected[flat(out_shape, i1, i3, i0, i2)] = av[flat(shape, i0, i1, i2, i3)];
  EXPECT_TRUE(nmse_below(g.read(y), expected, limit));
  std::vector<double> expected_t;
  for (int64_t i1 = 0; i1 < 6; ++i1)
    for (int64_t i0 = 0; i0 < 5; ++i0) expected_t.push_back(av[flat(shape, i1, i0)]);
  EXPECT_TRUE(nmse_below(g.read(transposed_copy), expected_t, limit));
  EXPECT_TRUE(g.guards_intact());
}

INSTANTIATE_TEST_SUITE_P(Types, CopyPermuted,
                         ::testing::Values(CopyCase{DType::F32, DType::F32, 1e-30},
                                           CopyCase{DType::F32, DType::F16, 1e-6},
                                           CopyCase{DType::F32, DType::BF16, 1e-4},
                                           CopyCase{DType::F16, DType::F32, 1e-30},
                                           CopyCase{DType::BF16, DType::F16, 1e-6},
                                           CopyCase{DType::F16, DType::F16, 1e-30}));

}  // namespace
}  // namespace braid
