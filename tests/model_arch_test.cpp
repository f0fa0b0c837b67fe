// The architecture options of ModelConfig (qkv_bias, qk_norm, an explicit head size,
// tied embeddings, rope frequency factors) on random models, and the presets with real
// models' shapes. Agreement with transformers is in arch_reference_test.cpp.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "braid/gguf.h"
#include "gguf_test_util.h"
#include "model/weight_names.h"
#include "model_test_util.h"

namespace braid {
namespace {

std::map<Op, int> count_ops(const Graph& g) {
  std::map<Op, int> counts;
  for (TensorId id : g.order()) ++counts[g[id].op];
  return counts;
}

int64_t spec_parameters(const ModelConfig& c) {
  int64_t total = 0;
  for (const WeightSpec& s : weight_specs(c)) total += s.ne[0] * s.ne[1] * s.ne[2] * s.ne[3];
  return total;
}

// A small model of `architecture` (its options applied), head size 16 unless given.
ModelConfig small(const std::string& architecture, int head_dim = 0) {
  ModelConfig c = preset_config("tiny-256");
  c.name = "small-" + architecture;
  c.architecture = architecture;
  apply_architecture(c);
  c.n_embd = 64;
  c.n_ff = 128;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.n_head_dim = head_dim;
  c.n_layer = 2;
  c.n_vocab = 512;
  c.n_ctx = 32;
  return c;
}

TEST(ModelArch, ArchitecturesSetTheirOptionsAndUnknownOnesAreNamed) {
  ModelConfig c;
  c.architecture = "qwen2";
  apply_architecture(c);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.rope_mode, kRopeNeox);
  c.architecture = "qwen3";
  apply_architecture(c);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_TRUE(c.qk_norm);
  c.architecture = "llama";
  apply_architecture(c);
  EXPECT_FALSE(c.qkv_bias || c.qk_norm);
  EXPECT_EQ(c.rope_mode, kRopeNormal);
  c.architecture = "falcon";
  try {
    apply_architecture(c);
    FAIL() << "falcon was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported architecture 'falcon' (braid runs llama, qwen2, qwen3, phi3)"),
              std::string::npos)
        << e.what();
  }
}

