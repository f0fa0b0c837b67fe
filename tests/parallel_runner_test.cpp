// Tensor parallelism on simulated ranks (ParallelRunner): every preset's shape, shrunk,
// split over 2 and 4 ranks, against the unsplit model on one ModelRunner.
//
// What must hold, and why only within a tolerance against one rank: the heads and the
// ff columns of a rank are computed exactly as the unsplit model computes them (the
// same rows of the same weights against the same input), but attn_output and ffn_down
// sum over their input dimension in N pieces, each rounded to f32, and the pieces are
// added in f32 in rank order. That reorders a sum of k products: a relative error of a
// few f32 ulps (~1e-7) per product, grown by the layers. The shapes here show 1.4e-7 to
// 4e-7 of the largest logit; the bound below (1e-5) leaves 25x of room for other seeds
// and machines, while a wrong partition (a head or a column lost or counted twice) moves
// logits by a sizeable fraction of their scale. Among N ranks everything is exact: the communicator
// adds in a fixed order, so runs, ranks and plans agree bit for bit.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "braid/host_communicator.h"
#include "braid/parallel_runner.h"
#include "model_test_util.h"

namespace braid {
namespace {

constexpr float kRelativeTolerance = 1e-5f;

// A preset's shape, small: its heads, kv heads, experts and options. ff splits over 2, 3
// and 4 ranks, into whole 32-element blocks.
ModelConfig shrunk(const std::string& preset, DType type = DType::F16, int head_size = 8) {
  ModelConfig c = preset_config(preset);
  c.n_embd = c.n_head * head_size;
  c.n_ff = c.n_expert > 0 ? 64 : 384;
  c.n_layer = 2;
  c.n_vocab = 512;
  c.n_ctx = 32;
  c.weight_type = type;
  return c;
}

// An architecture's options on tiny-256's heads (qkv biases, q/k norms and a head size of
// its own), which the presets do not cover.
ModelConfig shrunk_architecture(const char* architecture) {
  ModelConfig c = shrunk("tiny-256");
  c.architecture = architecture;
  apply_architecture(c);
  if (c.qk_norm) c.n_head_dim = 16;
  return c;
}

int argmax(const std::vector<float>& v) { return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin()); }

// The prompt's logits, then greedy steps, as model_test_util's prompt_then_decode does.
std::vector<std::vector<float>> parallel_prompt_then_decode(const Model& model, int ranks, RunnerOptions options = {},
                                                            const std::string& backend = "cpu") {
  ParallelRunner runner(model, ranks, options, backend);
  std::vector<std::vector<float>> all;
  all.push_back(runner.eval(test::kPrompt));
  for (int step = 0; step < 3; ++step) all.push_back(runner.eval({argmax(all.back())}));
  return all;
}

// Largest |a - b| over the largest |b|, over every step.
float relative_difference(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  float diff = 0, scale = 0;
  for (size_t s = 0; s < b.size(); ++s) {
    for (size_t i = 0; i < b[s].size(); ++i) {
      diff = std::max(diff, std::fabs(a[s][i] - b[s][i]));
      scale = std::max(scale, std::fabs(b[s][i]));
    }
  }
  return diff / scale;
}

struct Shape {
  std::string name;
  ModelConfig config;
};

std::vector<Shape> every_shape() {
  std::vector<Shape> shapes;
  for (const std::string& preset : preset_names()) {
    if (preset == "smollm2-135m") continue;  // 9 heads: 3 ranks, below
    shapes.push_back({preset, shrunk(preset)});
  }
  shapes.push_back({"tiny-256 q8_0", shrunk("tiny-256", DType::Q8_0, 16)});
  shapes.push_back({"qwen2", shrunk_architecture("qwen2")});
  shapes.push_back({"qwen3", shrunk_architecture("qwen3")});
  return shapes;
}

TEST(ParallelRunner, OneRankIsModelRunnerBitForBit) {
  Model model = make_random_model(shrunk("moe-8x1b"), 3);
  EXPECT_EQ(parallel_prompt_then_decode(model, 1), test::prompt_then_decode(model, {}));
}

TEST(ParallelRunner, EveryPresetOnTwoAndFourRanksEqualsOneRank) {
  for (const Shape& shape : every_shape()) {
    Model model = make_random_model(shape.config, 11);
    const auto one = test::prompt_then_decode(model, {});
    for (int ranks : {2, 4}) {
      SCOPED_TRACE(fmt::format("{} on {} ranks", shape.name, ranks));
      const auto split = parallel_prompt_then_decode(model, ranks);
      ASSERT_EQ(split.size(), one.size());
      const float difference = relative_difference(split, one);
      RecordProperty(fmt::format("{} x{}", shape.name, ranks), fmt::format("{:.3g}", difference));
      EXPECT_LT(difference, kRelativeTolerance);
      EXPECT_GT(difference, 0.0f) << "no sum was split (are there all_reduce nodes?)";
      for (size_t s = 0; s < one.size(); ++s) EXPECT_EQ(argmax(split[s]), argmax(one[s])) << "step " << s;
    }
  }
}

// The reference kernels (double accumulation) route all_reduce through the same
// communicator; their ranks agree with their one rank likewise.
TEST(ParallelRunner, ReferenceKernelsOnRanksEqualOneRank) {
  Model model = make_random_model(shrunk("moe-8x1b"), 24);
  RunnerOptions reference;
  reference.exec.cpu_reference = true;
  const auto one = test::prompt_then_decode(model, reference);
  const auto split = parallel_prompt_then_decode(model, 2, reference);
  EXPECT_LT(relative_difference(split, one), kRelativeTolerance);
  for (size_t s = 0; s < one.size(); ++s) EXPECT_EQ(argmax(split[s]), argmax(one[s]));
}

TEST(ParallelRunner, NineHeadsSplitOverThreeRanks) {
  Model model = make_random_model(shrunk("smollm2-135m"), 12);
  const auto one = test::prompt_then_decode(model, {});
  const auto split = parallel_prompt_then_decode(model, 3);
  EXPECT_LT(relative_difference(split, one), kRelativeTolerance);
  for (size_t s = 0; s < one.size(); ++s) EXPECT_EQ(argmax(split[s]), argmax(one[s]));
}

TEST(ParallelRunner, RunsAndRanksAgreeBitForBit) {
  Model model = make_random_model(shrunk("llama-1b"), 13);
  const auto first = parallel_prompt_then_decode(model, 4);
  EXPECT_EQ(parallel_prompt_then_decode(model, 4), first);
  ParallelRunner runner(model, 4);
  for (const auto& logits : runner.eval_all_ranks(test::kPrompt)) EXPECT_EQ(logits, first.front());
  // reset() starts the sequence again: the same bits.
  runner.reset();
  EXPECT_EQ(runner.position(), 0);
  EXPECT_EQ(runner.eval(test::kPrompt), first.front());
}

TEST(ParallelRunner, EveryPolicyOnEveryRankGivesSerialBits) {
  for (const char* preset : {"llama-1b", "moe-8x1b"}) {
    Model model = make_random_model(shrunk(preset), 14);
    const auto serial = parallel_prompt_then_decode(model, 2);
    for (Policy policy : all_policies()) {
      RunnerOptions options;
      options.policy = policy;
      options.plan.max_streams = 4;
      EXPECT_EQ(parallel_prompt_then_decode(model, 2, options), serial) << preset << " " << policy_name(policy);
    }
  }
}

TEST(ParallelRunner, FusedProjectionsOnRanksEqualOneRank) {
  Model model = make_random_model(shrunk("llama-1b"), 15);
  RunnerOptions fused;
  fused.fuse = true;
  const auto one = test::prompt_then_decode(model, {});
  EXPECT_LT(relative_difference(parallel_prompt_then_decode(model, 2, fused), one), kRelativeTolerance);
}

TEST(ParallelRunner, ShardGraphSumsTwiceALayer) {
  Model model = make_random_model(shrunk("moe-8x1b"), 16);
  ParallelRunner runner(model, 2);
  const Graph& graph = runner.rank_runner(1).graph(1);
  int sums = 0;
  for (TensorId id : graph.compute_nodes()) {
    if (graph[id].op != Op::AllReduce) continue;
    ++sums;
    EXPECT_EQ(graph[id].params.i[0], 2);
  }
  EXPECT_EQ(sums, 2 * model.config.n_layer);
  // The rank's cache holds its kv heads only.
  EXPECT_EQ(graph[graph.find("cache_k.0")].ne[1], model.config.n_head_kv / 2);
  const Plan& plan = runner.rank_runner(1).plan(1);
  const ValidationReport report = validate(graph, plan);
  EXPECT_TRUE(report.ok) << (report.problems.empty() ? "" : report.problems.front());
}

void expect_error_containing(const std::function<void()>& fn, const std::string& text) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing: " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(ParallelRunner, PartitionsThatDoNotSplitAreErrors) {
  Model nine_heads = make_random_model(shrunk("smollm2-135m"), 17);
  expect_error_containing([&] { ParallelRunner(nine_heads, 2); }, "9 attention heads do not split over 2 ranks");
  Model two_kv = make_random_model(shrunk("llama-1b"), 18);  // 32 heads, 8 kv heads
  expect_error_containing([&] { ParallelRunner(two_kv, 16); }, "8 kv heads do not split over 16 ranks");
  ModelConfig odd_ff = shrunk("tiny-256");
  odd_ff.n_ff = 129;
  Model odd = make_random_model(odd_ff, 19);
  expect_error_containing([&] { ParallelRunner(odd, 2); }, "129 feed-forward columns do not split over 2 ranks");
  // Q8_0: attn_output's 64 columns (8 heads of 8) cut into 16 per rank, half a block.
  Model q8 = make_random_model(shrunk("tiny-256", DType::Q8_0), 20);
  expect_error_containing([&] { ParallelRunner(q8, 4); }, "is not a multiple of its 32-element blocks");
  // Q4_K: 256 columns split in 2 leave 128 per rank, half a 256-element block.
  ModelConfig k_quant = shrunk("llama-1b", DType::Q4_K);
  k_quant.n_ff = 512;
  Model q4k = make_random_model(k_quant, 21);
  expect_error_containing([&] { ParallelRunner(q4k, 2); }, "is not a multiple of its 256-element blocks");
  expect_error_containing([&] { ParallelRunner(two_kv, 0); }, "0 ranks");
  RunnerOptions automatic;
  automatic.policy = Policy::Auto;
  expect_error_containing([&] { ParallelRunner(two_kv, 2, automatic); }, "auto policy");
}

