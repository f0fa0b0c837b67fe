// The arena allocator: reuse in serial plans, no reuse across concurrent lifetimes,
// outputs kept, in-place element-wise reuse only when safe.
#include <gtest/gtest.h>

#include "braid/ops.h"
#include "braid/plan.h"
#include "plan_test_graphs.h"

namespace braid {
namespace {

constexpr int64_t kElems = 1024;  // 4 KiB of f32: a multiple of the alignment
constexpr size_t kBytes = kElems * 4;

Graph silu_chain(int length, TensorId* last = nullptr) {
  Graph g;
  TensorId t = g.input("x", DType::F32, {kElems, 1, 1, 1});
  for (int i = 0; i < length; ++i) t = ops::silu(g, t);
  g.mark_output(t);
  g.finalize();
  if (last) *last = t;
  return g;
}

TEST(PlanArena, SerialChainReusesMemory) {
  const Graph g = silu_chain(10);
  PlanOptions copy_out;
  copy_out.in_place = false;
  // Out of place, two buffers ping-pong and the output takes a third slot at most.
  const Plan plan = make_plan(g, Policy::Serial, copy_out);
  EXPECT_TRUE(validate(g, plan).ok);
  EXPECT_LE(plan.arena_bytes, 3 * kBytes);
  EXPECT_GE(plan.arena_bytes, 2 * kBytes);
  // In place, every silu overwrites its input: one buffer.
  const Plan in_place = make_plan(g, Policy::Serial);
  EXPECT_TRUE(validate(g, in_place).ok);
  EXPECT_EQ(in_place.arena_bytes, kBytes);
}

TEST(PlanArena, OffsetsCoverExactlyTheComputedOwners) {
  const Graph g = test::random_dag(42, 40);
  const Plan plan = make_plan(g, Policy::Cost);
  ASSERT_EQ(plan.arena_offset.size(), static_cast<size_t>(g.tensor_count()));
  std::vector<char> scheduled(static_cast<size_t>(g.tensor_count()), 0);
  for (const PlanStep& step : plan.steps) scheduled[static_cast<size_t>(step.node)] = 1;
  for (TensorId id = 0; id < g.tensor_count(); ++id) {
    const Tensor& t = g[id];
    const bool owner = scheduled[static_cast<size_t>(id)] && t.op != Op::KvWrite && t.view_source == kNoTensor;
    const int64_t offset = plan.arena_offset[static_cast<size_t>(id)];
    if (owner) {
      EXPECT_GE(offset, 0) << t.name;
      EXPECT_EQ(static_cast<size_t>(offset) % kArenaAlignment, 0u) << t.name;
      EXPECT_LE(static_cast<size_t>(offset) + t.bytes(), plan.arena_bytes) << t.name;
    } else {
      EXPECT_EQ(offset, -1) << t.name;
    }
  }
}

// Two independent chains joined at the end.
Graph two_chains() {
  Graph g;
  const TensorId x = g.input("x", DType::F32, {kElems, 1, 1, 1});
  TensorId a = x, b = x;
  for (int i = 0; i < 4; ++i) {
    a = ops::scale(g, ops::rms_norm(g, a, kNoTensor, 1e-5f), 2.0f);
    b = ops::scale(g, ops::rms_norm(g, b, kNoTensor, 1e-5f), 3.0f);
  }
  g.mark_output(ops::add(g, a, b));
  g.finalize();
  return g;
}

TEST(PlanArena, ConcurrentChainsCannotShareWhatSerialShares) {
  const Graph g = two_chains();
  PlanOptions options;
  options.in_place = false;
  const Plan serial = make_plan(g, Policy::Serial, options);
  const Plan chains = make_plan(g, Policy::Chains, options);
  ASSERT_EQ(chains.stream_count, 2);
  EXPECT_TRUE(validate(g, serial).ok);
  EXPECT_TRUE(validate(g, chains).ok);
  // Serial runs the chains one after the other... or interleaved, in graph order; either
  // way two streams hold both chains' temporaries at once, and so need more memory.
  EXPECT_GT(chains.arena_bytes, serial.arena_bytes);
  // No tensor of one chain shares bytes with a tensor of the other while both may run.
  const HappensBefore order(chains);
  for (size_t i = 0; i < chains.steps.size(); ++i) {
    for (size_t j = i + 1; j < chains.steps.size(); ++j) {
      if (order.ordered(static_cast<int>(i), static_cast<int>(j))) continue;
      EXPECT_NE(chains.arena_offset[static_cast<size_t>(chains.steps[i].node)],
                chains.arena_offset[static_cast<size_t>(chains.steps[j].node)]);
    }
  }
}

TEST(PlanArena, InPlaceOnlyWhenNoOtherReaderRemains) {
  Graph g;
  const TensorId in = g.input("in", DType::F32, {kElems, 1, 1, 1});
  const TensorId x = ops::silu(g, in);
  const TensorId y = ops::scale(g, x, 2.0f);  // x is read again below: not in place
  const TensorId z = ops::add(g, y, x);       // last reader of both: may overwrite one
  const TensorId w = ops::rms_norm(g, z, kNoTensor, 1e-5f);  // not element-wise: never in place
  g.mark_output(w);
  g.finalize();
  const Plan plan = make_plan(g, Policy::Serial);
  ASSERT_TRUE(validate(g, plan).ok);
  auto at = [&](TensorId t) { return plan.arena_offset[static_cast<size_t>(t)]; };
  EXPECT_NE(at(y), at(x));
  EXPECT_TRUE(at(z) == at(y) || at(z) == at(x));
  EXPECT_NE(at(w), at(z));
}

TEST(PlanArena, OutputsAreNeverReused) {
  // The first silu is an output read after the run: nothing may land on it later.
  Graph g;
  TensorId t = ops::silu(g, g.input("x", DType::F32, {kElems, 1, 1, 1}));
  const TensorId first = t;
  g.mark_output(first);
  for (int i = 0; i < 6; ++i) t = ops::scale(g, t, 1.5f);
  g.mark_output(t);
  g.finalize();
  const Plan plan = make_plan(g, Policy::Serial);
  ASSERT_TRUE(validate(g, plan).ok);
  for (const PlanStep& step : plan.steps) {
    if (step.node == first) continue;
    EXPECT_NE(plan.arena_offset[static_cast<size_t>(step.node)], plan.arena_offset[static_cast<size_t>(first)]);
  }
}

TEST(PlanArena, LlamaPeakIsSmallAndReported) {
  test::LlamaShape shape;
  shape.layers = 4;
  const Graph g = test::llama_decode_graph(shape);
  const Plan serial = make_plan(g, Policy::Serial);
  const Plan cost = make_plan(g, Policy::Cost);
  ASSERT_TRUE(validate(g, cost).ok);
  // Decode activations are tiny next to the weights: a few vectors of d and ffn plus logits.
  size_t largest = 0;
  for (const PlanStep& step : serial.steps) largest = std::max(largest, g[step.node].bytes());
  EXPECT_LT(serial.arena_bytes, 4 * largest);
  EXPECT_GE(cost.arena_bytes, serial.arena_bytes);
}

}  // namespace
}  // namespace braid
