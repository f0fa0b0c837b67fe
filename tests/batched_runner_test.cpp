// BatchedRunner: sequences evaluated together, prompt chunks beside decode tokens, give
// each sequence the logits it gets alone (Note [A token's arithmetic does not depend on
// its batch] in batched_runner.h), and bad steps are errors that change nothing.
#include "braid/batched_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <deque>

#include "braid/backend.h"
#include "braid/ops.h"
#include "braid/runner.h"
#include "model_test_util.h"
#include "test_support.h"

namespace braid {
namespace {

ModelConfig small_tiny(DType type = DType::F16) {
  ModelConfig c = preset_config("tiny-256");
  c.n_layer = 2;
  c.n_vocab = 512;
  c.n_ctx = 48;
  c.weight_type = type;
  return c;
}

std::vector<float> copy(std::span<const float> logits) { return {logits.begin(), logits.end()}; }

int32_t greedy(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// A sequence's work: its prompt in chunks, then `decode` greedy tokens. Returns the logits
// after each chunk and each decode token.
struct Script {
  std::vector<std::vector<int32_t>> chunks;
  int decode = 0;
};

std::vector<std::vector<float>> run_alone(const Model& model, const Script& s, const RunnerOptions& options) {
  auto backend = make_cpu_backend();
  ModelRunner runner(model, *backend, options);
  std::vector<std::vector<float>> out;
  for (const auto& chunk : s.chunks) out.push_back(runner.eval(chunk));
  for (int i = 0; i < s.decode; ++i) out.push_back(runner.eval({greedy(out.back())}));
  return out;
}

// Every script at once: each step takes the next piece of work of each sequence, in
// order, while the step's token budget lasts (a piece that does not fit waits).
std::vector<std::vector<std::vector<float>>> run_batched(const Model& model, const std::vector<Script>& scripts,
                                                          int max_step_tokens, const RunnerOptions& options) {
  auto backend = make_cpu_backend();
  BatchedRunner runner(model, *backend, static_cast<int>(scripts.size()) + 1, max_step_tokens, options);
  std::vector<std::vector<std::vector<float>>> out(scripts.size());
  std::vector<size_t> next_chunk(scripts.size(), 0);
  std::vector<int> decoded(scripts.size(), 0);
  auto done = [&](size_t s) {
    return next_chunk[s] == scripts[s].chunks.size() && decoded[s] == scripts[s].decode;
  };
  for (int guard = 0; guard < 1000; ++guard) {
    std::vector<BatchEntry> entries;
    int budget = max_step_tokens;
    for (size_t s = 0; s < scripts.size(); ++s) {
      if (done(s)) continue;
      std::vector<int32_t> tokens = next_chunk[s] < scripts[s].chunks.size()
                                        ? scripts[s].chunks[next_chunk[s]]
                                        : std::vector<int32_t>{greedy(out[s].back())};
      if (static_cast<int>(tokens.size()) > budget) continue;
      budget -= static_cast<int>(tokens.size());
      // Sequence numbers run backwards, so no sequence sits in the region of its index.
      entries.push_back({static_cast<int>(scripts.size()) - static_cast<int>(s), tokens});
    }
    if (entries.empty()) break;
    const auto logits = runner.step(entries);
    for (size_t e = 0; e < entries.size(); ++e) {
      const size_t s = scripts.size() - static_cast<size_t>(entries[e].sequence);
      out[s].push_back(copy(logits[e]));
      if (next_chunk[s] < scripts[s].chunks.size()) {
        ++next_chunk[s];
      } else {
        ++decoded[s];
      }
    }
  }
  return out;
}

const std::vector<Script> kScripts = {
    {{{1, 17, 300, 42}, {7, 511, 99, 3}}, 5},
    {{{5, 6}, {7}}, 7},
    {{{200, 201, 202, 203, 204, 205, 206, 207}}, 3},
    {{{9}}, 6},
};

void expect_each_alone_equals_batched(const Model& model, const RunnerOptions& options) {
  const auto batched = run_batched(model, kScripts, 8, options);
  for (size_t s = 0; s < kScripts.size(); ++s) {
    SCOPED_TRACE(testing::Message() << "sequence " << s);
    EXPECT_EQ(batched[s], run_alone(model, kScripts[s], options));  // bit for bit
  }
}

TEST(BatchedRunner, EachSequenceGetsTheLogitsItGetsAloneBitForBit) {
  const Model model = make_random_model(small_tiny(), 11);
  expect_each_alone_equals_batched(model, {});
}

TEST(BatchedRunner, QuantizedAndMixtureOfExpertsModelsToo) {
  expect_each_alone_equals_batched(make_random_model(small_tiny(DType::Q4_0), 12), {});
  ModelConfig moe = test::small_moe();
  moe.n_ctx = 48;
  expect_each_alone_equals_batched(make_random_model(moe, 13), {});
}

TEST(BatchedRunner, OnTheReferenceKernelsAndUnderMultiStreamPlans) {
  const Model model = make_random_model(small_tiny(), 14);
  RunnerOptions options;
  options.policy = Policy::Cost;
  options.plan.max_streams = 3;
  expect_each_alone_equals_batched(model, options);
  setenv("BRAID_CPU_REFERENCE", "1", 1);
  expect_each_alone_equals_batched(model, {});
  unsetenv("BRAID_CPU_REFERENCE");
}

TEST(BatchedRunner, BucketsArePowersOfTwoUpToTheLargestStep) {
  const Model model = make_random_model(small_tiny(), 15);
  auto backend = make_cpu_backend();
  BatchedRunner runner(model, *backend, 3, 12);
  EXPECT_EQ(runner.buckets(), (std::vector<int>{1, 2, 4, 8, 12}));
  EXPECT_EQ(runner.bucket_for(1), 1);
  EXPECT_EQ(runner.bucket_for(5), 8);
  EXPECT_EQ(runner.bucket_for(9), 12);
  // The batched graph: caches of 3 + 1 regions, attention within a region, one logits
  // row per sequence at most.
  const Graph& g = runner.graph(8);
  int attentions = 0;
  for (const Tensor& t : g.tensors()) {
    if (t.op != Op::Attention) continue;
    ++attentions;
    EXPECT_EQ(t.params.i[0], 48);
    EXPECT_EQ(g[t.src[1]].ne[2], 4 * 48);
  }
  EXPECT_EQ(attentions, 2);
  auto logits_rows = [&](int bucket) {
    for (const Tensor& t : runner.graph(bucket).tensors()) {
      if (t.name == "logits") return t.ne[1];
    }
    return int64_t{-1};
  };
  EXPECT_EQ(logits_rows(2), 2);
  EXPECT_EQ(logits_rows(8), 3);
}

TEST(BatchedRunner, BadStepsAreErrorsThatChangeNothing) {
  ModelConfig c = small_tiny();
  c.n_ctx = 8;
  const Model model = make_random_model(c, 16);
  auto backend = make_cpu_backend();
  BatchedRunner runner(model, *backend, 2, 8);
  EXPECT_THROW(runner.step({}), Error);
  EXPECT_THROW(runner.step({{2, {1}}}), Error);                  // no sequence 2
  EXPECT_THROW(runner.step({{0, {1}}, {0, {2}}}), Error);        // twice
  EXPECT_THROW(runner.step({{0, {}}}), Error);                   // no tokens
  EXPECT_THROW(runner.step({{0, {512}}}), Error);                // outside the vocabulary
  EXPECT_THROW(runner.step({{0, {1, 2, 3, 4, 5}}, {1, {1, 2, 3, 4}}}), Error);  // 9 tokens
  EXPECT_EQ(runner.position(0), 0);
  EXPECT_EQ(runner.position(1), 0);
  runner.step({{0, {1, 2, 3, 4, 5, 6, 7}}});
  EXPECT_THROW(runner.step({{0, {1, 2}}}), Error);  // past the context
  EXPECT_EQ(runner.position(0), 7);
  runner.step({{0, {1}}, {1, {3}}});
  EXPECT_EQ(runner.position(0), 8);
  runner.reset(0);
  EXPECT_EQ(runner.position(0), 0);
  EXPECT_THROW(runner.reset(5), Error);
  EXPECT_THROW(BatchedRunner(model, *backend, 0, 4), Error);
  EXPECT_THROW(BatchedRunner(model, *backend, 2, 0), Error);
}

// More tokens a step than one context holds (many sequences, short contexts), and more
// padding than the scratch region has rows (9 tokens run at batch size 16).
TEST(BatchedRunner, AStepMayHoldMoreTokensThanOneContext) {
  ModelConfig c = small_tiny();
  c.n_ctx = 4;
  const Model model = make_random_model(c, 17);
  auto backend = make_cpu_backend();
  BatchedRunner runner(model, *backend, 4, 16);
  const auto logits = runner.step({{0, {1, 2, 3}}, {1, {4, 5, 6}}, {3, {9, 10, 11}}});
  ASSERT_EQ(logits.size(), 3u);
  auto alone = make_cpu_backend();
  ModelRunner single(model, *alone);
  EXPECT_EQ(copy(logits[2]), single.eval({9, 10, 11}));
  EXPECT_EQ(copy(runner.step({{3, {5}}})[0]), single.eval({5}));
}

// With RunnerOptions::best_logits, a step also gives each entry's best logits among the
// first `columns` (as ops::top_logits orders them), with or without the whole rows.
TEST(BatchedRunner, BestLogitsAreEachRowsBest) {
  const Model model = make_random_model(small_tiny(), 18);
  RunnerOptions options;
  options.best_logits = {8, 500};  // fewer columns than the model's 512 logits
  auto backend = make_cpu_backend();
  BatchedRunner with_rows(model, *backend, 3, 8, options), without(model, *backend, 3, 8, options);
  const std::vector<BatchEntry> step = {{0, {1, 2, 3}}, {2, {7}}};
  const BatchedRunner::Logits full = with_rows.step(step, true);
  const BatchedRunner::Logits best = without.step(step, false);
  ASSERT_EQ(full.rows.size(), 2u);
  EXPECT_TRUE(best.rows.empty());
  ASSERT_EQ(best.best.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    std::vector<float> row = copy(full.rows[e]);
    row.resize(500);
    std::vector<int32_t> order(row.size());
    for (size_t i = 0; i < row.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    ASSERT_EQ(best.best[e].logits.size(), 8u);
    EXPECT_EQ(best.best[e].vocabulary, 500);
    for (size_t i = 0; i < 8; ++i) {
      EXPECT_EQ(best.best[e].ids[i], static_cast<float>(order[i])) << e << " " << i;
      EXPECT_EQ(best.best[e].logits[i], row[static_cast<size_t>(order[i])]);
      EXPECT_EQ(full.best[e].ids[i], best.best[e].ids[i]);
    }
  }
}

}  // namespace
}  // namespace braid