TEST(ParallelRunner, BadTokensAreErrorsAndLeaveTheRanksUsable) {
  Model model = make_random_model(shrunk("tiny-256"), 22);
  ParallelRunner runner(model, 2);
  EXPECT_THROW(runner.eval({9999}), Error);
  EXPECT_THROW(runner.eval(std::vector<int32_t>(33, 1)), Error);
  EXPECT_EQ(runner.eval(test::kPrompt).size(), 512u);
}

TEST(ParallelRunner, AllReduceOfSeveralRanksNeedsACommunicator) {
  Model shard = shard_model(make_random_model(shrunk("tiny-256"), 23), 2, 0);
  auto backend = make_cpu_backend();
  ModelRunner runner(shard, *backend);
  expect_error_containing([&] { runner.eval({1}); }, "needs a CPU backend of a communicator's group");
}

TEST(HostCommunicator, SumsInRankOrderOnEveryRank) {
  HostCommunicator communicator(3);
  // 1e8 + 1 - 1e8 is 0 in f32 added left to right, 1 in another order: rank order wins.
  std::vector<std::vector<float>> data = {{1e8f, 1, 2}, {1, 2, 3}, {-1e8f, 3, 4}};
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      for (int round = 0; round < 50; ++round) {
        std::vector<float> mine = data[static_cast<size_t>(r)];
        communicator.all_reduce(r, mine.data(), mine.size());
        if (round == 49) data[static_cast<size_t>(r)] = mine;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& d : data) EXPECT_EQ(d, (std::vector<float>{0, 6, 9}));
}

