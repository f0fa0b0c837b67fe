// The persistent executor (ExecOptions::persistent, src/backend/cuda/persistent) against
// the CUDA-graph executor: the same model, prompt and forced tokens, several decode steps
// (the position advances, the attention's live chunks grow), plan policies with one stream
// and several. Each tile calls the row and block functions of the graph executor's kernels,
// so the logits must be the same bits; the tolerance check runs first so a failure says how
// far apart they are. Graphs the kernel cannot run are refused by compile() with the node's
// name; prompts stay on the graph executor. Skips itself without a device.
#ifdef BRAID_HAVE_CUDA

#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "backend/cuda/persistent/persistent_program.h"
#include "braid/backend.h"
#include "braid/model.h"
#include "braid/ops.h"
#include "braid/runner.h"
#include "test_support.h"

namespace braid {
namespace {

#define REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

struct Case {
  std::string name;
  const char* preset;
  int layers;  // 0: the preset's
  int n_ctx;
  DType weights;
  DType cache;
  int prompt;
  int vocab = 0;  // 0: the preset's
};

Model case_model(const Case& c) {
  ModelConfig config = preset_config(c.preset);
  if (c.layers > 0) config.n_layer = c.layers;
  config.n_ctx = c.n_ctx;
  config.weight_type = c.weights;
  config.cache_type = c.cache;
  if (c.vocab > 0) config.n_vocab = c.vocab;
  return make_random_model(config, 17);
}

using test::argmax;
using test::prompt_ids;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The prompt, then `steps` decode steps fed `forced` (or the greedy choice when empty);
// the logits of each.
std::vector<std::vector<float>> run_sequence(const Model& model, Policy policy, bool persistent, int prompt,
                                             int steps, std::vector<int32_t>* tokens) {
  auto backend = make_backend("cuda");
  RunnerOptions options;
  options.policy = policy;
  options.plan.max_streams = 4;
  options.exec.persistent = persistent;
  ModelRunner runner(model, *backend, options);
  std::vector<std::vector<float>> logits;
  logits.push_back(runner.eval(prompt_ids(prompt, model.config.n_vocab)));
  const bool forced = !tokens->empty();
  for (int i = 0; i < steps; ++i) {
    if (!forced) tokens->push_back(argmax(logits.back()));
    logits.push_back(runner.eval({(*tokens)[static_cast<size_t>(i)]}));
  }
  return logits;
}

constexpr int kDecodeSteps = 12;

TEST(CudaPersistent, DecodeStepsGiveTheGraphExecutorsLogits) {
  REQUIRE_CUDA();
  const std::vector<Case> cases = {
      // 8 layers, vocabulary 32000, short rows (a warp a row), split attention (4 chunks)
      // whose live chunks go from 1 to 2 over the steps.
      {"tiny-256 f16", "tiny-256", 0, 128, DType::F16, DType::F32, 26},
      // f32 weights, a context of one chunk (no split), an f16 cache.
      {"tiny-256 f32 ctx32", "tiny-256", 2, 32, DType::F32, DType::F16, 8},
      // Full width (rows of a block, grouped-query attention), 2 layers, a bf16 cache.
      {"llama-1b 2 layers", "llama-1b", 2, 128, DType::F16, DType::BF16, 30},
      // Rows of 576 (rms_norm's 256 logical threads over 128), 9 heads over 3 kv heads of 64,
      // tied embeddings.
      {"smollm2-135m 2 layers", "smollm2-135m", 2, 128, DType::BF16, DType::F32, 20},
      // Llama 3 rope (frequency factors), a smaller vocabulary to keep the test quick.
      {"llama3.2-1b 2 layers", "llama3.2-1b", 2, 96, DType::F16, DType::F16, 33, 8192},
  };
  for (const Case& c : cases) {
    const Model model = case_model(c);
    for (Policy policy : {Policy::Serial, Policy::Cost, Policy::Branch}) {
      SCOPED_TRACE(c.name + " " + std::string(policy_name(policy)));
      std::vector<int32_t> tokens;
      const auto graph = run_sequence(model, policy, false, c.prompt, kDecodeSteps, &tokens);
      const auto persistent = run_sequence(model, policy, true, c.prompt, kDecodeSteps, &tokens);
      ASSERT_EQ(graph.size(), persistent.size());
      for (size_t i = 0; i < graph.size(); ++i) {
        SCOPED_TRACE("step " + std::to_string(i));  // 0: the prompt (graph executor in both)
        ASSERT_EQ(persistent[i].size(), static_cast<size_t>(model.config.n_vocab));
        EXPECT_LE(test::nmse(persistent[i], graph[i]), 1e-10);
        EXPECT_TRUE(same_bits(persistent[i], graph[i]));
      }
    }
  }
}

// One decode graph compiled both ways on one backend (one KV cache): back-to-back runs of
// the persistent kernel without a wait in between (each relies on the last block of the run
// before resetting the counters) give the graph executor's bits, and the timing path works.
TEST(CudaPersistent, BackToBackRunsAndTimingOfOneExecutable) {
  REQUIRE_CUDA();
  const Model model = case_model({"", "tiny-256", 2, 64, DType::F16, DType::F32, 0});
  const ModelGraph mg = build_graph(model, 1);
  const Plan plan = make_plan(mg.graph, Policy::Serial);
  auto backend = make_backend("cuda");
  ExecOptions persistent_options;
  persistent_options.persistent = true;
  auto graph_exe = backend->compile(mg.graph, plan, {});
  auto persistent_exe = backend->compile(mg.graph, plan, persistent_options);
  const int32_t token = 7, position = 5;
  std::vector<float> want(static_cast<size_t>(model.config.n_vocab)), got(want.size());
  for (Executable* exe : {graph_exe.get(), persistent_exe.get()}) {
    exe->set_input(mg.tokens, &token, sizeof(token));
    exe->set_input(mg.positions, &position, sizeof(position));
  }
  graph_exe->run();
  graph_exe->read(mg.logits, want.data(), want.size() * sizeof(float));
  for (int i = 0; i < 5; ++i) persistent_exe->run();  // rewrites the same cache row each time
  persistent_exe->read(mg.logits, got.data(), got.size() * sizeof(float));
  EXPECT_TRUE(same_bits(got, want)) << "nmse " << test::nmse(got, want);
  const double persistent_ms = persistent_exe->time_runs_ms(20);
  const double graph_ms = graph_exe->time_runs_ms(20);
  EXPECT_GT(persistent_ms, 0.0);
  // For the log of a device run: the kernel's size, and one tiny decode step both ways.
  std::cout << "persistent kernel: " << cuda::persistent_kernel_report() << "; tiny-256 2 layers, a step: graph "
            << graph_ms * 1e3 << " us, persistent " << persistent_ms * 1e3 << " us\n";
  EXPECT_THROW(persistent_exe->trace_run(), Error);
}

// Weights of `type` with values from a fixed generator, kept alive by `store`.
TensorId weight(Graph& g, std::vector<std::vector<uint8_t>>& store, const std::string& name, DType type, int64_t k,
                int64_t m, uint32_t seed) {
  std::vector<float> values(static_cast<size_t>(k * m));
  uint32_t state = seed;
  for (float& v : values) {
    state = state * 1664525u + 1013904223u;
    v = static_cast<float>(state >> 8) / static_cast<float>(1u << 24) - 0.5f;
  }
  store.emplace_back(row_bytes(type, k) * static_cast<size_t>(m));
  from_f32(type, values.data(), store.back().data(), k * m);
  return g.weight(name, type, {k, m, 1, 1}, store.back().data());
}

// Every element-wise op and every row shape of the product on one small graph: a block a
// row (f16, k 1000) and a warp a row (f32, k 200), the generic rows (a row stride that is not
// a multiple of 16 bytes), mul_mat_add, an rms_norm of 3000 (1024 logical threads over 128),
// silu, swiglu, scale, mul; products of 3000, 200 and 77 rows split unevenly into tasks of 16.
TEST(CudaPersistent, EveryRowShapeAndElementwiseOpGivesTheKernelsBits) {
  REQUIRE_CUDA();
  Graph g;
  std::vector<std::vector<uint8_t>> store;
  const TensorId x = g.input("x", DType::F32, {1000, 1, 1, 1});
  const TensorId x2 = g.input("x2", DType::F32, {1003, 1, 1, 1});
  const TensorId plus = g.input("plus", DType::F32, {200, 1, 1, 1});
  const TensorId y1 = ops::mul_mat(g, weight(g, store, "w1", DType::F16, 1000, 3000, 1), x);
  const TensorId n1 = ops::rms_norm(g, y1, weight(g, store, "norm", DType::F32, 3000, 1, 2), 1e-5f);
  const TensorId y2 = ops::mul_mat_add(g, weight(g, store, "w2", DType::BF16, 3000, 200, 3), n1, plus);
  const TensorId y3 = ops::mul_mat(g, weight(g, store, "w3", DType::F32, 200, 77, 4), ops::silu(g, y2));
  const TensorId y4 = ops::mul_mat(g, weight(g, store, "w4", DType::F16, 1003, 77, 5), x2);
  const TensorId out = ops::mul(g, ops::scale(g, ops::swiglu(g, y3, y4), 0.5f), y3);
  g.mark_output(out);
  g.finalize();
  auto backend = make_backend("cuda");
  ExecOptions persistent;
  persistent.persistent = true;
  std::vector<std::vector<float>> results;
  for (Policy policy : {Policy::Serial, Policy::Branch}) {
    const Plan plan = make_plan(g, policy);
    for (const ExecOptions& options : {ExecOptions{}, persistent}) {
      auto exe = backend->compile(g, plan, options);
      for (TensorId id : {x, x2, plus}) {
        std::vector<float> values(static_cast<size_t>(g[id].elements()));
        for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>((i * 37 + id) % 101) / 50.0f - 1.0f;
        exe->set_input(id, values.data(), values.size() * sizeof(float));
      }
      exe->run();
      results.emplace_back(static_cast<size_t>(g[out].elements()));
      exe->read(out, results.back().data(), results.back().size() * sizeof(float));
    }
  }
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_TRUE(same_bits(results[i], results[0])) << "run " << i << " nmse " << test::nmse(results[i], results[0]);
  }
}

TEST(CudaPersistent, QuantizedWeightsAreRefusedWithTheNodeAndPromptsStayOnTheGraphExecutor) {
  REQUIRE_CUDA();
  const Model model = case_model({"", "tiny-256", 1, 64, DType::Q8_0, DType::F32, 0});
  auto backend = make_backend("cuda");
  ExecOptions persistent;
  persistent.persistent = true;
  const ModelGraph decode = build_graph(model, 1);
  const Plan decode_plan = make_plan(decode.graph, Policy::Serial);
  try {
    backend->compile(decode.graph, decode_plan, persistent);
    ADD_FAILURE() << "a q8_0 decode graph compiled for the persistent kernel";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("persistent executor: cannot run mul_mat"), std::string::npos) << what;
    EXPECT_NE(what.find("q8_0"), std::string::npos) << what;
  }
  EXPECT_NO_THROW(backend->compile(decode.graph, decode_plan, {}));  // the graph executor takes it
  const ModelGraph prompt = build_graph(model, 4);
  EXPECT_NO_THROW(backend->compile(prompt.graph, make_plan(prompt.graph, Policy::Serial), persistent));
}

}  // namespace
}  // namespace braid

#endif  // BRAID_HAVE_CUDA
