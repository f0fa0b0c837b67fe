// CPU reference kernels of the attention block: Rope, KvWrite, Attention. Against
// float64 references, plus properties: rope keeps norms and is the identity at position
// 0; attention over one key returns its value; attention is causal.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <vector>

#include "op_harness.h"
#include "test_support.h"

namespace braid {
namespace {

using test::flat;
using test::nmse_below;
using test::OpGraph;
using Shape = Graph::Shape;

std::vector<double> rope_reference(const std::vector<float>& x, Shape ne, const std::vector<int32_t>& pos,
                                   int mode, int dims, double base, double freq_scale,
                                   const std::vector<float>& factors = {}) {
  std::vector<double> y(x.begin(), x.end());
  for (int64_t t = 0; t < ne[2]; ++t)
    for (int64_t h = 0; h < ne[1]; ++h)
      for (int i = 0; i < dims / 2; ++i) {
        double theta = pos[static_cast<size_t>(t)] * freq_scale * std::pow(base, -2.0 * i / dims);
        if (!factors.empty()) theta /= factors[static_cast<size_t>(i)];
        const int64_t a = mode == kRopeNeox ? i : 2 * i;
        const int64_t b = mode == kRopeNeox ? i + dims / 2 : 2 * i + 1;
        const double x0 = x[flat(ne, a, h, t)], x1 = x[flat(ne, b, h, t)];
        y[flat(ne, a, h, t)] = x0 * std::cos(theta) - x1 * std::sin(theta);
        y[flat(ne, b, h, t)] = x0 * std::sin(theta) + x1 * std::cos(theta);
      }
  return y;
}

struct RopeCase {
  int mode, dims;
  float freq_scale;
};
void PrintTo(const RopeCase& c, std::ostream* os) {
  *os << (c.mode == kRopeNeox ? "neox" : "normal") << " dims " << c.dims << " freq_scale " << c.freq_scale;
}

class Rope : public ::testing::TestWithParam<RopeCase> {};

// x is the query part of a fused projection [hd, q+k+v heads, n]: a strided view.
TEST_P(Rope, MatchesReferenceAndKeepsNorms) {
  const auto [mode, dims, freq_scale] = GetParam();
  const std::vector<int32_t> positions = {0, 5, 17, 300};
  const Shape fused{16, 5, 4, 1}, shape{16, 3, 4, 1};
  OpGraph g;
  const TensorId qkv = g.random_input("qkv", DType::F32, fused, 101, -2.0f, 2.0f);
  const TensorId pos = g.ids("pos", {4, 1, 1, 1}, positions);
  const TensorId q = ops::view(g.graph(), qkv, shape, g.graph()[qkv].nb, 0);
  const TensorId y = ops::rope(g.graph(), q, pos, mode, dims, 10000.0f, freq_scale);
  g.finish({y});
  g.run_cpu();
  const std::vector<float> xv = g.read(q), yv = g.read(y);
  EXPECT_TRUE(nmse_below(yv, rope_reference(xv, shape, positions, mode, dims, 10000.0, freq_scale), 1e-13));
  for (int64_t t = 0; t < 4; ++t)
    for (int64_t h = 0; h < 3; ++h) {
      double before = 0, after = 0;
      for (int64_t i = 0; i < 16; ++i) {
        before += std::pow(static_cast<double>(xv[flat(shape, i, h, t)]), 2);
        after += std::pow(static_cast<double>(yv[flat(shape, i, h, t)]), 2);
      }
      EXPECT_NEAR(after, before, 1e-5 * before) << "token " << t << " head " << h;
      if (positions[static_cast<size_t>(t)] == 0) {
        for (int64_t i = 0; i < 16; ++i) EXPECT_EQ(yv[flat(shape, i, h, t)], xv[flat(shape, i, h, t)]);
      }
    }
  EXPECT_TRUE(g.guards_intact());
}

INSTANTIATE_TEST_SUITE_P(Modes, Rope,
                         ::testing::Values(RopeCase{kRopeNormal, 16, 1.0f}, RopeCase{kRopeNormal, 12, 0.5f},
                                           RopeCase{kRopeNeox, 16, 1.0f}, RopeCase{kRopeNeox, 10, 0.25f}));

// Llama 3 rope scaling: pair i turns pos * base^(-2i/dims) / factor_i.
TEST(CpuRope, FrequencyFactorsDivideEachPairsFrequency) {
  const std::vector<int32_t> positions = {0, 3, 40, 9000};
  const std::vector<float> factors = {1.0f, 1.0f, 2.44f, 8.0f, 8.0f, 32.0f};
  for (int mode : {kRopeNormal, kRopeNeox}) {
    const Shape shape{12, 3, 4, 1};
    OpGraph g;
    const TensorId x = g.random_input("x", DType::F32, shape, 105, -2.0f, 2.0f);
    const TensorId pos = g.ids("pos", {4, 1, 1, 1}, positions);
    const TensorId f = g.weight("rope_freqs", DType::F32, {6, 1, 1, 1}, factors);
    const TensorId y = ops::rope(g.graph(), x, pos, mode, 12, 500000.0f, 1.0f, f);
    const TensorId plain = ops::rope(g.graph(), x, pos, mode, 12, 500000.0f);
    g.finish({y, plain});
    g.run_cpu();
    const std::vector<float> xv = g.read(x), yv = g.read(y);
    EXPECT_TRUE(nmse_below(yv, rope_reference(xv, shape, positions, mode, 12, 500000.0, 1.0, factors), 1e-13));
    EXPECT_NE(yv, g.read(plain)) << "the factors must change the rotation";
    EXPECT_TRUE(g.guards_intact());
  }
}

TEST(CpuRope, FrequencyFactorsMustHaveOnePerPair) {
  Graph g;
  const TensorId x = g.input("x", DType::F32, {12, 2, 3, 1});
  const TensorId pos = g.input("pos", DType::I32, {3, 1, 1, 1});
  const TensorId wrong = g.weight("rope_freqs", DType::F32, {12, 1, 1, 1});
  try {
    ops::rope(g, x, pos, kRopeNormal, 12, 10000.0f, 1.0f, wrong);
    FAIL() << "12 factors for 6 pairs were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rope: frequency factors"), std::string::npos) << e.what();
  }
}

