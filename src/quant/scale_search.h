// Least-squares searches for the scale (and minimum) of one sub-block of a K-quant.
//
// The idea is ggml's (make_qkx / make_qx quants): rounding x / scale to integers is not
// the best quantization for the rounded scale, so try a few scales around the naive one
// (max / nmax), and for each rounding fit the scale (and minimum) that minimize the
// squared error of that rounding in closed form; keep the best. The weights are uniform,
// so this minimizes the RMS error of the sub-block.
#pragma once

namespace braid::quant {

// x ~ scale * q - min with integer q in [0, nmax], scale >= 0 and min >= 0 (a minimum
// below zero is stored as a positive number that is subtracted).
struct ScaleMin {
  float scale = 0;
  float min = 0;
};
ScaleMin fit_scale_min(const float* x, int n, int nmax);

// x ~ scale * q with integer q in [-nmax, nmax - 1]; the scale may be negative (the value
// of largest magnitude then maps to -nmax, which has no positive twin).
float fit_scale(const float* x, int n, int nmax);

// round to nearest, halves away from zero (ggml's nearest_int up to ties).
int nearest(float v);

}  // namespace braid::quant
