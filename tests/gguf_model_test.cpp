// Models from and to GGUF: configs of the fixtures, shape and type checks, round trips.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "braid/gguf.h"
#include "gguf_test_util.h"

namespace braid {
namespace {

using test::fixture;
using test::have_fixture;
using test::Metadata;
using test::rewrite;
using test::set_key;
using test::TensorList;

void drop_key(Metadata& metadata, const std::string& key) {
  std::erase_if(metadata, [&](const auto& entry) { return entry.first == key; });
}

void drop_tensor(TensorList& tensors, const std::string& name) {
  std::erase_if(tensors, [&](const GgufTensorInfo& t) { return t.name == name; });
}

GgufTensorInfo& tensor_in(TensorList& tensors, const std::string& name) {
  for (GgufTensorInfo& t : tensors) {
    if (t.name == name) return t;
  }
  throw Error("test: no tensor " + name);
}

// The error message of loading `path`; fails the test when it loads.
std::string load_error(const std::string& path) {
  try {
    load_gguf_model(path);
  } catch (const Error& e) {
    std::filesystem::remove(path);
    return e.what();
  }
  std::filesystem::remove(path);
  ADD_FAILURE() << path << " loaded";
  return {};
}

using test::contains;

TEST(GgufModel, Stories260KConfig) {
  if (!have_fixture("stories260K.gguf")) return;
  const GgufFile file = GgufFile::open(fixture("stories260K.gguf"));
  const Model model = load_gguf_model(file);
  const ModelConfig& c = model.config;
  EXPECT_EQ(c.name, "llama");
  EXPECT_EQ(c.n_layer, 5);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_head, 8);
  EXPECT_EQ(c.n_head_kv, 4);
  EXPECT_EQ(c.head_dim(), 8);
  EXPECT_EQ(c.n_ff, 172);
  EXPECT_EQ(c.n_vocab, 512);
  EXPECT_EQ(c.n_ctx, 2048);
  EXPECT_EQ(c.n_expert, 0);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_base, 10000.0f);
  EXPECT_EQ(c.rope_mode, kRopeNormal);
  EXPECT_EQ(c.weight_type, DType::F32);
  EXPECT_EQ(model.tensors().size(), 48u);
  EXPECT_EQ(model.parameter_count(), 292800);
  EXPECT_EQ(model.weight_bytes(), 292800u * 4u);
  // Weights are used in place from the mapping.
  for (const GgufTensorInfo& t : file.tensors()) {
    const WeightTensor& w = model.get(t.name);
    EXPECT_EQ(w.data, t.data) << t.name;
    EXPECT_EQ(w.ne, t.ne) << t.name;
  }
}

TEST(GgufModel, WeightsOutliveTheFileObject) {
  if (!have_fixture("stories260K.gguf")) return;
  const Model model = load_gguf_model(fixture("stories260K.gguf"));  // the GgufFile is gone
  const GgufFile again = GgufFile::open(fixture("stories260K.gguf"));
  const WeightTensor& w = model.get("blk.3.ffn_down.weight");
  ASSERT_EQ(w.bytes(), again.tensor("blk.3.ffn_down.weight").bytes);
  EXPECT_EQ(std::memcmp(w.data, again.tensor("blk.3.ffn_down.weight").data, w.bytes()), 0);
}

TEST(GgufModel, TinyRandomLlamaConfig) {
  if (!have_fixture("llama-2-tiny-random.gguf")) return;
  const Model model = load_gguf_model(fixture("llama-2-tiny-random.gguf"));
  const ModelConfig& c = model.config;
  EXPECT_EQ(c.name, "LLaMA v2");
  EXPECT_EQ(c.n_layer, 1);
  EXPECT_EQ(c.n_embd, 8);
  EXPECT_EQ(c.n_head, 2);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.n_ff, 32);
  EXPECT_EQ(c.n_vocab, 32000);
  EXPECT_EQ(c.n_ctx, 4096);
  EXPECT_EQ(c.weight_type, DType::F16);
  EXPECT_EQ(model.get("blk.0.attn_norm.weight").type, DType::F32);
  EXPECT_EQ(model.get("output.weight").type, DType::F16);
  EXPECT_EQ(model.tensors().size(), 12u);
}

