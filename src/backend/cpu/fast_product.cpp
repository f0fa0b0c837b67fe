// Run-time choice between the AVX2 and the portable kernels.
#include <cstdlib>
#include <cstring>

#include "backend/cpu/fast_product.h"

namespace braid::cpu {

bool simd_supported() {
  static const bool supported = [] {
    if (const char* env = std::getenv("BRAID_CPU_SIMD"); env && std::strcmp(env, "0") == 0) return false;
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
  }();
  return supported;
}

ProductKernel product_kernel(DType type, bool simd) {
  if (simd && simd_supported()) {
    if (ProductKernel k = detail::avx2_product_kernel(type)) return k;
  }
  return detail::scalar_product_kernel(type);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  return simd_supported() ? detail::dot_f32_avx2(a, b, n) : detail::dot_f32_scalar(a, b, n);
}

void axpy_f32(float* y, float a, const float* x, int64_t n) {
  if (simd_supported()) return detail::axpy_f32_avx2(y, a, x, n);
  detail::axpy_f32_scalar(y, a, x, n);
}

}  // namespace braid::cpu
