// Pieces every CUDA op family shares: the node being launched (NodeLaunch), a strided
// tensor descriptor kernels take by value, element loads of each storage type, and
// deterministic warp and block reductions.
//
// Note [Deterministic reductions]: every reduction here is a fixed xor-butterfly over
// warp lanes followed, for blocks, by the same butterfly over the per-warp partials.
// Float addition is commutative, so every lane ends with bit-identical totals, and the
// order of additions never depends on timing. No kernel of the op layer uses atomics.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <utility>

#include "backend/cuda/cuda_ops.h"
#include "braid/quant/dequantize.h"

namespace braid::cuda {

// Everything an op entry needs to launch one node.
struct NodeLaunch {
  const Graph& graph;
  const Tensor& node;
  const DeviceAddresses& memory;
  const StreamContext& ctx;
  const SharedInt8* x_int8 = nullptr;  // mul_mat: x already quantized (LaunchExtras::reads)
  // rms_norm, swiglu, attention: the output's int8 copy, which the node's kernel writes
  // beside the output (LaunchExtras::writes, when producer_writes_int8).
  const SharedInt8* out_int8 = nullptr;

  const Tensor& src(size_t i) const { return graph[node.src[i]]; }
  const uint8_t* src_data(size_t i) const { return memory[static_cast<size_t>(node.src[i])]; }
  uint8_t* out_data() const { return memory[static_cast<size_t>(node.id)]; }
  // "<op> <node name>", the prefix of every error about this node.
  std::string label() const { return std::string(op_name(node.op)) + " " + node.name; }
  // Throws braid::Error("<op> <node>: <cuda error>") when the last launch failed.
  void check_launch() const { check(cudaGetLastError(), label().c_str()); }
  // Throws braid::Error naming both sizes unless the stream's scratch holds `bytes`.
  void require_scratch(size_t bytes) const {
    if (ctx.scratch == nullptr || ctx.scratch_bytes < bytes) {
      throw Error(label() + ": needs " + std::to_string(bytes) + " bytes of scratch, the stream has " +
                  std::to_string(ctx.scratch_bytes));
    }
  }
};

// A tensor as kernels see it: its first byte, element counts and byte strides.
struct StridedTensor {
  const uint8_t* data;
  int64_t ne[kMaxDims];
  int64_t nb[kMaxDims];

  __host__ __device__ int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  // First byte of row `row` (dimensions 1..3 flattened, dimension 1 fastest).
  __host__ __device__ const uint8_t* row_data(int64_t row) const {
    const int64_t i1 = row % ne[1];
    const int64_t i2 = (row / ne[1]) % ne[2];
    const int64_t i3 = row / (ne[1] * ne[2]);
    return data + i1 * nb[1] + i2 * nb[2] + i3 * nb[3];
  }
};

inline StridedTensor strided(const Tensor& t, const uint8_t* data) {
  StridedTensor s{};
  s.data = data;
  for (int d = 0; d < kMaxDims; ++d) {
    s.ne[d] = t.ne[static_cast<size_t>(d)];
    s.nb[d] = static_cast<int64_t>(t.nb[static_cast<size_t>(d)]);
  }
  return s;
}

// Note [Programmatic dependent launch]: every kernel is launched through launch_kernel,
// which lets it start while the kernel before it on the stream is still finishing (on
// Hopper and later; BRAID_PDL=0 turns it off). Each kernel's blocks then become resident
// early and wait in wait_for_producers(), which returns once the previous grid has
// completed and its writes are visible, so every kernel calls it before it touches global
// memory. Since a grid completes only after its own wait returned, the guarantee is
// transitive: a kernel sees the writes of every kernel before it on the stream. Kernels of
// other libraries (cuBLAS) are launched without the attribute and order as usual. What is
// gained is the launch latency and block scheduling of each kernel boundary.
//
// Note [Weight prefetch]: weights are written only by uploads, never by a kernel, so the
// int8 matrix-vector kernel loads its first weights before wait_for_producers: while the
// kernel before it (the quantization of x) finishes, the blocks already resident keep
// memory busy (llama-7b q4_0 decode 290 -> 327 t/s serial on the H100). The f16 kernel
// measured slower with the same change (llama-1b 807 -> 736 t/s) and does not do it.
__device__ __forceinline__ void wait_for_producers() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// Asynchronous copies from global to shared memory (cp.async, compute capability 8.0 and
// later): issued without waiting, committed as a group, waited for by group count.
__device__ __forceinline__ void copy_async16(void* shared_to, const void* global_from) {
  const auto to = static_cast<unsigned>(__cvta_generic_to_shared(shared_to));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(to), "l"(global_from) : "memory");
}
__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Returns once at most `pending` of this thread's committed groups are still in flight.
template <int pending>
__device__ __forceinline__ void copy_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(pending) : "memory");
}

