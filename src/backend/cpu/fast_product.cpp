// Run-time choice between the AVX2 and the portable kernels.
#include "backend/cpu/fast_product.h"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "braid/quant/dot.h"

namespace braid::cpu {

bool simd_supported() {
  static const bool supported = [] {
    if (const char* env = std::getenv("BRAID_CPU_SIMD"); env && std::strcmp(env, "0") == 0) return false;
#if defined(__x86_64__)
    __builtin_cpu_init();
    // F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c".
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#else
    return false;
#endif
  }();
  return supported;
}

ProductKernel product_kernel(DType type, bool simd, bool int8_activations, bool avx512) {
  if (simd && simd_supported()) {
    if (ProductKernel k = detail::avx2_product_kernel(type, int8_activations, avx512)) return k;
  }
  return detail::scalar_product_kernel(type, int8_activations);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  return simd_supported() ? detail::dot_f32_avx2(a, b, n) : detail::dot_f32_scalar(a, b, n);
}

void axpy_f32(float* y, float a, const float* x, int64_t n) {
  if (simd_supported()) return detail::axpy_f32_avx2(y, a, x, n);
  detail::axpy_f32_scalar(y, a, x, n);
}

}  // namespace braid::cpu

namespace braid::cpu {

void quantize_activations(const float* x, BlockQ8Act* out, int64_t k, bool simd) {
  if (simd && simd_supported()) return detail::quantize_activations_avx2(x, out, k);
  braid::quantize_activations(x, out, k);
}

}  // namespace braid::cpu
