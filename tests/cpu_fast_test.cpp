// The fast CPU kernels against the reference: every op case, every weight type
// of the matrix products at decode and prompt sizes, on the AVX2 and the
// portable versions; the shared dot-product definitions (quant/dot.h) against
// the dequantizer; the thread pool; and whole models (greedy text) on both
// paths.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

#include "backend/cpu/fast_product.h"
#include "backend/cpu/thread_pool.h"
#include "braid/backend.h"
#include "braid/generate.h"
#include "braid/gguf.h"
#include "braid/quant/dot.h"
#include "braid/runner.h"
#include "braid/tokenizer.h"
#include "op_cases.h"
#include "test_support.h"

namespace braid {
namespace {

using test::nmse_below;
using test::OpGraph;

constexpr DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                                  DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                                  DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Activations rounded to int8 with one scale per 32: for x uniform in [-1, 1]
// the output's normalized squared error is about 1.5e-5
// (tests/cuda_matmul_attention_test.cpp derives it); 2e-4 leaves a margin for
// small rows, while a wrong nibble, scale or offset gives 1e-2 and more. Every
// other op computes in f32 what the reference computes in double: errors of a
// few f32 roundings.
constexpr double kInt8Activations = 2e-4;
constexpr double kF32Arithmetic = 1e-10;

double tolerance(const Graph& g, TensorId node, const cpu::FastKernelOptions& options) {
  const Tensor& t = g[node];
  const bool product = t.op == Op::MulMat || t.op == Op::MulMatId;
  return product && options.int8_activations && traits(g[t.src[0]].type).quantized ? kInt8Activations : kF32Arithmetic;
}

// Every variant of the fast kernels: SIMD (with and without AVX-512 where the processor
// has it) and portable, f32 and int8 activations.
constexpr cpu::FastKernelOptions kVariants[] = {
    {true, false, true}, {true, false, false}, {false, false, true}, {true, true, true}, {false, true, true}};
std::string variant_name(const cpu::FastKernelOptions& o) {
  return std::string(o.simd ? (o.avx512 ? " simd" : " avx2-only") : " portable") + (o.int8_activations ? " int8" : " f32");
}

// Builds the graph twice (same seeds, same data), runs one on the reference and
// one on the fast path, and compares the node's output.
template <typename Build>
void expect_fast_matches_reference(Build build, const cpu::FastKernelOptions& options, double limit = -1) {
  OpGraph reference, fast;
  const TensorId node = build(reference);
  ASSERT_EQ(build(fast), node);
  reference.finish({node});
  fast.finish({node});
  reference.run_cpu();
  fast.run_cpu_fast(options);
  EXPECT_TRUE(fast.guards_intact());
  if (limit < 0) limit = tolerance(fast.graph(), node, options);
  if (fast.graph()[node].type == DType::I32) {
    EXPECT_EQ(fast.read_i32(node), reference.read_i32(node));
  } else {
    EXPECT_TRUE(nmse_below(fast.read(node), reference.read(node), limit));
  }
}

TEST(CpuFast, EveryOpCaseMatchesTheReference) {
  for (const auto& variant : kVariants) {
    for (const auto& [op, build] : test::one_node_graphs()) {
      SCOPED_TRACE(std::string(op_name(op)) + variant_name(variant));
      expect_fast_matches_reference(build, variant);
    }
  }
}

TEST(CpuFast, MulMatEveryWeightTypeAtDecodeAndPromptSizes) {
  for (const auto& variant : kVariants) {
    for (DType type : kWeightTypes) {
      for (int64_t n : {1, 3, 5, 64}) {
        SCOPED_TRACE(std::string(name(type)) + " n=" + std::to_string(n) + variant_name(variant));
        expect_fast_matches_reference(
            [&](OpGraph& g) {
              // 136 rows: several chunks of 16 and a partial one.
              return ops::mul_mat(g.graph(), g.random_weight("w", type, {512, 136, 1, 1}, 31),
                                  g.random_input("x", DType::F32, {512, n, 1, 1}, 32));
            },
            variant);
      }
    }
  }
}

// The AVX2 and the portable kernels take the same activations (rounded the same
// way for int8) and differ only in the order of f32 additions: any difference
// in unpacking would show far above this.
TEST(CpuFast, SimdAndPortableKernelsAgree) {
  if (!cpu::simd_supported()) GTEST_SKIP() << "no AVX2 here";
  for (bool int8 : {false, true}) {
    for (DType type : kWeightTypes) {
      SCOPED_TRACE(std::string(name(type)) + (int8 ? " int8" : " f32"));
      std::vector<float> results[2];
      for (bool simd : {true, false}) {
        OpGraph g;
        const TensorId y = ops::mul_mat(g.graph(), g.random_weight("w", type, {768, 40, 1, 1}, 41, -2.0f, 3.0f),
                                        g.random_input("x", DType::F32, {768, 6, 1, 1}, 42));
        g.finish({y});
        g.run_cpu_fast({simd, int8});
        results[simd] = g.read(y);
      }
      EXPECT_TRUE(nmse_below(results[1], results[0], 1e-11));
    }
  }
}

TEST(CpuFast, MulMatAddStridedRowsAndOffsetActivations) {
  for (const auto& variant : kVariants) {
    for (DType type : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_1, DType::Q6_K}) {
      for (int64_t n : {1, 3, 12}) {
        SCOPED_TRACE(std::string(name(type)) + " n=" + std::to_string(n) + variant_name(variant));
        const int64_t k = type == DType::F32 ? 262 : 256;  // f32: a tail after the groups of 16
        expect_fast_matches_reference(
            [&](OpGraph& g) {
              const TensorId w_full = g.random_weight("w", type, {k, 70, 1, 1}, 51);
              const Tensor& wf = g.graph()[w_full];
              const TensorId w = ops::view(g.graph(), w_full, {k, 33, 1, 1},
                                           {wf.nb[0], 2 * wf.nb[1], wf.nb[2], wf.nb[3]}, 2 * wf.nb[1]);
              const TensorId x_full = g.random_input("x", DType::F32, {k + 4, n, 1, 1}, 52);
              const TensorId x = ops::view(g.graph(), x_full, {k, n, 1, 1}, g.graph()[x_full].nb, 4);
              return ops::mul_mat_add(g.graph(), w, x, g.random_input("plus", DType::F32, {33, n, 1, 1}, 53));
            },
            variant);
      }
    }
  }
}

TEST(CpuFast, MulMatIdGroupsTokensByExpert) {
  for (const auto& variant : kVariants) {
    for (DType type : {DType::F16, DType::Q4_0, DType::Q4_K}) {
      SCOPED_TRACE(std::string(name(type)) + variant_name(variant));
      expect_fast_matches_reference(
          [&](OpGraph& g) {
            return ops::mul_mat_id(g.graph(), g.random_weight("w", type, {256, 40, 4, 1}, 61),
                                   g.random_input("x", DType::F32, {256, 5, 1, 1}, 62),
                                   g.ids("ids", {2, 5, 1, 1}, {3, 0, 1, 3, 2, 2, 0, 1, 3, 3}), 1);
          },
          variant);
    }
  }
}

// A token's result does not depend on the batch it is in, nor on the thread split, nor
// on the instruction set its product runs on. 7 tokens take the tiles of quantized rows;
// 11 dequantize the rows once and take tiles of f32 rows (with AVX-512 where there is
// one: tiles of 8 tokens for k = 512, 6 for 1536, 4 for 2048); a token alone takes a
// tile of one.
TEST(CpuFast, ProductsOfABatchEqualProductsOfEachTokenBitForBit) {
  const std::pair<DType, int64_t> cases[] = {
      {DType::F16, 512}, {DType::Q4_1, 512}, {DType::Q5_K, 512}, {DType::Q6_K, 512}, {DType::Q4_1, 1536},
      {DType::Q8_0, 2048}};
  for (const auto& variant : kVariants) {
    for (const auto& [type, k] : cases) {
      OpGraph batch;
      const TensorId y = ops::mul_mat(batch.graph(), batch.random_weight("w", type, {k, 100, 1, 1}, 71),
                                      batch.random_input("x", DType::F32, {k, 11, 1, 1}, 72));
      batch.finish({y});
      batch.run_cpu_fast(variant);
      const std::vector<float> together = batch.read(y);
      const std::vector<float> x = batch.read(batch.graph()[y].src[1]);
      OpGraph seven;  // the first 7 tokens of the batch
      const TensorId y7 = ops::mul_mat(seven.graph(), seven.random_weight("w", type, {k, 100, 1, 1}, 71),
                                       seven.input("x", DType::F32, {k, 7, 1, 1}, std::vector<float>(x.begin(), x.begin() + 7 * k)));
      seven.finish({y7});
      seven.run_cpu_fast(variant);
      const std::vector<float> together7 = seven.read(y7);
      for (int64_t t = 0; t < 11; ++t) {
        OpGraph single;
        const std::vector<float> column(x.begin() + t * k, x.begin() + (t + 1) * k);
        const TensorId w = single.random_weight("w", type, {k, 100, 1, 1}, 71);
        const TensorId y1 = ops::mul_mat(single.graph(), w, single.input("x", DType::F32, {k, 1, 1, 1}, column));
        single.finish({y1});
        single.run_cpu_fast(variant);
        const std::vector<float> alone = single.read(y1);
        EXPECT_EQ(std::memcmp(alone.data(), together.data() + t * 100, 100 * sizeof(float)), 0)
            << name(type) << " k " << k << " token " << t << " of 11" << variant_name(variant);
        if (t < 7) {
          EXPECT_EQ(std::memcmp(alone.data(), together7.data() + t * 100, 100 * sizeof(float)), 0)
              << name(type) << " k " << k << " token " << t << " of 7" << variant_name(variant);
        }
      }
    }
  }
}

TEST(CpuFast, AttentionOverLongCachesInEveryCacheType) {
  for (DType cache_type : {DType::F32, DType::F16}) {
    for (int64_t queries : {1, 20}) {
      SCOPED_TRACE(std::string(name(cache_type)) + " queries=" + std::to_string(queries));
      expect_fast_matches_reference(
          [&](OpGraph& g) {
            const int64_t ctx = 96;
            const std::vector<float> k = test::random_floats(64 * 2 * ctx, 81),
                                     v = test::random_floats(64 * 2 * ctx, 82);
            std::vector<int32_t> positions;
            for (int64_t i = 0; i < queries; ++i) positions.push_back(static_cast<int32_t>(ctx - queries + i));
            return ops::attention(g.graph(), g.random_input("q", DType::F32, {64, 6, queries, 1}, 83),
                                  g.state("k", cache_type, {64, 2, ctx, 1}, k),
                                  g.state("v", cache_type, {64, 2, ctx, 1}, v),
                                  g.ids("pos", {queries, 1, 1, 1}, positions), 0.125f);
          },
          {});
    }
  }
}

// Both modes, with and without Llama 3's frequency factors.
TEST(CpuFast, RopeAndRotatingKvWriteInBothModes) {
  for (int mode : {kRopeNormal, kRopeNeox}) {
    for (bool factors : {false, true}) {
      SCOPED_TRACE(std::to_string(mode) + (factors ? " with factors" : ""));
      expect_fast_matches_reference(
          [&](OpGraph& g) {
            const TensorId f =
                factors ? g.random_weight("factors", DType::F32, {24, 1, 1, 1}, 93, 1.0f, 8.0f) : kNoTensor;
            return ops::rope(g.graph(), g.random_input("x", DType::F32, {64, 3, 4, 1}, 91),
                             g.ids("pos", {4, 1, 1, 1}, {0, 7, 100, 2000}), mode, 48, 10000.0f, 1.0f, f);
          },
          {});
      // The cache is f16: both round the same rotation, to one f16 step at most.
      expect_fast_matches_reference(
          [&](OpGraph& g) {
            const TensorId f =
                factors ? g.random_weight("factors", DType::F32, {32, 1, 1, 1}, 94, 1.0f, 8.0f) : kNoTensor;
            return ops::rope_kv_write(g.graph(), g.state("cache", DType::F16, {64, 3, 8, 1}),
                                      g.random_input("x", DType::F32, {64, 3, 2, 1}, 92),
                                      g.ids("pos", {2, 1, 1, 1}, {5, 1}), mode, 64, 500000.0f, 1.0f, f);
          },
          {}, 1e-6);
    }
  }
}

TEST(CpuFast, QuantDotIntegersAndScalesReproduceTheDequantizer) {
  auto check = [](auto format_tag) {
    constexpr DType T = decltype(format_tag)::value;
    using D = QuantDot<T>;
    const int64_t k = 4 * kSuperBlock;
    std::vector<uint8_t> row(row_bytes(T, k));
    from_f32(T, test::random_floats(static_cast<size_t>(k), 101, -3.0f, 2.0f).data(), row.data(), k);
    const auto* blocks = reinterpret_cast<const typename D::Block*>(row.data());
    for (int64_t part = 0; part < k / kQuantBlock; ++part) {
      const auto& b = blocks[part / D::kParts];
      const int sub = static_cast<int>(part % D::kParts);
      int8_t q[kQuantBlock];
      float scale[2], offset[2];
      D::ints(b, sub, q);
      D::affine(b, sub, scale, offset);
      for (int i = 0; i < kQuantBlock; ++i) {
        const float expected = QuantFormat<T>::element(b, static_cast<int>(sub * kQuantBlock + i));
        ASSERT_EQ(scale[i / 16] * static_cast<float>(q[i]) + offset[i / 16], expected)
            << name(T) << " part " << part << " element " << i;
      }
    }
  };
  check(std::integral_constant<DType, DType::Q8_0>{});
  check(std::integral_constant<DType, DType::Q4_0>{});
  check(std::integral_constant<DType, DType::Q4_1>{});
  check(std::integral_constant<DType, DType::Q5_0>{});
  check(std::integral_constant<DType, DType::Q5_1>{});
  check(std::integral_constant<DType, DType::Q2_K>{});
  check(std::integral_constant<DType, DType::Q3_K>{});
  check(std::integral_constant<DType, DType::Q4_K>{});
  check(std::integral_constant<DType, DType::Q5_K>{});
  check(std::integral_constant<DType, DType::Q6_K>{});
}

TEST(CpuFast, ActivationBlocksRoundWithinHalfAStep) {
  const std::vector<float> x = test::random_floats(96, 111, -5.0f, 5.0f);
  BlockQ8Act blocks[3];
  quantize_activations(x.data(), blocks, 96);
  for (int b = 0; b < 3; ++b) {
    int sums[2] = {0, 0};
    for (int i = 0; i < kQuantBlock; ++i) {
      // half a step, and the scale's f16 rounding (relative 2^-11) over up to
      // 127 steps
      EXPECT_LE(std::fabs(blocks[b].d * blocks[b].qs[i] - x[static_cast<size_t>(b * 32 + i)]), blocks[b].d * 0.57f);
      sums[i / 16] += blocks[b].qs[i];
    }
    EXPECT_FLOAT_EQ(blocks[b].half_sum[0], blocks[b].d * static_cast<float>(sums[0]));
    EXPECT_FLOAT_EQ(blocks[b].half_sum[1], blocks[b].d * static_cast<float>(sums[1]));
    EXPECT_NEAR(blocks[b].sum, blocks[b].d * static_cast<float>(sums[0] + sums[1]),
                1e-3 * std::fabs(blocks[b].sum) + 1e-6);
    EXPECT_EQ(blocks[b].d, f16_to_f32(f32_to_f16(blocks[b].d)));
  }
  // The vectorized rounding gives the same bytes (a zero block included).
  std::vector<float> y = test::random_floats(256, 112, -40.0f, 40.0f);
  std::fill(y.begin() + 64, y.begin() + 96, 0.0f);
  BlockQ8Act portable[8], vectorized[8];
  quantize_activations(y.data(), portable, 256);
  cpu::quantize_activations(y.data(), vectorized, 256, true);
  EXPECT_EQ(std::memcmp(portable, vectorized, sizeof portable), 0);
}

TEST(CpuThreadPool, EveryTaskRunsOnceFromConcurrentCallers) {
  cpu::ThreadPool pool(3);
  std::vector<std::thread> callers;
  std::vector<std::vector<std::atomic<int>>> counts(4);
  for (auto& c : counts) c = std::vector<std::atomic<int>>(1000);
  for (int caller = 0; caller < 4; ++caller) {
    callers.emplace_back([&, caller] {
      for (int round = 0; round < 20; ++round) {
        pool.parallel_for(50, [&](int64_t i) { counts[caller][static_cast<size_t>(round * 50 + i)]++; });
      }
    });
  }
  for (auto& c : callers) c.join();
  for (auto& c : counts) {
    for (auto& v : c) EXPECT_EQ(v.load(), 1);
  }
}

TEST(CpuThreadPool, ATaskExceptionReachesTheCaller) {
  cpu::ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(100,
                                 [](int64_t i) {
                                   if (i == 37) throw std::runtime_error("task 37");
                                 }),
               std::runtime_error);
  std::atomic<int> ran{0};
  pool.parallel_for(10, [&](int64_t) { ran++; });  // still usable
  EXPECT_EQ(ran.load(), 10);
}

