// Element-wise and row-wise ops. Each output row is computed from the matching row(s)
// of the sources, read through their strides; reductions (softmax, rms) run in double.
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_kernels.h"

namespace braid::cpu {
namespace {

const float* f32_row(const TensorView& t, int64_t i1, int64_t i2, int64_t i3) {
  BRAID_ASSERT(t.type == DType::F32);
  return reinterpret_cast<const float*>(t.row(i1, i2, i3));
}

double silu(double x) { return x / (1.0 + std::exp(-x)); }

// b repeats along every dimension to cover a.
template <typename Combine>
void broadcast_binary(const NodeArgs& args, Combine combine) {
  const TensorView& a = args.src[0];
  const TensorView& b = args.src[1];
  for_each_row(args.out, [&](float* y, int64_t i1, int64_t i2, int64_t i3) {
    const float* x = f32_row(a, i1, i2, i3);
    const float* z = f32_row(b, i1 % b.ne[1], i2 % b.ne[2], i3 % b.ne[3]);
    for (int64_t i0 = 0; i0 < a.ne[0]; ++i0) y[i0] = combine(x[i0], z[i0 % b.ne[0]]);
  });
}

template <typename Fn>
void unary(const NodeArgs& args, Fn fn) {
  const TensorView& a = args.src[0];
  for_each_row(args.out, [&](float* y, int64_t i1, int64_t i2, int64_t i3) {
    const float* x = f32_row(a, i1, i2, i3);
    for (int64_t i0 = 0; i0 < a.ne[0]; ++i0) y[i0] = fn(x[i0]);
  });
}

void softmax_rows(const NodeArgs& args) {
  const TensorView& a = args.src[0];
  const double scale = args.node.params.f[0];
  const int64_t n = a.ne[0];
  std::vector<double> e(static_cast<size_t>(n));
  for_each_row(args.out, [&](float* y, int64_t i1, int64_t i2, int64_t i3) {
    const float* x = f32_row(a, i1, i2, i3);
    double max = -INFINITY;
    for (int64_t i = 0; i < n; ++i) max = std::fmax(max, scale * x[i]);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += e[static_cast<size_t>(i)] = std::exp(scale * x[i] - max);
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(e[static_cast<size_t>(i)] / sum);
  });
}

void rms_norm_rows(const NodeArgs& args) {
  const TensorView& x = args.src[0];
  const bool has_weight = args.src.size() > 1;
  const float* w = has_weight ? f32_row(args.src[1], 0, 0, 0) : nullptr;
  const double eps = args.node.params.f[0];
  const int64_t n = x.ne[0];
  for_each_row(args.out, [&](float* y, int64_t i1, int64_t i2, int64_t i3) {
    const float* r = f32_row(x, i1, i2, i3);
    double squares = 0;
    for (int64_t i = 0; i < n; ++i) squares += static_cast<double>(r[i]) * r[i];
    const double inv_rms = 1.0 / std::sqrt(squares / static_cast<double>(n) + eps);
    for (int64_t i = 0; i < n; ++i) {
      y[i] = static_cast<float>(r[i] * inv_rms * (has_weight ? w[i] : 1.0));
    }
  });
}

// Any strides (dimension 0 included: the source may be transposed) into the node's
// contiguous layout, converting between f32, f16 and bf16 through f32 (exact for these).
void copy_strided(const NodeArgs& args) {
  const TensorView& a = args.src[0];
  const TensorView& out = args.out;
  std::vector<float> row(static_cast<size_t>(a.ne[0]));
  for (int64_t i3 = 0; i3 < a.ne[3]; ++i3) {
    for (int64_t i2 = 0; i2 < a.ne[2]; ++i2) {
      for (int64_t i1 = 0; i1 < a.ne[1]; ++i1) {
        for (int64_t i0 = 0; i0 < a.ne[0]; ++i0) row[static_cast<size_t>(i0)] = a.f32(i0, i1, i2, i3);
        from_f32(out.type, row.data(), out.row(i1, i2, i3), a.ne[0]);
      }
    }
  }
}

}  // namespace

void compute_elementwise(const NodeArgs& args) {
  switch (args.node.op) {
    case Op::Add:
      return broadcast_binary(args, [](float x, float y) { return x + y; });
    case Op::Mul:
      return broadcast_binary(args, [](float x, float y) { return x * y; });
    case Op::Scale: {
      const float factor = args.node.params.f[0];
      return unary(args, [factor](float x) { return x * factor; });
    }
    case Op::Silu:
      return unary(args, [](float x) { return static_cast<float>(silu(x)); });
    case Op::Swiglu: {
      const TensorView& a = args.src[0];
      const TensorView& b = args.src[1];
      return for_each_row(args.out, [&](float* y, int64_t i1, int64_t i2, int64_t i3) {
        const float* x = f32_row(a, i1, i2, i3);
        const float* g = f32_row(b, i1, i2, i3);
        for (int64_t i0 = 0; i0 < a.ne[0]; ++i0) y[i0] = static_cast<float>(silu(x[i0]) * g[i0]);
      });
    }
    case Op::Softmax:
      return softmax_rows(args);
    case Op::RmsNorm:
      return rms_norm_rows(args);
    case Op::Copy:
      return copy_strided(args);
    default:
      BRAID_ASSERT(false && "not an element-wise op");
  }
}

}  // namespace braid::cpu
