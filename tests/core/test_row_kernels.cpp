// The analysis engine's per-row kernels (core/src/row_kernels.h) against
// direct loops: every length from 0 to past two vector widths (the tails), a
// zero row, float and double rows. The elementwise results are exact (the same
// operations in the same order, no contraction); the sums agree to rounding.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "../../core/src/row_kernels.h"

namespace {

using ltlab::kernels::Index;

template <typename T>
std::vector<T> randomRow(Index n, unsigned seed, double lo = -3, double hi = 3) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<T> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = static_cast<T>(u(rng));
    return v;
}

std::vector<Index> lengths() {
    std::vector<Index> n;
    for (Index i = 0; i <= 19; ++i) n.push_back(i);
    for (Index i : {31, 32, 33, 511, 512, 1000, 2048, 2051}) n.push_back(i);
    return n;
}

template <typename T>
void checkNorms() {
    for (Index n : lengths()) {
        const auto h = randomRow<T>(n, 7u + static_cast<unsigned>(n));
        long double sq = 0, scaled = 0;
        const double s = 0.37;
        for (T x : h) {
            sq += static_cast<long double>(x) * static_cast<long double>(x);
            const double y = static_cast<double>(x) * s;
            scaled += static_cast<long double>(y) * y;
        }
        EXPECT_NEAR(ltlab::kernels::squaredNorm(h.data(), n), static_cast<double>(sq), 1e-14 * static_cast<double>(sq))
            << n;
        EXPECT_NEAR(ltlab::kernels::scaledSquaredNorm(h.data(), n, s), static_cast<double>(scaled),
                    1e-14 * static_cast<double>(scaled))
            << n;
    }
}

template <typename T>
void checkAccumulate() {
    for (Index n : lengths())
        for (double inv_norm : {0.0, 0.25}) { // 0: a zero row, left out of the cone sums
            const auto h = randomRow<T>(n, 11u + static_cast<unsigned>(n));
            const auto first = randomRow<double>(n, 12), shift = randomRow<double>(n, 13);
            auto class_sum = randomRow<double>(n, 14), unit_sum = randomRow<double>(n, 15);
            auto max_dev = randomRow<double>(n, 16, 0, 4), shift_sum = randomRow<double>(n, 17);
            auto e_class = class_sum, e_unit = unit_sum, e_max = max_dev, e_shift = shift_sum;
            std::vector<T> v(static_cast<std::size_t>(n), T(9)), e_v(static_cast<std::size_t>(n), T(0));
            for (std::size_t d = 0; d < h.size(); ++d) {
                const double x = static_cast<double>(h[d]);
                e_class[d] += x;
                e_max[d] = std::max(e_max[d], std::abs(x - first[d]));
                if (inv_norm > 0) {
                    double u = x * inv_norm;
                    e_unit[d] += u;
                    u -= shift[d];
                    e_shift[d] += u;
                    e_v[d] = static_cast<T>(u);
                }
            }
            ltlab::kernels::accumulateRow(h.data(), n, inv_norm, class_sum.data(), unit_sum.data(), max_dev.data(),
                                          first.data(), shift.data(), shift_sum.data(), v.data());
            EXPECT_EQ(class_sum, e_class) << n;
            EXPECT_EQ(unit_sum, e_unit) << n;
            EXPECT_EQ(max_dev, e_max) << n;
            EXPECT_EQ(shift_sum, e_shift) << n;
            EXPECT_EQ(v, e_v) << n;
        }
}

template <typename T>
void checkCentre() {
    for (Index n : lengths()) {
        const auto h = randomRow<T>(n, 21u + static_cast<unsigned>(n));
        const auto mean = randomRow<double>(n, 22);
        std::vector<T> out(static_cast<std::size_t>(n)), expected(static_cast<std::size_t>(n));
        long double sq = 0;
        for (std::size_t d = 0; d < h.size(); ++d) {
            const double c = static_cast<double>(h[d]) - mean[d];
            expected[d] = static_cast<T>(c);
            sq += static_cast<long double>(c) * c;
        }
        const double got = ltlab::kernels::centre(h.data(), mean.data(), n, out.data());
        EXPECT_EQ(out, expected) << n;
        EXPECT_NEAR(got, static_cast<double>(sq), 1e-14 * static_cast<double>(sq)) << n;
    }
}

TEST(RowKernels, SquaredNormsFloatAndDouble) {
    checkNorms<float>();
    checkNorms<double>();
}

TEST(RowKernels, AccumulateRowIsTheElementwiseLoop) {
    checkAccumulate<float>();
    checkAccumulate<double>();
}

TEST(RowKernels, CentreIsExactAndItsSquaredNormAgrees) {
    checkCentre<float>();
    checkCentre<double>();
}

TEST(RowKernels, SumExpShiftedAgreesWithStdExp) {
    for (Index n : lengths()) {
        auto z = randomRow<double>(n, 31u + static_cast<unsigned>(n), -60, 20);
        if (n > 3) z[2] = z[0] - 800; // exp underflows to 0
        double top = -INFINITY;
        for (double x : z) top = std::max(top, x);
        long double sum = 0;
        for (double x : z) sum += std::exp(static_cast<long double>(x - top));
        const double got = ltlab::kernels::sumExpShifted(z.data(), n, n ? top : 0.0);
        // Within 4 ulps a term (libmvec), the largest term is 1.
        EXPECT_NEAR(got, static_cast<double>(sum), 1e-15 * (static_cast<double>(sum) + 1.0) * 8) << n;
        if (n > 0) {
            EXPECT_GE(got, 1.0 - 1e-15) << n; // the top term
        }
    }
}

TEST(RowKernels, WidenAddIsExact) {
    for (Index n : lengths()) {
        const auto p = randomRow<float>(n, 41u + static_cast<unsigned>(n));
        const auto bias = randomRow<double>(n, 42);
        std::vector<double> z(static_cast<std::size_t>(n)), expected(static_cast<std::size_t>(n));
        for (std::size_t d = 0; d < p.size(); ++d) expected[d] = static_cast<double>(p[d]) + bias[d];
        ltlab::kernels::widenAdd(p.data(), bias.data(), n, z.data());
        EXPECT_EQ(z, expected) << n;
    }
}

} // namespace
