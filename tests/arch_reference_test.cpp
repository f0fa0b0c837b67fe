// Llama 3 rope scaling, Qwen2, Qwen3 and Phi-3 against an independent implementation: Hugging
// Face transformers. tests/data/arch holds tiny random models of each (2 layers, 64 wide,
// 4 heads over 2 KV heads, 259 tokens, f32), written to GGUF in llama.cpp's conventions,
// with transformers' logits for a fixed token sequence at every position;
// scripts/make_arch_test_models.py made them (and says how to make them again).
//   llama3: rope_freqs.weight with factors of 1, a blended 2.44, and 8; tied embeddings.
//   qwen2:  biases on q, k and v; NeoX rope; its own output.weight.
//   qwen3:  RMSNorm over each head of q and k; head size 32, not 64 / 4; tied embeddings.
//   phi3:   q/k/v packed as attn_qkv and gate/up as ffn_up; NeoX rope; a sliding window.
// Without the feature each model exercises, its logits move by more than 1 (checked when
// the data was made: ignoring llama3's factors moves them by up to 3.8), so a tolerance
// of kTolerance tells a right model from a wrong one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include "braid/backend.h"
#include "braid/gguf.h"
#include "braid/runner.h"
#include "gguf_test_util.h"
#include "test_support.h"

