// The forward pass of LLaMA (and Mixtral, its mixture-of-experts variant) as a graph.
//
// One builder serves the prompt (n tokens) and decode (n = 1). Everything that changes
// from step to step -- token ids and positions -- is an input tensor, and the KV caches
// are state tensors, so the graph for a batch size is built (and captured) once and
// serves every position up to the context length.
//
// Per layer:  h = rms_norm(x) ; q, k, v = h Wq, h Wk, h Wv   (three independent branches)
//             rope(q), rope(k) ; k, v -> cache ; a = attention(q, caches) ; x += a Wo
//             h = rms_norm(x) ; x += down(silu(h Wgate) * h Wup)   (gate and up: two branches)
// Mixtral replaces the feed-forward by top-k routing over experts; each selected slot is
// an independent branch (gate, up, down for the expert in that slot), combined by the
// router weights.
//
// The options of ModelConfig add, per layer: a bias after each of q, k, v (qkv_bias,
// Qwen2); an RMSNorm over each head of q and of k before rope (qk_norm, Qwen3); and to
// every rope, frequency factors (rope_freq_factors, Llama 3). A head size other than
// n_embd / n_head (Qwen3) changes only the widths of q and of the attention output.
//
// With GraphOptions::sequences the graph evaluates a batch of sequences (continuous
// batching): keys are rotated apart from their cache write (the rotation's position is
// not the cache row), attention stays within each token's sequence region, and only the
// rows that end a sequence's share of the batch go through the output head.
//
// A tensor-parallel shard (ModelConfig::tensor_ranks > 1, from shard_model) has a share
// of the heads and of ff: its attention output and feed-forward products are partial
// sums, added over the ranks by an all_reduce before the residual addition.
//
// With GraphOptions::fuse_projections, q/k/v is one mul_mat over attn_qkv and gate/up one
// over ffn_gate_up (one mul_mat_id per slot over ffn_gate_up_exps); strided views split
// the products, so the branches above become single, wider nodes.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <tuple>

#include "braid/model.h"
#include "braid/ops.h"
#include "model/fusion.h"
#include "model/weight_names.h"

namespace braid {
namespace {

class Builder {
 public:
  Builder(const ModelConfig& config, const Model* model, Graph& graph)
      : c_(config), model_(model), g_(graph) {}

  // A weight leaf; with a model, its data (checked against the expected type and shape).
  TensorId weight(const std::string& name, DType type, Graph::Shape ne) {
    if (!model_) return g_.weight(name, type, ne);
    const WeightTensor* t = model_->find(name);
    if (!t && name == kOutputName) t = model_->find(kTokenEmbeddingName);  // tied embeddings
    if (!t) throw Error(fmt::format("model {}: tensor {} is missing", c_.name, name));
    if (t->ne != ne) {
      Tensor expected;
      expected.ne = ne;
      Tensor found;
      found.ne = t->ne;
      throw Error(fmt::format("model {}: tensor {} has shape {}, expected {}", c_.name, name,
                              found.shape_string(), expected.shape_string()));
    }
    return g_.weight(name, t->type, ne, t->data);
  }

  TensorId named(TensorId id, int layer, const char* what) {
    g_[id].name = fmt::format("blk.{}.{}", layer, what);
    return id;
  }

