// Runs one compute node of a small graph on the CPU reference and through
// braid::cuda::launch, for the CUDA op tests. Every leaf gets random data (I32 leaves
// get the values a test sets), device buffers carry guard bytes on both sides, and the
// node can be launched eagerly or captured into a CUDA graph and replayed.
// Only compiled with CUDA (BRAID_HAVE_CUDA).
#pragma once

#ifdef BRAID_HAVE_CUDA

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "braid/backend.h"
#include "braid/graph.h"
#include "braid/ops.h"
#include "test_support.h"

namespace braid::test {

#define BRAID_SKIP_WITHOUT_CUDA() \
  if (!::braid::cuda_available()) GTEST_SKIP() << "no CUDA device"

// Device memory with kGuardBytes of a known pattern before and after the payload.
// Every weight type a matrix product takes (rows of the tests are multiples of 256, so
// the K-quants fit).
inline constexpr DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                                         DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                                         DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Bound for a product on the cuBLAS path against the CPU: activations rounded to the
// weight's 16-bit type (f16, or bf16 with 8 bits of mantissa), quantized weights to f16;
// f32 weights stay f32.
inline double cublas_threshold(DType type) {
  if (type == DType::F32) return 1e-8;
  if (type == DType::BF16) return 1e-4;
  return 1e-5;
}

class GuardedBuffer {
 public:
  static constexpr size_t kGuardBytes = 256;  // keeps the payload 256-byte aligned
  static constexpr uint8_t kPattern = 0xA5;