// Greedy stories from the trained fixture: the same tokens on the fast (f32 and
// int8 activations) and the reference kernels, on one stream and on several.
TEST(CpuFast, GreedyStoriesAreTheSameOnBothPaths) {
  if (!test::have_fixture("stories260K.gguf")) return;
  const GgufFile file = GgufFile::open(test::fixture("stories260K.gguf"));
  const auto tokenizer = load_tokenizer(file);
  const Model model = load_gguf_model(file);
  auto greedy = [&](bool reference, Policy policy, bool int8 = false) {
    auto backend = make_cpu_backend();
    RunnerOptions ro;
    ro.policy = policy;
    ro.plan.max_streams = 4;
    ro.exec.cpu_reference = reference;
    ro.exec.cpu_int8_activations = int8;
    ModelRunner runner(model, *backend, ro);
    GenerateOptions options;
    options.max_tokens = 48;
    options.sampling.temperature = 0;
    return generate(runner, *tokenizer, "Once upon a time, there was a little girl", options).tokens;
  };
  const auto expected = greedy(true, Policy::Serial);
  EXPECT_EQ(greedy(false, Policy::Serial), expected);
  EXPECT_EQ(greedy(false, Policy::Branch), expected);
  EXPECT_EQ(greedy(false, Policy::Serial, true), expected);
}

}  // namespace
}  // namespace braid
