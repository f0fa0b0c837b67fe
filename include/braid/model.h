// Models: hyperparameters, weights in host memory, and the graph of one forward pass.
//
// Tensor names, shapes and conventions follow llama.cpp's LLaMA architecture (which
// covers Mixtral through its expert tensors), so a GGUF file written by llama.cpp's
// converter loads as it is and braid computes what llama.cpp computes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "braid/graph.h"
#include "braid/weight_mix.h"

namespace braid {

struct ModelConfig {
  std::string name = "model";
  int n_embd = 0;       // d_model
  int n_ff = 0;         // feed-forward width (per expert for MoE)
  int n_head = 0;
  int n_head_kv = 0;    // grouped-query attention when below n_head
  int n_layer = 0;
  int n_vocab = 0;
  int n_expert = 0;     // 0: dense LLaMA; otherwise Mixtral-style MoE
  int n_expert_used = 0;
  int n_ctx = 2048;     // KV cache length
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  int rope_mode = kRopeNormal;
  DType weight_type = DType::F16;  // 2-D weight matrices and the embedding table
  DType cache_type = DType::F32;   // KV cache
  // Per-tensor types as llama.cpp's quantizer mixes them (braid/weight_mix.h); weight_type
  // is then the mix's base type (Q4_K for Q4_K_M).
  WeightMix weight_mix = WeightMix::None;

  int head_dim() const { return n_embd / n_head; }
  // Throws braid::Error when the numbers do not describe a model (zero sizes, heads
  // that do not divide, ...).
  void check() const;
};

struct WeightTensor {
  std::string name;
  DType type = DType::F32;
  Graph::Shape ne{1, 1, 1, 1};
  const void* data = nullptr;
  size_t bytes() const;
};

class Model {
 public:
  ModelConfig config;

  const std::vector<WeightTensor>& tensors() const { return tensors_; }
  const WeightTensor* find(const std::string& name) const;  // null when absent
  const WeightTensor& get(const std::string& name) const;   // throws when absent
  size_t weight_bytes() const;
  int64_t parameter_count() const;

  // Adds a tensor whose bytes are owned elsewhere; `keep_alive` (e.g. a memory map) is
  // held until the model is destroyed.
  void add_tensor(WeightTensor tensor, std::shared_ptr<const void> keep_alive = nullptr);
  // Adds a tensor and allocates its bytes inside the model; returns them for filling.
  uint8_t* add_owned_tensor(const std::string& name, DType type, Graph::Shape ne);

 private:
  std::vector<WeightTensor> tensors_;
  std::vector<std::shared_ptr<const void>> storage_;
};

// Built-in presets with seeded random weights: tiny-256, llama-1b, llama-7b, moe-8x1b.
std::vector<std::string> preset_names();
ModelConfig preset_config(const std::string& name);  // throws on an unknown name
// Random weights (never zeros). layers > 0 overrides the preset's layer count.
Model make_random_model(const ModelConfig& config, uint64_t seed = 1);

// The graph of one forward pass over n_tokens tokens at consecutive positions.
struct ModelGraph {
  Graph graph;
  int n_tokens = 0;
  TensorId tokens = kNoTensor;     // I32 [n_tokens]
  TensorId positions = kNoTensor;  // I32 [n_tokens]
  TensorId logits = kNoTensor;     // f32 [n_vocab, 1] for the last token, or [n_vocab, n_tokens]
};
struct GraphOptions {
  bool all_logits = false;  // logits for every token, not only the last
  // Horizontal fusion: sibling projections that read one input (q/k/v; gate/up, per
  // expert slot for MoE) become one mul_mat over their concatenated weights, split by
  // views. Needs a model from fuse_projections (shapes-only graphs need nothing).
  bool fuse_projections = false;
};
// Builds the graph from the model's config and weights (or shapes only, when the model
// has no tensors: see build_graph_shapes).
ModelGraph build_graph(const Model& model, int n_tokens, const GraphOptions& options = {});
// The same graph from a config alone, with no weight data: for planning and printing.
ModelGraph build_graph_shapes(const ModelConfig& config, int n_tokens, const GraphOptions& options = {});

// A model for fused graphs: per layer "attn_qkv" [d, d + 2 kv] replaces attn_q/k/v and
// "ffn_gate_up" [d, 2 ff] (MoE: "ffn_gate_up_exps" [d, 2 ff, experts], stacked expert by
// expert) replaces ffn_gate/up. Groups whose parts differ in type stay apart (their
// graphs stay unfused). Other tensors share the source's bytes; the result keeps the
// source's storage alive. Fusing a fused model copies nothing.
Model fuse_projections(const Model& model);

}  // namespace braid
