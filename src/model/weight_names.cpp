#include "model/weight_names.h"

#include "braid/weight_mix.h"

namespace braid {

std::vector<WeightSpec> weight_specs(const ModelConfig& c) {
  const int64_t d = c.n_embd, ff = c.n_ff, q = c.q_dim(), kv = c.kv_dim(), hd = c.head_dim();
  const DType w = c.weight_type;
  const auto matrix = [&](std::string name, Graph::Shape ne) { return WeightSpec{std::move(name), w, ne}; };
  const auto f32 = [](std::string name, int64_t n, WeightRole role) {
    return WeightSpec{std::move(name), DType::F32, {n, 1, 1, 1}, role};
  };
  std::vector<WeightSpec> specs;
  specs.push_back(matrix(kTokenEmbeddingName, {d, c.n_vocab, 1, 1}));
  if (c.rope_freq_factors) specs.push_back(f32(kRopeFreqsName, hd / 2, WeightRole::RopeFreqs));
  for (int l = 0; l < c.n_layer; ++l) {
    specs.push_back(f32(layer_weight(l, "attn_norm"), d, WeightRole::Norm));
    specs.push_back(matrix(layer_weight(l, "attn_q"), {d, q, 1, 1}));
    specs.push_back(matrix(layer_weight(l, "attn_k"), {d, kv, 1, 1}));
    specs.push_back(matrix(layer_weight(l, "attn_v"), {d, kv, 1, 1}));
    if (c.qkv_bias) {
      specs.push_back(f32(layer_bias(l, "attn_q"), q, WeightRole::Bias));
      specs.push_back(f32(layer_bias(l, "attn_k"), kv, WeightRole::Bias));
      specs.push_back(f32(layer_bias(l, "attn_v"), kv, WeightRole::Bias));
    }
    if (c.qk_norm) {
      specs.push_back(f32(layer_weight(l, "attn_q_norm"), hd, WeightRole::Norm));
      specs.push_back(f32(layer_weight(l, "attn_k_norm"), hd, WeightRole::Norm));
    }
    specs.push_back(matrix(layer_weight(l, "attn_output"), {q, d, 1, 1}));
    specs.push_back(f32(layer_weight(l, "ffn_norm"), d, WeightRole::Norm));
    if (c.n_expert == 0) {
      specs.push_back(matrix(layer_weight(l, "ffn_gate"), {d, ff, 1, 1}));
      specs.push_back(matrix(layer_weight(l, "ffn_up"), {d, ff, 1, 1}));
      specs.push_back(matrix(layer_weight(l, "ffn_down"), {ff, d, 1, 1}));
    } else {
      specs.push_back({layer_weight(l, "ffn_gate_inp"), DType::F32, {d, c.n_expert, 1, 1}, WeightRole::Router});
      specs.push_back(matrix(layer_weight(l, "ffn_gate_exps"), {d, ff, c.n_expert, 1}));
      specs.push_back(matrix(layer_weight(l, "ffn_up_exps"), {d, ff, c.n_expert, 1}));
      specs.push_back(matrix(layer_weight(l, "ffn_down_exps"), {ff, d, c.n_expert, 1}));
    }
  }
  specs.push_back(f32(kOutputNormName, d, WeightRole::Norm));
  if (!c.tied_embeddings) specs.push_back(matrix(kOutputName, {d, c.n_vocab, 1, 1}));
  for (WeightSpec& s : specs) {  // a mix (q4_k_m) or a K-quant fallback may pick another type
    if (s.role == WeightRole::Matrix) s.type = weight_type_for(c, s.name, s.ne[0]);
  }
  return specs;
}

}  // namespace braid
