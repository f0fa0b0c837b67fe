// Whole models on the CUDA backend against the CPU reference: a prompt, then greedy
// decode steps. CUDA logits must match the CPU's closely (normalized MSE below
// kLogitsNmse: f16 weights, f32 accumulation; the prompt GEMMs round activations to f16
// for tensor cores, the CPU does not) and give the same greedy tokens; on CUDA, every
// plan policy, with and without a captured CUDA graph, must give serial's bits. A
// decode step's captured graph is built once and replayed. Skips itself without a device.
#ifdef BRAID_HAVE_CUDA

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "braid/backend.h"
#include "braid/batched_runner.h"
#include "braid/generate.h"
#include "braid/gguf.h"
#include "braid/runner.h"
#include "braid/tokenizer.h"
#include "test_support.h"

namespace braid {
namespace {

#define REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

// Error budget of CUDA against the CPU, per step's logits. Rounding activations to f16
// before each prompt GEMM, emulated on the CPU, gives at most 4.3e-7 on these models
// (tiny-256, llama-1b, mixtral-small); a wrong kernel gives errors of order 1.
constexpr double kLogitsNmse = 1e-5;
constexpr int kPromptTokens = 40;
constexpr int kDecodeSteps = 16;

ModelConfig with_context(ModelConfig c, int n_ctx) {
  c.n_ctx = n_ctx;
  return c;
}

// The models under test, built once per process (llama-1b's weights take a moment).
const Model& test_model(const std::string& name) {
  static std::map<std::string, Model> models;
  auto it = models.find(name);
  if (it != models.end()) return it->second;
  ModelConfig c;
  if (name == "tiny-256") {
    c = with_context(preset_config("tiny-256"), 128);  // all 8 layers, vocabulary 32000
  } else if (name == "llama-1b") {
    c = with_context(preset_config("llama-1b"), 128);
    c.n_layer = 3;  // full width, grouped-query attention; fewer layers keep the CPU reference quick
  } else if (name == "mixtral-small") {
    c = with_context(preset_config("moe-8x1b"), 128);  // 8 experts, 2 used per token
    c.n_embd = 256;
    c.n_ff = 512;
    c.n_head = 8;
    c.n_head_kv = 2;
    c.n_layer = 3;
    c.n_vocab = 4096;
    c.name = "mixtral-small";
  } else {
    ADD_FAILURE() << "no test model " << name;
  }
  return models.emplace(name, make_random_model(c, 21)).first->second;
}

using test::argmax;
using test::prompt_ids;

// Gap between the largest and the second largest logit: how close greedy is to a tie.
float top_margin(std::vector<float> v) {
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<float>());
  return v[0] - v[1];
}

// The logits of the prompt's last token, then of each decode step; tokens[i] is the
// greedy choice from logits[i] (the last one is not fed back).
struct Sequence {
  std::vector<std::vector<float>> logits;
  std::vector<int32_t> tokens;
};

// Prompt, then `steps` decode steps. Each step feeds `forced[i]` when given (so two
// backends see the same inputs even where their greedy choices differ), else the greedy
// token of the previous logits.
Sequence run_sequence(ModelRunner& runner, const std::vector<int32_t>& prompt, int steps,
                      const std::vector<int32_t>* forced = nullptr) {
  Sequence s;
  runner.reset();
  s.logits.push_back(runner.eval(prompt));
  s.tokens.push_back(argmax(s.logits.back()));
  for (int i = 0; i < steps; ++i) {
    const int32_t next = forced ? (*forced)[static_cast<size_t>(i)] : s.tokens.back();
    s.logits.push_back(runner.eval({next}));
    s.tokens.push_back(argmax(s.logits.back()));
  }
  return s;
}

Sequence run_on(Backend& backend, const Model& model, RunnerOptions options, const std::vector<int32_t>& prompt,
                int steps, const std::vector<int32_t>* forced = nullptr) {
  if (options.policy == Policy::Auto) {
    options.autotune.use_cache = false;  // tune here, not from another run's choice
  }
  ModelRunner runner(model, backend, options);
  // Auto tunes every batch size before the sequence (tuning writes the KV cache).
  runner.prepare({static_cast<int>(prompt.size()), 1});
  return run_sequence(runner, prompt, steps, forced);
}

RunnerOptions options_for(Policy policy, bool cuda_graph) {
  RunnerOptions o;
  o.policy = policy;
  o.plan.max_streams = 4;
  o.exec.cuda_graph = cuda_graph;
  return o;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// CUDA (serial plan, captured graph) against the CPU on the same tokens: the CPU's
// greedy sequence is fed to both, every step's logits must be close, and (when
// `same_tokens`) CUDA's greedy choice must be the CPU's at every step, which makes the
// two greedy sequences identical.
void expect_cuda_matches_cpu(const Model& model, const std::vector<int32_t>& prompt, int steps, bool same_tokens) {
  auto cpu = make_cpu_backend();
  const Sequence reference = run_on(*cpu, model, {}, prompt, steps);
  auto cuda = make_backend("cuda");
  const Sequence got = run_on(*cuda, model, options_for(Policy::Serial, true), prompt, steps, &reference.tokens);
  EXPECT_EQ(got.logits.size(), reference.logits.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(got.logits.size(), reference.logits.size()); ++i) {
    ASSERT_EQ(got.logits[i].size(), static_cast<size_t>(model.config.n_vocab));
    const double e = test::nmse(got.logits[i], reference.logits[i]);
    worst = std::max(worst, e);
    EXPECT_LT(e, kLogitsNmse) << model.config.name << ", step " << i << (i == 0 ? " (prompt)" : "");
    if (same_tokens) {
      EXPECT_EQ(got.tokens[i], reference.tokens[i])
          << model.config.name << ", step " << i << ": CPU top-2 margin " << top_margin(reference.logits[i]);
    }
  }
  std::printf("%s: CUDA vs CPU, worst logits NMSE over %zu steps: %.3g\n", model.config.name.c_str(),
              reference.logits.size(), worst);
  // The greedy tokens must not be degenerate (one token forever makes the check weak).
  if (same_tokens) {
    EXPECT_GT(std::set<int32_t>(reference.tokens.begin(), reference.tokens.end()).size(), 1u) << model.config.name;
  }
}

// On one CUDA backend: serial without a CUDA graph is the reference; every policy (and
// auto), graph on and off, must give its bits at every step.
void expect_every_policy_matches_serial(const Model& model) {
  auto cuda = make_backend("cuda");
  const auto prompt = prompt_ids(kPromptTokens, model.config.n_vocab);
  const Sequence serial = run_on(*cuda, model, options_for(Policy::Serial, false), prompt, kDecodeSteps);
  std::vector<Policy> policies = all_policies();
  policies.push_back(Policy::Auto);
  bool some_plan_is_multi_stream = false;
  for (Policy policy : policies) {
    for (bool graph : {false, true}) {
      RunnerOptions options = options_for(policy, graph);
      if (policy == Policy::Auto) options.autotune.use_cache = false;
      ModelRunner runner(model, *cuda, options);
      runner.prepare({kPromptTokens, 1});
      some_plan_is_multi_stream |= runner.plan(1).stream_count > 1 || runner.plan(kPromptTokens).stream_count > 1;
      const Sequence got = run_sequence(runner, prompt, kDecodeSteps);
      ASSERT_EQ(got.logits.size(), serial.logits.size());
      for (size_t i = 0; i < got.logits.size(); ++i) {
        ASSERT_TRUE(same_bits(got.logits[i], serial.logits[i]))
            << model.config.name << ": " << policy_name(policy) << " graph=" << graph << " differs from serial at step "
            << i << " (NMSE " << test::nmse(got.logits[i], serial.logits[i]) << ")";
      }
      EXPECT_EQ(got.tokens, serial.tokens);
      EXPECT_EQ(runner.compiled_count(), 2) << "one executable per batch size";
    }
  }
  EXPECT_TRUE(some_plan_is_multi_stream) << model.config.name << ": no policy used several streams";
}

// A batched step sequence (continuous batching: prompt chunks beside decode tokens of
// other sequences, padding, sequences joining late) on CUDA and on the CPU: every
// entry's logits close, and the same greedy tokens, under serial and a multi-stream plan.
TEST(CudaModel, BatchedStepsMatchTheCpu) {
  REQUIRE_CUDA();
  for (const std::string name : {"tiny-256", "mixtral-small"}) {
    const Model& model = test_model(name);
    const int vocab = model.config.n_vocab;
    for (const Policy policy : {Policy::Serial, Policy::Cost}) {
      SCOPED_TRACE(name + " " + std::string(policy_name(policy)));
      RunnerOptions options;
      options.policy = policy;
      auto cpu = make_cpu_backend();
      auto cuda = make_backend("cuda");
      BatchedRunner on_cpu(model, *cpu, 5, 24, options), on_cuda(model, *cuda, 5, 24, options);
      std::vector<int32_t> next(5, 1);
      for (int step = 0; step < 12; ++step) {
        std::vector<BatchEntry> entries;
        for (int s = 0; s < 5; ++s) {
          if (s > step) continue;  // sequence s joins at step s
          if (s == step) {
            entries.push_back({s, prompt_ids(3 + 4 * s, vocab)});  // its prompt
          } else {
            entries.push_back({s, {next[static_cast<size_t>(s)]}});
          }
        }
        std::vector<std::vector<float>> expected, got;
        for (const auto logits : on_cpu.step(entries)) expected.emplace_back(logits.begin(), logits.end());
        for (const auto logits : on_cuda.step(entries)) got.emplace_back(logits.begin(), logits.end());
        for (size_t e = 0; e < entries.size(); ++e) {
          EXPECT_LT(test::nmse(got[e], expected[e]), kLogitsNmse) << "step " << step << " sequence " << e;
          EXPECT_EQ(argmax(got[e]), argmax(expected[e])) << "step " << step << " sequence " << e;
          next[static_cast<size_t>(entries[e].sequence)] = argmax(expected[e]);
        }
      }
    }
  }
}

TEST(CudaModel, Tiny256MatchesTheCpu) {
  REQUIRE_CUDA();
  const Model& model = test_model("tiny-256");
  expect_cuda_matches_cpu(model, prompt_ids(kPromptTokens, model.config.n_vocab), kDecodeSteps, true);
}

TEST(CudaModel, Llama1bMatchesTheCpu) {
  REQUIRE_CUDA();
  const Model& model = test_model("llama-1b");
  expect_cuda_matches_cpu(model, prompt_ids(kPromptTokens, model.config.n_vocab), kDecodeSteps, true);
}

TEST(CudaModel, MixtureOfExpertsMatchesTheCpu) {
  REQUIRE_CUDA();
  const Model& model = test_model("mixtral-small");
  expect_cuda_matches_cpu(model, prompt_ids(kPromptTokens, model.config.n_vocab), kDecodeSteps, true);
}

TEST(CudaModel, Tiny256EveryPolicyAndGraphModeGivesSerialBits) {
  REQUIRE_CUDA();
  expect_every_policy_matches_serial(test_model("tiny-256"));
}

TEST(CudaModel, Llama1bEveryPolicyAndGraphModeGivesSerialBits) {
  REQUIRE_CUDA();
  expect_every_policy_matches_serial(test_model("llama-1b"));
}

TEST(CudaModel, MixtureOfExpertsEveryPolicyAndGraphModeGivesSerialBits) {
  REQUIRE_CUDA();
  expect_every_policy_matches_serial(test_model("mixtral-small"));
}

// 64 decode steps replay the one captured graph of batch size 1 (the executable is
// compiled, and the graph captured, once per batch size), with a multi-stream plan, and
// every step equals an eager serial run.
TEST(CudaModel, DecodeReplaysOneCapturedGraphFor64Steps) {
  REQUIRE_CUDA();
  constexpr int kSteps = 64;
  const Model& model = test_model("tiny-256");
  const auto prompt = prompt_ids(kPromptTokens, model.config.n_vocab);
  ASSERT_GE(model.config.n_ctx, kPromptTokens + kSteps);
  auto cuda = make_backend("cuda");
  const Sequence eager = run_on(*cuda, model, options_for(Policy::Serial, false), prompt, kSteps);

  ModelRunner runner(model, *cuda, options_for(Policy::Branch, true));
  EXPECT_GT(runner.plan(1).stream_count, 1) << "the decode plan should use several streams";
  EXPECT_EQ(runner.compiled_count(), 1);  // batch size 1, by plan(1)
  std::vector<float> logits = runner.eval(prompt);
  EXPECT_EQ(runner.compiled_count(), 2);  // and the prompt's
  ASSERT_TRUE(same_bits(logits, eager.logits[0])) << "prompt";
  for (int step = 1; step <= kSteps; ++step) {
    const std::vector<float> previous = logits;
    logits = runner.eval({argmax(previous)});
    ASSERT_EQ(runner.compiled_count(), 2) << "step " << step << " compiled a new executable";
    ASSERT_TRUE(same_bits(logits, eager.logits[static_cast<size_t>(step)])) << "decode step " << step;
    ASSERT_FALSE(same_bits(logits, previous)) << "decode step " << step << " did not see its new input";
  }
  EXPECT_EQ(runner.position(), kPromptTokens + kSteps);
}

// The fixtures: a trained model (f32 weights) and a tiny random one (f16), CPU vs CUDA.
TEST(CudaModel, Stories260KMatchesTheCpu) {
  REQUIRE_CUDA();
  if (!test::have_fixture("stories260K.gguf")) return;
  const GgufFile file = GgufFile::open(test::fixture("stories260K.gguf"));
  const auto tokenizer = load_tokenizer(file);
  const Model model = load_gguf_model(file);
  const auto prompt = tokenizer->encode("Once upon a time, there was a little girl named Lily. She", true);
  expect_cuda_matches_cpu(model, prompt, 32, true);
}

TEST(CudaModel, TinyRandomLlamaMatchesTheCpu) {
  REQUIRE_CUDA();
  if (!test::have_fixture("llama-2-tiny-random.gguf")) return;
  const Model model = load_gguf_model(test::fixture("llama-2-tiny-random.gguf"));
  // Hidden size 8 with random weights: near-ties between logits are common, so only the
  // logits are compared (the CPU's tokens are fed to both).
  expect_cuda_matches_cpu(model, prompt_ids(kPromptTokens, model.config.n_vocab), kDecodeSteps, false);
}

// Greedy text from the trained model: CUDA, under every policy and graph mode, writes
// what the CPU writes.
TEST(CudaModel, GreedyStoriesOnCudaEqualTheCpuText) {
  REQUIRE_CUDA();
  if (!test::have_fixture("stories260K.gguf")) return;
  const GgufFile file = GgufFile::open(test::fixture("stories260K.gguf"));
  const auto tokenizer = load_tokenizer(file);
  const Model model = load_gguf_model(file);
  const char* const prompt = "Once upon a time, there was a little girl";
  GenerateOptions g;
  g.max_tokens = 48;
  g.sampling.temperature = 0;

  auto cpu = make_cpu_backend();
  ModelRunner cpu_runner(model, *cpu);
  const GenerateResult reference = generate(cpu_runner, *tokenizer, prompt, g);
  ASSERT_GE(reference.tokens.size(), 8u);

  auto cuda = make_backend("cuda");
  std::vector<Policy> policies = all_policies();
  policies.push_back(Policy::Auto);
  for (Policy policy : policies) {
    for (bool graph : {false, true}) {
      RunnerOptions options = options_for(policy, graph);
      options.autotune.use_cache = false;
      ModelRunner runner(model, *cuda, options);
      runner.reset();
      const GenerateResult got = generate(runner, *tokenizer, prompt, g);
      EXPECT_EQ(got.tokens, reference.tokens) << policy_name(policy) << " graph=" << graph << ": " << got.text;
      EXPECT_EQ(got.text, reference.text) << policy_name(policy) << " graph=" << graph;
      EXPECT_EQ(got.stop, reference.stop) << policy_name(policy) << " graph=" << graph;
    }
  }
}

}  // namespace
}  // namespace braid

#endif  // BRAID_HAVE_CUDA