// transformers' factors for Llama 3.2 (head 64, base 500000, factor 32, low 1, high 4,
// original context 8192), printed by its rope init "llama3": pairs 0-14 keep their
// frequency, 15-17 blend, 18-31 are slowed 32 times.
TEST(ModelArch, Llama3FactorsEqualTransformers) {
  const std::vector<float> f = llama3_rope_freq_factors({32.0f, 1.0f, 4.0f, 8192}, 64, 500000.0f);
  ASSERT_EQ(f.size(), 32u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(f[static_cast<size_t>(i)], 1.0f) << i;
  EXPECT_NEAR(f[15], 1.651329f, 1e-5f);
  EXPECT_NEAR(f[16], 3.292263f, 1e-5f);
  EXPECT_NEAR(f[17], 9.66673f, 1e-4f);
  for (int i = 18; i < 32; ++i) EXPECT_EQ(f[static_cast<size_t>(i)], 32.0f) << i;
  EXPECT_THROW(llama3_rope_freq_factors({32.0f, 4.0f, 1.0f, 8192}, 64, 500000.0f), Error);  // low above high
}

TEST(ModelArch, PresetsHaveTheRealModelsShapesAndParameterCounts) {
  const ModelConfig llama = preset_config("llama3.2-1b");
  EXPECT_EQ(llama.n_vocab, 128256);
  EXPECT_TRUE(llama.tied_embeddings);
  EXPECT_TRUE(llama.rope_freq_factors);
  EXPECT_EQ(llama.rope_base, 500000.0f);
  EXPECT_EQ(llama.head_dim(), 64);
  // Llama 3.2 1B has 1,235,814,400 parameters; braid adds the 32 rope factors.
  EXPECT_EQ(spec_parameters(llama), 1235814400 + 32);
  const ModelConfig smol = preset_config("smollm2-135m");
  EXPECT_EQ(smol.n_vocab, 49152);
  EXPECT_TRUE(smol.tied_embeddings);
  EXPECT_FALSE(smol.rope_freq_factors);
  EXPECT_EQ(smol.rope_base, 100000.0f);
  EXPECT_EQ(spec_parameters(smol), 134515008);  // SmolLM2-135M's count

  // Tied: the logits read token_embd's bytes through a leaf named output.weight, and
  // every rope reads the factors.
  ModelGraph mg = build_graph_shapes(llama, 1);
  const Tensor& w = mg.graph[mg.graph[mg.logits].src[0]];
  EXPECT_EQ(w.name, kOutputName);
  EXPECT_EQ(w.ne[1], 128256);
  for (TensorId id : mg.graph.order()) {
    const Tensor& t = mg.graph[id];
    if (t.op == Op::Rope) {
      EXPECT_EQ(t.src.size(), 3u);
    }
    if (t.op == Op::KvWrite && t.params.i[1] > 0) {
      EXPECT_EQ(t.src.size(), 4u);
    }
  }
}

TEST(ModelArch, QwenGraphsAddBiasesAndHeadNorms) {
  const auto llama = count_ops(build_graph_shapes(small("llama"), 3).graph);
  const auto qwen2 = count_ops(build_graph_shapes(small("qwen2"), 3).graph);
  const auto qwen3 = count_ops(build_graph_shapes(small("qwen3", 32), 3).graph);
  EXPECT_EQ(qwen2.at(Op::Add), 3 * 2);  // q, k, v of 2 layers
  EXPECT_EQ(qwen2.at(Op::RmsNorm), llama.at(Op::RmsNorm));
  EXPECT_EQ(qwen3.at(Op::RmsNorm), llama.at(Op::RmsNorm) + 2 * 2);  // q and k of 2 layers
  EXPECT_EQ(qwen3.count(Op::Add), 0u);
  EXPECT_EQ(qwen3.at(Op::MulMat), llama.at(Op::MulMat));
}

TEST(ModelArch, RandomModelsOfEachOptionRunAndFusionChangesNothing) {
  ModelConfig llama3 = small("llama");
  llama3.rope_freq_factors = true;
  llama3.rope_scaling = {8.0f, 1.0f, 4.0f, 64};
  llama3.tied_embeddings = true;
  for (const ModelConfig& c : {llama3, small("qwen2"), small("qwen3", 32), small("qwen3")}) {
    SCOPED_TRACE(c.name + " head " + std::to_string(c.head_dim()));
    const Model model = make_random_model(c, 11);
    EXPECT_EQ(model.find(kOutputName) == nullptr, c.tied_embeddings);
    const auto plain = test::prompt_then_decode(model, {});
    RunnerOptions fused;
    fused.fuse = true;
    const auto with_fusion = test::prompt_then_decode(model, fused);
    ASSERT_EQ(plain.size(), with_fusion.size());
    for (size_t s = 0; s < plain.size(); ++s) {
      for (size_t i = 0; i < plain[s].size(); ++i) ASSERT_NEAR(plain[s][i], with_fusion[s][i], 1e-4f) << s << " " << i;
    }
  }
}

TEST(ModelArch, RandomModelsOfEachArchitectureSurviveGguf) {
  ModelConfig llama3 = small("llama");
  llama3.rope_freq_factors = true;
  llama3.rope_scaling = {8.0f, 1.0f, 4.0f, 64};
  llama3.tied_embeddings = true;
  for (const ModelConfig& c : {llama3, small("qwen2"), small("qwen3", 32)}) {
    SCOPED_TRACE(c.name);
    const Model model = make_random_model(c, 12);
    const std::string path = test::temp_path(c.name + ".gguf");
    save_gguf_model(model, path);
    const Model loaded = load_gguf_model(path);
    std::filesystem::remove(path);
    EXPECT_EQ(loaded.config.architecture, c.architecture);
    EXPECT_EQ(loaded.config.head_dim(), c.head_dim());
    EXPECT_EQ(loaded.config.qkv_bias, c.qkv_bias);
    EXPECT_EQ(loaded.config.qk_norm, c.qk_norm);
    EXPECT_EQ(loaded.config.tied_embeddings, c.tied_embeddings);
    EXPECT_EQ(loaded.config.rope_freq_factors, c.rope_freq_factors);
    EXPECT_EQ(test::prompt_then_decode(loaded, {}), test::prompt_then_decode(model, {}));
  }
}

}  // namespace
}  // namespace braid
