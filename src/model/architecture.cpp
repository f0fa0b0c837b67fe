// The architectures braid runs, as options on ModelConfig, and Llama 3's rope scaling.
//
// Each architecture is LLaMA plus a few named differences. They are set here, from the
// name a GGUF file gives in general.architecture, and nowhere else: the loader and the
// graph builder only read the options.
#include <fmt/format.h>

#include <array>
#include <cmath>
#include <numbers>

#include "braid/model.h"

namespace braid {
namespace {

struct Architecture {
  const char* name;
  int rope_mode;
  bool qkv_bias;
  bool qk_norm;
  bool packed_projections;
};

// "llama" covers Llama 1-3 (Llama 3's rope scaling is the rope_freqs tensor, see the
// loader), Mixtral, and Mistral, whose files say "llama": Mistral 7B v0.1's sliding
// window (4096) never binds, since braid's KV cache holds at most 4096 positions.
// llama.cpp's converter permutes LLaMA's q and k rows so that rope pairs adjacent
// elements (normal mode); it writes Qwen's and Phi-3's as transformers has them, whose
// rope pairs element i with i + head_dim / 2 (NeoX mode). Phi-3 is LLaMA with q/k/v and
// gate/up packed in the file (the loader unpacks them) and, in its 4k models, a sliding
// window of 2047 (the loader keeps the context within it).
constexpr std::array<Architecture, 4> kArchitectures{{
    {"llama", kRopeNormal, false, false, false},
    {"qwen2", kRopeNeox, true, false, false},
    {"qwen3", kRopeNeox, false, true, false},
    {"phi3", kRopeNeox, false, false, true},
}};

}  // namespace

std::vector<std::string> architecture_names() {
  std::vector<std::string> names;
  for (const Architecture& a : kArchitectures) names.emplace_back(a.name);
  return names;
}

void apply_architecture(ModelConfig& config) {
  for (const Architecture& a : kArchitectures) {
    if (config.architecture == a.name) {
      config.rope_mode = a.rope_mode;
      config.qkv_bias = a.qkv_bias;
      config.qk_norm = a.qk_norm;
      config.packed_projections = a.packed_projections;
      return;
    }
  }
  std::string known;
  for (const std::string& n : architecture_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error(fmt::format("model {}: unsupported architecture '{}' (braid runs {})", config.name,
                          config.architecture, known));
}

std::vector<float> llama3_rope_freq_factors(const Llama3RopeScaling& scaling, int head_dim, float rope_base) {
  if (!(scaling.factor >= 1.0f) || !(scaling.high_freq_factor > scaling.low_freq_factor) ||
      !(scaling.low_freq_factor > 0.0f) || scaling.original_context <= 0 || head_dim <= 0 || head_dim % 2 != 0) {
    throw Error(fmt::format("llama3 rope scaling: factor {}, low/high frequency factors {}/{}, original context {} "
                            "and head size {} do not describe a scaling",
                            scaling.factor, scaling.low_freq_factor, scaling.high_freq_factor,
                            scaling.original_context, head_dim));
  }
  // A pair whose wavelength (in positions) is shorter than the original context / high
  // factor keeps its frequency; one longer than original context / low factor is slowed
  // by `factor`; between the two, 1 / factor_i blends 1 / factor and 1 linearly in
  // original_context / wavelength.
  const double context = scaling.original_context;
  const double low_wavelength = context / scaling.low_freq_factor;
  const double high_wavelength = context / scaling.high_freq_factor;
  std::vector<float> factors;
  for (int i = 0; i < head_dim / 2; ++i) {
    const double inv_freq = std::pow(static_cast<double>(rope_base), -2.0 * i / head_dim);
    const double wavelength = 2 * std::numbers::pi / inv_freq;
    double f = 1.0;
    if (wavelength > low_wavelength) {
      f = scaling.factor;
    } else if (wavelength >= high_wavelength) {
      const double smooth =
          (context / wavelength - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor);
      f = 1.0 / ((1.0 - smooth) / scaling.factor + smooth);
    }
    factors.push_back(static_cast<float>(f));
  }
  return factors;
}

}  // namespace braid
