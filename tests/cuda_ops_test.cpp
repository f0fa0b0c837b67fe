// CUDA kernels of the small ops against the CPU reference: element-wise, rms_norm,
// softmax, rope, get_rows, copy, kv_write and the MoE routing ops. Each case also checks
// determinism (two launches and a captured replay are bit-identical) and guard bytes.
// Matmul and attention cases are in cuda_matmul_attention_test.cpp.
#ifdef BRAID_HAVE_CUDA

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>

#include "cuda_op_runner.h"

namespace braid {
namespace {

using test::CudaContext;
using test::OneNodeRunner;

constexpr double kExact = 1e-12;      // same arithmetic on both sides
constexpr double kFloatMath = 1e-10;  // f32 on the device, double on the CPU

std::vector<int32_t> iota_ints(int64_t count, int32_t start) {
  std::vector<int32_t> v(static_cast<size_t>(count));
  std::iota(v.begin(), v.end(), start);
  return v;
}

// A [ne0, ne1, ne2] f32 view that strides over a larger input (rows 2x apart).
TensorId strided_input(Graph& g, const std::string& name, int64_t ne0, int64_t ne1, int64_t ne2) {
  const TensorId base = g.input(name, DType::F32, {ne0, 2 * ne1, ne2, 1});
  const Tensor& b = g[base];
  return ops::view(g, base, {ne0, ne1, ne2, 1}, {4, 2 * b.nb[1], b.nb[2], b.nb[3]}, b.nb[1]);
}

TEST(CudaOps, AddAndMulBroadcast) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (Op op : {Op::Add, Op::Mul}) {
    for (Graph::Shape b_shape : {Graph::Shape{96, 1, 1, 1}, Graph::Shape{96, 3, 2, 1}, Graph::Shape{32, 1, 2, 1}}) {
      Graph g;
      const TensorId a = strided_input(g, "a", 96, 3, 2);
      const TensorId b = g.input("b", DType::F32, b_shape);
      const TensorId node = op == Op::Add ? ops::add(g, a, b) : ops::mul(g, a, b);
      OneNodeRunner runner(g, node, 11);
      SCOPED_TRACE(std::string(op_name(op)) + " b " + g[b].shape_string());
      test::expect_matches_reference(runner, kExact, cuda);
    }
  }
}

TEST(CudaOps, UnaryOpsOnStridedRows) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (int which = 0; which < 3; ++which) {
    Graph g;
    const TensorId a = strided_input(g, "a", 200, 5, 3);
    TensorId node;
    if (which == 0) node = ops::scale(g, a, 0.37f);
    else if (which == 1) node = ops::silu(g, a);
    else node = ops::swiglu(g, a, strided_input(g, "b", 200, 5, 3));
    OneNodeRunner runner(g, node, 21);
    SCOPED_TRACE(op_name(g[node].op));
    test::expect_matches_reference(runner, kFloatMath, cuda);
  }
}

TEST(CudaOps, RmsNormWithAndWithoutWeight) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (bool weighted : {true, false}) {
    for (int64_t cols : {64, 4096, 1000}) {
      Graph g;
      const TensorId x = strided_input(g, "x", cols, 4, 2);
      const TensorId w = weighted ? g.weight("w", DType::F32, {cols, 1, 1, 1}) : kNoTensor;
      OneNodeRunner runner(g, ops::rms_norm(g, x, w, 1e-5f), 31);
      SCOPED_TRACE(std::to_string(cols) + (weighted ? " weighted" : ""));
      test::expect_matches_reference(runner, kFloatMath, cuda);
    }
  }
}

TEST(CudaOps, SoftmaxScaledRows) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (int64_t cols : {8, 333, 4096}) {
    Graph g;
    const TensorId a = strided_input(g, "a", cols, 3, 2);
    OneNodeRunner runner(g, ops::softmax(g, a, 4.0f), 41);
    SCOPED_TRACE(cols);
    test::expect_matches_reference(runner, kFloatMath, cuda);
  }
}

TEST(CudaOps, RopeBothModesFullAndPartial) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (int mode : {kRopeNormal, kRopeNeox}) {
    for (int dims : {64, 32}) {
      Graph g;
      const TensorId x = strided_input(g, "x", 64, 4, 5);  // [head_dim, heads, tokens]
      const TensorId pos = g.input("pos", DType::I32, {5, 1, 1, 1});
      OneNodeRunner runner(g, ops::rope(g, x, pos, mode, dims, 10000.0f, 0.5f), 51);
      runner.set_ints(pos, {0, 1, 17, 1000, 32000});
      SCOPED_TRACE("mode " + std::to_string(mode) + " dims " + std::to_string(dims));
      // theta is computed in double on both sides; the bound leaves room for a float
      // reference at large positions, and is far below the error of a wrong pairing.
      test::expect_matches_reference(runner, 1e-6, cuda);
    }
  }
}

// Llama 3 rope scaling: pair i's frequency divided by factor i (a weight operand).
std::vector<float> llama3_like_factors(int pairs) {
  std::vector<float> f(static_cast<size_t>(pairs));
  for (int i = 0; i < pairs; ++i) f[static_cast<size_t>(i)] = i < pairs / 3 ? 1.0f : i < pairs / 2 ? 2.5f : 8.0f;
  return f;
}

