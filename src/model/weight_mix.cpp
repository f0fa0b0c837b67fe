#include "braid/weight_mix.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "braid/model.h"

namespace braid {
namespace {

// llama.cpp's use_more_bits: the first and last eighth of the layers, and every third
// layer in between, get more bits.
bool use_more_bits(int layer, int layers) {
  return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

// "blk.12.ffn_down.weight" -> 12 and "ffn_down"; false for tensors outside the layers.
bool split_layer_name(const std::string& tensor, int* layer, std::string* what) {
  int consumed = 0;
  if (std::sscanf(tensor.c_str(), "blk.%d.%n", layer, &consumed) != 1 || consumed == 0) return false;
  *what = tensor.substr(static_cast<size_t>(consumed));
  const size_t dot = what->rfind(".weight");
  if (dot != std::string::npos) what->resize(dot);
  return true;
}

DType mixed_type(const ModelConfig& c, const std::string& tensor) {
  const DType base = base_type(c.weight_mix);
  if (tensor == "output.weight") return DType::Q6_K;
  int layer = 0;
  std::string what;
  if (!split_layer_name(tensor, &layer, &what)) return base;  // token_embd keeps the base type
  const bool eight_experts = c.n_expert == 8;
  if (what == "attn_v") {
    if (eight_experts) return DType::Q8_0;
    return use_more_bits(layer, c.n_layer) ? DType::Q6_K : base;
  }
  if (what == "attn_k" && eight_experts) return DType::Q8_0;
  if (what == "attn_output" && eight_experts && c.weight_mix == WeightMix::Q4_K_M) return DType::Q5_K;
  if (what == "ffn_down" || what == "ffn_down_exps") return use_more_bits(layer, c.n_layer) ? DType::Q6_K : base;
  return base;
}

}  // namespace

bool parse_weight_mix(std::string_view text, WeightMix* out) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  for (WeightMix mix : {WeightMix::Q4_K_M, WeightMix::Q5_K_M}) {
    if (lower == name(mix)) {
      *out = mix;
      return true;
    }
  }
  return false;
}

std::string_view name(WeightMix mix) {
  switch (mix) {
    case WeightMix::None: return "none";
    case WeightMix::Q4_K_M: return "q4_k_m";
    case WeightMix::Q5_K_M: return "q5_k_m";
  }
  return "?";
}

DType base_type(WeightMix mix) {
  switch (mix) {
    case WeightMix::Q4_K_M: return DType::Q4_K;
    case WeightMix::Q5_K_M: return DType::Q5_K;
    case WeightMix::None: break;
  }
  throw Error("the weight mix 'none' has no base type");
}

DType fallback_type(DType type, int64_t row_elements) {
  if (row_elements % traits(type).block_elements == 0) return type;
  DType fallback = DType::F16;
  switch (type) {
    case DType::Q2_K:
    case DType::Q3_K: fallback = DType::Q4_0; break;
    case DType::Q4_K: fallback = DType::Q5_0; break;
    case DType::Q5_K: fallback = DType::Q5_1; break;
    case DType::Q6_K: fallback = DType::Q8_0; break;
    default: break;
  }
  return row_elements % traits(fallback).block_elements == 0 ? fallback : DType::F16;
}

DType weight_type_for(const ModelConfig& c, const std::string& tensor, int64_t row_elements) {
  if (c.weight_mix == WeightMix::None) return fallback_type(c.weight_type, row_elements);
  DType type = mixed_type(c, tensor);
  // llama.cpp: an output matrix whose rows do not fit 256-element blocks is Q8_0.
  if (tensor == "output.weight" && row_elements % kSuperBlock != 0) type = DType::Q8_0;
  return fallback_type(type, row_elements);
}

void set_weight_type(ModelConfig& config, std::string_view text) {
  WeightMix mix = WeightMix::None;
  DType type = DType::F32;
  if (parse_weight_mix(text, &mix)) {
    config.weight_mix = mix;
    config.weight_type = base_type(mix);
    return;
  }
  if (!parse_dtype(text, &type) || type == DType::I32) {
    throw Error(fmt::format("unknown weight type '{}' (known: {})", text, kWeightTypeNames));
  }
  config.weight_mix = WeightMix::None;
  config.weight_type = type;
}

uint32_t llama_file_type(DType type, WeightMix mix) {
  if (mix == WeightMix::Q4_K_M) return 15;
  if (mix == WeightMix::Q5_K_M) return 17;
  switch (type) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q8_0: return 7;
    case DType::Q5_0: return 8;
    case DType::Q5_1: return 9;
    case DType::Q2_K: return 10;
    case DType::Q3_K: return 11;  // Q3_K_S: every matrix Q3_K
    case DType::Q4_K: return 14;  // Q4_K_S
    case DType::Q5_K: return 16;  // Q5_K_S
    case DType::Q6_K: return 18;
    case DType::BF16: return 32;
    case DType::I32: break;
  }
  throw Error(fmt::format("no llama.cpp file type for {}", name(type)));
}

}  // namespace braid
