#pragma once
// The analysis engine's per-row loops over the features (internal): plain
// loops compiled for AVX-512, AVX2 and baseline x86-64, the widest the CPU has
// picked at load time (GCC's target_clones). The build targets baseline
// x86-64, where Eigen's expressions run two doubles at a time (pass 1's
// accumulation at ImageNet-LT size: 4.6% of all cycles as Eigen expressions,
// 1.6% here; docs/performance.md). Floating-point contraction is off in them,
// so every clone computes the same bits; the sums of squares go over eight
// lanes in a fixed order.

#include <cstdint>

namespace ltlab::kernels {

using Index = std::ptrdiff_t;

// Pass 1 on the columns [0, n) of one row h of class y (the pointers are at
// that segment): class_sum += h; max_dev = max(max_dev, |h - first|); when
// inv_norm > 0 (a non-zero row), u = h inv_norm, unit_class_sum += u,
// u -= shift, shift_sum += u, v = u; else v = 0.
void accumulateRow(const float* h, Index n, double inv_norm, double* class_sum, double* unit_class_sum,
                   double* max_dev, const double* first, const double* shift, double* shift_sum, float* v);
void accumulateRow(const double* h, Index n, double inv_norm, double* class_sum, double* unit_class_sum,
                   double* max_dev, const double* first, const double* shift, double* shift_sum, double* v);

// sum_d h_d^2 in float64.
double squaredNorm(const float* h, Index n);
double squaredNorm(const double* h, Index n);
// sum_d (h_d s)^2 in float64.
double scaledSquaredNorm(const float* h, Index n, double s);
double scaledSquaredNorm(const double* h, Index n, double s);

// Pass 2: out = h - mean (in float64, then stored as out's type); returns
// ||h - mean||^2.
double centre(const float* h, const double* mean, Index n, float* out);
double centre(const double* h, const double* mean, Index n, double* out);

// sum_c exp(z_c - top), exp in glibc's vector math library (libmvec: AVX-512
// or AVX2, within 4 ulps) where the CPU has them, else std::exp.
double sumExpShifted(const double* z, Index n, double top);

// z = products + bias, widened to float64.
void widenAdd(const float* products, const double* bias, Index n, double* z);

} // namespace ltlab::kernels
