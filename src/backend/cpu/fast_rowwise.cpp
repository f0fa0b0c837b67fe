// Fast row-wise ops: RmsNorm, Swiglu (f32 accumulation, loops the compiler vectorizes),
// Rope and rotating KvWrite (the reference's arithmetic, with each token's cosines and
// sines computed once for all heads instead of once per head).
#include <cmath>
#include <vector>

#include "backend/cpu/fast_kernels.h"
#include "backend/cpu/fast_product.h"

namespace braid::cpu {
namespace {

const float* f32_row(const TensorView& t, int64_t i1, int64_t i2, int64_t i3) {
  return reinterpret_cast<const float*>(t.row(i1, i2, i3));
}

bool rms_norm(const NodeArgs& args) {
  const TensorView& x = args.src[0];
  const bool has_weight = args.src.size() > 1;
  if (x.type != DType::F32 || (has_weight && args.src[1].type != DType::F32)) return false;
  const float* w = has_weight ? f32_row(args.src[1], 0, 0, 0) : nullptr;
  const double eps = args.node.params.f[0];
  const int64_t n = x.ne[0];
  for_each_row(args.out, [&](float* y, int64_t i1, int64_t i2, int64_t i3) {
    const float* r = f32_row(x, i1, i2, i3);
    const double squares = dot_f32(r, r, n);
    const auto inv_rms = static_cast<float>(1.0 / std::sqrt(squares / static_cast<double>(n) + eps));
    if (has_weight) {
      for (int64_t i = 0; i < n; ++i) y[i] = r[i] * inv_rms * w[i];
    } else {
      for (int64_t i = 0; i < n; ++i) y[i] = r[i] * inv_rms;
    }
  });
  return true;
}

// Rows over the pool where there are many (a prompt: std::exp costs a few nanoseconds an
// element); every element is computed alike wherever it runs.
bool swiglu(const NodeArgs& args, const FastContext& context) {
  const TensorView& a = args.src[0];
  const TensorView& b = args.src[1];
  if (a.type != DType::F32 || b.type != DType::F32) return false;
  const TensorView& out = args.out;
  const int64_t rows = out.ne[1] * out.ne[2] * out.ne[3];
  auto row = [&](int64_t r) {
    const int64_t i1 = r % out.ne[1], i2 = r / out.ne[1] % out.ne[2], i3 = r / (out.ne[1] * out.ne[2]);
    auto* y = reinterpret_cast<float*>(out.row(i1, i2, i3));
    const float* x = f32_row(a, i1, i2, i3);
    const float* g = f32_row(b, i1, i2, i3);
    for (int64_t i = 0; i < a.ne[0]; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i])) * g[i];
  };
  constexpr int64_t kParallelElements = int64_t{1} << 14;
  if (rows < 2 || rows * a.ne[0] < kParallelElements) {
    for (int64_t r = 0; r < rows; ++r) row(r);
  } else {
    context.pool.parallel_for(rows, row);
  }
  return true;
}

// Rope's rotation (cpu_kernels.h) with the cosines and sines of one position, computed
// once for every head of a token.
struct RotationTable : Rotation {
  std::vector<double> cosine, sine;

  RotationTable(const NodeArgs& args, size_t factors_src)
      : Rotation(args, factors_src), cosine(frequency.size()), sine(frequency.size()) {}
  void set_position(double pos) {
    for (size_t i = 0; i < frequency.size(); ++i) {
      const double theta = pos * frequency[i];
      cosine[i] = std::cos(theta);
      sine[i] = std::sin(theta);
    }
  }
  void apply(const float* in, float* out, int64_t head_dim) const {
    for (int64_t i = dims; i < head_dim; ++i) out[i] = in[i];
    const int64_t half = dims / 2;
    const bool neox = mode == kRopeNeox;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t a = neox ? i : 2 * i;
      const int64_t b = neox ? i + half : 2 * i + 1;
      const double c = cosine[static_cast<size_t>(i)], s = sine[static_cast<size_t>(i)];
      const double x0 = in[a], x1 = in[b];
      out[a] = static_cast<float>(x0 * c - x1 * s);
      out[b] = static_cast<float>(x0 * s + x1 * c);
    }
  }
};

bool rope(const NodeArgs& args) {
  const TensorView& x = args.src[0];
  const TensorView& positions = args.src[1];
  RotationTable rotation(args, 2);
  for (int64_t t = 0; t < x.ne[2]; ++t) {
    rotation.set_position(positions.i32(t));
    for (int64_t h = 0; h < x.ne[1]; ++h) {
      rotation.apply(f32_row(x, h, t, 0), reinterpret_cast<float*>(args.out.row(h, t)), x.ne[0]);
    }
  }
  return true;
}

bool kv_write(const NodeArgs& args) {
  const TensorView& cache = args.out;
  const TensorView& x = args.src[1];
  const TensorView& positions = args.src[2];
  RotationTable rotation(args, 3);
  if (rotation.dims == 0) return false;  // a plain copy: the reference does it as well
  check_positions(args, positions, cache.ne[2]);
  std::vector<float> rotated(static_cast<size_t>(x.ne[0]));
  for (int64_t t = 0; t < x.ne[2]; ++t) {
    const int32_t slot = positions.i32(t);
    rotation.set_position(slot);
    for (int64_t h = 0; h < x.ne[1]; ++h) {
      rotation.apply(f32_row(x, h, t, 0), rotated.data(), x.ne[0]);
      from_f32(cache.type, rotated.data(), cache.row(h, slot), x.ne[0]);
    }
  }
  return true;
}

}  // namespace

bool fast_rowwise(const NodeArgs& args, const FastContext& context) {
  switch (args.node.op) {
    case Op::RmsNorm: return rms_norm(args);
    case Op::Swiglu: return swiglu(args, context);
    case Op::Rope: return rope(args);
    case Op::KvWrite: return kv_write(args);
    default: return false;
  }
}

}  // namespace braid::cpu
