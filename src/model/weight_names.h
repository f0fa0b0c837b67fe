// The weight tensors of a LLaMA / Mixtral model, named and shaped as llama.cpp's GGUF
// files have them. Used to make random models, to load GGUF files and to build graphs.
#pragma once

#include <string>
#include <vector>

#include "braid/model.h"

namespace braid {

inline const std::string kTokenEmbeddingName = "token_embd.weight";
inline const std::string kOutputNormName = "output_norm.weight";
inline const std::string kOutputName = "output.weight";  // optional in files: tied to token_embd when absent

// "blk.3.attn_q.weight"
inline std::string layer_weight(int layer, const char* what) {
  return "blk." + std::to_string(layer) + "." + what + ".weight";
}

struct WeightSpec {
  std::string name;
  DType type;
  Graph::Shape ne;
};

// Every weight the config needs, in file order. Norm weights are f32; matrices and the
// embedding use config.weight_type, or the type config.weight_mix picks for them, and
// K-quant rows that are not a multiple of 256 fall back (weight_type_for).
std::vector<WeightSpec> weight_specs(const ModelConfig& config);

}  // namespace braid
