#include "backend/cuda/resident_store.h"

#include <fmt/format.h>

#include <vector>

#include "backend/cuda/cuda_ops.h"

namespace braid::cuda {

namespace {

// Leaves (weights, inputs, state) that the graph's reachable nodes read or alias.
std::vector<TensorId> used_leaves(const Graph& graph) {
  std::vector<uint8_t> used(static_cast<size_t>(graph.tensor_count()), 0);
  for (TensorId id : graph.order()) {
    const Tensor& t = graph[id];
    for (TensorId s : t.src) used[static_cast<size_t>(s)] = 1;
    if (t.view_source != kNoTensor) used[static_cast<size_t>(t.view_source)] = 1;
  }
  for (TensorId id : graph.outputs()) used[static_cast<size_t>(id)] = 1;
  std::vector<TensorId> leaves;
  for (TensorId id = 0; id < graph.tensor_count(); ++id) {
    if (used[static_cast<size_t>(id)] && graph[id].is_leaf()) leaves.push_back(id);
  }
  return leaves;
}

}  // namespace

const ResidentStore::Entry* ResidentStore::find_matching(const Table& table, const Tensor& tensor,
                                                         const char* kind) {
  const auto it = table.find(tensor.name);
  if (it == table.end()) return nullptr;
  const Entry& e = it->second;
  if (e.type != tensor.type || e.ne != tensor.ne) {
    Tensor resident;
    resident.type = e.type;
    resident.ne = e.ne;
    throw Error(fmt::format("{} '{}': this graph has it as {} {}, but the backend already holds {} {}",
                            kind, tensor.name, name(tensor.type), tensor.shape_string(),
                            name(e.type), resident.shape_string()));
  }
  return &e;
}

void ResidentStore::make_resident(const Graph& graph, size_t extra_bytes) {
  std::vector<const Tensor*> new_weights, new_state;
  size_t weights_needed = 0, state_needed = 0;
  for (TensorId id : used_leaves(graph)) {
    const Tensor& t = graph[id];
    if (t.has(kWeight)) {
      if (find_matching(weights_, t, "weight")) continue;
      if (!t.host_data) {
        throw Error(fmt::format("weight '{}' {} has no data (a graph built from shapes only cannot run)",
                                t.name, t.shape_string()));
      }
      new_weights.push_back(&t);
      weights_needed += t.bytes();
    } else if (t.has(kState)) {
      if (find_matching(state_, t, "state tensor")) continue;
      new_state.push_back(&t);
      state_needed += t.bytes();
    }
  }
  const std::string what =
      fmt::format("{} MiB of new weights, {} MiB of new state, {} MiB of executable buffers",
                  mib(weights_needed), mib(state_needed), mib(extra_bytes));
  require_free_device_memory(weights_needed + state_needed + extra_bytes, what.c_str());

  // Allocate into side tables first: if anything fails, they free what they hold and the
  // store is as it was.
  Table added_weights, added_state;
  size_t added_weight_bytes = 0, added_state_bytes = 0;
  for (const Tensor* t : new_weights) {
    if (find_matching(added_weights, *t, "weight")) continue;  // the graph names it twice
    const std::string label = "weight " + t->name;
    Entry e{t->type, t->ne, DeviceBuffer::allocate(t->bytes(), label.c_str())};
    if (e.buffer.data()) {
      check(cudaMemcpy(e.buffer.data(), t->host_data, t->bytes(), cudaMemcpyHostToDevice),
            "cudaMemcpy (weight upload)");
    }
    added_weight_bytes += e.buffer.bytes();
    added_weights.emplace(t->name, std::move(e));
  }
  for (const Tensor* t : new_state) {
    if (find_matching(added_state, *t, "state tensor")) continue;
    const std::string label = "state " + t->name;
    Entry e{t->type, t->ne, DeviceBuffer::allocate(t->bytes(), label.c_str())};
    if (e.buffer.data()) check(cudaMemset(e.buffer.data(), 0, e.buffer.bytes()), "cudaMemset (state)");
    added_state_bytes += e.buffer.bytes();
    added_state.emplace(t->name, std::move(e));
  }
  // Uploads from pageable memory and cudaMemset may still be in flight, and they are not
  // ordered with the backend's non-blocking streams: finish them here.
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (after upload)");

  weights_.merge(added_weights);
  state_.merge(added_state);
  weights_bytes_ += added_weight_bytes;
  state_bytes_ += added_state_bytes;
}

uint8_t* ResidentStore::find(const Tensor& tensor) const {
  const Table& table = tensor.has(kWeight) ? weights_ : state_;
  const auto it = table.find(tensor.name);
  if (it == table.end() || it->second.type != tensor.type || it->second.ne != tensor.ne) return nullptr;
  return it->second.buffer.data();
}

void ResidentStore::zero_state() {
  // cudaMemset runs on the legacy default stream, which does not wait for non-blocking
  // streams: let every executable's work finish first, and the memsets before returning.
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (before state reset)");
  for (auto& [name, e] : state_) {
    if (e.buffer.data()) check(cudaMemset(e.buffer.data(), 0, e.buffer.bytes()), "cudaMemset (state reset)");
  }
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (after state reset)");
}

}  // namespace braid::cuda
