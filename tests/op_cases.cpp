#include "op_cases.h"

#include "test_support.h"

namespace braid::test {

const std::map<Op, OpCaseBuilder>& one_node_graphs() {
  static const std::map<Op, OpCaseBuilder> table = {
      {Op::GetRows, [](OpGraph& g) {
         return ops::get_rows(g.graph(), g.random_weight("t", DType::Q4_0, {32, 6, 1, 1}, 1),
                              g.ids("ids", {3, 1, 1, 1}, {5, 0, 2}));
       }},
      {Op::Add, [](OpGraph& g) {
         return ops::add(g.graph(), g.random_input("a", DType::F32, {8, 3, 1, 1}, 2),
                         g.random_input("b", DType::F32, {8, 1, 1, 1}, 3));
       }},
      {Op::Mul, [](OpGraph& g) {
         return ops::mul(g.graph(), g.random_input("a", DType::F32, {8, 3, 1, 1}, 4),
                         g.random_input("b", DType::F32, {8, 3, 1, 1}, 5));
       }},
      {Op::Scale, [](OpGraph& g) { return ops::scale(g.graph(), g.random_input("a", DType::F32, {8, 2, 1, 1}, 6), 3.0f); }},
      {Op::RmsNorm, [](OpGraph& g) {
         return ops::rms_norm(g.graph(), g.random_input("x", DType::F32, {8, 2, 1, 1}, 7),
                              g.random_input("w", DType::F32, {8, 1, 1, 1}, 8), 1e-6f);
       }},
      {Op::MulMat, [](OpGraph& g) {
         return ops::mul_mat(g.graph(), g.random_weight("w", DType::Q8_0, {32, 4, 1, 1}, 9),
                             g.random_input("x", DType::F32, {32, 2, 1, 1}, 10));
       }},
      {Op::MulMatId, [](OpGraph& g) {
         return ops::mul_mat_id(g.graph(), g.random_weight("w", DType::Q4_1, {32, 4, 3, 1}, 11),
                                g.random_input("x", DType::F32, {32, 2, 1, 1}, 12),
                                g.ids("ids", {2, 2, 1, 1}, {2, 0, 1, 2}), 1);
       }},
      {Op::Rope, [](OpGraph& g) {
         return ops::rope(g.graph(), g.random_input("x", DType::F32, {8, 2, 2, 1}, 13),
                          g.ids("pos", {2, 1, 1, 1}, {3, 9}), kRopeNormal, 8, 10000.0f);
       }},
      {Op::KvWrite, [](OpGraph& g) {
         return ops::kv_write(g.graph(), g.state("cache", DType::F16, {8, 1, 4, 1}),
                              g.random_input("x", DType::F32, {8, 1, 2, 1}, 14), g.ids("pos", {2, 1, 1, 1}, {1, 3}));
       }},
      {Op::Attention, [](OpGraph& g) {
         const std::vector<float> cache = random_floats(32, 15);
         return ops::attention(g.graph(), g.random_input("q", DType::F32, {8, 2, 2, 1}, 16),
                               g.state("k", DType::F32, {8, 1, 4, 1}, cache), g.state("v", DType::F32, {8, 1, 4, 1}, cache),
                               g.ids("pos", {2, 1, 1, 1}, {0, 2}), 0.35f);
       }},
      {Op::Silu, [](OpGraph& g) { return ops::silu(g.graph(), g.random_input("a", DType::F32, {8, 2, 1, 1}, 17)); }},
      {Op::Swiglu, [](OpGraph& g) {
         return ops::swiglu(g.graph(), g.random_input("a", DType::F32, {8, 2, 1, 1}, 18),
                            g.random_input("b", DType::F32, {8, 2, 1, 1}, 19));
       }},
      {Op::Softmax, [](OpGraph& g) { return ops::softmax(g.graph(), g.random_input("a", DType::F32, {8, 2, 1, 1}, 20)); }},
      {Op::Copy, [](OpGraph& g) {
         return ops::copy(g.graph(), ops::transpose(g.graph(), g.random_input("a", DType::F32, {8, 2, 1, 1}, 21)), DType::F16);
       }},
      {Op::TopK, [](OpGraph& g) { return ops::top_k(g.graph(), g.random_input("l", DType::F32, {6, 2, 1, 1}, 22), 2); }},
      {Op::TopLogits, [](OpGraph& g) {
         return ops::top_logits(g.graph(), g.random_input("l", DType::F32, {20, 3, 1, 1}, 28), 4, 18);
       }},
      {Op::MoeWeights, [](OpGraph& g) {
         return ops::moe_weights(g.graph(), g.random_input("l", DType::F32, {6, 2, 1, 1}, 23),
                                 g.ids("ids", {2, 2, 1, 1}, {5, 1, 0, 3}));
       }},
      {Op::MoeCombine, [](OpGraph& g) {
         return ops::moe_combine(g.graph(), g.random_input("w", DType::F32, {2, 2, 1, 1}, 24),
                                 {g.random_input("y0", DType::F32, {8, 2, 1, 1}, 25),
                                  g.random_input("y1", DType::F32, {8, 2, 1, 1}, 26)});
       }},
      // A group of one rank (the identity): larger groups need ParallelRunner's ranks.
      {Op::AllReduce, [](OpGraph& g) {
         return ops::all_reduce(g.graph(), g.random_input("x", DType::F32, {8, 2, 1, 1}, 27), 1);
       }},
  };
  return table;
}

}  // namespace braid::test
