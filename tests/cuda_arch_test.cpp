// The architecture options on the CUDA backend: the tiny Llama 3 / Qwen2 / Qwen3 models of
// tests/data/arch against transformers' logits (as arch_reference_test.cpp does on the
// CPU), and the llama3.2-1b and smollm2-135m presets' shapes (fewer layers) against the
// CPU. Covers rope and rope_kv_write with frequency factors, q/k/v bias adds, per-head
// q/k RMSNorm on strided views, a head size other than n_embd / n_head, and tied
// embeddings. Skips itself without a device.
#ifdef BRAID_HAVE_CUDA

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "braid/backend.h"
#include "braid/gguf.h"
#include "braid/runner.h"
#include "test_support.h"

namespace braid {
namespace {

#define REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

// Decode (matrix-vector products with f32 accumulation) stays as close to transformers
// as the CPU does (~5e-6 there); prompts may round activations to f16 for tensor cores,
// so they are held to the normalized error the other CUDA model tests allow.
constexpr float kDecodeTolerance = 1e-3f;
constexpr double kLogitsNmse = 1e-5;

std::string data_path(const std::string& name) { return std::string(BRAID_TEST_DATA_DIR) + "/arch/" + name; }

struct Reference {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;
};

Reference load_reference(const std::string& model) {
  const GgufFile file = GgufFile::open(data_path(model + ".ref.gguf"));
  Reference r;
  const GgufValue& tokens = file.get("reference.tokens");
  for (size_t i = 0; i < tokens.size(); ++i) r.tokens.push_back(static_cast<int32_t>(tokens.at(i).as_int()));
  const GgufTensorInfo& logits = file.tensor("logits");
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

class CudaArchReference : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaArchReference, DecodeAndPromptMatchTransformers) {
  REQUIRE_CUDA();
  const Model model = load_gguf_model(data_path(GetParam() + ".gguf"));
  const Reference ref = load_reference(GetParam());
  for (bool graph : {false, true}) {
    for (Policy policy : {Policy::Serial, Policy::Cost}) {
      RunnerOptions options;
      options.policy = policy;
      options.plan.max_streams = 4;
      options.exec.cuda_graph = graph;
      SCOPED_TRACE(std::string(policy_name(policy)) + (graph ? " graph" : " eager"));
      auto cuda = make_backend("cuda");
      ModelRunner decode(model, *cuda, options);
      float worst = 0;
      for (size_t t = 0; t < ref.tokens.size(); ++t) {
        const float d = max_difference(decode.eval({ref.tokens[t]}), ref.logits[t]);
        EXPECT_LE(d, kDecodeTolerance) << "position " << t;
        worst = std::max(worst, d);
      }
      ModelRunner prompt(model, *cuda, options);
      const double nmse = test::nmse(prompt.eval(ref.tokens), ref.logits.back());
      EXPECT_LT(nmse, kLogitsNmse);
      std::printf("%s on CUDA: decode max |diff| %.2g, prompt NMSE %.2g\n", GetParam().c_str(),
                  static_cast<double>(worst), nmse);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CudaArchReference, ::testing::Values("llama3", "qwen2", "qwen3", "phi3"));

// The presets' real shapes (head 64, 9 or 32 heads, rope factors, tied embeddings), two
// layers and a smaller vocabulary so the CPU reference stays quick.
TEST(CudaArch, PresetShapesMatchTheCpu) {
  REQUIRE_CUDA();
  for (const char* name : {"llama3.2-1b", "smollm2-135m"}) {
    ModelConfig c = preset_config(name);
    c.n_layer = 2;
    c.n_vocab = 4096;
    c.n_ctx = 64;
    const Model model = make_random_model(c, 31);
    std::vector<int32_t> prompt{1};
    for (int i = 1; i < 20; ++i) prompt.push_back((i * 7919 + 13) % c.n_vocab);
    auto cpu = make_cpu_backend();
    auto cuda = make_backend("cuda");
    ModelRunner on_cpu(model, *cpu);
    RunnerOptions options;
    options.exec.cuda_graph = true;
    ModelRunner on_cuda(model, *cuda, options);
    EXPECT_LT(test::nmse(on_cuda.eval(prompt), on_cpu.eval(prompt)), kLogitsNmse) << name << " prompt";
    for (int32_t next : {5, 77, 3000}) {
      EXPECT_LT(test::nmse(on_cuda.eval({next}), on_cpu.eval({next})), kLogitsNmse) << name << " decode " << next;
    }
  }
}

}  // namespace
}  // namespace braid

#endif  // BRAID_HAVE_CUDA
