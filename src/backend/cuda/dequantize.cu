// Quantized weights to f16 rows for the cuBLAS path of prompts (gemm.cu, gemm_experts.cu).
//
// One thread writes eight consecutive elements as one 16-byte store, and consecutive
// threads write consecutive stores, so a warp writes 512 contiguous bytes: the f16 output
// (3.5x the bytes of a 4-bit input) is most of the traffic, and per-thread runs of 64
// bytes (one thread per block of 32) left each store instruction touching 32 segments.
// The values are quant/dequantize.h's (dequantize_eight), so the CPU reference and this
// agree to the bit before the rounding to f16.
#include "backend/cuda/matmul.cuh"
#include "braid/quant/dequantize.h"

#include <algorithm>

namespace braid::cuda {
namespace {

template <DType W>
__global__ void dequantize_rows_kernel(const uint8_t* w, int64_t w_row_stride, int64_t k, int64_t rows, __half* out) {
  wait_for_producers();
  using Format = QuantFormat<W>;
  constexpr int kEights = Format::kElements / 8;  // per block
  const int64_t eights_per_row = k / 8;
  const int64_t count = rows * eights_per_row;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / eights_per_row;
    const int64_t eight = i - row * eights_per_row;
    const auto* block = reinterpret_cast<const typename Format::Block*>(w + row * w_row_stride) + eight / kEights;
    float v[8];
    dequantize_eight<W>(*block, static_cast<int>(eight % kEights), v);
    uint4 packed;
    __half2* halves = reinterpret_cast<__half2*>(&packed);
#pragma unroll
    for (int j = 0; j < 4; ++j) halves[j] = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
    reinterpret_cast<uint4*>(out + row * k)[eight] = packed;
  }
}

}  // namespace

void dequantize_rows(const NodeLaunch& launch, DType type, const uint8_t* w, int64_t w_row_stride, int64_t k,
                     int64_t rows, __half* out) {
  constexpr int kThreads = 256;
  const unsigned blocks =
      static_cast<unsigned>(std::clamp<int64_t>((rows * (k / 8) + kThreads - 1) / kThreads, 1, 65536));
  cudaStream_t stream = launch.ctx.stream;
  switch (type) {
#define BRAID_DEQUANTIZE(T)                                                                                     \
  case DType::T:                                                                                                \
    launch_kernel(dequantize_rows_kernel<DType::T>, blocks, kThreads, 0, stream, w, w_row_stride, k, rows, out); \
    break;
    BRAID_DEQUANTIZE(Q8_0)
    BRAID_DEQUANTIZE(Q4_0)
    BRAID_DEQUANTIZE(Q4_1)
    BRAID_DEQUANTIZE(Q5_0)
    BRAID_DEQUANTIZE(Q5_1)
    BRAID_DEQUANTIZE(Q2_K)
    BRAID_DEQUANTIZE(Q3_K)
    BRAID_DEQUANTIZE(Q4_K)
    BRAID_DEQUANTIZE(Q5_K)
    BRAID_DEQUANTIZE(Q6_K)
#undef BRAID_DEQUANTIZE
    default: throw Error(launch.label() + ": not a quantized type");
  }
  launch.check_launch();
}

}  // namespace braid::cuda