TEST(CudaOps, RopeWithFrequencyFactorsBothModes) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (int mode : {kRopeNormal, kRopeNeox}) {
    for (int dims : {64, 32}) {
      Graph g;
      const TensorId x = strided_input(g, "x", 64, 4, 5);
      const TensorId pos = g.input("pos", DType::I32, {5, 1, 1, 1});
      const TensorId factors = g.weight("rope_freqs", DType::F32, {dims / 2, 1, 1, 1});
      OneNodeRunner runner(g, ops::rope(g, x, pos, mode, dims, 500000.0f, 1.0f, factors), 52);
      runner.set_ints(pos, {0, 1, 17, 1000, 32000});
      runner.set_floats(factors, llama3_like_factors(dims / 2));
      SCOPED_TRACE("mode " + std::to_string(mode) + " dims " + std::to_string(dims));
      test::expect_matches_reference(runner, 1e-6, cuda);
    }
  }
}

TEST(CudaOps, RopeKvWriteWithFrequencyFactors) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : {DType::F32, DType::F16}) {
    for (int mode : {kRopeNormal, kRopeNeox}) {
      Graph g;
      const TensorId cache = g.state("cache", type, {64, 2, 1024, 1});
      const TensorId x = strided_input(g, "x", 64, 2, 3);
      const TensorId pos = g.input("pos", DType::I32, {3, 1, 1, 1});
      const TensorId factors = g.weight("rope_freqs", DType::F32, {32, 1, 1, 1});
      OneNodeRunner runner(
          g, ops::rope_kv_write(g, cache, x, pos, mode, 64, 500000.0f, 1.0f, factors), 84);
      runner.set_ints(pos, {5, 1000, 31});
      runner.set_floats(factors, llama3_like_factors(32));
      SCOPED_TRACE(std::string(name(type)) + (mode == kRopeNeox ? " neox" : " normal"));
      test::expect_matches_reference(runner, 1e-12, cuda);  // the whole cache is compared
    }
  }
}

TEST(CudaOps, GetRowsEveryTableType) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1}) {
    Graph g;
    const TensorId table = g.weight("table", type, {96, 10, 1, 1});
    const TensorId ids = g.input("ids", DType::I32, {6, 1, 1, 1});
    OneNodeRunner runner(g, ops::get_rows(g, table, ids), 61);
    runner.set_ints(ids, {3, 0, 9, 3, 7, 1});
    SCOPED_TRACE(name(type));
    test::expect_matches_reference(runner, kExact, cuda);
  }
}

TEST(CudaOps, CopyConvertsAndFollowsAnyStrides) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType from : {DType::F32, DType::F16, DType::BF16}) {
    for (DType to : {DType::F32, DType::F16, DType::BF16}) {
      for (bool transposed : {false, true}) {
        Graph g;
        const TensorId a = g.input("a", from, {48, 6, 3, 1});
        const TensorId src = transposed ? ops::transpose(g, a) : a;
        OneNodeRunner runner(g, ops::copy(g, src, to), 71);
        SCOPED_TRACE(std::string(name(from)) + " -> " + std::string(name(to)) + (transposed ? " transposed" : ""));
        test::expect_matches_reference(runner, kExact, cuda);
      }
    }
  }
}

TEST(CudaOps, KvWriteEveryCacheType) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    Graph g;
    const TensorId cache = g.state("cache", type, {64, 2, 32, 1});
    const TensorId x = strided_input(g, "x", 64, 2, 3);
    const TensorId pos = g.input("pos", DType::I32, {3, 1, 1, 1});
    OneNodeRunner runner(g, ops::kv_write(g, cache, x, pos), 81);
    runner.set_ints(pos, {5, 6, 31});
    SCOPED_TRACE(name(type));
    test::expect_matches_reference(runner, kExact, cuda);  // the whole cache is compared
  }
}

TEST(CudaOps, RopeKvWriteEveryCacheTypeAndMode) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    for (int mode : {kRopeNormal, kRopeNeox}) {
      Graph g;
      const TensorId cache = g.state("cache", type, {64, 2, 1024, 1});
      const TensorId x = strided_input(g, "x", 64, 2, 3);
      const TensorId pos = g.input("pos", DType::I32, {3, 1, 1, 1});
      OneNodeRunner runner(g, ops::rope_kv_write(g, cache, x, pos, mode, mode == kRopeNeox ? 48 : 64, 10000.0f), 83);
      runner.set_ints(pos, {5, 1000, 31});
      SCOPED_TRACE(std::string(name(type)) + (mode == kRopeNeox ? " neox" : " normal"));
      test::expect_matches_reference(runner, 1e-12, cuda);  // the whole cache is compared
    }
  }
}

