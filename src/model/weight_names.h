// The weight tensors of a model, named and shaped as llama.cpp's GGUF files have them
// (LLaMA / Mixtral, plus the options of ModelConfig: q/k/v biases, q/k norms, rope
// frequency factors, tied embeddings). Used to make random models, to load GGUF files
// and to build graphs.
#pragma once

#include <string>
#include <vector>

#include "braid/model.h"

namespace braid {

inline const std::string kTokenEmbeddingName = "token_embd.weight";
inline const std::string kOutputNormName = "output_norm.weight";
inline const std::string kOutputName = "output.weight";  // absent with tied embeddings: token_embd serves
inline const std::string kRopeFreqsName = "rope_freqs.weight";

// "blk.3.attn_q.weight"
inline std::string layer_weight(int layer, const char* what) {
  return "blk." + std::to_string(layer) + "." + what + ".weight";
}
// "blk.3.attn_q.bias"
inline std::string layer_bias(int layer, const char* what) {
  return "blk." + std::to_string(layer) + "." + what + ".bias";
}

// What a weight is, for filling a random model (and checking a file's types).
enum class WeightRole {
  Matrix,     // config.weight_type
  Norm,       // f32, near 1
  Bias,       // f32, near 0
  Router,     // f32 MoE router matrix
  RopeFreqs,  // f32, computed from config.rope_scaling, never random
};

struct WeightSpec {
  std::string name;
  DType type;
  Graph::Shape ne;
  WeightRole role = WeightRole::Matrix;
};

// Every weight the config needs, in file order. Norms, biases, the router and the rope
// factors are f32; matrices and the embedding use config.weight_type, or the type
// config.weight_mix picks for them, and K-quant rows that are not a multiple of 256 fall
// back (weight_type_for).
std::vector<WeightSpec> weight_specs(const ModelConfig& config);

}  // namespace braid