// Whether kernels are launched with programmatic stream serialization (the device is
// compute capability 9.0 or later and BRAID_PDL is not 0).
bool programmatic_launch_enabled();

// kernel<<<grid, block, shared_bytes, stream>>>(args...), with programmatic stream
// serialization when enabled. Errors are left for cudaGetLastError (NodeLaunch::check_launch).
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                   Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = programmatic_launch_enabled() ? 1 : 0;
  (void)cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
inline unsigned grid_size(int64_t work, int per_block) {
  return static_cast<unsigned>((work + per_block - 1) / per_block);
}

// --- Conversions -------------------------------------------------------------------

__device__ __forceinline__ float half_bits_to_float(uint16_t bits) {
  return __half2float(__ushort_as_half(bits));
}
__device__ __forceinline__ float bf16_bits_to_float(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

// Round to nearest even, as the host conversions in types.cpp do.
template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Element i of a row of any storage type (the row starts at a block boundary). Slow but
// general: used where a kernel is not bound by this load (get_rows, fallbacks).
// Quantized blocks are read through quant/dequantize.h, the one definition of each format.
__device__ __forceinline__ float load_element(DType type, const uint8_t* row, int64_t i) {
  switch (type) {
    case DType::F32: return reinterpret_cast<const float*>(row)[i];
    case DType::F16: return half_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
    case DType::BF16: return bf16_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
    case DType::I32: return static_cast<float>(reinterpret_cast<const int32_t*>(row)[i]);
    case DType::Q8_0: return row_element<DType::Q8_0>(row, i);
    case DType::Q4_0: return row_element<DType::Q4_0>(row, i);
    case DType::Q4_1: return row_element<DType::Q4_1>(row, i);
    case DType::Q5_0: return row_element<DType::Q5_0>(row, i);
    case DType::Q5_1: return row_element<DType::Q5_1>(row, i);
    case DType::Q2_K: return row_element<DType::Q2_K>(row, i);
    case DType::Q3_K: return row_element<DType::Q3_K>(row, i);
    case DType::Q4_K: return row_element<DType::Q4_K>(row, i);
    case DType::Q5_K: return row_element<DType::Q5_K>(row, i);
    case DType::Q6_K: return row_element<DType::Q6_K>(row, i);
  }
  return __int_as_float(0x7fc00000);  // unreachable: NaN makes it visible
}

// --- Reductions (see Note [Deterministic reductions]) --------------------------------

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum (or max) over the block; every thread gets the result. blockDim.x must be a
// multiple of 32; `scratch` holds 32 floats of shared memory. Synchronizes the block.
template <bool kMax>
__device__ float block_reduce(float v, float* scratch) {
  v = kMax ? warp_max(v) : warp_sum(v);
  const unsigned warp = threadIdx.x / 32;
  const unsigned lane = threadIdx.x % 32;
  __syncthreads();  // an earlier call may still be reading scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const float identity = kMax ? -INFINITY : 0.0f;
  v = lane < blockDim.x / 32 ? scratch[lane] : identity;
  return kMax ? warp_max(v) : warp_sum(v);
}

}  // namespace braid::cuda