TEST(CudaOps, TopKDescendingTiesToLowerIndex) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (auto [experts, k] : {std::pair{8, 2}, std::pair{64, 6}, std::pair{8, 8}}) {
    Graph g;
    const TensorId logits = g.input("logits", DType::F32, {experts, 5, 1, 1});
    OneNodeRunner runner(g, ops::top_k(g, logits, k), 91);
    auto values = test::random_floats(static_cast<size_t>(experts * 5), 92);
    values[3] = values[1] = 2.0f;  // a tie in row 0: index 1 must come first
    values[static_cast<size_t>(experts) + 4] = values[static_cast<size_t>(experts) + 2] = -0.5f;
    values[static_cast<size_t>(2 * experts)] = std::nanf("");  // ranks below every number
    runner.set_floats(logits, values);
    const std::vector<float> expected = runner.reference();
    EXPECT_EQ(runner.device(cuda), expected);
    EXPECT_EQ(runner.device(cuda, true), expected);
    EXPECT_EQ(expected[0], 1.0f);
    EXPECT_EQ(expected[1], 3.0f);
    if (k == experts) {
      EXPECT_EQ(expected[static_cast<size_t>(3 * k - 1)], 0.0f);  // row 2: NaN at index 0 comes last
    }
    EXPECT_TRUE(runner.guards_intact());
  }
}

// The radix selection's three ways out: a row of at most 1024 columns (gathered at once),
// logits spread over the vocabulary (narrowed in one or two passes), and more ties of the
// k-th logit than shared memory holds (the ties taken in index order). Bit for bit the
// CPU reference (itself checked against a full sort in top_logits_test.cpp).
TEST(CudaOps, TopLogitsEqualTheReference) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  struct Case {
    const char* name;
    int64_t vocab, columns;
    int k;
    float distinct;  // > 0: values rounded to this many levels
  };
  for (const Case& c : {Case{"128k vocabulary", 128256, 128256, 64, 0}, Case{"padded", 32064, 32000, 40, 0},
                        Case{"four levels", 32000, 32000, 64, 4}, Case{"one level", 5000, 5000, 64, 1},
                        Case{"short rows", 1000, 900, 64, 0}, Case{"k = 1", 49152, 49152, 1, 0},
                        Case{"k = 1024", 4096, 4096, 1024, 0}}) {
    SCOPED_TRACE(c.name);
    constexpr int64_t kRows = 5;
    Graph g;
    const TensorId logits = g.input("logits", DType::F32, {c.vocab, kRows, 1, 1});
    OneNodeRunner runner(g, ops::top_logits(g, logits, c.k, c.columns), 93);
    auto values = test::random_floats(static_cast<size_t>(c.vocab * kRows), 94, -20.0f, 20.0f);
    if (c.distinct > 0) {
      for (float& v : values) v = std::floor((v + 20.0f) / 40.0f * c.distinct);
    }
    values[0] = std::nanf("");  // row 0: NaN ranks last; signed zeros tie by index
    values[1] = -0.0f;
    values[2] = 0.0f;
    values[static_cast<size_t>(c.vocab)] = INFINITY;  // row 1
    runner.set_floats(logits, values);
    const std::vector<float> expected = runner.reference();
    for (bool captured : {false, true}) {
      const std::vector<float> got = runner.device(cuda, captured);
      ASSERT_EQ(got.size(), expected.size());
      EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0)
          << (captured ? "captured" : "eager");
    }
    EXPECT_TRUE(runner.guards_intact());
  }
}

TEST(CudaOps, MoeWeightsSoftmaxOverSelected) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  Graph g;
  const TensorId logits = g.input("logits", DType::F32, {8, 4, 1, 1});
  const TensorId ids = g.input("ids", DType::I32, {2, 4, 1, 1});
  OneNodeRunner runner(g, ops::moe_weights(g, logits, ids), 101);
  runner.set_ints(ids, {7, 0, 1, 2, 5, 5, 3, 6});
  test::expect_matches_reference(runner, kFloatMath, cuda);
}

TEST(CudaOps, MoeCombineStridedExpertOutputs) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (int k : {1, 2, 4}) {
    Graph g;
    const TensorId weights = g.input("weights", DType::F32, {k, 3, 1, 1});
    std::vector<TensorId> ys;
    for (int s = 0; s < k; ++s) ys.push_back(strided_input(g, std::string("y").append(std::to_string(s)), 300, 3, 1));
    OneNodeRunner runner(g, ops::moe_combine(g, weights, ys), 111);
    SCOPED_TRACE(k);
    test::expect_matches_reference(runner, kFloatMath, cuda);
  }
}

TEST(CudaOps, SupportsComputeOpsNotLeaves) {
  BRAID_SKIP_WITHOUT_CUDA();
  Graph g;
  const TensorId a = g.input("a", DType::F32, {64, 2, 1, 1});
  const TensorId nodes[] = {ops::silu(g, a), ops::softmax(g, a), ops::rms_norm(g, a, kNoTensor, 1e-6f),
                            ops::copy(g, a, DType::F16), ops::top_k(g, a, 2)};
  for (TensorId node : nodes) EXPECT_TRUE(cuda::supports(g, node)) << op_name(g[node].op);
  EXPECT_FALSE(cuda::supports(g, a));  // a leaf computes nothing
}

}  // namespace
}  // namespace braid

#endif  // BRAID_HAVE_CUDA