// On CUDA (one GPU per rank over NCCL; skipped without a GPU). One rank is the GPU's own
// ModelRunner, bit for bit: the group, its thread per rank and its backend change nothing.
TEST(ParallelRunner, OneGpuRankIsModelRunnerBitForBit) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  Model model = make_random_model(shrunk("llama-1b"), 31);
  auto backend = make_backend("cuda");
  ModelRunner runner(model, *backend, {});
  std::vector<std::vector<float>> one;
  one.push_back(runner.eval(test::kPrompt));
  for (int step = 0; step < 3; ++step) one.push_back(runner.eval({argmax(one.back())}));
  EXPECT_EQ(parallel_prompt_then_decode(model, 1, {}, "cuda"), one);
}

// Two and four GPUs against one (skipped where the machine has fewer): within the reordered
// sums' tolerance, ten times the CPU's (a GPU row's partial sums are cut differently when
// its input dimension is split), and every rank's logits the same bits (NCCL gives every
// rank the same sum).
TEST(ParallelRunner, GpuRanksOverNcclEqualOneGpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  Model model = make_random_model(shrunk("llama-1b"), 32);
  const auto one = parallel_prompt_then_decode(model, 1, {}, "cuda");
  int tested = 0;
  for (int ranks : {2, 4}) {
    std::unique_ptr<ParallelRunner> runner;
    try {
      runner = std::make_unique<ParallelRunner>(model, ranks, RunnerOptions{}, "cuda");
    } catch (const Error& e) {
      RecordProperty(fmt::format("x{}", ranks), e.what());  // fewer GPUs (or no NCCL)
      continue;
    }
    SCOPED_TRACE(fmt::format("{} GPUs", ranks));
    const auto all = runner->eval_all_ranks(test::kPrompt);
    for (const auto& logits : all) EXPECT_EQ(logits, all.front());
    const auto split = parallel_prompt_then_decode(model, ranks, {}, "cuda");
    EXPECT_LT(relative_difference(split, one), 10 * kRelativeTolerance);
    for (size_t s = 0; s < one.size(); ++s) EXPECT_EQ(argmax(split[s]), argmax(one[s])) << "step " << s;
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << "fewer than 2 GPUs (or no NCCL)";
}

// More ranks than GPUs: a clear error naming both, before anything runs.
TEST(ParallelRunner, MoreRanksThanGpusIsAClearError) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  Model model = make_random_model(shrunk("llama-1b"), 33);
  try {
    ParallelRunner runner(model, 64, {}, "cuda");
    ADD_FAILURE() << "64 ranks accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(what.find("CUDA devices present") != std::string::npos || what.find("needs NCCL") != std::string::npos)
        << what;
  }
}

TEST(HostCommunicator, AbortReleasesWaitingRanks) {
  HostCommunicator communicator(2);
  std::thread waiting([&] {
    float x = 1;
    EXPECT_THROW(communicator.all_reduce(0, &x, 1), Error);
  });
  communicator.abort();
  waiting.join();
  float y = 1;
  EXPECT_THROW(communicator.all_reduce(1, &y, 1), Error);
}

}  // namespace
}  // namespace braid
