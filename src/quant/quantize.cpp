// Row loops over blocks: the per-format work is in quant/dequantize.h (decoding) and
// quantize_legacy.cpp / quantize_k.cpp (encoding).
#include "quant/quantize.h"

#include "braid/graph.h"

namespace braid::quant {
namespace {

template <DType T>
void dequantize_blocks(const void* src, float* dst, int64_t count) {
  using F = QuantFormat<T>;
  const auto* blocks = static_cast<const typename F::Block*>(src);
  for (int64_t b = 0; b < count / F::kElements; ++b) {
    for (int part = 0; part < F::kElements / kQuantBlock; ++part) {
      dequantize_part<T>(blocks[b], part, dst + b * F::kElements + part * kQuantBlock);
    }
  }
}

template <DType T>
void quantize_blocks(const float* src, void* dst, int64_t count) {
  using F = QuantFormat<T>;
  auto* blocks = static_cast<typename F::Block*>(dst);
  for (int64_t b = 0; b < count / F::kElements; ++b) quantize_block(src + b * F::kElements, blocks[b]);
}

// Calls f.template operator()<T>() for the quantized type `type`.
template <typename F>
void with_format(DType type, F&& f) {
  switch (type) {
    case DType::Q8_0: return f.template operator()<DType::Q8_0>();
    case DType::Q4_0: return f.template operator()<DType::Q4_0>();
    case DType::Q4_1: return f.template operator()<DType::Q4_1>();
    case DType::Q5_0: return f.template operator()<DType::Q5_0>();
    case DType::Q5_1: return f.template operator()<DType::Q5_1>();
    case DType::Q2_K: return f.template operator()<DType::Q2_K>();
    case DType::Q3_K: return f.template operator()<DType::Q3_K>();
    case DType::Q4_K: return f.template operator()<DType::Q4_K>();
    case DType::Q5_K: return f.template operator()<DType::Q5_K>();
    case DType::Q6_K: return f.template operator()<DType::Q6_K>();
    default: BRAID_ASSERT(false && "not a quantized type");
  }
}

}  // namespace

void dequantize_row(DType type, const void* src, float* dst, int64_t count) {
  with_format(type, [&]<DType T>() { dequantize_blocks<T>(src, dst, count); });
}

void quantize_row(DType type, const float* src, void* dst, int64_t count) {
  with_format(type, [&]<DType T>() { quantize_blocks<T>(src, dst, count); });
}

}  // namespace braid::quant
