// Matrix products of the fast CPU path: the inner kernels, one per weight type, in a
// portable version (fast_product_scalar.cpp) and an AVX2 one (fast_product_avx2.cpp),
// chosen at run time by what the processor supports.
//
// A kernel computes y[t][j] = w[j] . x[t] for weight rows j in [begin, end) and the n
// tokens given. Quantized weights come in two kinds of kernel:
//  - int8 activations (ggml's scheme): activations rounded to BlockQ8Act (quant/dot.h),
//    integer dot products. The fastest; its rounding of the activations (relative error
//    about 1/250 per element) changes logits by about 1e-3 (nmse), enough to change a
//    greedy token where two candidates are close.
//  - f32 activations (the default): each weight part is unpacked to integers as above,
//    widened to f32 in registers, mapped to the weights' values (scale * q + offset) and
//    multiplied with the f32 activations. As exact as the reference up to f32 rounding,
//    so greedy text stays the reference's.
// f32, f16 and bf16 weights always take f32 activations. Within the rows given, a kernel reads
// each weight row once per tile of up to 4 tokens, and the caller hands it row ranges
// small enough that the tiles after the first find the rows in cache: prompt-sized
// products read the weights from memory about once. With f32 activations and 8 tokens or
// more, the AVX2 kernels dequantize the rows given once into a buffer and run tiles of f32
// rows over it (6 tokens a tile; with AVX-512, 16 lanes and up to 8 tokens and 2 rows a
// tile, fast_product_avx512.cpp).
//
// Every token's result is computed by the same sequence of operations whatever the tile
// or thread it falls in, so results do not depend on the batch split or the thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "braid/types.h"

namespace braid {
struct BlockQ8Act;
}

namespace braid::cpu {

struct RowProduct {
  const uint8_t* w = nullptr;      // row 0 of the weights
  size_t w_stride = 0;             // bytes from one weight row to the next
  int64_t k = 0;                   // elements of a row
  const void* const* x = nullptr;  // per token: its activation row (BlockQ8Act[k / 32] or float[k])
  float* const* y = nullptr;       // per token: its output row, indexed by weight row
  int n = 0;                       // tokens
};

using ProductKernel = void (*)(const RowProduct& p, int64_t begin, int64_t end);

// Whether kernels of `type` take quantized activations (BlockQ8Act) rather than f32.
inline bool takes_quantized_activations(DType type, bool int8_activations) {
  return int8_activations && traits(type).quantized;
}

// The kernel for weights of `type`, or nullptr where there is none (I32). simd: the AVX2
// version where the processor has AVX2, FMA and F16C; false: the portable one.
// avx512: prompt products over dequantized rows may take the AVX-512 kernel (where the
// processor has it); false keeps them on AVX2.
ProductKernel product_kernel(DType type, bool simd, bool int8_activations, bool avx512);

// Whether this processor runs the AVX2 kernels (and BRAID_CPU_SIMD=0 does not forbid them).
bool simd_supported();

// The dot product of two f32 vectors, accumulated in f32 (eight partial sums).
float dot_f32(const float* a, const float* b, int64_t n);
// y += a * x
void axpy_f32(float* y, float a, const float* x, int64_t n);
// quantize_activations of quant/dot.h, vectorized where simd (the same results).
void quantize_activations(const float* x, BlockQ8Act* out, int64_t k, bool simd);

namespace detail {
ProductKernel scalar_product_kernel(DType type, bool int8_activations);
ProductKernel avx2_product_kernel(DType type, bool int8_activations, bool avx512);
float dot_f32_scalar(const float* a, const float* b, int64_t n);
float dot_f32_avx2(const float* a, const float* b, int64_t n);
void axpy_f32_scalar(float* y, float a, const float* x, int64_t n);
void axpy_f32_avx2(float* y, float a, const float* x, int64_t n);
void quantize_activations_avx2(const float* x, BlockQ8Act* out, int64_t k);
// Whether this processor also has AVX-512F (and BRAID_CPU_SIMD=0 does not forbid it).
bool avx512_supported();
// Rows [begin, end) of f32 weights against every token of p, row j at rows + (j - begin) *
// p.k, p.k a multiple of 16: the AVX2 f32 row kernel's multiply-adds 16 lanes at a time,
// so the same bits (fast_product_avx512.cpp).
void float_rows_avx512(const float* rows, const RowProduct& p, int64_t begin, int64_t end);
}  // namespace detail

}  // namespace braid::cpu
