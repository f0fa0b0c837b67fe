#include "backend/cuda/cuda_raii.h"

#include <fmt/format.h>

#include <cstring>

#include "backend/cuda/cuda_ops.h"
#include "braid/graph.h"

namespace braid::cuda {

namespace {

[[noreturn]] void throw_out_of_memory(size_t needed, size_t free_bytes, const char* what) {
  throw Error(fmt::format("out of device memory: needed {} MiB, free {} MiB ({})", mib(needed),
                          free_bytes >> 20, what));
}

size_t free_device_bytes() {
  size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  return free_bytes;
}

}  // namespace

void require_free_device_memory(size_t bytes, const char* what) {
  const size_t free_bytes = free_device_bytes();
  if (bytes > free_bytes) throw_out_of_memory(bytes, free_bytes, what);
}

Stream Stream::create_non_blocking() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  return Stream(s);
}

Event Event::create_for_sync() {
  cudaEvent_t e = nullptr;
  check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  return Event(e);
}

Event Event::create_for_timing() {
  cudaEvent_t e = nullptr;
  check(cudaEventCreateWithFlags(&e, cudaEventDefault), "cudaEventCreateWithFlags");
  return Event(e);
}

CublasHandle CublasHandle::create() {
  cublasHandle_t h = nullptr;
  check(cublasCreate(&h), "cublasCreate");
  return CublasHandle(h);
}

DeviceBuffer DeviceBuffer::allocate(size_t bytes, const char* what) {
  DeviceBuffer buffer;
  if (bytes == 0) return buffer;
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status == cudaErrorMemoryAllocation) {
    // Not a sticky error, but it stays as the "last error" and would be blamed on the
    // next kernel launch that checks cudaGetLastError: clear it.
    (void)cudaGetLastError();
    throw_out_of_memory(bytes, free_device_bytes(), what);
  }
  check(status, "cudaMalloc");
  buffer.data_ = static_cast<uint8_t*>(p);
  buffer.bytes_ = bytes;
  return buffer;
}

PinnedBuffer PinnedBuffer::allocate(size_t bytes, const char* what) {
  PinnedBuffer buffer;
  if (bytes == 0) return buffer;
  void* p = nullptr;
  const cudaError_t status = cudaHostAlloc(&p, bytes, cudaHostAllocDefault);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    throw Error(fmt::format("out of pinned host memory: needed {} MiB ({})", mib(bytes), what));
  }
  check(status, "cudaHostAlloc");
  std::memset(p, 0, bytes);
  buffer.data_ = static_cast<uint8_t*>(p);
  buffer.bytes_ = bytes;
  return buffer;
}

}  // namespace braid::cuda
