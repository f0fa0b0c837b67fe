// Models to and from GGUF (LLaMA, Mixtral, Qwen2, Qwen3; Phi-3 read only), with llama.cpp's key and
// tensor names: keys under the architecture's name ("qwen2.embedding_length").
//
// Loading checks the file against the architecture before any weight is used: every
// tensor braid's graph reads must be present with the shape the config implies and a
// type braid computes with, and no tensor may be left over (a leftover such as a bias
// in a LLaMA file means the file asks for computation braid does not do, and ignoring
// it would give wrong results silently).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "braid/gguf.h"
#include "model/fusion.h"
#include "model/weight_names.h"

namespace braid {
namespace {

constexpr int64_t kMaxContext = 4096;  // KV cache length cap: the file's context can be 128k

std::string shape_text(const Graph::Shape& ne) {
  int dims = kMaxDims;
  while (dims > 1 && ne[static_cast<size_t>(dims - 1)] == 1) --dims;
  std::string out = "[";
  for (int d = 0; d < dims; ++d) out += fmt::format("{}{}", d ? ", " : "", ne[static_cast<size_t>(d)]);
  return out + "]";
}

int read_count(const GgufFile& file, const std::string& key, int64_t fallback, int64_t minimum) {
  const int64_t value = fallback < 0 ? file.get_int(key) : file.get_int(key, fallback);
  if (value < minimum || value > std::numeric_limits<int32_t>::max()) {
    throw Error(fmt::format("{}: metadata key '{}' = {} is out of range", file.source(), key, value));
  }
  return static_cast<int>(value);
}

std::string describe(const ModelConfig& c) {
  return fmt::format("n_embd {}, n_ff {}, n_head {}, n_head_kv {}, n_vocab {}, n_expert {}", c.n_embd, c.n_ff, c.n_head,
                     c.n_head_kv, c.n_vocab, c.n_expert);
}

// Llama 3 rope scaling from metadata, for files that name it ("llama3") but carry no
// rope_freqs.weight; the factors are then computed as transformers computes them.
Llama3RopeScaling read_llama3_scaling(const GgufFile& file, const std::string& arch) {
  Llama3RopeScaling s;
  s.factor = static_cast<float>(file.get_float(arch + ".rope.scaling.factor", 8.0));
  s.low_freq_factor = static_cast<float>(file.get_float(arch + ".rope.scaling.low_freq_factor", s.low_freq_factor));
  s.high_freq_factor = static_cast<float>(file.get_float(arch + ".rope.scaling.high_freq_factor", s.high_freq_factor));
  s.original_context =
      read_count(file, arch + ".rope.scaling.original_context_length", s.original_context, 1);
  return s;
}

ModelConfig read_config(const GgufFile& file) {
  ModelConfig c;
  c.name = file.get_string("general.name", std::filesystem::path(file.source()).stem().string());
  c.architecture = file.get_string("general.architecture");
  try {
    apply_architecture(c);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", file.source(), e.what()));
  }
  const std::string& a = c.architecture;  // every key below is under the architecture's name
  c.n_embd = read_count(file, a + ".embedding_length", -1, 1);
  c.n_ff = read_count(file, a + ".feed_forward_length", -1, 1);
  c.n_layer = read_count(file, a + ".block_count", -1, 1);
  // Every layer has tensors of its own: a count beyond the file's tensors is refused before
  // the names of its weights are listed (a fuzzed count of billions ran out of memory there).
  if (static_cast<size_t>(c.n_layer) > file.tensors().size()) {
    throw Error(fmt::format("{}: {}.block_count is {}, but the file holds only {} tensors", file.source(), a, c.n_layer,
                            file.tensors().size()));
  }
  c.n_head = read_count(file, a + ".attention.head_count", -1, 1);
  c.n_head_kv = read_count(file, a + ".attention.head_count_kv", c.n_head, 1);
  c.n_expert = read_count(file, a + ".expert_count", 0, 0);
  c.n_expert_used = read_count(file, a + ".expert_used_count", c.n_expert > 0 ? -1 : 0, c.n_expert > 0 ? 1 : 0);
  c.n_ctx = static_cast<int>(std::min<int64_t>(read_count(file, a + ".context_length", kMaxContext, 1), kMaxContext));
  c.rms_eps = static_cast<float>(file.get_float(a + ".attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_base = static_cast<float>(file.get_float(a + ".rope.freq_base", 10000.0));

  const auto fail = [&](const std::string& what) {
    throw Error(fmt::format("{}: {} ({})", file.source(), what, describe(c)));
  };
  // The head size is key_length when the file gives it (Qwen3: not n_embd / n_head).
  const int64_t key_length = file.get_int(a + ".attention.key_length", 0);
  if (key_length != 0) {
    c.n_head_dim = read_count(file, a + ".attention.key_length", -1, 1);
    if (c.n_head_dim == c.n_embd / c.n_head && c.n_embd % c.n_head == 0) c.n_head_dim = 0;  // the default
  } else if (c.n_embd % c.n_head != 0) {
    fail("embedding length is not a multiple of the head count");
  }
  if (c.n_head % c.n_head_kv != 0) fail("head count is not a multiple of the KV head count");
  if (c.n_expert_used > c.n_expert) fail("more experts used than there are experts");
  if (!(c.rms_eps > 0) || !(c.rope_base > 0)) fail("rms epsilon and rope base must be positive");
  const int head_dim = c.head_dim();
  if (read_count(file, a + ".rope.dimension_count", head_dim, 1) != head_dim) {
    fail(fmt::format("rope over part of the head ({}.rope.dimension_count) is not supported", a));
  }
  if (read_count(file, a + ".attention.value_length", head_dim, 1) != head_dim) {
    fail(fmt::format("{}.attention.value_length differs from the key length {}", a, head_dim));
  }
  // Llama 3 scaling arrives as rope_freqs.weight (llama.cpp's converter) or, failing
  // that, as a scaling type "llama3" whose factors braid computes. Other scalings
  // (linear, yarn) change the computation in ways braid does not do.
  const std::string scaling_type = file.get_string(a + ".rope.scaling.type", "none");
  if (file.find_tensor(kRopeFreqsName)) {
    c.rope_freq_factors = true;
  } else if (scaling_type == "llama3") {
    c.rope_freq_factors = true;
    c.rope_scaling = read_llama3_scaling(file, a);
  } else if (scaling_type != "none") {
    fail(fmt::format("rope scaling type '{}' is not supported (braid does llama3 scaling)", scaling_type));
  } else {
    for (const std::string& key : {a + ".rope.scaling.factor", a + ".rope.scale_linear"}) {
      const double factor = file.get_float(key, 1.0);
      if (factor != 0.0 && factor != 1.0) fail(fmt::format("rope scaling ({} = {}) is not supported", key, factor));
    }
  }
  if (file.find_tensor("rope_factors_long.weight") || file.find_tensor("rope_factors_short.weight")) {
    fail("long-context rope scaling (rope_factors_long/short, Phi-3 128k) is not supported");
  }
  // A sliding window (Phi-3 4k: 2047) lets a token see only the window's last positions.
  // braid attends to the whole cache, which is the same while the cache is no longer than
  // the window: the context stops there.
  const int64_t window = file.get_int(a + ".attention.sliding_window", 0);
  if (window > 0) c.n_ctx = static_cast<int>(std::min<int64_t>(c.n_ctx, window));
  return c;
}

// Adds expected tensors to the model after checking them against the config.
class TensorBinder {
 public:
  TensorBinder(const GgufFile& file, Model& model) : file_(file), model_(model) {}

  void bind(const std::string& name, Graph::Shape expected, bool is_norm, bool optional = false) {
    const auto [info, type] = checked(name, expected, is_norm, optional);
    if (!info) return;
    model_.add_tensor(WeightTensor{name, type, info->ne, info->data}, file_.keep_alive());
    used_.insert(name);
  }

  // Adds `as_name` as rows [first_row, first_row + expected[1]) of the file's packed tensor
  // `packed` (Phi-3's attn_qkv and ffn_up): a row is contiguous, so the part is a span of
  // the packed tensor's bytes. `packed_rows` is the packed tensor's expected row count.
  void bind_rows(const std::string& packed, int64_t packed_rows, int64_t first_row, const std::string& as_name,
                 Graph::Shape expected) {
    const auto [info, type] = checked(packed, {expected[0], packed_rows, 1, 1}, false, false);
    const auto* data = static_cast<const uint8_t*>(info->data) + first_row * row_bytes(type, expected[0]);
    model_.add_tensor(WeightTensor{as_name, type, expected, data}, file_.keep_alive());
    used_.insert(packed);
  }

  void check_all_used() const {
    for (const GgufTensorInfo& info : file_.tensors()) {
      if (!used_.count(info.name)) {
        throw Error(fmt::format("{}: unexpected tensor {} (braid's llama graph does not use it{})", file_.source(),
                                info.name,
                                info.name.find(".ffn_gate.") != std::string::npos ||
                                        info.name.find(".ffn_up.") != std::string::npos ||
                                        info.name.find(".ffn_down.") != std::string::npos
                                    ? "; per-expert MoE tensors must be merged into *_exps tensors"
                                    : ""));
      }
    }
  }

 private:
  static std::string_view name_of(DType type) { return name(type); }

  // The file's tensor `name` and its type, checked against the shape and kind of type the
  // model needs (norms f32); a null tensor for a missing optional one.
  std::pair<const GgufTensorInfo*, DType> checked(const std::string& name, const Graph::Shape& expected, bool is_norm,
                                                  bool optional) const {
    const GgufTensorInfo* info = file_.find_tensor(name);
    if (!info) {
      if (optional) return {nullptr, DType::F32};
      throw Error(fmt::format("{}: tensor {} is missing (expected shape {})", file_.source(), name,
                              shape_text(expected)));
    }
    if (info->ne != expected) {
      throw Error(fmt::format("{}: tensor {} has shape {}, expected {} for this model ({})", file_.source(), name,
                              info->shape_string(), shape_text(expected), describe(model_.config)));
    }
    DType type;
    try {
      type = info->dtype();
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", file_.source(), e.what()));
    }
    if (type == DType::I32 || (is_norm && type != DType::F32)) {
      throw Error(fmt::format("{}: tensor {} has type {}, expected {}", file_.source(), name, name_of(type),
                              is_norm ? "f32" : "a float or quantized type"));
    }
    return {info, type};
  }
  const GgufFile& file_;
  Model& model_;
  std::set<std::string> used_;
};

}  // namespace

Model load_gguf_model(const std::string& path) { return load_gguf_model(GgufFile::open(path)); }

Model load_gguf_model(const GgufFile& file) {
  Model model;
  model.config = read_config(file);
  ModelConfig& c = model.config;
  const GgufTensorInfo& embedding = file.tensor("token_embd.weight");
  if (embedding.n_dims != 2 || embedding.ne[0] != c.n_embd || embedding.ne[1] < 1 ||
      embedding.ne[1] > std::numeric_limits<int32_t>::max()) {
    throw Error(fmt::format("{}: tensor token_embd.weight has shape {}, expected [{}, n_vocab]", file.source(),
                            embedding.shape_string(), c.n_embd));
  }
  c.n_vocab = static_cast<int>(embedding.ne[1]);

  c.tied_embeddings = file.find_tensor(kOutputName) == nullptr;

  // Every tensor the config implies (weight_specs), with the file's types: matrices may
  // be any type braid computes with, the rest must be f32.
  TensorBinder binder(file, model);
  binder.bind(kTokenEmbeddingName, {c.n_embd, c.n_vocab, 1, 1}, false);
  c.weight_type = model.tensors().back().type;
  if (c.rope_freq_factors && !file.find_tensor(kRopeFreqsName)) {
    std::vector<float> factors;
    try {
      factors = llama3_rope_freq_factors(c.rope_scaling, c.head_dim(), c.rope_base);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", file.source(), e.what()));
    }
    uint8_t* data = model.add_owned_tensor(kRopeFreqsName, DType::F32, {c.head_dim() / 2, 1, 1, 1});
    from_f32(DType::F32, factors.data(), data, static_cast<int64_t>(factors.size()));
  }
  if (c.packed_projections) {
    // Phi-3's file holds q/k/v and gate/up stacked as fuse_projections stacks them
    // (model/fusion.h), under its own names: each part is its rows of the stack.
    std::map<std::string, Graph::Shape> shapes;
    for (const WeightSpec& spec : weight_specs(c)) shapes.emplace(spec.name, spec.ne);
    for (int l = 0; l < c.n_layer; ++l) {
      for (const auto& [group, packed] : {std::pair{kFusedQkv, "attn_qkv"}, std::pair{kFusedGateUp, "ffn_up"}}) {
        std::vector<Graph::Shape> parts;
        for (const std::string& part : group.parts) parts.push_back(shapes.at(layer_weight(l, part.c_str())));
        const int64_t packed_rows = stacked_shape(parts)[1];
        int64_t first_row = 0;
        for (size_t i = 0; i < parts.size(); ++i) {
          binder.bind_rows(layer_weight(l, packed), packed_rows, first_row, layer_weight(l, group.parts[i].c_str()),
                           parts[i]);
          first_row += parts[i][1];
        }
      }
    }
  }
  for (const WeightSpec& spec : weight_specs(c)) {
    if (spec.name == kTokenEmbeddingName || (spec.role == WeightRole::RopeFreqs && model.find(spec.name))) continue;
    if (c.packed_projections && model.find(spec.name)) continue;  // (unpacked above)
    const bool f32_only =
        spec.role == WeightRole::Norm || spec.role == WeightRole::Bias || spec.role == WeightRole::RopeFreqs;
    binder.bind(spec.name, spec.ne, f32_only);
  }
  binder.check_all_used();
  if (const WeightTensor* q = model.find("blk.0.attn_q.weight")) c.weight_type = q->type;
  // What the graph builder will demand (an even head size for rope, ...): refused here,
  // with the file's name, rather than when the first graph is built.
  try {
    c.check();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", file.source(), e.what()));
  }
  return model;
}

namespace {

size_t token_count(const GgufFile& vocab) {
  try {
    return vocab.get_array("tokenizer.ggml.tokens").size();
  } catch (const Error& e) {
    throw Error(fmt::format("{} has no usable vocabulary: {}", vocab.source(), e.what()));
  }
}

}  // namespace

void save_gguf_model(const Model& model, const std::string& path, const GgufFile* vocab_source) {
  const ModelConfig& c = model.config;
  GgufWriter writer;
  if (c.packed_projections) {
    throw Error(fmt::format("model {}: writing '{}' files (packed q/k/v and gate/up) is not supported", c.name,
                            c.architecture));
  }
  ModelConfig expected = c;  // the options that the architecture's name implies
  apply_architecture(expected);
  if (expected.rope_mode != c.rope_mode || expected.qkv_bias != c.qkv_bias || expected.qk_norm != c.qk_norm) {
    throw Error(fmt::format("model {}: its rope mode {}, q/k/v biases ({}) and q/k norms ({}) are not what '{}' files "
                            "have",
                            c.name, c.rope_mode, c.qkv_bias, c.qk_norm, c.architecture));
  }
  const std::string& a = c.architecture;
  const auto u32 = [](int64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  writer.set("general.architecture", GgufValue::string(a));
  writer.set("general.name", GgufValue::string(c.name));
  writer.set("general.file_type", GgufValue::u32(llama_file_type(c.weight_type, c.weight_mix)));
  if (traits(c.weight_type).quantized) writer.set("general.quantization_version", GgufValue::u32(2));
  writer.set(a + ".vocab_size", u32(c.n_vocab));
  writer.set(a + ".context_length", u32(c.n_ctx));
  writer.set(a + ".embedding_length", u32(c.n_embd));
  writer.set(a + ".block_count", u32(c.n_layer));
  writer.set(a + ".feed_forward_length", u32(c.n_ff));
  writer.set(a + ".rope.dimension_count", u32(c.head_dim()));
  writer.set(a + ".attention.head_count", u32(c.n_head));
  writer.set(a + ".attention.head_count_kv", u32(c.n_head_kv));
  if (c.n_head_dim > 0) {
    writer.set(a + ".attention.key_length", u32(c.head_dim()));
    writer.set(a + ".attention.value_length", u32(c.head_dim()));
  }
  writer.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::f32(c.rms_eps));
  writer.set(a + ".rope.freq_base", GgufValue::f32(c.rope_base));
  if (c.n_expert > 0) {
    writer.set(a + ".expert_count", u32(c.n_expert));
    writer.set(a + ".expert_used_count", u32(c.n_expert_used));
  }
  if (vocab_source) {
    const size_t tokens = token_count(*vocab_source);
    if (tokens != static_cast<size_t>(c.n_vocab)) {
      throw Error(fmt::format("{} has {} tokens but model {} has a vocabulary of {}", vocab_source->source(), tokens,
                              c.name, c.n_vocab));
    }
    for (const auto& [key, value] : vocab_source->metadata()) {
      if (key.rfind("tokenizer.", 0) == 0) writer.set(key, value);
    }
  } else {
    // llama.cpp accepts a vocabulary-less model and takes its size from llama.vocab_size.
    writer.set("tokenizer.ggml.model", GgufValue::string("no_vocab"));
  }
  for (const WeightTensor& t : model.tensors()) {
    if (!t.data) throw Error(fmt::format("model {}: tensor {} has no data to write", c.name, t.name));
    writer.add_tensor(t.name, t.type, t.ne, t.data);
  }
  writer.write(path);
}

}  // namespace braid
