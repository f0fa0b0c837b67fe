#include <gtest/gtest.h>

#include "braid/graph.h"
#include "braid/ops.h"

namespace braid {
namespace {

TEST(Graph, OrderPutsSourcesFirstAndSkipsUnreachable) {
  Graph g;
  TensorId a = g.input("a", DType::F32, {4, 2, 1, 1});
  TensorId b = g.input("b", DType::F32, {4, 2, 1, 1});
  TensorId unused = ops::silu(g, a);
  TensorId s = ops::add(g, a, b);
  TensorId m = ops::mul(g, s, a);
  g.mark_output(m);
  g.finalize();
  ASSERT_EQ(g.order().size(), 2u);
  EXPECT_EQ(g.order()[0], s);
  EXPECT_EQ(g.order()[1], m);
  EXPECT_EQ(std::count(g.order().begin(), g.order().end(), unused), 0);
}

TEST(Graph, ViewsAliasTheirSourceAndResolveToTheProducer) {
  Graph g;
  TensorId x = g.input("x", DType::F32, {8, 3, 1, 1});
  TensorId y = ops::scale(g, x, 2.0f);
  TensorId r = ops::reshape(g, y, {4, 2, 3, 1});
  TensorId p = ops::permute(g, r, {1, 0, 2, 3});
  TensorId last = ops::row(g, y, 2);
  EXPECT_EQ(g.storage_root(p), y);
  EXPECT_EQ(g.producer(p), y);
  EXPECT_EQ(g.producer(x), kNoTensor);
  EXPECT_EQ(g[p].ne, (Graph::Shape{2, 4, 3, 1}));
  EXPECT_EQ(g[p].nb[0], g[r].nb[1]);
  EXPECT_FALSE(g[p].is_contiguous());
  EXPECT_EQ(g[last].view_offset, 2u * 8 * 4);
  EXPECT_TRUE(g[last].is_contiguous());
}

TEST(Graph, ShapeErrorsNameTheOpAndShapes) {
  Graph g;
  TensorId w = g.weight("w", DType::F16, {64, 32, 1, 1});
  TensorId x = g.input("x", DType::F32, {48, 1, 1, 1});
  try {
    ops::mul_mat(g, w, x);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mul_mat"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[64, 32]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[48]"), std::string::npos) << msg;
  }
  EXPECT_THROW(ops::reshape(g, x, {5, 10, 1, 1}), Error);
  EXPECT_THROW(ops::add(g, x, g.input("y", DType::F32, {5, 1, 1, 1})), Error);
  EXPECT_THROW(ops::top_k(g, x, 49), Error);
  const TensorId x64 = g.input("x64", DType::F32, {64, 2, 1, 1});
  EXPECT_THROW(ops::mul_mat_add(g, w, x64, g.input("p1", DType::F32, {32, 1, 1, 1})), Error);  // product is [32, 2]
  EXPECT_THROW(ops::mul_mat_add(g, w, x64, g.input("p2", DType::F16, {32, 2, 1, 1})), Error);
  EXPECT_THROW(ops::mul_mat_add(g, w, x, g.input("p3", DType::F32, {32, 1, 1, 1})), Error);  // w and x disagree
  const TensorId cache = g.state("cache", DType::F16, {8, 2, 4, 1});
  const TensorId keys = g.input("keys", DType::F32, {8, 2, 1, 1});
  const TensorId pos = g.input("pos", DType::I32, {1, 1, 1, 1});
  EXPECT_THROW(ops::rope_kv_write(g, cache, keys, pos, kRopeNormal, 7, 10000.0f), Error);  // odd dims
  EXPECT_THROW(ops::rope_kv_write(g, cache, keys, pos, kRopeNormal, 10, 10000.0f), Error);  // dims > head_dim
  EXPECT_THROW(ops::rope_kv_write(g, cache, g.input("k2", DType::F32, {8, 1, 1, 1}), pos, kRopeNormal, 8, 1e4f),
               Error);  // x does not fit the cache
  EXPECT_THROW(g.weight("q", DType::Q4_0, {48, 2, 1, 1}), Error);  // not a multiple of 32
  EXPECT_THROW(ops::permute(g, x, {0, 0, 1, 2}), Error);
}

TEST(Graph, KvWriteAliasesTheCache) {
  Graph g;
  TensorId cache = g.state("cache", DType::F16, {8, 2, 16, 1});
  TensorId k = g.input("k", DType::F32, {8, 2, 3, 1});
  TensorId pos = g.input("pos", DType::I32, {3, 1, 1, 1});
  TensorId w = ops::kv_write(g, cache, k, pos);
  EXPECT_EQ(g.storage_root(w), cache);
  EXPECT_EQ(g.producer(w), w);
  EXPECT_THROW(ops::kv_write(g, cache, g.input("bad", DType::F32, {8, 2, 17, 1}),
                             g.input("p17", DType::I32, {17, 1, 1, 1})),
               Error);
}

TEST(Graph, PrintsTextAndDot) {
  Graph g;
  TensorId a = g.input("a", DType::F32, {4, 1, 1, 1});
  g.mark_output(ops::silu(g, a));
  g.finalize();
  EXPECT_NE(to_text(g).find("silu"), std::string::npos);
  const std::string dot = to_dot(g);
  EXPECT_EQ(dot.rfind("digraph", 0), 0u);
  EXPECT_NE(dot.find("->"), std::string::npos);
}

}  // namespace
}  // namespace braid
