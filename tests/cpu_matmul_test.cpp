// CPU reference kernels that read weights (MulMat, MulMatId, GetRows), for every weight
// type. Quantized weights are decoded here by a test-local decoder written from the
// block layouts, so the reference does not share code with the kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "op_harness.h"

namespace braid {
namespace {

using test::flat;
using test::nmse_below;
using test::OpGraph;
using Shape = Graph::Shape;

double half_value(const uint8_t* p) {
  const unsigned bits = p[0] | (p[1] << 8);
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  const double sign = (bits & 0x8000) ? -1.0 : 1.0;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

double bf16_value(const uint8_t* p) {
  const uint32_t bits = static_cast<uint32_t>(p[0] | (p[1] << 8)) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Decodes `count` elements of any weight type, straight from ggml's block layouts.
std::vector<double> decode(DType type, const uint8_t* p, int64_t count) {
  std::vector<double> v;
  for (int64_t i = 0; i < count; ++i) {
    switch (type) {
      case DType::F32: {
        float f;
        std::memcpy(&f, p + 4 * i, 4);
        v.push_back(f);
        break;
      }
      case DType::F16: v.push_back(half_value(p + 2 * i)); break;
      case DType::BF16: v.push_back(bf16_value(p + 2 * i)); break;
      case DType::Q8_0: {  // [d: f16][32 x int8]
        const uint8_t* block = p + 34 * (i / 32);
        v.push_back(half_value(block) * static_cast<int8_t>(block[2 + i % 32]));
        break;
      }
      case DType::Q4_0: {  // [d: f16][16 bytes]: element j in the low nibble of byte j, j+16 in the high
        const uint8_t* block = p + 18 * (i / 32);
        const int j = static_cast<int>(i % 32);
        const int q = j < 16 ? (block[2 + j] & 0xf) : (block[2 + j - 16] >> 4);
        v.push_back(half_value(block) * (q - 8));
        break;
      }
      case DType::Q4_1: {  // [d: f16][m: f16][16 bytes]
        const uint8_t* block = p + 20 * (i / 32);
        const int j = static_cast<int>(i % 32);
        const int q = j < 16 ? (block[4 + j] & 0xf) : (block[4 + j - 16] >> 4);
        v.push_back(half_value(block) * q + half_value(block + 2));
        break;
      }
      case DType::I32: ADD_FAILURE() << "not a weight type"; return v;
      default: {
        // The 5-bit types and the K-quants: braid's own dequantizer, which
        // quant_vectors_test.cpp checks bit for bit against gguf-py's.
        std::vector<float> f(static_cast<size_t>(count));
        to_f32(type, p, f.data(), count);
        return std::vector<double>(f.begin(), f.end());
      }
    }
  }
  return v;
}

// Row lengths: a few blocks of the type (32 elements for the scalar types).
int64_t unit(DType type) { return std::max(32, traits(type).block_elements); }

class WeightTypes : public ::testing::TestWithParam<DType> {};

// y[j, t] = sum_i w[i, j] x[i, t]; w is a window of rows of a bigger matrix and x a
// window of columns of a wider activation, so both are strided views.
TEST_P(WeightTypes, MulMatMatchesReference) {
  const DType type = GetParam();
  const int64_t k = 3 * unit(type), m = 11, n = 3;
  OpGraph g;
  const TensorId whole_w = g.random_weight("w", type, {k, m + 4, 1, 1}, 71);
  const TensorId whole_x = g.random_input("x", DType::F32, {k + 32, n, 1, 1}, 72, -2.0f, 2.0f);
  const Tensor& wt = g.graph()[whole_w];
  const TensorId w = ops::view(g.graph(), whole_w, {k, m, 1, 1}, wt.nb, 3 * wt.nb[1]);
  const TensorId x = ops::view(g.graph(), whole_x, {k, n, 1, 1}, g.graph()[whole_x].nb, 32 * sizeof(float));
  const TensorId y = ops::mul_mat(g.graph(), w, x);
  g.finish({y});
  g.run_cpu();

  const std::vector<double> wv = decode(type, g.host(whole_w), k * (m + 4));
  const std::vector<float> xv = g.read(whole_x);
  std::vector<double> expected(static_cast<size_t>(m * n));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < m; ++j) {
      double sum = 0;
      for (int64_t i = 0; i < k; ++i) sum += wv[flat({k, m + 4, 1, 1}, i, j + 3)] * xv[flat({k + 32, n, 1, 1}, i + 32, t)];
      expected[flat({m, n, 1, 1}, j, t)] = sum;
    }
  EXPECT_TRUE(nmse_below(g.read(y), expected, 1e-12)) << name(type);
  EXPECT_TRUE(g.guards_intact());
}

// mul_mat_add: the product, then plus added (the residual additions of a layer).
TEST(CpuMulMatAdd, AddsPlusToTheProduct) {
  const int64_t k = 64, m = 7, n = 3;
  OpGraph g;
  const TensorId w = g.random_weight("w", DType::F16, {k, m, 1, 1}, 75);
  const TensorId x = g.random_input("x", DType::F32, {k, n, 1, 1}, 76);
  const TensorId plus = g.random_input("plus", DType::F32, {m, n, 1, 1}, 77, -5.0f, 5.0f);
  const TensorId y = ops::mul_mat_add(g.graph(), w, x, plus);
  g.finish({y});
  g.run_cpu();

  const std::vector<double> wv = decode(DType::F16, g.host(w), k * m);
  const std::vector<float> xv = g.read(x);
  const std::vector<float> pv = g.read(plus);
  std::vector<double> expected(static_cast<size_t>(m * n));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < m; ++j) {
      double sum = pv[static_cast<size_t>(t * m + j)];
      for (int64_t i = 0; i < k; ++i) sum += wv[static_cast<size_t>(j * k + i)] * xv[static_cast<size_t>(t * k + i)];
      expected[static_cast<size_t>(t * m + j)] = sum;
    }
  EXPECT_TRUE(nmse_below(g.read(y), expected, 1e-12));
  EXPECT_TRUE(g.guards_intact());
}

// Token t uses expert ids[slot, t]; each slot is checked.
TEST_P(WeightTypes, MulMatIdMatchesReference) {
  const DType type = GetParam();
  const int64_t k = 2 * unit(type), m = 9, experts = 4, n = 5, used = 2;
  const std::vector<int32_t> chosen = {0, 3, 3, 1, 2, 0, 3, 2, 1, 3};  // [used, n]
  OpGraph g;
  const TensorId w = g.random_weight("w", type, {k, m, experts, 1}, 81);
  const TensorId x = g.random_input("x", DType::F32, {k, n, 1, 1}, 82, -2.0f, 2.0f);
  const TensorId ids = g.ids("ids", {used, n, 1, 1}, chosen);
  const TensorId y0 = ops::mul_mat_id(g.graph(), w, x, ids, 0);
  const TensorId y1 = ops::mul_mat_id(g.graph(), w, x, ids, 1);
  g.finish({y0, y1});
  g.run_cpu();

  const std::vector<double> wv = decode(type, g.host(w), k * m * experts);
  const std::vector<float> xv = g.read(x);
  for (int slot = 0; slot < used; ++slot) {
    std::vector<double> expected(static_cast<size_t>(m * n));
    for (int64_t t = 0; t < n; ++t) {
      const int64_t e = chosen[static_cast<size_t>(slot + used * t)];
      for (int64_t j = 0; j < m; ++j) {
        double sum = 0;
        for (int64_t i = 0; i < k; ++i) sum += wv[flat({k, m, experts, 1}, i, j, e)] * xv[flat({k, n, 1, 1}, i, t)];
        expected[flat({m, n, 1, 1}, j, t)] = sum;
      }
    }
    EXPECT_TRUE(nmse_below(g.read(slot == 0 ? y0 : y1), expected, 1e-12)) << name(type) << " slot " << slot;
  }
  EXPECT_TRUE(g.guards_intact());
}

TEST_P(WeightTypes, GetRowsMatchesReference) {
  const DType type = GetParam();
  const int64_t d = 2 * unit(type), rows = 10;
  const std::vector<int32_t> tokens = {7, 0, 9, 7, 3};
  OpGraph g;
  const TensorId table = g.random_weight("table", type, {d, rows, 1, 1}, 91);
  const TensorId ids = g.ids("ids", {5, 1, 1, 1}, tokens);
  const TensorId y = ops::get_rows(g.graph(), table, ids);
  g.finish({y});
  g.run_cpu();
  const std::vector<double> tv = decode(type, g.host(table), d * rows);
  std::vector<double> expected;
  for (int32_t r : tokens)
    for (int64_t i = 0; i < d; ++i) expected.push_back(tv[flat({d, rows, 1, 1}, i, r)]);
  EXPECT_TRUE(nmse_below(g.read(y), expected, 1e-14)) << name(type);
  EXPECT_TRUE(g.guards_intact());
}

INSTANTIATE_TEST_SUITE_P(All, WeightTypes,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0,
                                           DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                                           DType::Q4_K, DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(name(info.param)); });

TEST(CpuMatmul, GetRowsRejectsTokenIdsOutsideTheTable) {
  for (int32_t bad : {10, -1}) {
    OpGraph g;
    const TensorId table = g.random_weight("table", DType::Q8_0, {32, 10, 1, 1}, 92);
    const TensorId ids = g.ids("ids", {3, 1, 1, 1}, {1, bad, 2});
    const TensorId y = ops::get_rows(g.graph(), table, ids);
    g.finish({y});
    EXPECT_THROW(g.run_cpu(), Error) << bad;
  }
}

TEST(CpuMatmul, MulMatIdRejectsExpertIdsOutOfRange) {
  for (int32_t bad : {4, -2}) {
    OpGraph g;
    const TensorId w = g.random_weight("w", DType::F16, {32, 3, 4, 1}, 93);
    const TensorId x = g.random_input("x", DType::F32, {32, 2, 1, 1}, 94);
    const TensorId ids = g.ids("ids", {1, 2, 1, 1}, {1, bad});
    const TensorId y = ops::mul_mat_id(g.graph(), w, x, ids, 0);
    g.finish({y});
    EXPECT_THROW(g.run_cpu(), Error) << bad;
  }
}

// The kernel's own dequantization (types.h) agrees with the decoder above, so a
// quantized matmul equals the f32 matmul of the decoded weights.
TEST(CpuMatmul, QuantizedMatMulEqualsMatMulOfDecodedWeights) {
  const int64_t k = 64, m = 5, n = 2;
  OpGraph g;
  const TensorId wq = g.random_weight("wq", DType::Q4_1, {k, m, 1, 1}, 95);
  const std::vector<double> decoded = decode(DType::Q4_1, g.host(wq), k * m);
  const TensorId wf = g.weight("wf", DType::F32, {k, m, 1, 1}, std::vector<float>(decoded.begin(), decoded.end()));
  const TensorId x = g.random_input("x", DType::F32, {k, n, 1, 1}, 96);
  const TensorId yq = ops::mul_mat(g.graph(), wq, x);
  const TensorId yf = ops::mul_mat(g.graph(), wf, x);
  g.finish({yq, yf});
  g.run_cpu();
  EXPECT_TRUE(nmse_below(g.read(yq), g.read(yf), 1e-12));
}

}  // namespace
}  // namespace braid