  // Fills `mg`, whose graph this builder writes into.
  void build(int n, const GraphOptions& options, ModelGraph& mg) {
    // (A batch of sequences may hold more tokens than one context: see GraphOptions::sequences.)
    if (n <= 0 || (n > c_.n_ctx && options.sequences == 0)) {
      throw Error(fmt::format("model {}: {} tokens do not fit the context of {}", c_.name, n, c_.n_ctx));
    }
    mg.n_tokens = n;
    mg.tokens = g_.input("tokens", DType::I32, {n, 1, 1, 1});
    mg.positions = g_.input("positions", DType::I32, {n, 1, 1, 1});
    positions_ = cache_rows_ = mg.positions;
    cache_size_ = c_.n_ctx;
    if (options.sequences < 0) throw Error(fmt::format("model {}: {} sequences", c_.name, options.sequences));
    if (options.sequences > 0) {
      cache_size_ = (int64_t{options.sequences} + 1) * c_.n_ctx;
      if (cache_size_ > INT32_MAX / 2) {
        throw Error(fmt::format("model {}: {} sequences of {} positions do not fit one cache", c_.name,
                                options.sequences, c_.n_ctx));
      }
      cache_rows_ = mg.cache_rows = g_.input("cache_rows", DType::I32, {n, 1, 1, 1});
      mg.logit_rows = g_.input("logit_rows", DType::I32, {std::min(n, options.sequences), 1, 1, 1});
    }
    specs_ = weight_specs(c_);
    fuse_ = options.fuse_projections;

    TensorId x = ops::get_rows(g_, spec_weight(kTokenEmbeddingName), mg.tokens);
    g_[x].name = "embedding";
    rope_freqs_ = c_.rope_freq_factors ? spec_weight(kRopeFreqsName) : kNoTensor;
    for (int l = 0; l < c_.n_layer; ++l) x = layer(l, x, n);

    if (mg.logit_rows != kNoTensor) {
      x = ops::get_rows(g_, x, mg.logit_rows);
    } else if (!options.all_logits && n > 1) {
      x = ops::row(g_, x, n - 1);
    }
    x = ops::rms_norm(g_, x, spec_weight(kOutputNormName), c_.rms_eps);
    g_[x].name = "output_norm";
    mg.logits = ops::mul_mat(g_, output_weight(), x);
    g_[mg.logits].name = "logits";
    g_.mark_output(mg.logits);
    if (options.best_logits.count > 0) {
      const int64_t vocab = g_[mg.logits].ne[0];
      const int64_t columns = options.best_logits.columns > 0 ? std::min(options.best_logits.columns, vocab) : vocab;
      const int count = static_cast<int>(std::min<int64_t>(options.best_logits.count, columns));
      mg.best_logits = ops::top_logits(g_, mg.logits, count, columns);
      g_[mg.best_logits].name = "best_logits";
      g_.mark_output(mg.best_logits);
    }
    g_.finalize();
  }

 private:
  const WeightSpec& spec(const std::string& name) const {
    const auto it = std::find_if(specs_.begin(), specs_.end(), [&](const WeightSpec& s) { return s.name == name; });
    BRAID_ASSERT(it != specs_.end() && "weight without spec");
    return *it;
  }
  TensorId spec_weight(const std::string& name) {
    const WeightSpec& s = spec(name);
    return weight(s.name, s.type, s.ne);
  }
  TensorId layer_weight(int l, const char* what) { return spec_weight(braid::layer_weight(l, what)); }

  // The output projection: output.weight, or with tied embeddings a leaf of that name
  // whose bytes are token_embd's (weight() finds them).
  TensorId output_weight() {
    if (!c_.tied_embeddings) return spec_weight(kOutputName);
    const WeightSpec& embedding = spec(kTokenEmbeddingName);
    return weight(kOutputName, embedding.type, embedding.ne);
  }

  // When fusing, the group's concatenated weight; kNoTensor when not fusing or when the
  // model keeps the group's parts apart (they differ in type).
  TensorId fused_weight(int l, const FusedGroup& group) {
    if (!fuse_) return kNoTensor;
    const std::string name = braid::layer_weight(l, group.fused.c_str());
    std::vector<Graph::Shape> shapes;
    std::vector<const WeightTensor*> parts;  // in the model, when there is one
    for (const std::string& part : group.parts) {
      const std::string part_name = braid::layer_weight(l, part.c_str());
      shapes.push_back(spec(part_name).ne);
      if (model_) parts.push_back(model_->find(part_name));
    }
    if (model_ && !model_->find(name)) {
      const bool has_parts = std::find(parts.begin(), parts.end(), nullptr) == parts.end();
      if (has_parts && !can_stack(parts)) return kNoTensor;
      throw Error(fmt::format("model {}: fused tensor {} is missing (fuse the weights with fuse_projections)",
                              c_.name, name));
    }
    return weight(name, c_.weight_type, stacked_shape(shapes));
  }

  // Rows [0, ff) and [ff, 2 ff) of a [2 ff, n] product, as [ff, n] views.
  std::pair<TensorId, TensorId> halves(TensorId product) {
    const Tensor& t = g_[product];
    const int64_t ff = t.ne[0] / 2, n = t.ne[1];
    const size_t row = t.nb[1];
    const size_t all = row * static_cast<size_t>(n);
    const std::array<size_t, kMaxDims> nb{t.nb[0], row, all, all};
    return {ops::view(g_, product, {ff, n, 1, 1}, nb, 0),
            ops::view(g_, product, {ff, n, 1, 1}, nb, static_cast<size_t>(ff) * t.nb[0])};
  }

