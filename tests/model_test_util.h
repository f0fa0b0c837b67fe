// Shared by the whole-model CPU tests: a fixed prompt, then greedy decode steps.
#pragma once

#include <algorithm>
#include <vector>

#include "braid/backend.h"
#include "braid/model.h"
#include "braid/runner.h"

namespace braid::test {

// A Mixtral-style model small enough for the CPU reference: 8 experts, top-2, 2 layers.
inline ModelConfig small_moe(DType type = DType::F16) {
  ModelConfig c = preset_config("moe-8x1b");
  c.n_embd = 128;
  c.n_ff = 192;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.n_layer = 2;
  c.n_vocab = 512;
  c.n_ctx = 32;
  c.weight_type = type;
  return c;
}

inline const std::vector<int32_t> kPrompt = {1, 17, 300, 42, 7, 511, 99, 3};

// Logits of the prompt's last token, then of three greedy decode steps, on a fresh CPU backend.
inline std::vector<std::vector<float>> prompt_then_decode(const Model& model, RunnerOptions options) {
  auto backend = make_cpu_backend();
  ModelRunner runner(model, *backend, options);
  std::vector<std::vector<float>> all;
  all.push_back(runner.eval(kPrompt));
  for (int step = 0; step < 3; ++step) {
    const auto& last = all.back();
    const auto next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    all.push_back(runner.eval({next}));
  }
  return all;
}

}  // namespace braid::test
