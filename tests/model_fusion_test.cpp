// Horizontal fusion: fused weights are exact concatenations, and fused graphs compute
// what unfused ones do, bit for bit on the CPU reference (each output element is the
// same dot product either way), with fewer, wider matrix products.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>

#include "braid/backend.h"
#include "braid/gguf.h"
#include "braid/runner.h"
#include "model_test_util.h"
#include "test_support.h"

namespace braid {
namespace {

ModelConfig small_dense(DType type) {
  ModelConfig c = preset_config("tiny-256");
  c.n_layer = 2;
  c.n_head_kv = 2;  // grouped-query attention: k and v narrower than q
  c.n_vocab = 512;
  c.n_ctx = 32;
  c.weight_type = type;
  return c;
}

using test::small_moe;

std::map<Op, int> count_ops(const Graph& g) {
  std::map<Op, int> counts;
  for (TensorId id : g.order()) ++counts[g[id].op];
  return counts;
}

using test::kPrompt;
using test::prompt_then_decode;

// Fused runs of every policy equal the unfused serial run exactly.
void expect_fused_equals_unfused(const Model& model) {
  const auto unfused = prompt_then_decode(model, {});
  const Model fused = fuse_projections(model);
  for (Policy policy : all_policies()) {
    RunnerOptions options;
    options.policy = policy;
    options.plan.max_streams = 4;
    options.fuse = true;
    EXPECT_EQ(prompt_then_decode(model, options), unfused) << policy_name(policy);
    EXPECT_EQ(prompt_then_decode(fused, options), unfused) << policy_name(policy) << " (pre-fused model)";
  }
}

const uint8_t* bytes(const WeightTensor& t) { return static_cast<const uint8_t*>(t.data); }

TEST(ModelFusion, Llama7bFusedDecodeGraphHasThreeFewerProductsPerLayer) {
  const ModelConfig c = preset_config("llama-7b");
  const auto plain = count_ops(build_graph_shapes(c, 1).graph);
  const ModelGraph mg = build_graph_shapes(c, 1, {.fuse_projections = true});
  const auto fused = count_ops(mg.graph);
  // q, k, v -> qkv saves two; gate, up -> gate_up saves one.
  EXPECT_EQ(fused.at(Op::MulMat), plain.at(Op::MulMat) - 3 * c.n_layer);
  EXPECT_EQ(fused.at(Op::MulMat), 4 * c.n_layer + 1);
  // Views replace q/k/v's reshapes: three for q/k/v and two for gate/up per layer.
  EXPECT_EQ(fused.at(Op::View), 5 * c.n_layer);
  EXPECT_EQ(fused.at(Op::Reshape), c.n_layer);  // the attention output's
  EXPECT_EQ(mg.graph.compute_nodes().size(), build_graph_shapes(c, 1).graph.compute_nodes().size() - 3 * c.n_layer);
}

TEST(ModelFusion, PromptGraphSplitsTheProductWithStridedViews) {
  const ModelConfig c = small_dense(DType::F32);
  const int n = 5;
  const ModelGraph mg = build_graph_shapes(c, n, {.fuse_projections = true});
  const int64_t hd = c.head_dim(), kv = hd * c.n_head_kv;
  const size_t row = static_cast<size_t>(c.n_embd + 2 * kv) * sizeof(float);
  int seen = 0;
  for (TensorId id : mg.graph.order()) {
    const Tensor& t = mg.graph[id];
    if (t.name == "blk.1.qkv") {
      EXPECT_EQ(t.ne, (Graph::Shape{c.n_embd + 2 * kv, n, 1, 1}));
      ++seen;
    } else if (t.name == "blk.1.v") {
      EXPECT_EQ(t.op, Op::View);
      EXPECT_EQ(t.ne, (Graph::Shape{hd, c.n_head_kv, n, 1}));
      EXPECT_EQ(t.nb[2], row);  // one token's q, k and v apart
      EXPECT_EQ(t.view_offset, static_cast<size_t>(c.n_embd + kv) * sizeof(float));
      ++seen;
    } else if (t.name == "blk.1.up") {
      EXPECT_EQ(t.op, Op::View);
      EXPECT_EQ(t.ne, (Graph::Shape{c.n_ff, n, 1, 1}));
      EXPECT_EQ(t.nb[1], static_cast<size_t>(2 * c.n_ff) * sizeof(float));
      EXPECT_EQ(t.view_offset, static_cast<size_t>(c.n_ff) * sizeof(float));
      ++seen;
    }
  }
  EXPECT_EQ(seen, 3);
}

TEST(ModelFusion, MoeFusesGateAndUpOfEverySlot) {
  const ModelConfig c = preset_config("moe-8x1b");
  const auto plain = count_ops(build_graph_shapes(c, 1).graph);
  const auto fused = count_ops(build_graph_shapes(c, 1, {.fuse_projections = true}).graph);
  EXPECT_EQ(plain.at(Op::MulMatId), 3 * c.n_expert_used * c.n_layer);
  EXPECT_EQ(fused.at(Op::MulMatId), 2 * c.n_expert_used * c.n_layer);
  EXPECT_EQ(fused.at(Op::MulMat), plain.at(Op::MulMat) - 2 * c.n_layer);
}

TEST(ModelFusion, FusedWeightsAreByteConcatenationsForEveryType) {
  for (DType type : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0}) {
    SCOPED_TRACE(traits(type).name);
    const ModelConfig c = small_dense(type);
    const Model model = make_random_model(c, 11);
    const Model fused = fuse_projections(model);
    EXPECT_EQ(fused.weight_bytes(), model.weight_bytes());
    EXPECT_EQ(fused.parameter_count(), model.parameter_count());
    EXPECT_EQ(fused.find("blk.0.attn_q.weight"), nullptr);
    EXPECT_EQ(fused.find("blk.1.ffn_up.weight"), nullptr);
    for (int l = 0; l < c.n_layer; ++l) {
      const std::string blk = "blk." + std::to_string(l) + ".";
      const WeightTensor& qkv = fused.get(blk + "attn_qkv.weight");
      const WeightTensor& q = model.get(blk + "attn_q.weight");
      const WeightTensor& k = model.get(blk + "attn_k.weight");
      const WeightTensor& v = model.get(blk + "attn_v.weight");
      EXPECT_EQ(qkv.type, type);
      EXPECT_EQ(qkv.ne, (Graph::Shape{c.n_embd, q.ne[1] + k.ne[1] + v.ne[1], 1, 1}));
      ASSERT_EQ(qkv.bytes(), q.bytes() + k.bytes() + v.bytes());
      EXPECT_EQ(std::memcmp(bytes(qkv), bytes(q), q.bytes()), 0);
      EXPECT_EQ(std::memcmp(bytes(qkv) + q.bytes(), bytes(k), k.bytes()), 0);
      EXPECT_EQ(std::memcmp(bytes(qkv) + q.bytes() + k.bytes(), bytes(v), v.bytes()), 0);

      const WeightTensor& gate_up = fused.get(blk + "ffn_gate_up.weight");
      const WeightTensor& gate = model.get(blk + "ffn_gate.weight");
      const WeightTensor& up = model.get(blk + "ffn_up.weight");
      EXPECT_EQ(gate_up.ne, (Graph::Shape{c.n_embd, 2 * c.n_ff, 1, 1}));
      EXPECT_EQ(std::memcmp(bytes(gate_up), bytes(gate), gate.bytes()), 0);
      EXPECT_EQ(std::memcmp(bytes(gate_up) + gate.bytes(), bytes(up), up.bytes()), 0);
      // Unfused tensors are shared, not copied.
      EXPECT_EQ(fused.get(blk + "ffn_down.weight").data, model.get(blk + "ffn_down.weight").data);
    }
    // Dequantized, a fused row is the part's row: the k part's first row, for instance.
    const WeightTensor& qkv = fused.get("blk.0.attn_qkv.weight");
    const WeightTensor& k = model.get("blk.0.attn_k.weight");
    std::vector<float> from_fused(static_cast<size_t>(c.n_embd)), from_part(static_cast<size_t>(c.n_embd));
    to_f32(type, bytes(qkv) + row_bytes(type, c.n_embd) * static_cast<size_t>(c.n_embd), from_fused.data(), c.n_embd);
    to_f32(type, k.data, from_part.data(), c.n_embd);
    EXPECT_EQ(from_fused, from_part);
  }
}

TEST(ModelFusion, ExpertWeightsAreStackedExpertByExpert) {
  const ModelConfig c = small_moe(DType::Q8_0);
  const Model model = make_random_model(c, 12);
  const Model fused = fuse_projections(model);
  const WeightTensor& gate_up = fused.get("blk.1.ffn_gate_up_exps.weight");
  const WeightTensor& gate = model.get("blk.1.ffn_gate_exps.weight");
  const WeightTensor& up = model.get("blk.1.ffn_up_exps.weight");
  EXPECT_EQ(gate_up.ne, (Graph::Shape{c.n_embd, 2 * c.n_ff, c.n_expert, 1}));
  const size_t expert = gate.bytes() / static_cast<size_t>(c.n_expert);
  for (int e = 0; e < c.n_expert; ++e) {
    const uint8_t* fused_expert = bytes(gate_up) + 2 * expert * static_cast<size_t>(e);
    EXPECT_EQ(std::memcmp(fused_expert, bytes(gate) + expert * static_cast<size_t>(e), expert), 0) << e;
    EXPECT_EQ(std::memcmp(fused_expert + expert, bytes(up) + expert * static_cast<size_t>(e), expert), 0) << e;
  }
  EXPECT_EQ(fused.find("blk.1.ffn_gate_exps.weight"), nullptr);
  EXPECT_NE(fused.find("blk.1.attn_qkv.weight"), nullptr);
}

TEST(ModelFusion, DenseFusedLogitsEqualUnfusedInEveryPolicy) {
  expect_fused_equals_unfused(make_random_model(small_dense(DType::F32), 21));
}

TEST(ModelFusion, QuantizedFusedLogitsEqualUnfused) {
  for (DType type : {DType::Q4_0, DType::Q8_0}) {
    SCOPED_TRACE(traits(type).name);
    const Model model = make_random_model(small_dense(type), 22);
    RunnerOptions options;
    options.fuse = true;
    EXPECT_EQ(prompt_then_decode(model, options), prompt_then_decode(model, {}));
  }
}

TEST(ModelFusion, MoeFusedLogitsEqualUnfusedInEveryPolicy) {
  expect_fused_equals_unfused(make_random_model(small_moe(DType::F16), 23));
}

TEST(ModelFusion, GgufModelFusedLogitsEqualUnfused) {
  if (!test::have_fixture("stories260K.gguf")) return;
  Model model = load_gguf_model(test::fixture("stories260K.gguf"));  // memory-mapped weights
  model.config.n_ctx = 32;
  const Model fused = fuse_projections(model);
  EXPECT_NE(fused.find("blk.0.attn_qkv.weight"), nullptr);
  RunnerOptions options;
  options.fuse = true;
  EXPECT_EQ(prompt_then_decode(fused, options), prompt_then_decode(model, {}));
}

TEST(ModelFusion, PartsOfDifferentTypesStayApart) {
  // Layer 0's v in f32 among f16 weights: q/k/v of layer 0 cannot be stacked.
  const ModelConfig c = small_dense(DType::F16);
  auto f16 = std::make_shared<Model>(make_random_model(c, 31));
  ModelConfig c32 = c;
  c32.weight_type = DType::F32;
  auto f32 = std::make_shared<Model>(make_random_model(c32, 32));
  Model mixed;
  mixed.config = c;
  for (const WeightTensor& t : f16->tensors()) {
    if (t.name == "blk.0.attn_v.weight") {
      mixed.add_tensor(f32->get(t.name), f32);
    } else {
      mixed.add_tensor(t, f16);
    }
  }
  const Model fused = fuse_projections(mixed);
  EXPECT_EQ(fused.find("blk.0.attn_qkv.weight"), nullptr);
  EXPECT_NE(fused.find("blk.0.attn_v.weight"), nullptr);
  EXPECT_NE(fused.find("blk.0.ffn_gate_up.weight"), nullptr);
  EXPECT_NE(fused.find("blk.1.attn_qkv.weight"), nullptr);

  const auto counts = count_ops(build_graph(fused, 1, {.fuse_projections = true}).graph);
  EXPECT_EQ(counts.at(Op::MulMat), 4 * c.n_layer + 1 + 2);  // layer 0 keeps q, k, v apart
  RunnerOptions options;
  options.fuse = true;
  EXPECT_EQ(prompt_then_decode(mixed, options), prompt_then_decode(mixed, {}));
}

TEST(ModelFusion, FusingIsExplicitAndIdempotent) {
  const Model model = make_random_model(small_dense(DType::F16), 41);
  try {
    build_graph(model, 1, {.fuse_projections = true});
    FAIL() << "an unfused model built a fused graph";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fuse_projections"), std::string::npos) << e.what();
  }
  const Model fused = fuse_projections(model);
  EXPECT_THROW(build_graph(fused, 1), Error);  // the parts are gone
  const Model again = fuse_projections(fused);
  EXPECT_EQ(again.get("blk.1.attn_qkv.weight").data, fused.get("blk.1.attn_qkv.weight").data);
  EXPECT_EQ(again.tensors().size(), fused.tensors().size());
}

}  // namespace
}  // namespace braid
