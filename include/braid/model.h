// Models: hyperparameters, weights in host memory, and the graph of one forward pass.
//
// Tensor names, shapes and conventions follow llama.cpp's LLaMA architecture (which
// covers Mixtral through its expert tensors, and Mistral, whose files say "llama"), so a
// GGUF file written by llama.cpp's converter loads as it is and braid computes what
// llama.cpp computes. The other architectures braid runs (Qwen2, Qwen3) are LLaMA with a
// few differences; each difference is one named option of ModelConfig, set from the
// architecture's name in one place (architecture.cpp), so the graph builder never
// compares names.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "braid/graph.h"
#include "braid/weight_mix.h"

namespace braid {

// Llama 3's rope scaling (transformers' rope_type "llama3"): low frequencies are divided
// by `factor`, high ones kept, the band between interpolated. It reaches the graph as
// per-pair frequency factors (rope_freqs.weight), see llama3_rope_freq_factors.
struct Llama3RopeScaling {
  float factor = 0.0f;  // 0: none
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_context = 8192;
};

struct ModelConfig {
  std::string name = "model";
  std::string architecture = "llama";  // GGUF general.architecture; its options below
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

  // Where architectures differ from LLaMA (set from `architecture` by
  // apply_architecture, or by hand for presets and tests).
  int n_head_dim = 0;             // per-head size; 0: n_embd / n_head (Qwen3 sets it)
  bool qkv_bias = false;          // Qwen2: q, k and v projections add a bias (attn_q.bias, ...)
  bool qk_norm = false;           // Qwen3: RMSNorm over each head of q and k before rope
  bool tied_embeddings = false;   // no output.weight: the output projection is token_embd
  // Phi-3: the file packs q, k and v as one attn_qkv and gate and up as one ffn_up (gate's
  // rows first); the loader takes each projection as its rows of the packed tensor.
  bool packed_projections = false;
  // rope_freqs.weight [head_dim / 2]: pair i's rope frequency is divided by factor i
  // (Llama 3 rope scaling). Random models compute it from rope_scaling.
  bool rope_freq_factors = false;
  Llama3RopeScaling rope_scaling;
  // Tensor parallelism: this config (and a model with it) is one rank's shard of a model
  // split over this many ranks (shard_model): heads and ff are the rank's share, and the
  // graph sums the row-split products over the ranks with all_reduce nodes. The partition
  // lives here, not in GraphOptions, so that a graph can never disagree with its weights.
  int tensor_ranks = 1;

