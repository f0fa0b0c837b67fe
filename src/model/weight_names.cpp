#include "model/weight_names.h"

#include "braid/weight_mix.h"

namespace braid {

std::vector<WeightSpec> weight_specs(const ModelConfig& c) {
  const int64_t d = c.n_embd, ff = c.n_ff, kv = static_cast<int64_t>(c.head_dim()) * c.n_head_kv;
  const DType w = c.weight_type;
  std::vector<WeightSpec> specs;
  specs.push_back({kTokenEmbeddingName, w, {d, c.n_vocab, 1, 1}});
  for (int l = 0; l < c.n_layer; ++l) {
    specs.push_back({layer_weight(l, "attn_norm"), DType::F32, {d, 1, 1, 1}});
    specs.push_back({layer_weight(l, "attn_q"), w, {d, d, 1, 1}});
    specs.push_back({layer_weight(l, "attn_k"), w, {d, kv, 1, 1}});
    specs.push_back({layer_weight(l, "attn_v"), w, {d, kv, 1, 1}});
    specs.push_back({layer_weight(l, "attn_output"), w, {d, d, 1, 1}});
    specs.push_back({layer_weight(l, "ffn_norm"), DType::F32, {d, 1, 1, 1}});
    if (c.n_expert == 0) {
      specs.push_back({layer_weight(l, "ffn_gate"), w, {d, ff, 1, 1}});
      specs.push_back({layer_weight(l, "ffn_up"), w, {d, ff, 1, 1}});
      specs.push_back({layer_weight(l, "ffn_down"), w, {ff, d, 1, 1}});
    } else {
      specs.push_back({layer_weight(l, "ffn_gate_inp"), DType::F32, {d, c.n_expert, 1, 1}});
      specs.push_back({layer_weight(l, "ffn_gate_exps"), w, {d, ff, c.n_expert, 1}});
      specs.push_back({layer_weight(l, "ffn_up_exps"), w, {d, ff, c.n_expert, 1}});
      specs.push_back({layer_weight(l, "ffn_down_exps"), w, {ff, d, c.n_expert, 1}});
    }
  }
  specs.push_back({kOutputNormName, DType::F32, {d, 1, 1, 1}});
  specs.push_back({kOutputName, w, {d, c.n_vocab, 1, 1}});
  for (WeightSpec& s : specs) {
    if (s.type == w) s.type = weight_type_for(c, s.name, s.ne[0]);
  }
  return specs;
}

}  // namespace braid