class CacheTypes : public ::testing::TestWithParam<DType> {};

TEST_P(CacheTypes, KvWriteFillsTheListedSlotsOnly) {
  const DType type = GetParam();
  const Shape cache_shape{8, 2, 6, 1}, x_shape{8, 2, 3, 1};
  const std::vector<int32_t> positions = {4, 0, 2};
  OpGraph g;
  const TensorId cache = g.state("cache", type, cache_shape, test::random_floats(8 * 2 * 6, 111));
  const TensorId x = g.random_input("x", DType::F32, x_shape, 112);
  const TensorId pos = g.ids("pos", {3, 1, 1, 1}, positions);
  const std::vector<float> before = g.read(cache);
  const TensorId written = ops::kv_write(g.graph(), cache, x, pos);
  g.finish({written});
  g.run_cpu();
  const std::vector<float> xv = g.read(x), after = g.read(written);
  std::vector<double> expected(before.begin(), before.end());
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < 8; ++i) expected[flat(cache_shape, i, h, positions[static_cast<size_t>(t)])] = xv[flat(x_shape, i, h, t)];
  const double limit = type == DType::F32 ? 1e-30 : type == DType::F16 ? 1e-6 : 1e-4;
  EXPECT_TRUE(nmse_below(after, expected, limit)) << name(type);
  for (int64_t slot : {1, 3, 5})
    for (int64_t i = 0; i < 16; ++i) EXPECT_EQ(after[static_cast<size_t>(slot * 16 + i)], before[static_cast<size_t>(slot * 16 + i)]);
  EXPECT_TRUE(g.guards_intact());
}

