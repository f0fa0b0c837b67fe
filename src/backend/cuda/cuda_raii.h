// Owning wrappers for CUDA and cuBLAS resources: device and pinned host buffers,
// streams, events, cuBLAS handles, captured graphs and their executable instances.
//
// Each wrapper owns exactly one resource, moves but never copies, and releases it in its
// destructor. Destructors ignore errors: they run during unwinding, and a failed release
// (for example after a sticky device fault) must not hide the error being reported.
//
// Allocation goes through DeviceBuffer::allocate, which turns a failed cudaMalloc into
// the same "out of device memory" braid::Error that require_free_device_memory throws, so
// a caller sees one message whether the shortage was foreseen or not.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace braid::cuda {

// Whole MiB, rounded up (a 1-byte shortfall is still reported as 1 MiB).
inline size_t mib(size_t bytes) { return (bytes + (size_t{1} << 20) - 1) >> 20; }

// Throws braid::Error("out of device memory: needed X MiB, free Y MiB (what)") when the
// device has less than `bytes` free.
void require_free_device_memory(size_t bytes, const char* what);

// Unique ownership of one handle; Release is a function object that frees it.
template <typename Handle, typename Release>
class Owned {
 public:
  Owned() = default;
  explicit Owned(Handle handle) : handle_(handle) {}
  Owned(Owned&& other) noexcept : handle_(std::exchange(other.handle_, Handle{})) {}
  Owned& operator=(Owned&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, Handle{});
    }
    return *this;
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() { reset(); }

  Handle get() const { return handle_; }
  explicit operator bool() const { return handle_ != Handle{}; }
  void reset() {
    if (handle_ != Handle{}) Release{}(std::exchange(handle_, Handle{}));
  }

 private:
  Handle handle_{};
};

struct StreamRelease {
  void operator()(cudaStream_t s) const { (void)cudaStreamDestroy(s); }
};
struct EventRelease {
  void operator()(cudaEvent_t e) const { (void)cudaEventDestroy(e); }
};
struct CublasRelease {
  void operator()(cublasHandle_t h) const { (void)cublasDestroy(h); }
};
struct GraphRelease {
  void operator()(cudaGraph_t g) const { (void)cudaGraphDestroy(g); }
};
struct GraphExecRelease {
  void operator()(cudaGraphExec_t g) const { (void)cudaGraphExecDestroy(g); }
};

class Stream : public Owned<cudaStream_t, StreamRelease> {
 public:
  using Owned::Owned;
  // A stream that does not synchronize with the legacy default stream.
  static Stream create_non_blocking();
};

class Event : public Owned<cudaEvent_t, EventRelease> {
 public:
  using Owned::Owned;
  static Event create_for_sync();    // timing disabled: cheap to record and wait on
  static Event create_for_timing();  // only for the timing and bench paths
};

class CublasHandle : public Owned<cublasHandle_t, CublasRelease> {
 public:
  using Owned::Owned;
  static CublasHandle create();
};

using CudaGraph = Owned<cudaGraph_t, GraphRelease>;
using GraphExec = Owned<cudaGraphExec_t, GraphExecRelease>;

// Device memory. Empty (null) when allocated with 0 bytes.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // `what` names the allocation in the out-of-memory message ("arena", "weight x").
  static DeviceBuffer allocate(size_t bytes, const char* what);
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }

  uint8_t* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  void reset() {
    if (data_) (void)cudaFree(std::exchange(data_, nullptr));
    bytes_ = 0;
  }

 private:
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory (the source of asynchronous host-to-device copies), zeroed.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  static PinnedBuffer allocate(size_t bytes, const char* what);
  PinnedBuffer(PinnedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() { reset(); }

  uint8_t* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  void reset() {
    if (data_) (void)cudaFreeHost(std::exchange(data_, nullptr));
    bytes_ = 0;
  }

 private:
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace braid::cuda
