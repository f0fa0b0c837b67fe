// The CUDA backend's persistent memory: weights (uploaded once) and state tensors (the
// KV cache: zeroed once, kept across runs), both found by tensor name.
//
// Graphs of one model built for different batch sizes name the same weights and caches,
// so every executable of a backend shares one copy. Executables hold the store through a
// shared_ptr: device addresses baked into a captured CUDA graph stay valid as long as the
// graph does, even when the Backend object goes away first.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "backend/cuda/cuda_raii.h"
#include "braid/graph.h"

namespace braid::cuda {

class ResidentStore {
 public:
  // Uploads every weight and allocates (zeroed) every state tensor that `graph` uses and
  // the store lacks. First checks that they and `extra_bytes` (what the caller will
  // allocate next, e.g. an executable's arena) fit in free device memory, so that a
  // shortage is reported before anything is allocated; on any failure, nothing new is
  // kept. A name already present must have the same type and shape.
  void make_resident(const Graph& graph, size_t extra_bytes);

  // Device address of a weight or state tensor (by name), or null when the store holds
  // no tensor of that name, type and shape (e.g. a weight the graph does not use).
  uint8_t* find(const Tensor& tensor) const;

  void zero_state();  // synchronous: the device is idle when it returns
  size_t weights_bytes() const { return weights_bytes_; }
  size_t state_bytes() const { return state_bytes_; }

 private:
  struct Entry {
    DType type = DType::F32;
    std::array<int64_t, kMaxDims> ne{};
    DeviceBuffer buffer;
  };
  using Table = std::unordered_map<std::string, Entry>;

  static const Entry* find_matching(const Table& table, const Tensor& tensor, const char* kind);

  Table weights_;
  Table state_;
  size_t weights_bytes_ = 0;
  size_t state_bytes_ = 0;
};

}  // namespace braid::cuda