// The real SmolLM2-135M-Instruct (scripts/fetch_smollm2.sh): Q4_1 matrices, a Q8_0
// embedding tied to the output (no output.weight), 9 query heads on 3 KV heads.
TEST(GgufModel, SmolLM2Config) {
  const std::string path = test::real_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (path.empty()) return;
  const Model model = load_gguf_model(path);
  const ModelConfig& c = model.config;
  EXPECT_EQ(c.n_layer, 30);
  EXPECT_EQ(c.n_embd, 576);
  EXPECT_EQ(c.n_head, 9);
  EXPECT_EQ(c.n_head_kv, 3);
  EXPECT_EQ(c.head_dim(), 64);
  EXPECT_EQ(c.n_ff, 1536);
  EXPECT_EQ(c.n_vocab, 49152);
  EXPECT_FLOAT_EQ(c.rope_base, 100000.0f);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_EQ(c.weight_type, DType::Q4_1);
  EXPECT_EQ(model.get("token_embd.weight").type, DType::Q8_0);
  EXPECT_EQ(model.find("output.weight"), nullptr);
  EXPECT_EQ(model.get("blk.29.attn_k.weight").ne, (Graph::Shape{576, 192, 1, 1}));
  EXPECT_EQ(model.tensors().size(), 272u);
}

TEST(GgufModel, DefaultsAndCaps) {
  if (!have_fixture("stories260K.gguf")) return;
  const GgufFile source = GgufFile::open(fixture("stories260K.gguf"));
  const std::string path = test::temp_path("defaults.gguf");
  rewrite(source, path, [](Metadata& m, TensorList& t) {
    set_key(m, "llama.context_length", GgufValue::u32(131072));
    set_key(m, "llama.rope.freq_base", GgufValue::f32(500000.0f));
    drop_key(m, "llama.attention.layer_norm_rms_epsilon");
    drop_key(m, "general.name");
    drop_tensor(t, "output.weight");
  });
  const Model model = load_gguf_model(path);
  EXPECT_EQ(model.config.n_ctx, 4096);
  EXPECT_FLOAT_EQ(model.config.rope_base, 500000.0f);
  EXPECT_FLOAT_EQ(model.config.rms_eps, 1e-5f);
  EXPECT_EQ(model.config.name, std::filesystem::path(path).stem().string());
  EXPECT_EQ(model.find("output.weight"), nullptr);  // tied to token_embd
  EXPECT_EQ(model.tensors().size(), 47u);
  std::filesystem::remove(path);
}

TEST(GgufModel, ShapeMismatchesNameTheTensor) {
  if (!have_fixture("stories260K.gguf")) return;
  const GgufFile source = GgufFile::open(fixture("stories260K.gguf"));
  const std::string path = test::temp_path("bad.gguf");

  // Without head_count_kv, the KV heads default to the 8 query heads: attn_k is then too small.
  rewrite(source, path, [](Metadata& m, TensorList&) { drop_key(m, "llama.attention.head_count_kv"); });
  std::string message = load_error(path);
  EXPECT_TRUE(contains(message, "tensor blk.0.attn_k.weight has shape [64, 32], expected [64, 64]")) << message;
  EXPECT_TRUE(contains(message, "n_head_kv 8")) << message;

  rewrite(source, path, [](Metadata&, TensorList& t) { tensor_in(t, "blk.2.ffn_up.weight").ne = {172, 64, 1, 1}; });
  message = load_error(path);
  EXPECT_TRUE(contains(message, "tensor blk.2.ffn_up.weight has shape [172, 64], expected [64, 172]")) << message;

  rewrite(source, path, [](Metadata& m, TensorList&) { set_key(m, "llama.feed_forward_length", GgufValue::u32(128)); });
  message = load_error(path);
  EXPECT_TRUE(contains(message, "tensor blk.0.ffn_gate.weight has shape [64, 172], expected [64, 128]")) << message;

  rewrite(source, path, [](Metadata&, TensorList& t) { drop_tensor(t, "blk.3.ffn_norm.weight"); });
  message = load_error(path);
  EXPECT_TRUE(contains(message, "tensor blk.3.ffn_norm.weight is missing (expected shape [64])")) << message;

  rewrite(source, path, [](Metadata& m, TensorList&) { set_key(m, "llama.block_count", GgufValue::u32(6)); });
  EXPECT_TRUE(contains(load_error(path), "tensor blk.5.attn_norm.weight is missing"));

  rewrite(source, path, [](Metadata& m, TensorList&) { set_key(m, "llama.block_count", GgufValue::u32(4)); });
  EXPECT_TRUE(contains(load_error(path), "unexpected tensor blk.4.attn_q.weight"));

  rewrite(source, path, [](Metadata& m, TensorList& t) {
    set_key(m, "llama.expert_count", GgufValue::u32(8));
    set_key(m, "llama.expert_used_count", GgufValue::u32(2));
  });
  EXPECT_TRUE(contains(load_error(path), "tensor blk.0.ffn_gate_inp.weight is missing"));

  rewrite(source, path, [](Metadata& m, TensorList&) { set_key(m, "llama.embedding_length", GgufValue::u32(60)); });
  message = load_error(path);
  EXPECT_TRUE(contains(message, "embedding length is not a multiple of the head count")) << message;
}

