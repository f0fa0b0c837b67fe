// Host time of drawing one token (braid serve pays it per sequence of every step): the
// Sampler (nucleus: one pass over the logits) beside the sorted pipeline it replaced
// (to_probabilities -> keep_top_k -> keep_top_p -> draw), at the vocabulary sizes of
// LLaMA 2 (32000), SmolLM2 (49152) and Llama 3 (128256); top_k 40 with top_p 0.95 (braid's
// defaults), and top_p 0.95 alone.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "braid/sampling.h"

namespace {

std::vector<float> logits_of(int vocab) {
  std::vector<float> logits(static_cast<size_t>(vocab));
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& l : logits) l = normal(rng);
  return logits;
}

braid::SamplingOptions options(int top_k) {
  braid::SamplingOptions o;
  o.top_k = top_k;
  o.seed = 7;
  return o;
}

void BM_Sampler(benchmark::State& state) {
  const std::vector<float> logits = logits_of(static_cast<int>(state.range(0)));
  braid::Sampler sampler(options(static_cast<int>(state.range(1))));
  for (auto _ : state) benchmark::DoNotOptimize(sampler.sample(logits));
}

void BM_SortedPipeline(benchmark::State& state) {
  const std::vector<float> logits = logits_of(static_cast<int>(state.range(0)));
  const braid::SamplingOptions o = options(static_cast<int>(state.range(1)));
  std::mt19937_64 rng(o.seed);
  for (auto _ : state) {
    std::vector<braid::TokenProbability> candidates = braid::to_probabilities(logits, o.temperature);
    braid::keep_top_k(candidates, o.top_k);
    braid::keep_top_p(candidates, o.top_p);
    benchmark::DoNotOptimize(braid::draw(candidates, rng));
  }
}

void vocabularies(benchmark::internal::Benchmark* b) {
  for (int vocab : {32000, 49152, 128256}) {
    for (int top_k : {40, 0}) b->Args({vocab, top_k});
  }
  b->ArgNames({"vocab", "top_k"})->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_Sampler)->Apply(vocabularies);
BENCHMARK(BM_SortedPipeline)->Apply(vocabularies);
