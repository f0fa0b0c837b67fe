#include "quant/scale_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace braid::quant {

// std::lround's result without its library call (a third of the quantizers' time): in
// double, v + 0.5 (or - 0.5) is exact for every float, and the conversion truncates.
int nearest(float v) {
  const double d = v;
  return static_cast<int>(d + (d < 0 ? -0.5 : 0.5));
}

namespace {

constexpr int kSteps = 10;  // candidates nmax + t for t in [-1, 1] in steps of 0.1

double squared_error(const float* x, const int* q, int n, double scale, double offset) {
  double e = 0;
  for (int i = 0; i < n; ++i) {
    const double diff = scale * q[i] + offset - x[i];
    e += diff * diff;
  }
  return e;
}

}  // namespace

ScaleMin fit_scale_min(const float* x, int n, int nmax) {
  float lo = 0, hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  ScaleMin best{0, -lo};
  if (hi <= lo) return best;
  double sum_x2 = 0;
  for (int i = 0; i < n; ++i) sum_x2 += static_cast<double>(x[i]) * x[i];
  // The naive fit: lo maps to 0, hi to nmax.
  int q[256];
  double best_error = std::numeric_limits<double>::infinity();
  {
    const float scale = (hi - lo) / static_cast<float>(nmax);
    for (int i = 0; i < n; ++i) q[i] = std::clamp(nearest((x[i] - lo) / scale), 0, nmax);
    best = {scale, -lo};
    best_error = squared_error(x, q, n, scale, lo);
  }
  for (int step = -kSteps; step <= kSteps; ++step) {
    const float inverse = (static_cast<float>(nmax) + 0.1f * static_cast<float>(step)) / (hi - lo);
    double sum_q = 0, sum_q2 = 0, sum_x = 0, sum_xq = 0;
    for (int i = 0; i < n; ++i) {
      q[i] = std::clamp(nearest(inverse * (x[i] - lo)), 0, nmax);
      sum_q += q[i];
      sum_q2 += static_cast<double>(q[i]) * q[i];
      sum_x += x[i];
      sum_xq += static_cast<double>(x[i]) * q[i];
    }
    // Minimize sum (a q + b - x)^2 over a and b; b is -min, so b <= 0.
    const double det = n * sum_q2 - sum_q * sum_q;
    if (det <= 0) continue;
    double a = (n * sum_xq - sum_q * sum_x) / det;
    double b = (sum_q2 * sum_x - sum_q * sum_xq) / det;
    if (b > 0) {
      b = 0;
      a = sum_xq / sum_q2;
    }
    if (a <= 0) continue;
    // sum (a q + b - x)^2 from the sums above: no second pass over the elements.
    const double error = a * a * sum_q2 + 2 * a * b * sum_q - 2 * a * sum_xq + n * b * b - 2 * b * sum_x + sum_x2;
    if (error < best_error) {
      best_error = error;
      best = {static_cast<float>(a), static_cast<float>(-b)};
    }
  }
  return best;
}

float fit_scale(const float* x, int n, int nmax) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-30f) return 0;
  float best_scale = 0;
  double best_score = -1;  // (sum x q)^2 / sum q^2: the error is sum x^2 minus this
  for (int step = -kSteps; step <= kSteps; ++step) {
    const float inverse = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(step)) / max;
    double sum_xq = 0, sum_q2 = 0;
    for (int i = 0; i < n; ++i) {
      const int q = std::clamp(nearest(inverse * x[i]), -nmax, nmax - 1);
      sum_xq += static_cast<double>(x[i]) * q;
      sum_q2 += static_cast<double>(q) * q;
    }
    if (sum_q2 <= 0) continue;
    const double score = sum_xq * sum_xq / sum_q2;
    if (score > best_score) {
      best_score = score;
      best_scale = static_cast<float>(sum_xq / sum_q2);
    }
  }
  return best_scale;
}

}  // namespace braid::quant