TEST(GgufModel, UnsupportedFilesAreRefusedClearly) {
  if (!have_fixture("stories260K.gguf")) return;
  const GgufFile source = GgufFile::open(fixture("stories260K.gguf"));
  const std::string path = test::temp_path("unsupported.gguf");
  rewrite(source, path, [](Metadata& m, TensorList&) { set_key(m, "general.architecture", GgufValue::string("gpt2")); });
  EXPECT_TRUE(contains(load_error(path), "unsupported architecture 'gpt2'"));
  rewrite(source, path, [](Metadata& m, TensorList&) { set_key(m, "llama.block_count", GgufValue::string("five")); });
  EXPECT_TRUE(contains(load_error(path), "metadata key 'llama.block_count': expected an integer, found a string"));
  rewrite(source, path, [](Metadata& m, TensorList&) { drop_key(m, "llama.embedding_length"); });
  EXPECT_TRUE(contains(load_error(path), "metadata key 'llama.embedding_length' is missing"));
  rewrite(source, path, [](Metadata& m, TensorList&) { set_key(m, "llama.rope.dimension_count", GgufValue::u32(4)); });
  EXPECT_TRUE(contains(load_error(path), "rope over part of the head"));
  rewrite(source, path, [](Metadata& m, TensorList&) { set_key(m, "llama.rope.scaling.factor", GgufValue::f32(8)); });
  EXPECT_TRUE(contains(load_error(path), "rope scaling"));
  // Llama 3's rope frequency factors, one too many for the head size.
  const int64_t pairs = load_gguf_model(source).config.head_dim() / 2;
  const std::vector<float> freqs = test::random_floats(static_cast<size_t>(pairs + 1), 5);
  GgufTensorInfo rope_freqs;
  rope_freqs.name = "rope_freqs.weight";
  rope_freqs.ne = {pairs + 1, 1, 1, 1};
  rope_freqs.bytes = freqs.size() * sizeof(float);
  rope_freqs.data = reinterpret_cast<const uint8_t*>(freqs.data());
  rewrite(source, path, [&](Metadata&, TensorList& t) { t.push_back(rope_freqs); });
  std::string message = load_error(path);
  EXPECT_TRUE(contains(message, "tensor rope_freqs.weight has shape")) << message;
  // An extra tensor that changes the computation (a bias braid's llama graph lacks).
  GgufTensorInfo bias = rope_freqs;
  bias.name = "blk.0.attn_q.bias";
  rewrite(source, path, [&](Metadata&, TensorList& t) { t.push_back(bias); });
  EXPECT_TRUE(contains(load_error(path), "unexpected tensor blk.0.attn_q.bias"));
  // A norm must be f32.
  rewrite(source, path, [](Metadata&, TensorList& t) {
    GgufTensorInfo& norm = tensor_in(t, "blk.1.ffn_norm.weight");
    norm.ggml_type = 1;  // f16: half the bytes of the f32 data
    norm.bytes /= 2;
  });
  EXPECT_TRUE(contains(load_error(path), "tensor blk.1.ffn_norm.weight has type f16, expected f32"));
}

TEST(GgufModel, UnsupportedTensorTypeIsNamed) {
  ModelConfig config = test::small_config();
  config.n_embd = 256;
  const Model model = test::make_test_model(config, 21);
  const std::string saved = test::temp_path("dense.gguf");
  save_gguf_model(model, saved);
  // iq4_xs: 256-element blocks of 136 bytes, a type braid does not compute with.
  std::vector<uint8_t> iq4(static_cast<size_t>(256 * 256 / 256 * 136), 0x5a);
  const std::string path = test::temp_path("iq4_xs.gguf");
  rewrite(GgufFile::open(saved), path, [&](Metadata&, TensorList& t) {
    GgufTensorInfo& q = tensor_in(t, "blk.0.attn_q.weight");
    q.ggml_type = 23;
    q.bytes = iq4.size();
    q.data = iq4.data();
  });
  EXPECT_TRUE(contains(load_error(path), "unsupported tensor type iq4_xs for blk.0.attn_q.weight"));
  std::filesystem::remove(saved);
}

