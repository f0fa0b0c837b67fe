// Quantized weights to f16 rows for the cuBLAS path of prompts (gemm.cu, gemm_experts.cu).
//
// One thread writes eight consecutive elements as one 16-byte store, and consecutive
// threads write consecutive stores, so a warp writes 512 contiguous bytes: the f16 output
// (3.5x the bytes of a 4-bit input) is most of the traffic, and per-thread runs of 64
// bytes (one thread per block of 32) left each store instruction touching 32 segments.
// The values are quant/dequantize.h's (dequantize_eight), so the CPU reference and this
// agree to the bit before the rounding to f16.
//
// Note [Dequantization bound by arithmetic]: ncu on the H200 (4096 x 11008 q4_K, 72 us)
// had this kernel at 26% of DRAM bandwidth and 77% of the SMs' issue rate: a grid-stride
// loop over one 64-bit index paid two 64-bit divisions per eight elements, and every f16
// scale went through portable bit arithmetic. A grid row now walks rows (blockIdx.y) and
// its x index is a 32-bit eight of the row, so no division remains but by powers of two.
#include "backend/cuda/matmul.cuh"
#include "braid/quant/dequantize.h"

#include <algorithm>

namespace braid::cuda {
namespace {

template <DType W>
__global__ void dequantize_rows_kernel(const uint8_t* w, int64_t w_row_stride, int eights_per_row, int64_t rows,
                                       __half* out) {
  wait_for_producers();
  using Format = QuantFormat<W>;
  constexpr int kEights = Format::kElements / 8;  // per block
  const int eight = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (eight >= eights_per_row) return;
  const int in_block = eight % kEights;
  const int64_t block_offset = static_cast<int64_t>(eight / kEights) * sizeof(typename Format::Block);
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const auto* block = reinterpret_cast<const typename Format::Block*>(w + row * w_row_stride + block_offset);
    float v[8];
    dequantize_eight<W>(*block, in_block, v);
    uint4 packed;
    __half2* halves = reinterpret_cast<__half2*>(&packed);
#pragma unroll
    for (int j = 0; j < 4; ++j) halves[j] = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
    reinterpret_cast<uint4*>(out + row * eights_per_row * 8)[eight] = packed;
  }
}

}  // namespace

void dequantize_rows(const NodeLaunch& launch, DType type, const uint8_t* w, int64_t w_row_stride, int64_t k,
                     int64_t rows, __half* out) {
  if (rows == 0 || k == 0) return;
  constexpr int kThreads = 256;
  const int64_t eights_per_row = k / 8;
  const dim3 grid(static_cast<unsigned>((eights_per_row + kThreads - 1) / kThreads),
                  static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  const int eights = static_cast<int>(eights_per_row);
  cudaStream_t stream = launch.ctx.stream;
  switch (type) {
#define BRAID_DEQUANTIZE(T)                                                                                     \
  case DType::T:                                                                                                \
    launch_kernel(dequantize_rows_kernel<DType::T>, grid, kThreads, 0, stream, w, w_row_stride, eights, rows, out); \
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
