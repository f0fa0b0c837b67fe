#include "op_harness.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/thread_pool.h"
#include "test_support.h"

namespace braid::test {

uint8_t* OpGraph::allocate(TensorId root) {
  const Tensor& t = graph_[root];
  BRAID_ASSERT(t.view_source == kNoTensor && !buffers_.count(root));
  std::vector<uint8_t>& buffer = buffers_[root];
  buffer.assign(t.bytes() + 2 * kGuardBytes, kGuardPattern);
  std::memset(buffer.data() + kGuardBytes, 0, t.bytes());
  return buffer.data() + kGuardBytes;
}

TensorId OpGraph::leaf_with_values(TensorId id, const std::vector<float>& values) {
  uint8_t* data = allocate(id);
  if (graph_[id].has(kWeight)) graph_[id].host_data = data;
  if (addresses_.size() <= static_cast<size_t>(id)) addresses_.resize(static_cast<size_t>(id) + 1, nullptr);
  addresses_[static_cast<size_t>(id)] = data;
  if (!values.empty()) write(id, values);
  return id;
}

TensorId OpGraph::input(const std::string& name, DType type, Shape ne, const std::vector<float>& values) {
  return leaf_with_values(graph_.input(name, type, ne), values);
}

TensorId OpGraph::random_input(const std::string& name, DType type, Shape ne, uint32_t seed, float lo,
                               float hi) {
  const auto count = static_cast<size_t>(ne[0] * ne[1] * ne[2] * ne[3]);
  return input(name, type, ne, random_floats(count, seed, lo, hi));
}

TensorId OpGraph::weight(const std::string& name, DType type, Shape ne, const std::vector<float>& values) {
  return leaf_with_values(graph_.weight(name, type, ne), values);
}

TensorId OpGraph::random_weight(const std::string& name, DType type, Shape ne, uint32_t seed, float lo,
                                float hi) {
  const auto count = static_cast<size_t>(ne[0] * ne[1] * ne[2] * ne[3]);
  return weight(name, type, ne, random_floats(count, seed, lo, hi));
}

TensorId OpGraph::ids(const std::string& name, Shape ne, const std::vector<int32_t>& values) {
  const TensorId id = leaf_with_values(graph_.input(name, DType::I32, ne), {});
  write_i32(id, values);
  return id;
}

TensorId OpGraph::state(const std::string& name, DType type, Shape ne, const std::vector<float>& values) {
  return leaf_with_values(graph_.state(name, type, ne), values);
}

void OpGraph::finish(const std::vector<TensorId>& outputs) {
  for (TensorId id : outputs) graph_.mark_output(id);
  graph_.finalize();
  addresses_.resize(static_cast<size_t>(graph_.tensor_count()), nullptr);
  // Ids only point backwards, so a view's source already has its address.
  for (const Tensor& t : graph_.tensors()) {
    const auto i = static_cast<size_t>(t.id);
    if (t.view_source != kNoTensor) {
      addresses_[i] = addresses_[static_cast<size_t>(t.view_source)] + t.view_offset;
    } else if (!buffers_.count(t.id)) {
      addresses_[i] = allocate(t.id);
    }
  }
}

void OpGraph::run_cpu() {
  BRAID_ASSERT(graph_.finalized());
  for (TensorId node : graph_.compute_nodes()) cpu::compute(graph_, node, addresses_);
}

void OpGraph::run_cpu_fast(const cpu::FastKernelOptions& options) {
  BRAID_ASSERT(graph_.finalized());
  for (TensorId node : graph_.compute_nodes()) {
    cpu::compute_fast(graph_, node, addresses_, cpu::ThreadPool::shared(), options);
  }
}

void OpGraph::write(TensorId id, const std::vector<float>& values) {
  const Tensor& t = graph_[id];
  BRAID_ASSERT(t.is_leaf() && t.is_contiguous());
  BRAID_ASSERT(static_cast<int64_t>(values.size()) == t.elements());
  from_f32(t.type, values.data(), host(id), t.elements());
}

void OpGraph::write_i32(TensorId id, const std::vector<int32_t>& values) {
  const Tensor& t = graph_[id];
  BRAID_ASSERT(t.is_leaf() && t.type == DType::I32);
  BRAID_ASSERT(static_cast<int64_t>(values.size()) == t.elements());
  std::memcpy(host(id), values.data(), values.size() * sizeof(int32_t));
}

std::vector<float> OpGraph::read(TensorId id) const {
  const Tensor& t = graph_[id];
  const auto block_bytes = static_cast<size_t>(traits(t.type).block_bytes);
  std::vector<float> values(static_cast<size_t>(t.elements()));
  float* out = values.data();
  for (int64_t i3 = 0; i3 < t.ne[3]; ++i3) {
    for (int64_t i2 = 0; i2 < t.ne[2]; ++i2) {
      for (int64_t i1 = 0; i1 < t.ne[1]; ++i1, out += t.ne[0]) {
        const uint8_t* row = host(id) + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3];
        if (t.nb[0] == block_bytes) {
          to_f32(t.type, row, out, t.ne[0]);
        } else {  // strided dimension 0 (a transposed view): element by element
          for (int64_t i0 = 0; i0 < t.ne[0]; ++i0) to_f32(t.type, row + i0 * t.nb[0], out + i0, 1);
        }
      }
    }
  }
  return values;
}

std::vector<int32_t> OpGraph::read_i32(TensorId id) const {
  const Tensor& t = graph_[id];
  BRAID_ASSERT(t.type == DType::I32);
  std::vector<int32_t> values;
  for (int64_t i3 = 0; i3 < t.ne[3]; ++i3) {
    for (int64_t i2 = 0; i2 < t.ne[2]; ++i2) {
      for (int64_t i1 = 0; i1 < t.ne[1]; ++i1) {
        for (int64_t i0 = 0; i0 < t.ne[0]; ++i0) {
          int32_t v;
          std::memcpy(&v, host(id) + i0 * t.nb[0] + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3], 4);
          values.push_back(v);
        }
      }
    }
  }
  return values;
}

std::vector<TensorId> OpGraph::storage_roots() const {
  std::vector<TensorId> roots;
  for (const auto& [id, buffer] : buffers_) roots.push_back(id);
  return roots;
}

::testing::AssertionResult OpGraph::guards_intact() const {
  for (const auto& [id, buffer] : buffers_) {
    const size_t size = buffer.size();
    for (size_t i = 0; i < kGuardBytes; ++i) {
      if (buffer[i] != kGuardPattern) {
        return ::testing::AssertionFailure()
               << "guard byte " << kGuardBytes - i << " before " << graph_[id].name << " was overwritten";
      }
      if (buffer[size - 1 - i] != kGuardPattern) {
        return ::testing::AssertionFailure()
               << "guard byte " << kGuardBytes - i << " after " << graph_[id].name << " was overwritten";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult nmse_below(const std::vector<float>& actual, const std::vector<float>& expected,
                                      double limit) {
  const double error = nmse(actual, expected);
  if (error < limit) return ::testing::AssertionSuccess() << "nmse " << error;
  return ::testing::AssertionFailure() << "nmse " << error << " is not below " << limit << " ("
                                       << actual.size() << " values vs " << expected.size() << ")";
}

::testing::AssertionResult nmse_below(const std::vector<float>& actual, const std::vector<double>& expected,
                                      double limit) {
  return nmse_below(actual, std::vector<float>(expected.begin(), expected.end()), limit);
}

}  // namespace braid::test
