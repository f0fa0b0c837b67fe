// The prompt path of CUDA mul_mat_id (gemm_experts.cu: every expert times every token by
// batched cuBLAS GEMM, then a gather of each token's expert) against the CPU reference:
// every weight type, both slots, 9 / 64 / 300 tokens, ragged shapes, quantized weights
// spanning several dequantization tiles, tokens spanning several column tiles, a captured
// graph replayed with new ids, and bad ids that must give NaN without reading out of
// bounds. Which nodes take the path (and report scratch and cuBLAS) is checked without
// a device.
#ifdef BRAID_HAVE_CUDA

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>

#include "cuda_op_runner.h"

namespace braid {
namespace {

using test::CudaContext;
using test::OneNodeRunner;

using test::kWeightTypes;

// ids [used, n]: for each token `used` distinct experts, spread over all of them.
std::vector<int32_t> random_ids(int64_t used, int64_t n, int experts, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids;
  for (int64_t t = 0; t < n; ++t) {
    const auto first = static_cast<int32_t>(rng() % static_cast<uint32_t>(experts));
    for (int64_t s = 0; s < used; ++s) ids.push_back(static_cast<int32_t>((first + s) % experts));
  }
  return ids;
}

struct MoeNode {
  Graph g;
  TensorId w, x, ids, node;
};

// w [k, m, experts], x [k, n], ids [2, n].
std::unique_ptr<MoeNode> moe_node(DType type, int64_t k, int64_t m, int64_t experts, int64_t n, int slot) {
  auto s = std::make_unique<MoeNode>();
  s->w = s->g.weight("w", type, {k, m, experts, 1});
  s->x = s->g.input("x", DType::F32, {k, n, 1, 1});
  s->ids = s->g.input("ids", DType::I32, {2, n, 1, 1});
  s->node = ops::mul_mat_id(s->g, s->w, s->x, s->ids, slot);
  return s;
}

TEST(CudaMulMatIdGemm, PromptSizesTakeTheGemmPathOthersTheMatvec) {
  // Host-only: no device needed to ask which path a node takes.
  auto prompt = moe_node(DType::F16, 256, 48, 8, 9, 0);
  EXPECT_TRUE(cuda::uses_cublas(prompt->g, prompt->node));
  EXPECT_GT(cuda::scratch_bytes(prompt->g, prompt->node), size_t(8 * 48 * 9 * 4));
  auto decode = moe_node(DType::F16, 256, 48, 8, 8, 1);  // kMatvecMaxColumns tokens
  EXPECT_FALSE(cuda::uses_cublas(decode->g, decode->node));
  EXPECT_EQ(cuda::scratch_bytes(decode->g, decode->node), 0u);
  auto few = moe_node(DType::F16, 256, 48, 16, 12, 0);  // fewer tokens than experts
  EXPECT_FALSE(cuda::uses_cublas(few->g, few->node));
  EXPECT_EQ(cuda::scratch_bytes(few->g, few->node), 0u);
  // Per-expert outputs past the scratch cap (8 x 4096 rows x 5000 tokens f32 = 655 MB)
  // take the matrix-vector path (see mul_mat_id_uses_gemm).
  auto wide = moe_node(DType::F16, 64, 4096, 8, 5000, 0);
  EXPECT_FALSE(cuda::uses_cublas(wide->g, wide->node));
}

TEST(CudaMulMatIdGemm, EveryWeightTypeBothSlotsAtPromptSizes) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : kWeightTypes) {
    for (int64_t n : {9, 64, 300}) {
      for (int slot : {0, 1}) {
        auto s = moe_node(type, 256, 48, 4, n, slot);
        ASSERT_TRUE(cuda::uses_cublas(s->g, s->node));
        OneNodeRunner runner(s->g, s->node, 401);
        runner.set_ints(s->ids, random_ids(2, n, 4, 402 + static_cast<uint32_t>(n)));
        SCOPED_TRACE(std::string(name(type)) + " n=" + std::to_string(n) + " slot=" + std::to_string(slot));
        test::expect_matches_reference(runner, test::cublas_threshold(type), cuda);
      }
    }
  }
}

// Row counts that fill no GEMM tile evenly, eight experts, k not a multiple of 64.
TEST(CudaMulMatIdGemm, RaggedShapesEightExperts) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  for (DType type : {DType::F16, DType::Q8_0, DType::F32}) {
    auto s = moe_node(type, 160, 37, 8, 75, 1);
    OneNodeRunner runner(s->g, s->node, 411);
    runner.set_ints(s->ids, random_ids(2, 75, 8, 412));
    SCOPED_TRACE(name(type));
    test::expect_matches_reference(runner, test::cublas_threshold(type), cuda);
  }
}

