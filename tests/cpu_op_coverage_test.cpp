// Every compute op of the IR has a CPU kernel. op_cases.h builds one small graph per
// op; a new op added to the enum fails this test until it has an entry there (and a
// kernel here).
#include <gtest/gtest.h>

#include <cmath>

#include "op_cases.h"

namespace braid {
namespace {

using test::one_node_graphs;
using test::OpGraph;

TEST(CpuOpCoverage, EveryComputeOpHasAKernel) {
  int covered = 0;
  for (int i = 0; i < kOpCount; ++i) {
    const auto op = static_cast<Op>(i);
    if (!is_compute_op(op)) continue;
    const auto entry = one_node_graphs().find(op);
    ASSERT_NE(entry, one_node_graphs().end()) << op_name(op) << " has no test graph";
    OpGraph g;
    const TensorId node = entry->second(g);
    ASSERT_EQ(g.graph()[node].op, op);
    g.finish({node});
    ASSERT_NO_THROW(g.run_cpu()) << op_name(op);
    EXPECT_TRUE(g.guards_intact()) << op_name(op);
    if (g.graph()[node].type == DType::I32) {
      for (int32_t v : g.read_i32(node)) EXPECT_GE(v, 0) << op_name(op);
    } else {
      double magnitude = 0;
      for (float v : g.read(node)) {
        EXPECT_TRUE(std::isfinite(v)) << op_name(op);
        magnitude += std::fabs(v);
      }
      EXPECT_GT(magnitude, 0) << op_name(op) << " wrote only zeros";
    }
    ++covered;
  }
  EXPECT_EQ(covered, static_cast<int>(one_node_graphs().size()));
}

}  // namespace
}  // namespace braid
