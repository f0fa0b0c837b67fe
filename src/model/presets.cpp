// Built-in model presets and seeded random weights.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <thread>

#include "braid/model.h"
#include "model/weight_names.h"

namespace braid {
namespace {

ModelConfig preset(const char* name, int embd, int ff, int heads, int kv_heads, int layers, int experts = 0,
                   int used = 0) {
  ModelConfig c;
  c.name = name;
  c.n_embd = embd;
  c.n_ff = ff;
  c.n_head = heads;
  c.n_head_kv = kv_heads;
  c.n_layer = layers;
  c.n_vocab = 32000;
  c.n_expert = experts;
  c.n_expert_used = used;
  c.n_ctx = 2048;
  return c;
}

// Llama 3.2 1B's shapes: tied embeddings, a 128k vocabulary, and Llama 3 rope (base
// 500000, scaled by 32 beyond an original context of 8192, as its config.json says).
ModelConfig llama32_1b() {
  ModelConfig c = preset("llama3.2-1b", 2048, 8192, 32, 8, 16);
  c.n_vocab = 128256;
  c.tied_embeddings = true;
  c.rope_base = 500000.0f;
  c.rope_freq_factors = true;
  c.rope_scaling = Llama3RopeScaling{32.0f, 1.0f, 4.0f, 8192};
  return c;
}

// SmolLM2-135M's shapes: 9 heads of 64 over 3 KV heads, tied embeddings.
ModelConfig smollm2_135m() {
  ModelConfig c = preset("smollm2-135m", 576, 1536, 9, 3, 30);
  c.n_vocab = 49152;
  c.tied_embeddings = true;
  c.rope_base = 100000.0f;
  return c;
}

const std::map<std::string, ModelConfig>& presets() {
  static const std::map<std::string, ModelConfig> table = {
      {"tiny-256", preset("tiny-256", 256, 768, 8, 8, 8)},
      {"llama-1b", preset("llama-1b", 2048, 8192, 32, 8, 16)},
      {"llama-7b", preset("llama-7b", 4096, 11008, 32, 32, 32)},
      {"moe-8x1b", preset("moe-8x1b", 2048, 5632, 32, 8, 16, 8, 2)},
      {"llama3.2-1b", llama32_1b()},
      {"smollm2-135m", smollm2_135m()},
  };
  return table;
}

// SplitMix64: a small, fast, well-mixed generator; one stream per (seed, tensor, chunk)
// so tensors fill in parallel and the result does not depend on the thread count.
struct SplitMix {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
};

}  // namespace

// Chunks of 2^16 values (a multiple of every block size), each from its own SplitMix stream
// (seed, chunk), converted to the type by as many threads as there are cores.
void fill_random(uint8_t* data, DType type, int64_t elements, uint64_t seed, float center, float spread) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (elements + kChunk - 1) / kChunk;
  const unsigned workers = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(),
                                                           static_cast<unsigned>(chunks)));
  auto work = [&](unsigned worker) {
    std::vector<float> values(kChunk);
    for (int64_t c = worker; c < chunks; c += workers) {
      SplitMix rng{seed * 0x100000001b3ull + static_cast<uint64_t>(c)};
      const int64_t count = std::min(kChunk, elements - c * kChunk);
      for (int64_t i = 0; i < count; ++i) values[static_cast<size_t>(i)] = center + spread * (2 * rng.uniform() - 1);
      from_f32(type, values.data(), data + row_bytes(type, c * kChunk), count);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned w = 1; w < workers; ++w) threads.emplace_back(work, w);
  work(0);
  for (auto& t : threads) t.join();
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, config] : presets()) names.push_back(name);
  return names;
}

ModelConfig preset_config(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error(fmt::format("unknown preset '{}' (known: {})", name, known));
  }
  return it->second;
}

Model make_random_model(const ModelConfig& config, uint64_t seed) {
  config.check();
  Model model;
  model.config = config;
  uint64_t index = 0;
  for (const WeightSpec& spec : weight_specs(config)) {
    uint8_t* data = model.add_owned_tensor(spec.name, spec.type, spec.ne);
    const int64_t elements = spec.ne[0] * spec.ne[1] * spec.ne[2] * spec.ne[3];
    if (spec.role == WeightRole::RopeFreqs) {
      const std::vector<float> factors = llama3_rope_freq_factors(config.rope_scaling, config.head_dim(), config.rope_base);
      from_f32(DType::F32, factors.data(), data, elements);
      continue;
    }
    // Norm weights near 1, biases near 0; matrices with variance 1/fan_in so activations
    // keep their scale.
    const bool norm = spec.role == WeightRole::Norm, bias = spec.role == WeightRole::Bias;
    const float spread = norm || bias ? 0.1f : std::sqrt(3.0f / static_cast<float>(spec.ne[0]));
    fill_random(data, spec.type, elements, seed * 1000003ull + ++index, norm ? 1.0f : 0.0f,
                spec.name == kTokenEmbeddingName ? 1.0f : spread);
  }
  return model;
}

}  // namespace braid