  // q, k and v as [head_dim, heads, n]: three products, or views into one.
  std::array<TensorId, 3> qkv(int l, TensorId h, int n) {
    const int64_t hd = c_.head_dim();
    const std::array<int64_t, 3> heads{c_.n_head, c_.n_head_kv, c_.n_head_kv};
    const std::array<const char*, 3> names{"q", "k", "v"};
    std::array<TensorId, 3> out{};
    const TensorId fused = fused_weight(l, kFusedQkv);
    if (fused == kNoTensor) {
      for (size_t i = 0; i < 3; ++i) {
        TensorId p = named(ops::mul_mat(g_, layer_weight(l, kFusedQkv.parts[i].c_str()), h), l, names[i]);
        out[i] = ops::reshape(g_, p, {hd, heads[i], n, 1});
      }
    } else {
      const TensorId product = named(ops::mul_mat(g_, fused, h), l, "qkv");
      const size_t f = g_[product].nb[0], row = g_[product].nb[1];
      const std::array<size_t, kMaxDims> nb{f, static_cast<size_t>(hd) * f, row, row * static_cast<size_t>(n)};
      size_t offset = 0;
      for (size_t i = 0; i < 3; ++i) {
        out[i] = named(ops::view(g_, product, {hd, heads[i], n, 1}, nb, offset), l, names[i]);
        offset += static_cast<size_t>(hd * heads[i]) * f;
      }
    }
    if (c_.qkv_bias) {
      // The bias [hd * heads] seen as [hd, heads], repeated over the tokens.
      const std::array<const char*, 3> biased{"q_bias", "k_bias", "v_bias"};
      for (size_t i = 0; i < 3; ++i) {
        const TensorId bias = spec_weight(layer_bias(l, kFusedQkv.parts[i].c_str()));
        out[i] = named(ops::add(g_, out[i], ops::reshape(g_, bias, {hd, heads[i], 1, 1})), l, biased[i]);
      }
    }
    return out;
  }

  TensorId layer(int l, TensorId x, int n) {
    const int64_t hd = c_.head_dim();
    TensorId h = named(ops::rms_norm(g_, x, layer_weight(l, "attn_norm"), c_.rms_eps), l, "attn_norm");
    auto [q, k, v] = qkv(l, h, n);
    if (c_.qk_norm) {
      q = named(ops::rms_norm(g_, q, layer_weight(l, "attn_q_norm"), c_.rms_eps), l, "q_norm");
      k = named(ops::rms_norm(g_, k, layer_weight(l, "attn_k_norm"), c_.rms_eps), l, "k_norm");
    }
    const int dims = static_cast<int>(hd);
    q = named(ops::rope(g_, q, positions_, c_.rope_mode, dims, c_.rope_base, 1.0f, rope_freqs_), l, "q_rope");

    const Graph::Shape cache_shape{hd, c_.n_head_kv, cache_size_, 1};
    TensorId k_cache = g_.state(fmt::format("cache_k.{}", l), c_.cache_type, cache_shape);
    TensorId v_cache = g_.state(fmt::format("cache_v.{}", l), c_.cache_type, cache_shape);
    if (cache_rows_ == positions_) {
      // Only the cache reads the rotated keys: rotate them on the way in (one kernel).
      k_cache = named(ops::rope_kv_write(g_, k_cache, k, positions_, c_.rope_mode, dims, c_.rope_base, 1.0f,
                                         rope_freqs_), l, "k_cache");
    } else {  // a batch: the rotation's position is not the cache row
      k = named(ops::rope(g_, k, positions_, c_.rope_mode, dims, c_.rope_base, 1.0f, rope_freqs_), l, "k_rope");
      k_cache = named(ops::kv_write(g_, k_cache, k, cache_rows_), l, "k_cache");
    }
    v_cache = named(ops::kv_write(g_, v_cache, v, cache_rows_), l, "v_cache");
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const int region = cache_rows_ == positions_ ? 0 : c_.n_ctx;
    TensorId a = named(ops::attention(g_, q, k_cache, v_cache, cache_rows_, scale, region), l, "attention");
    a = ops::reshape(g_, a, {c_.q_dim(), n, 1, 1});
    x = project_add(l, "attn_output", a, x, "attn_out");

    h = named(ops::rms_norm(g_, x, layer_weight(l, "ffn_norm"), c_.rms_eps), l, "ffn_norm");
    if (c_.n_expert == 0) return dense_ffn(l, h, x);
    return named(ops::add(g_, x, summed(moe_ffn(l, h), l, "moe_sum")), l, "ffn_residual");
  }

  // A shard's partial result summed over the ranks (tensor parallelism); unchanged alone.
  TensorId summed(TensorId partial, int l, const char* what) {
    if (c_.tensor_ranks == 1) return partial;
    return named(ops::all_reduce(g_, partial, c_.tensor_ranks), l, what);
  }

