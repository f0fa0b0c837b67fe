// Whole models on the CPU backend: prompt then decode, every plan policy.
#include <gtest/gtest.h>

#include <cmath>

#include "braid/backend.h"
#include "braid/gguf.h"
#include "braid/runner.h"
#include "model_test_util.h"
#include "test_support.h"

namespace braid {
namespace {

ModelConfig small_tiny() {
  ModelConfig c = preset_config("tiny-256");
  c.n_layer = 2;
  c.n_vocab = 512;
  c.n_ctx = 64;
  return c;
}

using test::kPrompt;
using test::prompt_then_decode;

TEST(ModelCpu, Tiny256PromptAndDecodeGiveFiniteLogits) {
  Model model = make_random_model(small_tiny(), 5);
  const auto logits = prompt_then_decode(model, {});
  for (const auto& step : logits) {
    ASSERT_EQ(step.size(), 512u);
    for (float v : step) ASSERT_TRUE(std::isfinite(v));
    float lo = *std::min_element(step.begin(), step.end());
    float hi = *std::max_element(step.begin(), step.end());
    EXPECT_GT(hi - lo, 1e-3f) << "logits should not be flat";
  }
}

TEST(ModelCpu, PromptInOneBatchEqualsTokenByToken) {
  Model model = make_random_model(small_tiny(), 6);
  auto backend = make_cpu_backend();
  ModelRunner batch(model, *backend);
  const auto batched = batch.eval(kPrompt);
  auto backend2 = make_cpu_backend();
  ModelRunner single(model, *backend2);
  std::vector<float> stepped;
  for (int32_t t : kPrompt) stepped = single.eval({t});
  ASSERT_EQ(batched.size(), stepped.size());
  for (size_t i = 0; i < batched.size(); ++i) EXPECT_NEAR(batched[i], stepped[i], 1e-4f) << i;
}

TEST(ModelCpu, EveryPolicyOnThreadsEqualsSerialBitForBit) {
  ModelConfig c = small_tiny();
  Model model = make_random_model(c, 7);
  const auto serial = prompt_then_decode(model, {});
  for (Policy policy : all_policies()) {
    RunnerOptions options;
    options.policy = policy;
    options.plan.max_streams = 4;
    EXPECT_EQ(prompt_then_decode(model, options), serial) << policy_name(policy);
  }
}

TEST(ModelCpu, MixtureOfExpertsRunsInEveryPolicy) {
  Model model = make_random_model(test::small_moe(), 8);
  const auto serial = prompt_then_decode(model, {});
  for (float v : serial.back()) ASSERT_TRUE(std::isfinite(v));
  for (Policy policy : all_policies()) {
    RunnerOptions options;
    options.policy = policy;
    EXPECT_EQ(prompt_then_decode(model, options), serial) << policy_name(policy);
  }
}

// The GGUF fixtures' logits (generate_test checks stories260K's greedy tokens only).
TEST(ModelCpu, FixtureModelsGiveSerialBitsInEveryPolicy) {
  for (const char* name : {"stories260K.gguf", "llama-2-tiny-random.gguf"}) {
    if (!test::have_fixture(name)) continue;
    Model model = load_gguf_model(test::fixture(name));
    model.config.n_ctx = 64;
    const auto serial = prompt_then_decode(model, {});
    for (Policy policy : all_policies()) {
      for (bool threads : {false, true}) {
        RunnerOptions options;
        options.policy = policy;
        options.exec.threads = threads;
        EXPECT_EQ(prompt_then_decode(model, options), serial) << name << ": " << policy_name(policy);
      }
    }
  }
}

TEST(ModelCpu, DecodeStepsReuseOneExecutablePerBatchSize) {
  Model model = make_random_model(small_tiny(), 10);
  auto backend = make_cpu_backend();
  ModelRunner runner(model, *backend);
  EXPECT_EQ(runner.compiled_count(), 0);
  runner.eval(kPrompt);
  EXPECT_EQ(runner.compiled_count(), 1);
  for (int32_t t = 2; t < 12; ++t) {
    runner.eval({t});
    EXPECT_EQ(runner.compiled_count(), 2);
  }
  runner.reset();
  runner.eval(kPrompt);
  EXPECT_EQ(runner.compiled_count(), 2) << "reset keeps the executables";
}

TEST(ModelCpu, ContextOverflowAndBadTokensAreErrors) {
  ModelConfig c = small_tiny();
  c.n_ctx = 8;
  Model model = make_random_model(c, 9);
  auto backend = make_cpu_backend();
  ModelRunner runner(model, *backend);
  EXPECT_THROW(runner.eval({600}), Error);
  runner.eval(kPrompt);
  EXPECT_THROW(runner.eval({1}), Error);
  runner.reset();
  EXPECT_NO_THROW(runner.eval({1}));
}

}  // namespace
}  // namespace braid