  int head_dim() const { return n_head_dim > 0 ? n_head_dim : n_embd / n_head; }
  int q_dim() const { return n_head * head_dim(); }      // rows of attn_q, columns of attn_output
  int kv_dim() const { return n_head_kv * head_dim(); }  // rows of attn_k and attn_v
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

// Sets the architecture-dependent options of `config` (rope mode, qkv_bias, qk_norm,
// packed_projections) from its architecture name: "llama" (LLaMA, Llama 3, Mistral,
// Mixtral), "qwen2", "qwen3", "phi3".
// Throws braid::Error naming an unknown architecture.
void apply_architecture(ModelConfig& config);
std::vector<std::string> architecture_names();

// The frequency factors of Llama 3 rope scaling, one per rotated pair (head_dim / 2):
// 1 for high frequencies, scaling.factor for low ones, interpolated between, computed
// as transformers computes its scaled inverse frequencies (factor = inv_freq / scaled).
std::vector<float> llama3_rope_freq_factors(const Llama3RopeScaling& scaling, int head_dim, float rope_base);

// Built-in presets with seeded random weights: tiny-256, llama-1b, llama-7b, moe-8x1b,
// and the shapes of real models: llama3.2-1b, smollm2-135m.
std::vector<std::string> preset_names();
ModelConfig preset_config(const std::string& name);  // throws on an unknown name
// Random weights (never zeros). layers > 0 overrides the preset's layer count.
Model make_random_model(const ModelConfig& config, uint64_t seed = 1);
// Fills `elements` values of `type` at data (whole blocks of a quantized type) with center +
// uniform(-spread, spread) from `seed`, on every core; the bytes do not depend on the
// thread count. The presets' weights, and opbench's.
void fill_random(uint8_t* data, DType type, int64_t elements, uint64_t seed, float center, float spread);

// The graph of one forward pass over n_tokens tokens at consecutive positions.
struct ModelGraph {
  Graph graph;
  int n_tokens = 0;
  TensorId tokens = kNoTensor;     // I32 [n_tokens]
  TensorId positions = kNoTensor;  // I32 [n_tokens]
  TensorId logits = kNoTensor;     // f32 [n_vocab, 1] for the last token, or [n_vocab, n_tokens]
  // A batch of sequences (GraphOptions::sequences), else kNoTensor:
  TensorId cache_rows = kNoTensor;  // I32 [n_tokens]: each token's row of the KV caches
  TensorId logit_rows = kNoTensor;  // I32 [min(n_tokens, sequences)]: the tokens whose logits come out
  TensorId best_logits = kNoTensor;  // f32 [k, 2, rows of logits] (GraphOptions::best_logits), else kNoTensor
};
// The best logits of each row, found where the logits are (ops::top_logits): a decode
// step then copies a sampler's candidates to the host, not whole vocabulary rows.
struct BestLogitsOptions {
  int count = 0;        // 0: none
  int64_t columns = 0;  // among the first this many (tokens a sampler may choose); 0: all
};
struct GraphOptions {
  bool all_logits = false;  // logits for every token, not only the last
  // Horizontal fusion: sibling projections that read one input (q/k/v; gate/up, per
  // expert slot for MoE) become one mul_mat over their concatenated weights, split by
  // views. Needs a model from fuse_projections (shapes-only graphs need nothing).
  bool fuse_projections = false;
  // A batch of up to this many sequences (continuous batching; 0: one sequence). The KV
  // caches hold sequences + 1 regions of n_ctx rows: sequence s owns region s, and the
  // last is scratch for padding tokens. Token i of the batch sits at positions[i] of its
  // sequence (rope) and at cache_rows[i] = region * n_ctx + positions[i] of the caches
  // (kv_write, attention over its region alone); logits come out for logit_rows.
  int sequences = 0;
  BestLogitsOptions best_logits{};
};
// Builds the graph from the model's config and weights (or shapes only, when the model
// has no tensors: see build_graph_shapes).
ModelGraph build_graph(const Model& model, int n_tokens, const GraphOptions& options = {});
// The same graph from a config alone, with no weight data: for planning and printing.
ModelGraph build_graph_shapes(const ModelConfig& config, int n_tokens, const GraphOptions& options = {});

// Tensor parallelism (Megatron style): rank `rank` of `ranks` keeps its share of the
// attention heads (rows of attn_q, and of attn_k/attn_v by kv heads; the same columns
// of attn_output) and of the feed-forward width (rows of ffn_gate/ffn_up, columns of
// ffn_down; for MoE the same slice of every expert). Norms, embeddings, the router and
// the output head are replicated. Throws braid::Error when heads, kv heads or ff do not
// divide by `ranks`, or when a column split cuts a quantized block. The config of the
// result is shard_config's; replicated tensors share `model`'s bytes (the shard keeps its
// storage alive, as fuse_projections does), sliced ones are copies. Shard before fusing
// (fused tensors are refused).
ModelConfig shard_config(const ModelConfig& config, int ranks);
Model shard_model(const Model& model, int ranks, int rank);

// A model for fused graphs: per layer "attn_qkv" [d, d + 2 kv] replaces attn_q/k/v and
// "ffn_gate_up" [d, 2 ff] (MoE: "ffn_gate_up_exps" [d, 2 ff, experts], stacked expert by
// expert) replaces ffn_gate/up. Groups whose parts differ in type stay apart (their
// graphs stay unfused). Other tensors share the source's bytes; the result keeps the
// source's storage alive. Fusing a fused model copies nothing.
Model fuse_projections(const Model& model);

}  // namespace braid