namespace braid {
namespace {

// Largest allowed |braid - transformers| over all logits (of magnitude up to ~8). Both
// compute in f32 with their own summation orders; the differences seen are ~5e-6.
constexpr float kTolerance = 1e-4f;

std::string data_path(const std::string& name) { return std::string(BRAID_TEST_DATA_DIR) + "/arch/" + name; }

struct Reference {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;  // per position
};

Reference load_reference(const std::string& model) {
  const GgufFile file = GgufFile::open(data_path(model + ".ref.gguf"));
  Reference r;
  const GgufValue& tokens = file.get("reference.tokens");
  for (size_t i = 0; i < tokens.size(); ++i) r.tokens.push_back(static_cast<int32_t>(tokens.at(i).as_int()));
  const GgufTensorInfo& logits = file.tensor("logits");
  EXPECT_EQ(logits.ne[1], static_cast<int64_t>(r.tokens.size()));
  const auto* values = reinterpret_cast<const float*>(logits.data);
  for (int64_t t = 0; t < logits.ne[1]; ++t) r.logits.emplace_back(values + t * logits.ne[0], values + (t + 1) * logits.ne[0]);
  return r;
}

float max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

// Every position's logits, one token at a time (the decode path).
std::vector<std::vector<float>> token_by_token(const Model& model, const std::vector<int32_t>& tokens,
                                               RunnerOptions options = {}) {
  auto backend = make_cpu_backend();
  ModelRunner runner(model, *backend, options);
  std::vector<std::vector<float>> all;
  for (int32_t t : tokens) all.push_back(runner.eval({t}));
  return all;
}

// Returns the largest difference seen.
float expect_matches(const std::vector<std::vector<float>>& got, const Reference& ref) {
  EXPECT_EQ(got.size(), ref.logits.size());
  float worst = 0;
  for (size_t t = 0; t < std::min(got.size(), ref.logits.size()); ++t) {
    const float d = max_difference(got[t], ref.logits[t]);
    EXPECT_LE(d, kTolerance) << "position " << t;
    worst = std::max(worst, d);
  }
  return worst;
}

// A copy of tests/data/arch/<model>.gguf, changed by `edit` after the metadata and the
// tensors `keep` takes are in, written to a temporary file whose path is returned.
std::string copy_with(const std::string& model, const std::string& name, const std::function<void(GgufWriter&)>& edit,
                      const std::function<bool(const GgufTensorInfo&)>& keep = [](const GgufTensorInfo&) { return true; }) {
  const GgufFile source = GgufFile::open(data_path(model + ".gguf"));
  GgufWriter writer;
  for (const auto& [key, value] : source.metadata()) writer.set(key, value);
  for (const GgufTensorInfo& t : source.tensors()) {
    if (keep(t)) writer.add_tensor(t);
  }
  edit(writer);
  const std::string path = test::temp_path(name);
  writer.write(path);
  return path;
}

// What loading the file says (and the file gone): "" when it loads.
std::string load_error(const std::string& path) {
  std::string message;
  try {
    load_gguf_model(path);
  } catch (const Error& e) {
    message = e.what();
  }
  std::filesystem::remove(path);
  return message;
}

class ArchReference : public ::testing::TestWithParam<std::string> {};

TEST_P(ArchReference, EveryPositionMatchesTransformers) {
  const Model model = load_gguf_model(data_path(GetParam() + ".gguf"));
  const Reference ref = load_reference(GetParam());
  const float worst = expect_matches(token_by_token(model, ref.tokens), ref);
  std::printf("%s: max |braid - transformers| over %zu positions = %.2g\n", GetParam().c_str(), ref.tokens.size(),
              static_cast<double>(worst));
}

TEST_P(ArchReference, WholePromptMatchesTransformersFusedOrNot) {
  const Model model = load_gguf_model(data_path(GetParam() + ".gguf"));
  const Reference ref = load_reference(GetParam());
  for (bool fuse : {false, true}) {
    RunnerOptions options;
    options.fuse = fuse;
    auto backend = make_cpu_backend();
    ModelRunner runner(model, *backend, options);
    EXPECT_LE(max_difference(runner.eval(ref.tokens), ref.logits.back()), kTolerance) << "fuse " << fuse;
  }
}

TEST_P(ArchReference, EveryPolicyMatchesTransformers) {
  const Model model = load_gguf_model(data_path(GetParam() + ".gguf"));
  const Reference ref = load_reference(GetParam());
  for (Policy policy : all_policies()) {
    RunnerOptions options;
    options.policy = policy;
    options.plan.max_streams = 3;
    const std::vector<int32_t> prompt(ref.tokens.begin(), ref.tokens.begin() + 5);
    auto backend = make_cpu_backend();
    ModelRunner runner(model, *backend, options);
    EXPECT_LE(max_difference(runner.eval(prompt), ref.logits[4]), kTolerance) << policy_name(policy);
    EXPECT_LE(max_difference(runner.eval({ref.tokens[5]}), ref.logits[5]), kTolerance) << policy_name(policy);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ArchReference, ::testing::Values("llama3", "qwen2", "qwen3", "phi3"));

TEST(ArchReferenceFiles, LoadWithTheirArchitecturesOptions) {
  const ModelConfig llama3 = load_gguf_model(data_path("llama3.gguf")).config;
  EXPECT_TRUE(llama3.rope_freq_factors);
  EXPECT_TRUE(llama3.tied_embeddings);
  EXPECT_EQ(llama3.rope_mode, kRopeNormal);
  EXPECT_FALSE(llama3.qkv_bias || llama3.qk_norm);
  EXPECT_FLOAT_EQ(llama3.rope_base, 500000.0f);

  const ModelConfig qwen2 = load_gguf_model(data_path("qwen2.gguf")).config;
  EXPECT_TRUE(qwen2.qkv_bias);
  EXPECT_FALSE(qwen2.qk_norm || qwen2.tied_embeddings || qwen2.rope_freq_factors);
  EXPECT_EQ(qwen2.rope_mode, kRopeNeox);

  const ModelConfig qwen3 = load_gguf_model(data_path("qwen3.gguf")).config;
  EXPECT_TRUE(qwen3.qk_norm);
  EXPECT_TRUE(qwen3.tied_embeddings);
  EXPECT_FALSE(qwen3.qkv_bias);
  EXPECT_EQ(qwen3.rope_mode, kRopeNeox);
  EXPECT_EQ(qwen3.head_dim(), 32);
  EXPECT_EQ(qwen3.q_dim(), 128);

  const Model phi3 = load_gguf_model(data_path("phi3.gguf"));
  EXPECT_TRUE(phi3.config.packed_projections);
  EXPECT_EQ(phi3.config.rope_mode, kRopeNeox);
  EXPECT_FALSE(phi3.config.tied_embeddings || phi3.config.qkv_bias || phi3.config.qk_norm);
  EXPECT_EQ(phi3.config.n_ctx, 128);  // the sliding window, not the file's 256
  // The unpacked projections are rows of the packed tensors, in the file's order.
  const GgufFile file = GgufFile::open(data_path("phi3.gguf"));
  const auto* qkv = static_cast<const uint8_t*>(file.tensor("blk.1.attn_qkv.weight").data);
  const auto* up = static_cast<const uint8_t*>(file.tensor("blk.1.ffn_up.weight").data);
  const size_t row = 64 * sizeof(float);
  auto rows_equal = [&](const char* name, const uint8_t* packed_rows, int64_t rows) {
    const WeightTensor* t = phi3.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->ne[1], rows) << name;
    EXPECT_EQ(std::memcmp(t->data, packed_rows, rows * row), 0) << name;
  };
  rows_equal("blk.1.attn_q.weight", qkv, 64);
  rows_equal("blk.1.attn_k.weight", qkv + 64 * row, 32);
  rows_equal("blk.1.attn_v.weight", qkv + 96 * row, 32);
  rows_equal("blk.1.ffn_gate.weight", up, 128);
  rows_equal("blk.1.ffn_up.weight", up + 128 * row, 128);
}

// Phi-3's 128k models scale rope with per-pair long and short factors and an attention
// factor, which braid does not do: refused by name, not run wrong.
TEST(ArchReferenceFiles, Phi3LongRopeIsRefusedByName) {
  static const std::vector<float> factors(8, 1.5f);
  const std::string message = load_error(copy_with("phi3", "phi3-longrope.gguf", [](GgufWriter& w) {
    w.add_tensor("rope_factors_long.weight", DType::F32, {8, 1, 1, 1}, factors.data());
  }));
  EXPECT_NE(message.find("rope_factors_long/short, Phi-3 128k"), std::string::npos) << message;
}

// A packed tensor of the wrong size is an error naming it, as any other tensor's shape.
TEST(ArchReferenceFiles, Phi3PackedTensorOfTheWrongShapeIsAnError) {
  const std::string message = load_error(copy_with("phi3", "phi3-shape.gguf", [](GgufWriter& w) {
    w.set("phi3.feed_forward_length", GgufValue::u32(96));  // ffn_up holds 2 x 128 rows
  }));
  EXPECT_NE(message.find("blk.0.ffn_up.weight has shape [64, 256], expected [64, 192]"), std::string::npos)
      << message;
}

// A file that names llama3 scaling in its metadata instead of carrying rope_freqs.weight:
// braid computes the factors, and the logits are transformers' all the same.
TEST(ArchReferenceFiles, Llama3ScalingFromMetadataEqualsRopeFreqsTensor) {
  const std::string path = copy_with(
      "llama3", "llama3-metadata.gguf",
      [](GgufWriter& w) {
        w.set("llama.rope.scaling.type", GgufValue::string("llama3"));
        w.set("llama.rope.scaling.factor", GgufValue::f32(8.0f));
        w.set("llama.rope.scaling.original_context_length", GgufValue::u32(64));
      },
      [](const GgufTensorInfo& t) { return t.name != "rope_freqs.weight"; });
  const Model model = load_gguf_model(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(model.config.rope_freq_factors);
  const Reference ref = load_reference("llama3");
  expect_matches(token_by_token(model, ref.tokens), ref);
}

TEST(ArchReferenceFiles, OtherRopeScalingIsRefusedByName) {
  const std::string message = load_error(copy_with("qwen2", "yarn.gguf", [](GgufWriter& w) {
    w.set("qwen2.rope.scaling.type", GgufValue::string("yarn"));
  }));
  EXPECT_NE(message.find("rope scaling type 'yarn' is not supported"), std::string::npos) << message;
}

}  // namespace
}  // namespace braid