// 8 experts x 1100 rows x 4096 of f16 is more than one 64 MiB dequantization tile.
TEST(CudaMulMatIdGemm, QuantizedExpertsSpanSeveralDequantTiles) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  auto s = moe_node(DType::Q4_1, 4096, 1100, 8, 9, 0);
  OneNodeRunner runner(s->g, s->node, 421);
  runner.set_ints(s->ids, random_ids(2, 9, 8, 422));
  test::expect_matches_reference(runner, test::cublas_threshold(DType::Q4_1), cuda);
}

// 5000 tokens of 8 experts x 4096 rows need two column tiles of per-expert outputs.
TEST(CudaMulMatIdGemm, OutputsPastTheScratchCapTakeTheMatvecPath) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  auto s = moe_node(DType::F16, 32, 4096, 8, 5000, 1);
  OneNodeRunner runner(s->g, s->node, 431);
  runner.set_ints(s->ids, random_ids(2, 5000, 8, 432));
  test::expect_matches_reference(runner, test::cublas_threshold(DType::F16), cuda);
}

// One captured graph serves new ids: they are read on the device, never baked in.
TEST(CudaMulMatIdGemm, CapturedGraphFollowsIdsInDeviceMemory) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  auto s = moe_node(DType::Q4_0, 256, 64, 8, 40, 0);
  OneNodeRunner runner(s->g, s->node, 441);
  runner.set_ints(s->ids, random_ids(2, 40, 8, 442));
  const std::vector<float> eager = runner.device(cuda);
  const std::vector<float> first = runner.device(cuda, true);
  EXPECT_EQ(std::memcmp(eager.data(), first.data(), first.size() * 4), 0);
  EXPECT_LT(test::nmse(first, runner.reference()), test::cublas_threshold(DType::Q4_0));
  for (uint32_t seed : {443u, 444u, 445u}) {
    runner.set_ints(s->ids, random_ids(2, 40, 8, seed));
    const std::vector<float> replayed = runner.replay(cuda);
    EXPECT_LT(test::nmse(replayed, runner.reference()), test::cublas_threshold(DType::Q4_0)) << "ids seed " << seed;
    EXPECT_NE(std::memcmp(first.data(), replayed.data(), first.size() * 4), 0) << "ids seed " << seed;
  }
  EXPECT_TRUE(runner.guards_intact());
}

// A token whose id names no expert gets NaN in its column; every other token is right
// and nothing outside the buffers is touched.
TEST(CudaMulMatIdGemm, BadExpertIdsGiveNanColumns) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  constexpr int64_t kTokens = 20;
  constexpr int64_t kRows = 48;
  constexpr int kSlot = 1;
  auto s = moe_node(DType::F16, 256, kRows, 4, kTokens, kSlot);
  OneNodeRunner runner(s->g, s->node, 451);
  std::vector<int32_t> ids = random_ids(2, kTokens, 4, 452);
  runner.set_ints(s->ids, ids);
  const std::vector<float> expected = runner.reference();  // the CPU refuses bad ids
  const std::map<int64_t, int32_t> bad = {{0, -1}, {7, 4}, {13, INT32_MAX}, {19, INT32_MIN}};
  for (const auto& [token, id] : bad) ids[static_cast<size_t>(token * 2 + kSlot)] = id;
  ids[3 * 2 + (1 - kSlot)] = -5;  // a bad id in the other slot is not this node's business
  runner.set_ints(s->ids, ids);
  const std::vector<float> got = runner.device(cuda);
  std::vector<float> got_good;
  std::vector<float> expected_good;
  for (int64_t t = 0; t < kTokens; ++t) {
    for (int64_t r = 0; r < kRows; ++r) {
      const auto i = static_cast<size_t>(t * kRows + r);
      if (bad.count(t) != 0) {
        EXPECT_TRUE(std::isnan(got[i])) << "token " << t << " row " << r;
      } else {
        got_good.push_back(got[i]);
        expected_good.push_back(expected[i]);
      }
    }
  }
  EXPECT_LT(test::nmse(got_good, expected_good), test::cublas_threshold(DType::F16));
  EXPECT_TRUE(runner.guards_intact());
}

TEST(CudaMulMatIdGemm, RefusesToRunWithoutItsScratch) {
  BRAID_SKIP_WITHOUT_CUDA();
  CudaContext cuda;
  auto s = moe_node(DType::F16, 256, 48, 4, 16, 0);
  s->g.mark_output(s->node);
  s->g.finalize();
  cuda::DeviceAddresses memory(static_cast<size_t>(s->g.tensor_count()), nullptr);
  cuda::StreamContext ctx{cuda.stream(), cuda.cublas(), nullptr, 0};
  EXPECT_THROW(cuda::launch(s->g, s->node, memory, ctx), Error);
}

}  // namespace
}  // namespace braid

#endif  // BRAID_HAVE_CUDA