void expect_same_model(const Model& a, const Model& b) {
  EXPECT_EQ(b.config.name, a.config.name);
  EXPECT_EQ(b.config.n_embd, a.config.n_embd);
  EXPECT_EQ(b.config.n_ff, a.config.n_ff);
  EXPECT_EQ(b.config.n_head, a.config.n_head);
  EXPECT_EQ(b.config.n_head_kv, a.config.n_head_kv);
  EXPECT_EQ(b.config.n_layer, a.config.n_layer);
  EXPECT_EQ(b.config.n_vocab, a.config.n_vocab);
  EXPECT_EQ(b.config.n_expert, a.config.n_expert);
  EXPECT_EQ(b.config.n_expert_used, a.config.n_expert_used);
  EXPECT_EQ(b.config.n_ctx, a.config.n_ctx);
  EXPECT_EQ(b.config.rope_base, a.config.rope_base);
  EXPECT_EQ(b.config.rms_eps, a.config.rms_eps);
  EXPECT_EQ(b.config.weight_type, a.config.weight_type);
  ASSERT_EQ(b.tensors().size(), a.tensors().size());
  for (const WeightTensor& t : a.tensors()) {
    const WeightTensor& u = b.get(t.name);
    EXPECT_EQ(u.type, t.type) << t.name;
    EXPECT_EQ(u.ne, t.ne) << t.name;
    ASSERT_EQ(u.bytes(), t.bytes()) << t.name;
    EXPECT_EQ(std::memcmp(u.data, t.data, t.bytes()), 0) << t.name;
  }
}

TEST(GgufModel, SaveAndLoadDenseAndMoe) {
  for (const int experts : {0, 4}) {
    const Model model = test::make_test_model(test::small_config(experts), 7);
    const std::string path = test::temp_path("model.gguf");
    save_gguf_model(model, path);
    const GgufFile file = GgufFile::open(path);
    EXPECT_EQ(file.get_string("general.architecture"), "llama");
    EXPECT_EQ(file.get_int("general.file_type"), 7);  // llama.cpp's MOSTLY_Q8_0
    EXPECT_EQ(file.get_int("general.quantization_version"), 2);
    EXPECT_EQ(file.get_int("llama.vocab_size"), 40);
    EXPECT_EQ(file.get_int("llama.rope.dimension_count"), 16);
    EXPECT_EQ(file.get_string("tokenizer.ggml.model"), "no_vocab");
    EXPECT_EQ(file.find("llama.expert_count") != nullptr, experts > 0);
    const Model loaded = load_gguf_model(file);
    expect_same_model(model, loaded);
    if (experts) {
      EXPECT_EQ(loaded.get("blk.1.ffn_down_exps.weight").ne, (Graph::Shape{96, 64, 4, 1}));
    }
    std::filesystem::remove(path);
  }
}

TEST(GgufModel, SaveCopiesTheTokenizer) {
  if (!have_fixture("ggml-vocab-llama-spm.gguf")) return;
  const GgufFile vocab = GgufFile::open(fixture("ggml-vocab-llama-spm.gguf"));
  ModelConfig config = test::small_config();
  config.weight_type = DType::F16;
  const std::string path = test::temp_path("vocab.gguf");
  // A vocabulary of the wrong size is refused, and no file is left.
  const Model small = test::make_test_model(config, 8);
  try {
    save_gguf_model(small, path, &vocab);
    ADD_FAILURE() << "saved 40 rows with a 32000-token vocabulary";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "has 32000 tokens but model test-dense has a vocabulary of 40")) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));

  config.n_vocab = 32000;
  config.n_layer = 1;
  const Model model = test::make_test_model(config, 9);
  save_gguf_model(model, path, &vocab);
  const GgufFile file = GgufFile::open(path);
  int copied = 0;
  for (const auto& [key, value] : vocab.metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    ++copied;
    EXPECT_EQ(file.get(key), value) << key;
  }
  EXPECT_EQ(copied, 10);
  EXPECT_EQ(file.get_int("general.file_type"), 1);
  EXPECT_EQ(file.find("general.quantization_version"), nullptr);
  expect_same_model(model, load_gguf_model(file));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace braid
