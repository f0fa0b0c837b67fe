// LLaMA and Mixtral models to and from GGUF, with llama.cpp's key and tensor names.
//
// Loading checks the file against the architecture before any weight is used: every
// tensor braid's graph reads must be present with the shape the config implies and a
// type braid computes with, and no tensor may be left over (a leftover such as
// rope_freqs.weight means the file asks for computation braid does not do, and
// ignoring it would give wrong results silently).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <set>

#include "braid/gguf.h"

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

ModelConfig read_config(const GgufFile& file) {
  const std::string arch = file.get_string("general.architecture");
  if (arch != "llama") {
    throw Error(fmt::format("{}: unsupported architecture '{}' (braid loads 'llama' files, Mixtral included)",
                            file.source(), arch));
  }
  ModelConfig c;
  c.name = file.get_string("general.name", std::filesystem::path(file.source()).stem().string());
  c.n_embd = read_count(file, "llama.embedding_length", -1, 1);
  c.n_ff = read_count(file, "llama.feed_forward_length", -1, 1);
  c.n_layer = read_count(file, "llama.block_count", -1, 1);
  c.n_head = read_count(file, "llama.attention.head_count", -1, 1);
  c.n_head_kv = read_count(file, "llama.attention.head_count_kv", c.n_head, 1);
  c.n_expert = read_count(file, "llama.expert_count", 0, 0);
  c.n_expert_used = read_count(file, "llama.expert_used_count", c.n_expert > 0 ? -1 : 0, c.n_expert > 0 ? 1 : 0);
  c.n_ctx = static_cast<int>(std::min<int64_t>(read_count(file, "llama.context_length", kMaxContext, 1), kMaxContext));
  c.rms_eps = static_cast<float>(file.get_float("llama.attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_base = static_cast<float>(file.get_float("llama.rope.freq_base", 10000.0));
  c.rope_mode = kRopeNormal;

  const auto fail = [&](const std::string& what) {
    throw Error(fmt::format("{}: {} ({})", file.source(), what, describe(c)));
  };
  if (c.n_embd % c.n_head != 0) fail("embedding length is not a multiple of the head count");
  if (c.n_head % c.n_head_kv != 0) fail("head count is not a multiple of the KV head count");
  if (c.n_expert_used > c.n_expert) fail("more experts used than there are experts");
  if (!(c.rms_eps > 0) || !(c.rope_base > 0)) fail("rms epsilon and rope base must be positive");
  const int head_dim = c.head_dim();
  if (read_count(file, "llama.rope.dimension_count", head_dim, 1) != head_dim) {
    fail("rope over part of the head (llama.rope.dimension_count) is not supported");
  }
  for (const char* key : {"llama.attention.key_length", "llama.attention.value_length"}) {
    if (read_count(file, key, head_dim, 1) != head_dim) fail(fmt::format("{} differs from the head size", key));
  }
  for (const char* key : {"llama.rope.scaling.factor", "llama.rope.scale_linear"}) {
    const double factor = file.get_float(key, 1.0);
    if (factor != 0.0 && factor != 1.0) fail(fmt::format("rope scaling ({} = {}) is not supported", key, factor));
  }
  return c;
}

// Adds expected tensors to the model after checking them against the config.
class TensorBinder {
 public:
  TensorBinder(const GgufFile& file, Model& model) : file_(file), model_(model) {}

  void bind(const std::string& name, Graph::Shape expected, bool is_norm, bool optional = false) {
    const GgufTensorInfo* info = file_.find_tensor(name);
    if (!info) {
      if (optional) return;
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
                              is_norm ? "f32" : "a float or q8_0/q4_0/q4_1 type"));
    }
    model_.add_tensor(WeightTensor{name, type, info->ne, info->data}, file_.keep_alive());
    used_.insert(name);
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

  const int64_t embd = c.n_embd, ff = c.n_ff, vocab = c.n_vocab, experts = c.n_expert;
  const int64_t kv = static_cast<int64_t>(c.n_head_kv) * c.head_dim();
  TensorBinder binder(file, model);
  binder.bind("token_embd.weight", {embd, vocab, 1, 1}, false);
  c.weight_type = model.tensors().back().type;
  binder.bind("output_norm.weight", {embd, 1, 1, 1}, true);
  binder.bind("output.weight", {embd, vocab, 1, 1}, false, /*optional=*/true);  // absent: tied to token_embd
  for (int layer = 0; layer < c.n_layer; ++layer) {
    const std::string p = fmt::format("blk.{}.", layer);
    binder.bind(p + "attn_norm.weight", {embd, 1, 1, 1}, true);
    binder.bind(p + "attn_q.weight", {embd, embd, 1, 1}, false);
    binder.bind(p + "attn_k.weight", {embd, kv, 1, 1}, false);
    binder.bind(p + "attn_v.weight", {embd, kv, 1, 1}, false);
    binder.bind(p + "attn_output.weight", {embd, embd, 1, 1}, false);
    binder.bind(p + "ffn_norm.weight", {embd, 1, 1, 1}, true);
    if (experts == 0) {
      binder.bind(p + "ffn_gate.weight", {embd, ff, 1, 1}, false);
      binder.bind(p + "ffn_up.weight", {embd, ff, 1, 1}, false);
      binder.bind(p + "ffn_down.weight", {ff, embd, 1, 1}, false);
    } else {
      binder.bind(p + "ffn_gate_inp.weight", {embd, experts, 1, 1}, false);
      binder.bind(p + "ffn_gate_exps.weight", {embd, ff, experts, 1}, false);
      binder.bind(p + "ffn_up_exps.weight", {embd, ff, experts, 1}, false);
      binder.bind(p + "ffn_down_exps.weight", {ff, embd, experts, 1}, false);
    }
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
  writer.set("general.architecture", GgufValue::string("llama"));
  writer.set("general.name", GgufValue::string(c.name));
  writer.set("general.file_type", GgufValue::u32(llama_file_type(c.weight_type, c.weight_mix)));
  if (traits(c.weight_type).quantized) writer.set("general.quantization_version", GgufValue::u32(2));
  writer.set("llama.vocab_size", GgufValue::u32(static_cast<uint32_t>(c.n_vocab)));
  writer.set("llama.context_length", GgufValue::u32(static_cast<uint32_t>(c.n_ctx)));
  writer.set("llama.embedding_length", GgufValue::u32(static_cast<uint32_t>(c.n_embd)));
  writer.set("llama.block_count", GgufValue::u32(static_cast<uint32_t>(c.n_layer)));
  writer.set("llama.feed_forward_length", GgufValue::u32(static_cast<uint32_t>(c.n_ff)));
  writer.set("llama.rope.dimension_count", GgufValue::u32(static_cast<uint32_t>(c.head_dim())));
  writer.set("llama.attention.head_count", GgufValue::u32(static_cast<uint32_t>(c.n_head)));
  writer.set("llama.attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(c.n_head_kv)));
  writer.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(c.rms_eps));
  writer.set("llama.rope.freq_base", GgufValue::f32(c.rope_base));
  if (c.n_expert > 0) {
    writer.set("llama.expert_count", GgufValue::u32(static_cast<uint32_t>(c.n_expert)));
    writer.set("llama.expert_used_count", GgufValue::u32(static_cast<uint32_t>(c.n_expert_used)));
  }
  if (c.rope_mode != kRopeNormal) {
    throw Error(fmt::format("model {}: llama GGUF files use normal rope, this model uses mode {}", c.name, c.rope_mode));
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