// rope_kv_write is rope followed by kv_write, bit for bit, in every mode and cache type.
TEST_P(CacheTypes, RopeKvWriteEqualsRopeThenKvWrite) {
  const DType type = GetParam();
  const Shape cache_shape{16, 2, 8, 1}, x_shape{16, 2, 3, 1};
  const std::vector<int32_t> positions = {7, 0, 3};
  for (const RopeCase& c : {RopeCase{kRopeNormal, 16, 1.0f}, RopeCase{kRopeNeox, 10, 0.5f}})
  for (bool with_factors : {false, true}) {
    OpGraph g;
    const std::vector<float> initial = test::random_floats(16 * 2 * 8, 113);
    const TensorId x = g.random_input("x", DType::F32, x_shape, 114, -2.0f, 2.0f);
    const TensorId pos = g.ids("pos", {3, 1, 1, 1}, positions);
    const TensorId factors =
        with_factors ? g.random_weight("rope_freqs", DType::F32, {c.dims / 2, 1, 1, 1}, 115, 1.0f, 8.0f) : kNoTensor;
    const TensorId fused = ops::rope_kv_write(g.graph(), g.state("fused", type, cache_shape, initial), x, pos, c.mode,
                                              c.dims, 10000.0f, c.freq_scale, factors);
    const TensorId rotated = ops::rope(g.graph(), x, pos, c.mode, c.dims, 10000.0f, c.freq_scale, factors);
    const TensorId apart = ops::kv_write(g.graph(), g.state("apart", type, cache_shape, initial), rotated, pos);
    g.finish({fused, apart});
    g.run_cpu();
    EXPECT_EQ(g.read(fused), g.read(apart)) << name(type) << " " << testing::PrintToString(c) << " factors "
                                            << with_factors;
    EXPECT_TRUE(g.guards_intact());
  }
}

std::vector<double> attention_reference(const std::vector<float>& q, Shape qn, const std::vector<float>& k,
                                        const std::vector<float>& v, Shape cn, const std::vector<int32_t>& pos,
                                        double scale, int region = 0) {
  std::vector<double> out(q.size());
  const int64_t group = qn[1] / cn[1];
  for (int64_t i = 0; i < qn[2]; ++i)
    for (int64_t h = 0; h < qn[1]; ++h) {
      const int64_t last = pos[static_cast<size_t>(i)];
      const int64_t first = region > 0 ? last / region * region : 0;
      std::vector<double> score(static_cast<size_t>(last + 1 - first));
      for (int64_t s = first; s <= last; ++s) {
        for (int64_t d = 0; d < qn[0]; ++d) score[static_cast<size_t>(s - first)] += scale * q[flat(qn, d, h, i)] * k[flat(cn, d, h / group, s)];
      }
      double total = 0;
      for (double& e : score) total += e = std::exp(e);  // small scores: no overflow
      for (int64_t s = first; s <= last; ++s)
        for (int64_t d = 0; d < qn[0]; ++d) out[flat(qn, d, h, i)] += score[static_cast<size_t>(s - first)] / total * v[flat(cn, d, h / group, s)];
    }
  return out;
}

// Grouped-query attention over caches of each type, q a strided view of a fused projection.
TEST_P(CacheTypes, AttentionMatchesReference) {
  const DType type = GetParam();
  const Shape qn{16, 4, 3, 1}, cn{16, 2, 8, 1};
  const std::vector<int32_t> positions = {3, 4, 7};
  OpGraph g;
  const TensorId fused = g.random_input("fused", DType::F32, {16, 6, 3, 1}, 121, -1.5f, 1.5f);
  const TensorId q = ops::view(g.graph(), fused, qn, g.graph()[fused].nb, 2 * g.graph()[fused].nb[1]);
  const TensorId k = g.state("k", type, cn, test::random_floats(16 * 2 * 8, 122, -1.5f, 1.5f));
  const TensorId v = g.state("v", type, cn, test::random_floats(16 * 2 * 8, 123));
  const TensorId pos = g.ids("pos", {3, 1, 1, 1}, positions);
  const TensorId y = ops::attention(g.graph(), q, k, v, pos, 0.25f);
  g.finish({y});
  g.run_cpu();
  const auto expected = attention_reference(g.read(q), qn, g.read(k), g.read(v), cn, positions, 0.25);
  EXPECT_TRUE(nmse_below(g.read(y), expected, 1e-12)) << name(type);
  EXPECT_TRUE(g.guards_intact());
}

