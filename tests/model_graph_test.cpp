#include <gtest/gtest.h>

#include <map>

#include "braid/model.h"

namespace braid {
namespace {

std::map<Op, int> count_ops(const Graph& g) {
  std::map<Op, int> counts;
  for (TensorId id : g.order()) ++counts[g[id].op];
  return counts;
}

TEST(ModelGraph, EveryPresetBuildsDecodeAndPromptGraphs) {
  for (const std::string& name : preset_names()) {
    const ModelConfig c = preset_config(name);
    for (int n : {1, 7}) {
      ModelGraph mg = build_graph_shapes(c, n);
      EXPECT_TRUE(mg.graph.finalized());
      EXPECT_EQ(mg.graph[mg.logits].ne[0], c.n_vocab) << name;
      EXPECT_EQ(mg.graph[mg.logits].ne[1], 1) << name;
    }
  }
}

TEST(ModelGraph, Llama7bDecodeGraphHasTheExpectedNodes) {
  ModelGraph mg = build_graph_shapes(preset_config("llama-7b"), 1);
  const auto nodes = mg.graph.compute_nodes();
  // Per layer: 2 rms_norm, q k v wo gate up down (7 mul_mat, wo and down adding the
  // residual), rope (q), 2 kv_write (k rotated on the way in), attention, swiglu = 14;
  // plus embedding, output norm, output mul_mat.
  const int expected = 14 * 32 + 3;
  std::printf("llama-7b decode graph: %zu compute nodes, %zu nodes with views\n", nodes.size(),
              mg.graph.order().size());
  EXPECT_EQ(static_cast<int>(nodes.size()), expected);
  const auto counts = count_ops(mg.graph);
  EXPECT_EQ(counts.at(Op::MulMat), 7 * 32 + 1);
  EXPECT_EQ(counts.count(Op::Add), 0u);
  EXPECT_EQ(counts.at(Op::Rope), 32);
  EXPECT_EQ(counts.at(Op::Attention), 32);
  EXPECT_EQ(counts.at(Op::Reshape), 4 * 32);
  EXPECT_EQ(static_cast<int>(mg.graph.order().size()), expected + 4 * 32);
}

TEST(ModelGraph, MoeLayersRouteEachSlotThroughItsOwnBranch) {
  const ModelConfig c = preset_config("moe-8x1b");
  ModelGraph mg = build_graph_shapes(c, 1);
  const auto counts = count_ops(mg.graph);
  EXPECT_EQ(counts.at(Op::MulMatId), 3 * c.n_expert_used * c.n_layer);
  EXPECT_EQ(counts.at(Op::TopK), c.n_layer);
  EXPECT_EQ(counts.at(Op::MoeCombine), c.n_layer);
}

TEST(ModelGraph, PromptGraphKeepsOnlyTheLastTokensLogitsUnlessAsked) {
  const ModelConfig c = preset_config("tiny-256");
  ModelGraph last = build_graph_shapes(c, 5);
  ModelGraph all = build_graph_shapes(c, 5, {.all_logits = true});
  EXPECT_EQ(last.graph[last.logits].ne[1], 1);
  EXPECT_EQ(all.graph[all.logits].ne[1], 5);
}

TEST(ModelGraph, BadConfigsAndBatchesAreRejected) {
  ModelConfig c = preset_config("tiny-256");
  EXPECT_THROW(build_graph_shapes(c, 0), Error);
  EXPECT_THROW(build_graph_shapes(c, c.n_ctx + 1), Error);
  c.n_head_kv = 3;
  EXPECT_THROW(build_graph_shapes(c, 1), Error);
  EXPECT_THROW(preset_config("llama-70b"), Error);
}

TEST(ModelGraph, RandomModelsHaveEveryWeightAndNoZeros) {
  ModelConfig c = preset_config("tiny-256");
  c.n_layer = 2;
  c.n_vocab = 512;
  c.weight_type = DType::Q4_0;
  Model m = make_random_model(c, 3);
  EXPECT_NO_THROW(build_graph(m, 1));
  const WeightTensor& wq = m.get("blk.1.attn_q.weight");
  EXPECT_EQ(wq.type, DType::Q4_0);
  std::vector<float> values(static_cast<size_t>(wq.ne[0] * wq.ne[1]));
  to_f32(wq.type, wq.data, values.data(), static_cast<int64_t>(values.size()));
  int zeros = 0;
  for (float v : values) zeros += v == 0.0f;
  EXPECT_LT(zeros, static_cast<int>(values.size()) / 8);
  // Same seed, same bytes; another seed, other bytes.
  Model again = make_random_model(c, 3);
  Model other = make_random_model(c, 4);
  EXPECT_EQ(std::memcmp(again.get("blk.1.attn_q.weight").data, wq.data, wq.bytes()), 0);
  EXPECT_NE(std::memcmp(other.get("blk.1.attn_q.weight").data, wq.data, wq.bytes()), 0);
}

}  // namespace
}  // namespace braid
