// The op test harness: small graphs (usually one compute node) with host memory for
// every tensor, run on the CPU reference. A backend test (CUDA) builds the same graph,
// uploads the leaves from here, runs the node, and compares its output with the CPU's
// by normalized mean squared error (expect_nmse_below).
//
//   OpGraph g;
//   TensorId a = g.random_input("a", DType::F32, {64, 3, 1, 1}, /*seed=*/1);
//   TensorId y = ops::silu(g.graph(), a);
//   g.finish({y});
//   g.run_cpu();
//   std::vector<float> out = g.read(y);
//
// Every storage buffer has guard bytes on both sides; guards_intact() checks that no
// kernel wrote outside its tensor.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "braid/graph.h"
#include "braid/ops.h"

namespace braid::test {

inline constexpr size_t kGuardBytes = 64;
inline constexpr uint8_t kGuardPattern = 0xA7;

class OpGraph {
 public:
  using Shape = Graph::Shape;

  Graph& graph() { return graph_; }
  const Graph& graph() const { return graph_; }

  // Leaves with data; floats are converted (quantized where the type is) to `type`.
  TensorId input(const std::string& name, DType type, Shape ne, const std::vector<float>& values);
  TensorId random_input(const std::string& name, DType type, Shape ne, uint32_t seed,
                        float lo = -1.0f, float hi = 1.0f);
  TensorId weight(const std::string& name, DType type, Shape ne, const std::vector<float>& values);
  TensorId random_weight(const std::string& name, DType type, Shape ne, uint32_t seed,
                         float lo = -1.0f, float hi = 1.0f);
  TensorId ids(const std::string& name, Shape ne, const std::vector<int32_t>& values);
  // A state tensor (KV cache); zero unless values are given.
  TensorId state(const std::string& name, DType type, Shape ne, const std::vector<float>& values = {});

  // Marks outputs, finalizes the graph and gives every remaining tensor memory.
  void finish(const std::vector<TensorId>& outputs);
  // Runs every compute node of the graph, in order, on the CPU reference kernels.
  void run_cpu();
  // The same on the fast CPU kernels (cpu::compute_fast) over the shared thread pool.
  void run_cpu_fast(const cpu::FastKernelOptions& options = {});

  // Overwrites a leaf (inputs between runs, a cache slot); the leaf is contiguous.
  void write(TensorId id, const std::vector<float>& values);
  void write_i32(TensorId id, const std::vector<int32_t>& values);
  // A tensor's values through its strides, dimension 0 fastest, converted to f32.
  std::vector<float> read(TensorId id) const;
  std::vector<int32_t> read_i32(TensorId id) const;

  // The memory: one buffer per storage root (tensors that alias nothing).
  std::vector<TensorId> storage_roots() const;
  uint8_t* host(TensorId id) const { return addresses_.at(static_cast<size_t>(id)); }
  const cpu::Addresses& addresses() const { return addresses_; }

  // Fails, naming the tensor and the byte, when any guard byte has changed.
  ::testing::AssertionResult guards_intact() const;

 private:
  uint8_t* allocate(TensorId root);
  TensorId leaf_with_values(TensorId id, const std::vector<float>& values);

  Graph graph_;
  std::map<TensorId, std::vector<uint8_t>> buffers_;  // guard + tensor bytes + guard
  cpu::Addresses addresses_;
};

// Passes when nmse(actual, expected) < limit; NaN anywhere never passes.
::testing::AssertionResult nmse_below(const std::vector<float>& actual, const std::vector<float>& expected,
                                      double limit);
::testing::AssertionResult nmse_below(const std::vector<float>& actual, const std::vector<double>& expected,
                                      double limit);

// Flat index of element (i0, i1, i2, i3) of a contiguous tensor of shape ne.
inline size_t flat(const Graph::Shape& ne, int64_t i0, int64_t i1 = 0, int64_t i2 = 0, int64_t i3 = 0) {
  return static_cast<size_t>(((i3 * ne[2] + i2) * ne[1] + i1) * ne[0] + i0);
}

}  // namespace braid::test