// A cache of three sequences' regions (8 rows each): each query attends within the region
// of its row alone, on the reference and the fast kernels.
TEST_P(CacheTypes, AttentionStaysWithinEachQuerysRegion) {
  const DType type = GetParam();
  const Shape qn{16, 4, 5, 1}, cn{16, 2, 24, 1};
  const std::vector<int32_t> rows = {3, 8, 9, 23, 16};  // regions 0, 1, 1, 2, 2
  for (const bool fast : {false, true}) {
    OpGraph g;
    const TensorId q = g.random_input("q", DType::F32, qn, 131, -1.5f, 1.5f);
    const TensorId k = g.state("k", type, cn, test::random_floats(16 * 2 * 24, 132, -1.5f, 1.5f));
    const TensorId v = g.state("v", type, cn, test::random_floats(16 * 2 * 24, 133));
    const TensorId y = ops::attention(g.graph(), q, k, v, g.ids("rows", {5, 1, 1, 1}, rows), 0.25f, 8);
    g.finish({y});
    fast ? g.run_cpu_fast() : g.run_cpu();
    const auto expected = attention_reference(g.read(q), qn, g.read(k), g.read(v), cn, rows, 0.25, 8);
    EXPECT_TRUE(nmse_below(g.read(y), expected, 1e-12)) << name(type) << (fast ? " fast" : " reference");
  }
}

TEST(CpuAttention, ARegionMustDivideTheCache) {
  OpGraph g;
  const TensorId q = g.random_input("q", DType::F32, {16, 2, 1, 1}, 1);
  const TensorId k = g.state("k", DType::F32, {16, 2, 24, 1});
  const TensorId rows = g.ids("rows", {1, 1, 1, 1}, {0});
  EXPECT_THROW(ops::attention(g.graph(), q, k, k, rows, 1.0f, 7), Error);
  EXPECT_THROW(ops::attention(g.graph(), q, k, k, rows, 1.0f, -1), Error);
}

INSTANTIATE_TEST_SUITE_P(All, CacheTypes, ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(name(info.param)); });

// What a model does each step: write this step's keys and values, then attend.
TEST(CpuAttention, AttendsToWhatKvWriteJustWrote) {
  const Shape qn{8, 2, 2, 1}, cn{8, 1, 5, 1}, kvn{8, 1, 2, 1};
  const std::vector<int32_t> positions = {2, 3};
  OpGraph g;
  const TensorId k_cache = g.state("k", DType::F16, cn, test::random_floats(40, 131));
  const TensorId v_cache = g.state("v", DType::F16, cn, test::random_floats(40, 132));
  const TensorId q = g.random_input("q", DType::F32, qn, 133);
  const TensorId k_new = g.random_input("k_new", DType::F32, kvn, 134);
  const TensorId v_new = g.random_input("v_new", DType::F32, kvn, 135);
  const TensorId pos = g.ids("pos", {2, 1, 1, 1}, positions);
  const TensorId k = ops::kv_write(g.graph(), k_cache, k_new, pos);
  const TensorId v = ops::kv_write(g.graph(), v_cache, v_new, pos);
  const TensorId y = ops::attention(g.graph(), q, k, v, pos, 0.3f);
  g.finish({y});
  std::vector<float> kv = g.read(k_cache), vv = g.read(v_cache);
  const std::vector<float> kn = g.read(k_new), vn = g.read(v_new);
  for (size_t t = 0; t < 2; ++t)
    for (size_t i = 0; i < 8; ++i) {  // what the cache will hold, rounded to f16
      kv[static_cast<size_t>(positions[t]) * 8 + i] = f16_to_f32(f32_to_f16(kn[t * 8 + i]));
      vv[static_cast<size_t>(positions[t]) * 8 + i] = f16_to_f32(f32_to_f16(vn[t * 8 + i]));
    }
  g.run_cpu();
  EXPECT_TRUE(nmse_below(g.read(y), attention_reference(g.read(q), qn, kv, vv, cn, positions, 0.3), 1e-12));
  EXPECT_TRUE(g.guards_intact());
}

