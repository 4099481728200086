#include "row_kernels.h"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LTLAB_LIBMVEC 1
#include <immintrin.h>
// glibc's vector exp (libmvec), by the x86-64 vector function ABI's names.
extern "C" __m512d _ZGVeN8v_exp(__m512d);
extern "C" __m256d _ZGVdN4v_exp(__m256d);
#endif

namespace ltlab::kernels {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(LTLAB_SANITIZED_BUILD)
#define LTLAB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LTLAB_CLONES
#endif

namespace {

template <typename T>
inline __attribute__((always_inline)) void accumulateBody(const T* h, Index n, double inv_norm, double* class_sum,
                                                          double* unit_class_sum, double* max_dev, const double* first,
                                                          const double* shift, double* shift_sum, T* v) {
    for (Index d = 0; d < n; ++d) {
        const double x = static_cast<double>(h[d]);
        class_sum[d] += x;
        max_dev[d] = std::max(max_dev[d], std::abs(x - first[d]));
    }
    if (inv_norm > 0) {
        for (Index d = 0; d < n; ++d) {
            double u = static_cast<double>(h[d]) * inv_norm;
            unit_class_sum[d] += u;
            u -= shift[d];
            shift_sum[d] += u;
            v[d] = static_cast<T>(u);
        }
    } else {
        std::fill(v, v + n, T(0));
    }
}

// Eight lanes, added pairwise at the end: the same order in every clone.
template <typename F>
inline __attribute__((always_inline)) double sumOfSquares(Index n, F value) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Index d = 0;
    for (; d + 8 <= n; d += 8)
        for (int k = 0; k < 8; ++k) {
            const double x = value(d + k);
            acc[k] += x * x;
        }
    for (int k = 0; d < n; ++d, ++k) {
        const double x = value(d);
        acc[k] += x * x;
    }
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

template <typename T>
inline __attribute__((always_inline)) double centreBody(const T* h, const double* mean, Index n, T* out) {
    for (Index d = 0; d < n; ++d) out[d] = static_cast<T>(static_cast<double>(h[d]) - mean[d]);
    return sumOfSquares(n, [&](Index d) { return static_cast<double>(h[d]) - mean[d]; });
}

} // namespace

LTLAB_CLONES void accumulateRow(const float* h, Index n, double inv_norm, double* class_sum, double* unit_class_sum,
                                double* max_dev, const double* first, const double* shift, double* shift_sum,
                                float* v) {
    accumulateBody(h, n, inv_norm, class_sum, unit_class_sum, max_dev, first, shift, shift_sum, v);
}
LTLAB_CLONES void accumulateRow(const double* h, Index n, double inv_norm, double* class_sum, double* unit_class_sum,
                                double* max_dev, const double* first, const double* shift, double* shift_sum,
                                double* v) {
    accumulateBody(h, n, inv_norm, class_sum, unit_class_sum, max_dev, first, shift, shift_sum, v);
}

LTLAB_CLONES double squaredNorm(const float* h, Index n) {
    return sumOfSquares(n, [&](Index d) { return static_cast<double>(h[d]); });
}
LTLAB_CLONES double squaredNorm(const double* h, Index n) {
    return sumOfSquares(n, [&](Index d) { return h[d]; });
}
LTLAB_CLONES double scaledSquaredNorm(const float* h, Index n, double s) {
    return sumOfSquares(n, [&](Index d) { return static_cast<double>(h[d]) * s; });
}
LTLAB_CLONES double scaledSquaredNorm(const double* h, Index n, double s) {
    return sumOfSquares(n, [&](Index d) { return h[d] * s; });
}

LTLAB_CLONES double centre(const float* h, const double* mean, Index n, float* out) {
    return centreBody(h, mean, n, out);
}
LTLAB_CLONES double centre(const double* h, const double* mean, Index n, double* out) {
    return centreBody(h, mean, n, out);
}

namespace {
double sumExpPortable(const double* z, Index n, double top) {
    double sum = 0;
    for (Index c = 0; c < n; ++c) sum += std::exp(z[c] - top);
    return sum;
}

#ifdef LTLAB_LIBMVEC
#pragma GCC diagnostic push // GCC 12's own _mm512_reduce_add_pd warns of an uninitialised operand
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
__attribute__((target("avx512f"))) double sumExpAvx512(const double* z, Index n, double top) {
    const __m512d t = _mm512_set1_pd(top);
    __m512d acc = _mm512_setzero_pd();
    Index c = 0;
    for (; c + 8 <= n; c += 8) acc = _mm512_add_pd(acc, _ZGVeN8v_exp(_mm512_sub_pd(_mm512_loadu_pd(z + c), t)));
    return _mm512_reduce_add_pd(acc) + sumExpPortable(z + c, n - c, top);
}
#pragma GCC diagnostic pop

__attribute__((target("avx2"))) double sumExpAvx2(const double* z, Index n, double top) {
    const __m256d t = _mm256_set1_pd(top);
    __m256d acc = _mm256_setzero_pd();
    Index c = 0;
    for (; c + 4 <= n; c += 4) acc = _mm256_add_pd(acc, _ZGVdN4v_exp(_mm256_sub_pd(_mm256_loadu_pd(z + c), t)));
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, acc);
    return ((lanes[0] + lanes[2]) + (lanes[1] + lanes[3])) + sumExpPortable(z + c, n - c, top);
}
#endif

using SumExp = double (*)(const double*, Index, double);
SumExp pickSumExp() {
#ifdef LTLAB_LIBMVEC
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return sumExpAvx512;
    if (__builtin_cpu_supports("avx2")) return sumExpAvx2;
#endif
    return sumExpPortable;
}
} // namespace

double sumExpShifted(const double* z, Index n, double top) {
    static const SumExp kernel = pickSumExp();
    return kernel(z, n, top);
}

LTLAB_CLONES void widenAdd(const float* products, const double* bias, Index n, double* z) {
    for (Index d = 0; d < n; ++d) z[d] = static_cast<double>(products[d]) + bias[d];
}

} // namespace ltlab::kernels