  // x + w a: one mul_mat_add (the residual rides on the output projection). A shard adds
  // the residual after the all-reduce: added before it, every rank's copy would count.
  TensorId project_add(int l, const char* weight, TensorId a, TensorId x, const char* what) {
    const TensorId w = layer_weight(l, weight);
    if (c_.tensor_ranks == 1) return named(ops::mul_mat_add(g_, w, a, x), l, what);
    const TensorId partial = named(ops::mul_mat(g_, w, a), l, what);
    const std::string sum = std::string(what) + "_sum";
    return named(ops::add(g_, x, summed(partial, l, sum.c_str())), l, (std::string(what) + "_residual").c_str());
  }

  // x + down(swiglu(gate(h), up(h))).
  TensorId dense_ffn(int l, TensorId h, TensorId x) {
    TensorId gate, up;
    if (const TensorId fused = fused_weight(l, kFusedGateUp); fused != kNoTensor) {
      std::tie(gate, up) = halves(named(ops::mul_mat(g_, fused, h), l, "gate_up"));
    } else {
      gate = ops::mul_mat(g_, layer_weight(l, "ffn_gate"), h);
      up = ops::mul_mat(g_, layer_weight(l, "ffn_up"), h);
    }
    named(gate, l, "gate");
    named(up, l, "up");
    TensorId act = named(ops::swiglu(g_, gate, up), l, "swiglu");
    return project_add(l, "ffn_down", act, x, "down");
  }

  TensorId moe_ffn(int l, TensorId h) {
    TensorId router = named(ops::mul_mat(g_, layer_weight(l, "ffn_gate_inp"), h), l, "router");
    TensorId ids = named(ops::top_k(g_, router, c_.n_expert_used), l, "expert_ids");
    TensorId weights = named(ops::moe_weights(g_, router, ids), l, "expert_weights");
    const TensorId gate_up_w = fused_weight(l, kFusedGateUpExperts);
    const bool fused = gate_up_w != kNoTensor;
    const TensorId gate_w = fused ? kNoTensor : layer_weight(l, "ffn_gate_exps");
    const TensorId up_w = fused ? kNoTensor : layer_weight(l, "ffn_up_exps");
    const TensorId down_w = layer_weight(l, "ffn_down_exps");
    std::vector<TensorId> outputs;
    for (int s = 0; s < c_.n_expert_used; ++s) {
      TensorId gate, up;
      if (fused) {
        TensorId product = ops::mul_mat_id(g_, gate_up_w, h, ids, s);
        g_[product].name = fmt::format("blk.{}.gate_up.{}", l, s);
        std::tie(gate, up) = halves(product);
      } else {
        gate = ops::mul_mat_id(g_, gate_w, h, ids, s);
        up = ops::mul_mat_id(g_, up_w, h, ids, s);
      }
      g_[gate].name = fmt::format("blk.{}.gate.{}", l, s);
      g_[up].name = fmt::format("blk.{}.up.{}", l, s);
      TensorId act = ops::swiglu(g_, gate, up);
      g_[act].name = fmt::format("blk.{}.swiglu.{}", l, s);
      TensorId down = ops::mul_mat_id(g_, down_w, act, ids, s);
      g_[down].name = fmt::format("blk.{}.down.{}", l, s);
      outputs.push_back(down);
    }
    return named(ops::moe_combine(g_, weights, outputs), l, "moe_combine");
  }

  const ModelConfig& c_;
  const Model* model_;
  Graph& g_;
  std::vector<WeightSpec> specs_;
  bool fuse_ = false;
  TensorId rope_freqs_ = kNoTensor;  // every rope's frequency factors, when the model has them
  TensorId positions_ = kNoTensor;   // each token's position in its sequence (rope)
  TensorId cache_rows_ = kNoTensor;  // each token's cache row: positions_, or a batch's rows
  int64_t cache_size_ = 0;           // rows of each KV cache
};

}  // namespace

ModelGraph build_graph(const Model& model, int n_tokens, const GraphOptions& options) {
  model.config.check();
  ModelGraph mg;
  Builder(model.config, &model, mg.graph).build(n_tokens, options, mg);
  return mg;
}

ModelGraph build_graph_shapes(const ModelConfig& config, int n_tokens, const GraphOptions& options) {
  config.check();
  ModelGraph mg;
  Builder(config, nullptr, mg.graph).build(n_tokens, options, mg);
  return mg;
}

}  // namespace braid