TEST(CpuAttention, OneKeyReturnsItsValue) {
  const Shape qn{16, 4, 1, 1}, cn{16, 2, 4, 1};
  OpGraph g;
  const TensorId q = g.random_input("q", DType::F32, qn, 141, -3.0f, 3.0f);
  const TensorId k = g.state("k", DType::F32, cn, test::random_floats(128, 142));
  const TensorId v = g.state("v", DType::F32, cn, test::random_floats(128, 143));
  const TensorId pos = g.ids("pos", {1, 1, 1, 1}, {0});
  const TensorId y = ops::attention(g.graph(), q, k, v, pos, 1.0f);
  g.finish({y});
  g.run_cpu();
  const std::vector<float> yv = g.read(y), vv = g.read(v);
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t d = 0; d < 16; ++d) EXPECT_FLOAT_EQ(yv[flat(qn, d, h)], vv[flat(cn, d, h / 2, 0)]);
}

// Changing slot 4 of the caches changes only the query at position 4.
TEST(CpuAttention, IsCausal) {
  const Shape qn{16, 2, 3, 1}, cn{16, 2, 6, 1};
  OpGraph g;
  const TensorId q = g.random_input("q", DType::F32, qn, 151);
  const TensorId k = g.state("k", DType::BF16, cn, test::random_floats(192, 152));
  const TensorId v = g.state("v", DType::BF16, cn, test::random_floats(192, 153));
  const TensorId pos = g.ids("pos", {3, 1, 1, 1}, {2, 3, 4});
  const TensorId y = ops::attention(g.graph(), q, k, v, pos, 0.25f);
  g.finish({y});
  g.run_cpu();
  const std::vector<float> first = g.read(y);
  for (TensorId cache : {k, v}) {
    std::vector<float> values = g.read(cache);
    for (size_t i = 4 * 32; i < 6 * 32; ++i) values[i] = -3.0f * values[i] + 0.5f;  // slots 4 and 5
    g.write(cache, values);
  }
  g.run_cpu();
  const std::vector<float> second = g.read(y);
  for (size_t i = 0; i < 2 * 32; ++i) EXPECT_EQ(first[i], second[i]) << "earlier query changed at " << i;
  double changed = 0;
  for (size_t i = 2 * 32; i < 3 * 32; ++i) changed += std::fabs(first[i] - second[i]);
  EXPECT_GT(changed, 1e-3) << "the query at position 4 must see slot 4";
}

TEST(CpuAttention, PositionsOutsideTheCacheThrow) {
  for (int32_t bad : {6, -1}) {
    OpGraph g;
    const TensorId cache = g.state("cache", DType::F16, {8, 1, 6, 1});
    const TensorId other = g.state("other", DType::F16, {8, 1, 6, 1});
    const TensorId x = g.random_input("x", DType::F32, {8, 1, 2, 1}, 161);
    const TensorId q = g.random_input("q", DType::F32, {8, 2, 2, 1}, 162);
    const TensorId pos = g.ids("pos", {2, 1, 1, 1}, {1, bad});
    const TensorId written = ops::kv_write(g.graph(), cache, x, pos);
    const TensorId attended = ops::attention(g.graph(), q, other, other, pos, 1.0f);
    g.finish({written, attended});
    EXPECT_THROW(cpu::compute(g.graph(), written, g.addresses()), Error) << bad;
    EXPECT_THROW(cpu::compute(g.graph(), attended, g.addresses()), Error) << bad;
  }
}

}  // namespace
}  // namespace braid
