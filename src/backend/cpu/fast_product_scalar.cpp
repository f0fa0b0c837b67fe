// The portable product kernels: the reference arithmetic of quant/dot.h, per part, with
// f32 accumulation. They serve processors without AVX2 and check the AVX2 kernels.
#include <cstring>
#include <vector>

#include "backend/cpu/fast_product.h"
#include "braid/quant/dot.h"

namespace braid::cpu::detail {
namespace {

template <DType T>
void quantized_rows(const RowProduct& p, int64_t begin, int64_t end) {
  using D = QuantDot<T>;
  const int64_t parts = p.k / kQuantBlock;
  for (int64_t j = begin; j < end; ++j) {
    const auto* blocks = reinterpret_cast<const typename D::Block*>(p.w + static_cast<size_t>(j) * p.w_stride);
    for (int t = 0; t < p.n; ++t) {
      const auto* x = static_cast<const BlockQ8Act*>(p.x[t]);
      float sum = 0;
      for (int64_t part = 0; part < parts; ++part) {
        sum += dot_part<T>(blocks[part / D::kParts], static_cast<int>(part % D::kParts), x[part]);
      }
      p.y[t][j] = sum;
    }
  }
}

float load(const uint16_t* w, int64_t i, DType type) {
  return type == DType::F16 ? half_to_float(w[i]) : bf16_to_f32(w[i]);
}

// Any weight type with f32 activations: the row dequantized (quant/dequantize.h through
// to_f32), then f32 dot products.
template <DType T>
void float_rows(const RowProduct& p, int64_t begin, int64_t end) {
  std::vector<float> row(static_cast<size_t>(p.k));
  for (int64_t j = begin; j < end; ++j) {
    const uint8_t* w = p.w + static_cast<size_t>(j) * p.w_stride;
    if constexpr (T == DType::F32) {
      std::memcpy(row.data(), w, row.size() * sizeof(float));
    } else if constexpr (T == DType::F16 || T == DType::BF16) {
      const auto* h = reinterpret_cast<const uint16_t*>(w);
      for (int64_t i = 0; i < p.k; ++i) row[static_cast<size_t>(i)] = load(h, i, T);
    } else {
      to_f32(T, w, row.data(), p.k);
    }
    for (int t = 0; t < p.n; ++t) p.y[t][j] = dot_f32_scalar(row.data(), static_cast<const float*>(p.x[t]), p.k);
  }
}

}  // namespace

float dot_f32_scalar(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) s[l] += a[i + l] * b[i + l];
  }
  for (; i < n; ++i) s[0] += a[i] * b[i];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

void axpy_f32_scalar(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

ProductKernel scalar_product_kernel(DType type, bool int8_activations) {
  if (!int8_activations || !traits(type).quantized) {
    switch (type) {
      case DType::F32: return float_rows<DType::F32>;
      case DType::F16: return float_rows<DType::F16>;
      case DType::BF16: return float_rows<DType::BF16>;
      case DType::Q8_0: return float_rows<DType::Q8_0>;
      case DType::Q4_0: return float_rows<DType::Q4_0>;
      case DType::Q4_1: return float_rows<DType::Q4_1>;
      case DType::Q5_0: return float_rows<DType::Q5_0>;
      case DType::Q5_1: return float_rows<DType::Q5_1>;
      case DType::Q2_K: return float_rows<DType::Q2_K>;
      case DType::Q3_K: return float_rows<DType::Q3_K>;
      case DType::Q4_K: return float_rows<DType::Q4_K>;
      case DType::Q5_K: return float_rows<DType::Q5_K>;
      case DType::Q6_K: return float_rows<DType::Q6_K>;
      case DType::I32: return nullptr;
    }
  }
  switch (type) {
    case DType::F32: return float_rows<DType::F32>;
    case DType::F16: return float_rows<DType::F16>;
    case DType::BF16: return float_rows<DType::BF16>;
    case DType::Q8_0: return quantized_rows<DType::Q8_0>;
    case DType::Q4_0: return quantized_rows<DType::Q4_0>;
    case DType::Q4_1: return quantized_rows<DType::Q4_1>;
    case DType::Q5_0: return quantized_rows<DType::Q5_0>;
    case DType::Q5_1: return quantized_rows<DType::Q5_1>;
    case DType::Q2_K: return quantized_rows<DType::Q2_K>;
    case DType::Q3_K: return quantized_rows<DType::Q3_K>;
    case DType::Q4_K: return quantized_rows<DType::Q4_K>;
    case DType::Q5_K: return quantized_rows<DType::Q5_K>;
    case DType::Q6_K: return quantized_rows<DType::Q6_K>;
    case DType::I32: break;
  }
  return nullptr;
}

}  // namespace braid::cpu::detail