  explicit GuardedBuffer(size_t bytes) : bytes_(bytes) {
    cuda::check(cudaMalloc(&base_, bytes + 2 * kGuardBytes), "cudaMalloc");
    cuda::check(cudaMemset(base_, kPattern, bytes + 2 * kGuardBytes), "cudaMemset");
  }
  ~GuardedBuffer() { cudaFree(base_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  uint8_t* data() const { return base_ + kGuardBytes; }
  size_t bytes() const { return bytes_; }
  bool guards_intact() const {
    std::vector<uint8_t> host(bytes_ + 2 * kGuardBytes);
    cuda::check(cudaMemcpy(host.data(), base_, host.size(), cudaMemcpyDeviceToHost), "guard read");
    for (size_t i = 0; i < kGuardBytes; ++i) {
      if (host[i] != kPattern || host[kGuardBytes + bytes_ + i] != kPattern) return false;
    }
    return true;
  }

 private:
  uint8_t* base_ = nullptr;
  size_t bytes_;
};

// Per-test CUDA resources: a stream and a cuBLAS handle bound to it with its own workspace.
class CudaContext {
 public:
  CudaContext() {
    cuda::check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
    cuda::check(cublasCreate(&cublas_), "cublasCreate");
    cuda::check(cublasSetStream(cublas_, stream_), "cublasSetStream");
    workspace_ = std::make_unique<GuardedBuffer>(kWorkspaceBytes);
    cuda::check(cublasSetWorkspace(cublas_, workspace_->data(), kWorkspaceBytes), "cublasSetWorkspace");
  }
  ~CudaContext() {
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }

 private:
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::unique_ptr<GuardedBuffer> workspace_;
};

class OneNodeRunner {
 public:
  // Marks `node` as the output and finalizes the graph.
  OneNodeRunner(Graph& graph, TensorId node, uint32_t seed) : graph_(graph), node_(node) {
    graph_.mark_output(node);
    graph_.finalize();
    for (const Tensor& t : graph_.tensors()) {
      if (!t.is_leaf()) continue;
      std::vector<uint8_t>& bytes = leaves_[t.id];
      bytes.resize(t.bytes());
      if (t.type == DType::I32) continue;  // set_ints
      const auto values = random_floats(static_cast<size_t>(t.elements()), seed + static_cast<uint32_t>(t.id));
      from_f32(t.type, values.data(), bytes.data(), t.elements());
    }
  }

  const Graph& graph() const { return graph_; }
  void set_ints(TensorId id, const std::vector<int32_t>& values) {
    ASSERT_EQ(values.size() * 4, leaves_.at(id).size());
    std::memcpy(leaves_.at(id).data(), values.data(), leaves_.at(id).size());
    if (!device_leaves_.empty()) upload(id);
  }
  // Leaf data as f32 (tests use it to build special inputs, e.g. ties).
  void set_floats(TensorId id, const std::vector<float>& values) {
    const Tensor& t = graph_[id];
    ASSERT_EQ(static_cast<int64_t>(values.size()), t.elements());
    from_f32(t.type, values.data(), leaves_.at(id).data(), t.elements());
  }

  // The CPU reference, on copies of the leaves; the output converted to f32.
  std::vector<float> reference() {
    std::map<TensorId, std::vector<uint8_t>> storage = leaves_;
    cpu::Addresses memory(static_cast<size_t>(graph_.tensor_count()), nullptr);
    for (const Tensor& t : graph_.tensors()) {
      if (!t.is_leaf() && t.view_source == kNoTensor) storage[t.id].resize(t.bytes());
    }
    for (const Tensor& t : graph_.tensors()) memory[static_cast<size_t>(t.id)] = address(t.id, storage);
    cpu::compute(graph_, node_, memory);
    return as_floats(memory[static_cast<size_t>(node_)]);
  }

  // Device run: eager launch, or (captured = true) capture into a CUDA graph and replay.
  std::vector<float> device(const CudaContext& cuda, bool captured = false) {
    if (device_leaves_.empty()) allocate_device();
    cuda::StreamContext ctx{cuda.stream(), cuda.cublas(), scratch_ ? scratch_->data() : nullptr,
                            scratch_ ? scratch_->bytes() : 0};
    if (!captured) {
      cuda::launch(graph_, node_, device_memory_, ctx);
    } else {
      cudaGraph_t graph = nullptr;
      cuda::check(cudaStreamBeginCapture(cuda.stream(), cudaStreamCaptureModeThreadLocal), "begin capture");
      try {
        cuda::launch(graph_, node_, device_memory_, ctx);
      } catch (...) {
        cudaStreamEndCapture(cuda.stream(), &graph);
        throw;
      }
      cuda::check(cudaStreamEndCapture(cuda.stream(), &graph), "end capture");
      if (exec_) cudaGraphExecDestroy(exec_);
      cuda::check(cudaGraphInstantiate(&exec_, graph, 0), "instantiate");
      cudaGraphDestroy(graph);
    }
    return replay_or_read(cuda, captured);
  }
  // Replays the graph captured by the last device(cuda, true), after new set_ints().
  std::vector<float> replay(const CudaContext& cuda) { return replay_or_read(cuda, true); }

  bool guards_intact() const {
    for (const auto& [id, buffer] : device_leaves_) {
      if (!buffer->guards_intact()) return false;
    }
    return (!output_ || output_->guards_intact()) && (!scratch_ || scratch_->guards_intact());
  }

  ~OneNodeRunner() {
    if (exec_) cudaGraphExecDestroy(exec_);
  }

 private:
  uint8_t* address(TensorId id, std::map<TensorId, std::vector<uint8_t>>& storage) const {
    const Tensor& t = graph_[id];
    if (t.view_source != kNoTensor) return address(t.view_source, storage) + t.view_offset;
    return storage.at(id).data();
  }

  std::vector<float> as_floats(const uint8_t* data) const {
    const Tensor& t = graph_[node_];
    BRAID_ASSERT(t.is_contiguous());
    std::vector<float> out(static_cast<size_t>(t.elements()));
    to_f32(t.type, data, out.data(), t.elements());
    return out;
  }

  void upload(TensorId id) {
    const std::vector<uint8_t>& bytes = leaves_.at(id);
    cuda::check(cudaMemcpy(device_leaves_.at(id)->data(), bytes.data(), bytes.size(), cudaMemcpyHostToDevice),
                "upload");
    // A pageable copy may still be in flight when cudaMemcpy returns, and the test's
    // stream does not synchronize with the default stream.
    cuda::check(cudaDeviceSynchronize(), "upload synchronize");
  }

  void allocate_device() {
    for (const auto& [id, bytes] : leaves_) {
      device_leaves_[id] = std::make_unique<GuardedBuffer>(bytes.size());
      upload(id);
    }
    const Tensor& node = graph_[node_];
    if (node.view_source == kNoTensor) output_ = std::make_unique<GuardedBuffer>(node.bytes());
    const size_t scratch = cuda::scratch_bytes(graph_, node_);
    if (scratch > 0) scratch_ = std::make_unique<GuardedBuffer>(scratch);
    device_memory_.assign(static_cast<size_t>(graph_.tensor_count()), nullptr);
    for (const Tensor& t : graph_.tensors()) device_memory_[static_cast<size_t>(t.id)] = device_address(t.id);
  }

  uint8_t* device_address(TensorId id) const {
    const Tensor& t = graph_[id];
    if (t.view_source != kNoTensor) return device_address(t.view_source) + t.view_offset;
    if (t.is_leaf()) return device_leaves_.at(id)->data();
    return id == node_ ? output_->data() : nullptr;
  }

  std::vector<float> replay_or_read(const CudaContext& cuda, bool captured) {
    if (captured) cuda::check(cudaGraphLaunch(exec_, cuda.stream()), "graph launch");
    cuda::check(cudaStreamSynchronize(cuda.stream()), "synchronize");
    const Tensor& t = graph_[node_];
    std::vector<uint8_t> bytes(t.bytes());
    cuda::check(cudaMemcpy(bytes.data(), device_memory_[static_cast<size_t>(node_)], bytes.size(),
                           cudaMemcpyDeviceToHost),
                "download");
    return as_floats(bytes.data());
  }

  Graph& graph_;
  TensorId node_;
  std::map<TensorId, std::vector<uint8_t>> leaves_;
  std::map<TensorId, std::unique_ptr<GuardedBuffer>> device_leaves_;
  std::unique_ptr<GuardedBuffer> output_;
  std::unique_ptr<GuardedBuffer> scratch_;
  cuda::DeviceAddresses device_memory_;
  cudaGraphExec_t exec_ = nullptr;
};

// The standard check of one case: the CPU reference against an eager launch (NMSE below
// `threshold`, NaN never passes), a second eager launch and a captured replay that are
// bit-identical to the first, and intact guard bytes around every device buffer.
inline void expect_matches_reference(OneNodeRunner& runner, double threshold, const CudaContext& cuda) {
  const std::vector<float> expected = runner.reference();
  const std::vector<float> first = runner.device(cuda);
  EXPECT_LT(nmse(first, expected), threshold);
  const std::vector<float> second = runner.device(cuda);
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * 4), 0) << "two launches differ";
  const std::vector<float> replayed = runner.device(cuda, true);
  EXPECT_EQ(std::memcmp(first.data(), replayed.data(), first.size() * 4), 0) << "captured replay differs";
  EXPECT_TRUE(runner.guards_intact()) << "a kernel wrote outside its buffers";
}

}  // namespace braid::test

#endif  // BRAID_HAVE_CUDA
