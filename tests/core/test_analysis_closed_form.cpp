// The analysis engine against closed forms and brute force.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include <Eigen/Dense>

#include "ltlab/analysis.h"
#include "ltlab/cone.h"
#include "ltlab/geometry.h"
#include "ltlab/error.h"
#include "ltlab/fdr.h"

using namespace ltlab;

namespace {

// Vertices of a simplex ETF in R^D (D >= C): sqrt(C/(C-1)) (I - 11^T/C) embedded in the first C coordinates.
Eigen::MatrixXd simplexEtf(int C, int D) {
    Eigen::MatrixXd M = Eigen::MatrixXd::Zero(C, D);
    M.leftCols(C) = std::sqrt(double(C) / (C - 1)) *
                    (Eigen::MatrixXd::Identity(C, C) - Eigen::MatrixXd::Constant(C, C, 1.0 / C));
    return M;
}

struct Dataset {
    RowMatrix features;
    std::vector<std::int32_t> labels;
};

Dataset atMeans(const Eigen::MatrixXd& means, int per_class) {
    Dataset d;
    d.features.resize(means.rows() * per_class, means.cols());
    for (int c = 0, r = 0; c < means.rows(); ++c)
        for (int i = 0; i < per_class; ++i, ++r) {
            d.features.row(r) = means.row(c);
            d.labels.push_back(c);
        }
    return d;
}

Analysis run(const Dataset& d, const Eigen::MatrixXd& W, std::vector<std::int64_t> counts,
             std::optional<RowMatrix> logits = std::nullopt, Eigen::VectorXd bias = {}, std::int64_t chunk = 0) {
    AnalysisOptions options;
    options.chunk_rows = chunk;
    if (bias.size() == 0) bias = Eigen::VectorXd::Zero(W.rows());
    return analyze(MemorySource(d.features, d.labels, std::move(logits)), {W, bias, std::move(counts)}, options);
}

} // namespace

TEST(ClosedForm, ExactSimplexEtfWithSelfDualClassifierHasNoCollapseResidue) {
    const int C = 6, D = 9, n = 5;
    const Eigen::MatrixXd M = 3.0 * simplexEtf(C, D);
    const Analysis a = run(atMeans(M, n), M, std::vector<std::int64_t>(C, 50));
    EXPECT_NEAR(*a.nc1, 0.0, 1e-12);
    EXPECT_NEAR(*a.nc2_equinorm_means, 0.0, 1e-12);
    EXPECT_NEAR(*a.nc2_equinorm_weights, 0.0, 1e-12);
    EXPECT_NEAR(*a.nc2_equiangular_means, 0.0, 1e-12);
    EXPECT_NEAR(*a.nc2_equiangular_weights, 0.0, 1e-12);
    EXPECT_NEAR(*a.nc2_maxangle_means, 0.0, 1e-12);
    EXPECT_NEAR(*a.nc2_maxangle_weights, 0.0, 1e-12);
    EXPECT_NEAR(*a.nc3, 0.0, 1e-12);
    EXPECT_EQ(*a.nc4, 0.0);
    EXPECT_NEAR(*a.class_means_mean_cos, -1.0 / (C - 1), 1e-12);
    EXPECT_EQ(*a.accuracy, 1.0);
    EXPECT_EQ(*a.sample_accuracy, 1.0);
    // Balanced classes: -log pi is constant, the implicit slope is undefined.
    EXPECT_FALSE(a.implicit_la_tau.has_value());

    // Cone statistics in closed form: cos 1 within a class, -1/(C-1) across.
    const double N = C * n, same = C * n * (n - 1) / 2.0, diff = C * (C - 1) * n * n / 2.0, pairs = N * (N - 1) / 2;
    const double mean = (same - diff / (C - 1)) / pairs;
    const double second = (same + diff / ((C - 1.0) * (C - 1.0))) / pairs;
    EXPECT_NEAR(*a.cone_mean_cos, mean, 1e-12);
    EXPECT_NEAR(*a.cone_mean_cos, -1.0 / (N - 1), 1e-12);
    EXPECT_NEAR(*a.cone_std_cos, std::sqrt(second - mean * mean), 1e-9);
    EXPECT_NEAR(*a.cone_mean_cos_same_class, 1.0, 1e-12);
    EXPECT_NEAR(*a.cone_mean_cos_diff_class, -1.0 / (C - 1), 1e-12);
    // Every tau keeps a perfect classifier perfect; the first maximum is tau = 0.
    EXPECT_EQ(*a.la_additive.best_tau, 0.0);
    EXPECT_EQ(*a.la_multiplicative.best_tau, 0.0);
}

TEST(ClosedForm, FisherRatioOfTwoSymmetricClassesAndTheConstantDimensionRule) {
    // Class c: mean m_c plus the four points (+-a, 0), (0, +-b); a third dimension is constant.
    const double a = 0.5, b = 2.0;
    const Eigen::Vector3d m0(1.0, 3.0, 7.0), m1(2.0, 1.0, 7.0);
    Dataset d;
    d.features.resize(8, 3);
    const double offsets[4][2] = {{a, 0}, {-a, 0}, {0, b}, {0, -b}};
    for (int c = 0, r = 0; c < 2; ++c)
        for (auto& o : offsets) {
            const Eigen::Vector3d m = c ? m1 : m0;
            d.features.row(r++) = Eigen::RowVector3d(m[0] + o[0], m[1] + o[1], m[2]);
            d.labels.push_back(c);
        }
    const Eigen::MatrixXd W = (Eigen::MatrixXd(2, 3) << 1, 0, 0, 0, 1, 0).finished();
    const Analysis r = run(d, W, {10, 10});
    // S_W = diag(4a^2, 4b^2); S_B = 8 delta delta^T with delta = (m1 - m0) / 2.
    const Eigen::Vector2d delta((m1[0] - m0[0]) / 2, (m1[1] - m0[1]) / 2);
    EXPECT_EQ(r.fdr_dims_kept, 2);
    EXPECT_NEAR(*r.trace_sw, 4 * a * a + 4 * b * b, 1e-12);
    EXPECT_NEAR(*r.trace_sb, 8 * delta.squaredNorm(), 1e-12);
    EXPECT_NEAR(*r.fdr, 2 * (delta[0] * delta[0] / (a * a) + delta[1] * delta[1] / (b * b)), 1e-10);
    // NC1 = tr(Sigma_W Sigma_B^+)/K with Sigma_W = S_W/8 and Sigma_B = delta delta^T (K = 2).
    const double nc1 = (delta[0] * delta[0] * 4 * a * a / 8 + delta[1] * delta[1] * 4 * b * b / 8) /
                       (delta.squaredNorm() * delta.squaredNorm()) / 2;
    EXPECT_NEAR(*r.nc1, nc1, 1e-12);
}

TEST(ClosedForm, FisherRatioAloneEqualsTheEnginesOnFullAndRankDeficientScatter) {
    // fisherDiscriminantRatio (ltlab/fdr.h) is the engine's FDR without the rest of the analysis.
    std::mt19937_64 rng(3);
    std::normal_distribution<double> normal;
    struct Case { int n, d, classes; bool constant_dim, absent_class; };
    for (const Case k : {Case{400, 20, 5, false, false}, Case{30, 50, 4, false, false}, Case{200, 12, 6, true, true},
                         Case{60, 8, 3, false, false}}) {
        Dataset d;
        d.features.resize(k.n, k.d);
        for (int r = 0; r < k.n; ++r) {
            int y = r % k.classes;
            if (k.absent_class && y == 1) y = 0;
            d.labels.push_back(y);
            for (int j = 0; j < k.d; ++j) d.features(r, j) = std::max(0.0, normal(rng) + 0.5 * y * (j % 3 == 0));
            if (k.constant_dim) d.features(r, 2) = 4.0;
        }
        const Analysis a = run(d, Eigen::MatrixXd::Zero(k.classes, k.d), std::vector<std::int64_t>(k.classes, 1));
        const FisherRatio f = fisherDiscriminantRatio(d.features, d.labels, k.classes);
        ASSERT_TRUE(a.fdr && f.fdr);
        EXPECT_NEAR(*f.fdr, *a.fdr, 1e-10 * std::abs(*a.fdr)) << k.n << "x" << k.d;
        EXPECT_NEAR(*f.trace_sw, *a.trace_sw, 1e-10 * *a.trace_sw);
        EXPECT_NEAR(*f.trace_sb, *a.trace_sb, 1e-10 * *a.trace_sb);
        EXPECT_EQ(f.dims_kept, a.fdr_dims_kept);
    }
    // One class present: no FDR (never NaN).
    Dataset one;
    one.features = RowMatrix::Random(10, 3);
    one.labels.assign(10, 2);
    EXPECT_FALSE(fisherDiscriminantRatio(one.features, one.labels, 3).fdr);
    EXPECT_THROW(fisherDiscriminantRatio(one.features, std::vector<std::int32_t>(10, 3), 3), UsageError);
}

TEST(ClosedForm, FisherRatioOfTwoGaussianClassesApproachesTheMahalanobisDistance) {
    std::mt19937_64 rng(7);
    std::normal_distribution<double> normal;
    const int n = 20000;
    const Eigen::Vector2d delta(0.6, -0.3); // means at -delta and +delta
    Eigen::Matrix2d L;
    L << 1.0, 0.0, 0.5, 0.8; // Sigma = L L^T
    Dataset d;
    d.features.resize(2 * n, 2);
    for (int r = 0; r < 2 * n; ++r) {
        const int c = r % 2;
        const Eigen::Vector2d z(normal(rng), normal(rng));
        d.features.row(r) = ((c ? delta : Eigen::Vector2d(-delta)) + L * z).transpose();
        d.labels.push_back(c);
    }
    const Analysis a = run(d, Eigen::MatrixXd::Identity(2, 2), {n, n});
    // S_W ~ 2n Sigma and S_B = 2n delta delta^T, so FDR ~ delta^T Sigma^-1 delta.
    const double expected = delta.dot((L * L.transpose()).inverse() * delta);
    EXPECT_NEAR(*a.fdr, expected, 0.03 * expected);
}

TEST(ClosedForm, ConeStatisticsEqualBruteForceOverAllPairs) {
    std::mt19937_64 rng(3);
    std::normal_distribution<double> normal;
    const int N = 157, D = 7, C = 4;
    Dataset d;
    d.features.resize(N, D);
    for (int r = 0; r < N; ++r) {
        for (int j = 0; j < D; ++j) d.features(r, j) = 0.7 + normal(rng); // a cone around (0.7, ...)
        d.labels.push_back(static_cast<std::int32_t>(r % C));
    }
    d.features.row(10).setZero(); // left out of the cone statistics
    d.features.row(11).setZero();
    double sum = 0, sq = 0, same = 0, diff = 0, n_all = 0, n_same = 0, n_diff = 0;
    for (int i = 0; i < N; ++i)
        for (int j = i + 1; j < N; ++j) {
            const double ni = d.features.row(i).norm(), nj = d.features.row(j).norm();
            if (ni == 0 || nj == 0) continue;
            const double cos = d.features.row(i).dot(d.features.row(j)) / (ni * nj);
            sum += cos;
            sq += cos * cos;
            ++n_all;
            if (d.labels[i] == d.labels[j]) same += cos, ++n_same;
            else diff += cos, ++n_diff;
        }
    const double mean = sum / n_all;
    const Analysis a = run(d, Eigen::MatrixXd::Random(C, D), std::vector<std::int64_t>(C, 40), std::nullopt, {}, 16);
    EXPECT_NEAR(*a.cone_mean_cos, mean, 1e-12);
    EXPECT_NEAR(*a.cone_std_cos, std::sqrt(sq / n_all - mean * mean), 1e-10);
    EXPECT_NEAR(*a.cone_mean_cos_same_class, same / n_same, 1e-12);
    EXPECT_NEAR(*a.cone_mean_cos_diff_class, diff / n_diff, 1e-12);
}

TEST(ClosedForm, ChunkSizeDoesNotChangeAnyNumber) {
    std::mt19937_64 rng(11);
    std::normal_distribution<double> normal;
    const int N = 300, D = 12, C = 5;
    Dataset d;
    d.features.resize(N, D);
    for (int r = 0; r < N; ++r) {
        d.labels.push_back(static_cast<std::int32_t>((r * 7) % C));
        for (int j = 0; j < D; ++j) d.features(r, j) = normal(rng) + (j == d.labels.back() ? 2.0 : 0.0);
    }
    const Eigen::MatrixXd W = Eigen::MatrixXd::Random(C, D);
    const Analysis whole = run(d, W, {100, 50, 20, 10, 5}, std::nullopt, {}, N);
    const Analysis pieces = run(d, W, {100, 50, 20, 10, 5}, std::nullopt, {}, 7);
    EXPECT_NEAR(*whole.nc1, *pieces.nc1, 1e-12 * *whole.nc1);
    EXPECT_NEAR(*whole.fdr, *pieces.fdr, 1e-10 * *whole.fdr);
    EXPECT_NEAR(*whole.cone_std_cos, *pieces.cone_std_cos, 1e-12);
    EXPECT_EQ(*whole.nc4, *pieces.nc4);
    EXPECT_EQ(whole.confusion, pieces.confusion);
}

TEST(LogitAdjustment, SweepMatchesDirectArgmaxOnHandBuiltLogits) {
    // Three classes with priors 100:10:1 and logits that favour the head.
    const std::vector<std::int64_t> counts{100, 10, 1};
    const double logits[][3] = {{2.0, 1.5, 0.2}, {1.0, 0.9, 0.8}, {0.5, 0.6, -2.0}, {3.0, 0.0, 1.0},
                                {0.1, 0.0, 0.05}, {1.0, 1.0, 1.0}, {-1.0, -3.0, -0.5}, {2.0, 2.5, 0.0}};
    const std::int32_t labels[] = {1, 2, 1, 2, 2, 0, 2, 0};
    const int N = 8, C = 3;
    Dataset d;
    d.features = RowMatrix::Zero(N, 2);
    RowMatrix z(N, C);
    for (int i = 0; i < N; ++i) {
        for (int c = 0; c < C; ++c) z(i, c) = logits[i][c];
        d.labels.push_back(labels[i]);
        d.features(i, 0) = i + 1.0; // distinct non-zero features; irrelevant to the sweep
    }
    const Analysis a = run(d, Eigen::MatrixXd::Random(C, 2), counts, z);
    const double total = 111;
    for (int mode = 0; mode < 2; ++mode) {
        const LogitAdjustmentSweep& sweep = mode == 0 ? a.la_additive : a.la_multiplicative;
        ASSERT_EQ(sweep.tau.size(), 31u);
        for (int k = 0; k <= 30; ++k) {
            const double tau = k / 10.0;
            EXPECT_DOUBLE_EQ(sweep.tau[k], tau);
            int right[3] = {0, 0, 0}, seen[3] = {0, 0, 0};
            for (int i = 0; i < N; ++i) {
                int best = 0;
                double best_s = -INFINITY;
                for (int c = 0; c < C; ++c) {
                    const double pi = counts[c] / total;
                    const double s = tau == 0 ? z(i, c) : mode == 0 ? z(i, c) - tau * std::log(pi) : z(i, c) / std::pow(pi, tau);
                    if (s > best_s) best_s = s, best = c;
                }
                ++seen[labels[i]];
                right[labels[i]] += best == labels[i];
            }
            const double balanced = (double(right[0]) / seen[0] + double(right[1]) / seen[1] + double(right[2]) / seen[2]) / 3;
            EXPECT_NEAR(*sweep.accuracy[k].all, balanced, 1e-15) << "mode " << mode << " tau " << tau;
        }
    }
    // Hand check at tau = 0, class 0: sample 5 (logits 1, 1, 1) is right by the lowest-id
    // tie rule, sample 7 (2.0 < 2.5) is wrong.
    EXPECT_EQ(a.per_class.accuracy[0], 0.5);
}

TEST(LogitAdjustment, Float32LogitsGiveTheFloat64DecisionsWhereTheirBoundsLeaveThemOpen) {
    // Classifier rows that differ by 1e-4 of their norm make the logits' gaps about
    // the size of their float32 bounds: most rows have a decision open at first,
    // settled by computing the logits involved again in float64. Inputs are
    // float32 numbers, so both paths see the same features and weights.
    std::mt19937_64 rng(23);
    std::normal_distribution<float> normal;
    const int N = 600, D = 64, C = 40;
    Dataset d;
    d.features.resize(N, D);
    Eigen::MatrixXd W(C, D);
    std::vector<float> w0(D);
    for (auto& v : w0) v = normal(rng);
    for (int c = 0; c < C; ++c)
        for (int j = 0; j < D; ++j) W(c, j) = static_cast<double>(w0[j] + 1e-4f * normal(rng));
    std::vector<std::int64_t> counts(C);
    for (int c = 0; c < C; ++c) counts[c] = static_cast<std::int64_t>(std::lround(500 * std::pow(0.85, c))) + 1;
    for (int r = 0; r < N; ++r) {
        d.labels.push_back(static_cast<std::int32_t>(r % C));
        for (int j = 0; j < D; ++j) d.features(r, j) = static_cast<double>(normal(rng));
    }
    auto analyseIn = [&](AnalysisOptions::Precision precision) {
        AnalysisOptions options;
        options.precision = precision;
        options.chunk_rows = 128;
        return analyze(MemorySource(d.features, d.labels), {W, Eigen::VectorXd::Zero(C), counts}, options);
    };
    const Analysis f64 = analyseIn(AnalysisOptions::Precision::Float64);
    const Analysis f32 = analyseIn(AnalysisOptions::Precision::Float32);
    ASSERT_TRUE(f32.float32_products);
    ASSERT_FALSE(f64.float32_products);
    EXPECT_GT(f32.rows_recomputed, N / 2);                      // the bounds left most rows open
    EXPECT_LT(f32.logits_recomputed, f32.rows_recomputed * C / 4); // and only a few of their logits were needed
    EXPECT_EQ(f32.confusion, f64.confusion);
    for (int mode = 0; mode < 2; ++mode) {
        const LogitAdjustmentSweep& a = mode == 0 ? f32.la_additive : f32.la_multiplicative;
        const LogitAdjustmentSweep& b = mode == 0 ? f64.la_additive : f64.la_multiplicative;
        EXPECT_EQ(a.best_tau, b.best_tau);
        ASSERT_EQ(a.per_class_accuracy.size(), b.per_class_accuracy.size());
        for (std::size_t k = 0; k < a.per_class_accuracy.size(); ++k)
            EXPECT_EQ(a.per_class_accuracy[k], b.per_class_accuracy[k]) << "mode " << mode << " tau " << a.tau[k];
    }
}

TEST(ShotGroups, ThresholdsAreStrictAndEmptyGroupsAreNull) {
    const std::vector<std::int64_t> counts{101, 100, 20, 19};
    const Eigen::MatrixXd W = Eigen::MatrixXd::Identity(4, 4);
    const Analysis a = run(atMeans(Eigen::MatrixXd::Identity(4, 4), 3), W, counts);
    EXPECT_EQ(a.per_class.group[0], ShotGroup::Many);   // 101 > 100
    EXPECT_EQ(a.per_class.group[1], ShotGroup::Medium); // 100 is not > 100
    EXPECT_EQ(a.per_class.group[2], ShotGroup::Medium); // 20 is not < 20
    EXPECT_EQ(a.per_class.group[3], ShotGroup::Few);    // 19 < 20

    const Analysis no_few = run(atMeans(Eigen::MatrixXd::Identity(3, 3), 2), Eigen::MatrixXd::Identity(3, 3), {500, 400, 300});
    EXPECT_TRUE(no_few.accuracy_many.has_value());
    EXPECT_FALSE(no_few.accuracy_medium.has_value());
    EXPECT_FALSE(no_few.accuracy_few.has_value());
}

TEST(NullRules, OnePresentClassAndAbsentClasses) {
    Dataset d;
    d.features.resize(4, 3);
    d.features << 1, 0, 0, 2, 0, 0, 1, 1, 0, 3, 1, 1;
    d.labels = {1, 1, 1, 1};
    const Analysis a = run(d, Eigen::MatrixXd::Identity(3, 3), {10, 10, 10});
    for (const Nullable* v : {&a.nc1, &a.nc2_equinorm_means, &a.nc2_equinorm_weights, &a.nc2_equiangular_means,
                              &a.nc2_equiangular_weights, &a.nc2_maxangle_means, &a.nc2_maxangle_weights, &a.nc3,
                              &a.fdr, &a.trace_sw, &a.trace_sb, &a.class_means_mean_cos, &a.cone_mean_cos_diff_class})
        EXPECT_FALSE(v->has_value());
    EXPECT_TRUE(a.nc4.has_value());
    EXPECT_TRUE(a.cone_mean_cos.has_value());
    EXPECT_TRUE(a.cone_mean_cos_same_class.has_value());
    EXPECT_FALSE(a.per_class.accuracy[0].has_value());
    EXPECT_FALSE(a.per_class.feature_norm[2].has_value());
    EXPECT_FALSE(a.per_class.mean_norm[0].has_value());
    EXPECT_EQ(a.per_class.count[0], 0);
    EXPECT_EQ(a.per_class.train_count[0], 10);
    EXPECT_DOUBLE_EQ(a.per_class.weight_norm[0], 1.0);
    EXPECT_TRUE(a.accuracy.has_value()); // mean over the one present class
}

TEST(NullRules, NonFiniteFeaturesAreCountedAndReported) {
    Dataset d = atMeans(Eigen::MatrixXd::Identity(2, 2), 3);
    d.features(4, 1) = NAN;
    d.features(5, 0) = INFINITY;
    try {
        run(d, Eigen::MatrixXd::Identity(2, 2), {5, 5});
        FAIL() << "expected an InputError";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("2 non-finite values"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("row 4, column 1"), std::string::npos) << e.what();
    }
}

TEST(ConeHistograms, ExactOverAllPairsOrOverASeededSampleOfRows) {
    std::mt19937_64 rng(21);
    std::normal_distribution<double> normal;
    const int N = 300, D = 6, C = 3;
    Dataset d;
    d.features.resize(N, D);
    for (int r = 0; r < N; ++r) {
        d.labels.push_back(r % C);
        for (int j = 0; j < D; ++j) d.features(r, j) = normal(rng) + (j == r % C ? 3.0 : 0.5);
    }
    const MemorySource source(d.features, d.labels);
    const ConeHistograms exact = coneHistograms(source, 50, 1000, 0);
    EXPECT_TRUE(exact.exact);
    double same = 0, diff = 0, same_weighted = 0;
    for (int b = 0; b < 50; ++b) {
        same += exact.same_class[b];
        diff += exact.diff_class[b];
        same_weighted += exact.same_class[b] * exact.binCentre(b);
    }
    EXPECT_EQ(same, 3 * 100 * 99 / 2);
    EXPECT_EQ(diff, 300 * 299 / 2 - same);
    const Analysis a = run(d, Eigen::MatrixXd::Identity(C, D), {100, 100, 100});
    EXPECT_NEAR(same_weighted / same, *a.cone_mean_cos_same_class, 1.0 / 50); // within a bin
    const ConeHistograms sampled = coneHistograms(source, 50, 120, 7);
    EXPECT_FALSE(sampled.exact);
    EXPECT_EQ(sampled.rows_used, 120);
    double total = 0;
    for (int b = 0; b < 50; ++b) total += sampled.same_class[b] + sampled.diff_class[b];
    EXPECT_EQ(total, 120 * 119 / 2);
    EXPECT_EQ(coneHistograms(source, 50, 120, 7).diff_class, sampled.diff_class); // seeded
    // A uniform sample of 120 of the 300 rows estimates the same-class share of pairs
    // and its mean cosine: within a few bins of the exact figures.
    double sampled_same = 0, sampled_weighted = 0;
    for (int b = 0; b < 50; ++b) {
        sampled_same += sampled.same_class[b];
        sampled_weighted += sampled.same_class[b] * sampled.binCentre(b);
    }
    EXPECT_NEAR(sampled_same / total, same / (same + diff), 0.05);
    EXPECT_NEAR(sampled_weighted / sampled_same, same_weighted / same, 3.0 / 50);
    // The class-mean cosine matrix holds cos(mu_c, mu_c'), from the class means of the data.
    for (int c = 0; c < C; ++c)
        for (int e = 0; e < C; ++e) {
            Eigen::RowVectorXd mc = Eigen::RowVectorXd::Zero(D), me = Eigen::RowVectorXd::Zero(D);
            for (Eigen::Index r = 0; r < d.features.rows(); ++r) {
                if (d.labels[static_cast<std::size_t>(r)] == c) mc += d.features.row(r) / 100.0;
                if (d.labels[static_cast<std::size_t>(r)] == e) me += d.features.row(r) / 100.0;
            }
            EXPECT_NEAR(*a.class_mean_cosine[static_cast<std::size_t>(c * C + e)], mc.dot(me) / (mc.norm() * me.norm()), 1e-12);
        }
    EXPECT_NEAR(*a.class_means_mean_cos,
                (*a.class_mean_cosine[0 * C + 1] + *a.class_mean_cosine[0 * C + 2] + *a.class_mean_cosine[1 * C + 2]) / 3, 1e-12);
}

TEST(Geometry, AnExactEtfIsItsOwnAlignedEtfAndFillsThreeDimensions) {
    const int C = 4, D = 7; // centred means of 4 classes span exactly 3 dimensions
    const Eigen::MatrixXd M = 2.5 * simplexEtf(C, D);
    const Analysis a = run(atMeans(M, 3), M, std::vector<std::int64_t>(C, 10));
    const ClassGeometry3D g = projectClassGeometry(a);
    ASSERT_EQ(g.means.size(), 4u);
    EXPECT_NEAR(g.explained, 1.0, 1e-12);
    EXPECT_NEAR(g.procrustes_residual, 0.0, 1e-9);
    for (int k = 0; k < C; ++k) {
        EXPECT_NEAR((g.means[k] - g.etf[k]).norm(), 0.0, 1e-9);
        EXPECT_NEAR(g.means[k].norm(), M.row(k).norm(), 1e-9);  // PCA keeps lengths here
        EXPECT_NEAR((g.weights[k] - g.means[k]).norm(), 0.0, 1e-9); // self-dual classifier
    }
}

TEST(Geometry, ClassifierAxesGiveEachPointsComponentAlongTheChosenRows) {
    const int C = 5, D = 8, n = 4;
    Eigen::MatrixXd M = Eigen::MatrixXd::Random(C, D) * 3.0;
    const Eigen::MatrixXd W = Eigen::MatrixXd::Random(C, D);
    const Analysis a = run(atMeans(M, n), W, std::vector<std::int64_t>(C, 10));
    GeometryOptions options;
    options.axes = GeometryAxes::ClassifierRows;
    options.axis_classes = {3, 0, 4};
    const ClassGeometry3D g = projectClassGeometry(a, options);
    ASSERT_EQ(g.means.size(), 5u);
    const Eigen::RowVectorXd centre = M.colwise().mean();
    Eigen::MatrixXd span(D, 3);
    for (int k = 0; k < C; ++k)
        for (int j = 0; j < 3; ++j) {
            const Eigen::RowVectorXd w = W.row(options.axis_classes[j]) / W.row(options.axis_classes[j]).norm();
            EXPECT_NEAR(g.means[k][j], (M.row(k) - centre).dot(w), 1e-9);
            span.col(j) = w.transpose();
        }
    // Explained: the share of the centred means' squared norm in the span of the three rows.
    const Eigen::MatrixXd Mc = M.rowwise() - centre;
    const Eigen::MatrixXd P = span * (span.transpose() * span).inverse() * span.transpose();
    EXPECT_NEAR(g.explained, (Mc * P).squaredNorm() / Mc.squaredNorm(), 1e-9);

    options.axis_classes = {0, 5, 1};
    EXPECT_THROW(projectClassGeometry(a, options), UsageError);
    options.axis_classes = {2, 1, 2};
    EXPECT_THROW(projectClassGeometry(a, options), UsageError);
}

TEST(Geometry, SampleCloudIsASeededUniformCappedSamplePerClassOnTheSameAxes) {
    const int C = 3, D = 6, n = 50;
    Dataset d = atMeans(Eigen::MatrixXd::Random(C, D) * 4.0, n);
    d.features += RowMatrix::Random(C * n, D); // distinct rows: each point identifies its row
    const Analysis a = run(d, Eigen::MatrixXd::Random(C, D), std::vector<std::int64_t>(C, n));
    GeometryOptions options;
    options.samples_per_class = 7;
    options.seed = 3;
    ClassGeometry3D g = projectClassGeometry(a, options);
    const MemorySource source(d.features, d.labels);
    addSampleCloud(g, source);
    ASSERT_EQ(g.samples.size(), 21u);
    std::vector<int> per_class(C, 0), rows_found;
    for (std::size_t i = 0; i < g.samples.size(); ++i) {
        ++per_class[static_cast<std::size_t>(g.sample_classes[i])];
        int found = -1;
        for (int r = 0; r < C * n; ++r) // the projection of a row of that class, on the means' axes
            if (((d.features.row(r) - g.centre) * g.axes).transpose().isApprox(g.samples[i], 1e-12)) found = r;
        ASSERT_GE(found, 0);
        EXPECT_EQ(d.labels[static_cast<std::size_t>(found)], g.sample_classes[i]);
        rows_found.push_back(found);
    }
    EXPECT_EQ(per_class, (std::vector<int>{7, 7, 7}));
    EXPECT_GT(*std::max_element(rows_found.begin(), rows_found.begin() + 7), 6); // not "the first 7"

    ClassGeometry3D same = projectClassGeometry(a, options), other = projectClassGeometry(a, options);
    addSampleCloud(same, source);
    other.options.seed = 4;
    addSampleCloud(other, source);
    EXPECT_EQ(same.samples, g.samples);
    EXPECT_NE(other.samples, g.samples);
    options.samples_per_class = 500; // more than there are: every row once
    ClassGeometry3D all = projectClassGeometry(a, options);
    addSampleCloud(all, source);
    EXPECT_EQ(all.samples.size(), static_cast<std::size_t>(C * n));
}

TEST(Analysis, ProgressReachesOneAndReturningFalseCancels) {
    const Dataset d = atMeans(3.0 * simplexEtf(4, 6), 50);
    AnalysisOptions options;
    options.chunk_rows = 16;
    std::vector<double> seen;
    options.progress = [&](double f) {
        seen.push_back(f);
        return true;
    };
    const Eigen::MatrixXd W = Eigen::MatrixXd::Identity(4, 6);
    analyze(MemorySource(d.features, d.labels), {W, Eigen::VectorXd::Zero(4), {10, 10, 10, 10}}, options);
    ASSERT_FALSE(seen.empty());
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    EXPECT_DOUBLE_EQ(seen.back(), 1.0);
    int calls = 0;
    options.progress = [&](double) { return ++calls < 3; };
    EXPECT_THROW(analyze(MemorySource(d.features, d.labels), {W, Eigen::VectorXd::Zero(4), {10, 10, 10, 10}}, options),
                 Cancelled);
    EXPECT_EQ(calls, 3); // stops at the first refusal
}

TEST(Analysis, WeightsAloneGiveNormsBiasesGroupsAndTheImplicitTauOfAPowerLaw) {
    // ||w_c|| = 2 pi_c^(-0.7): log||w|| is exactly linear in -log pi with slope 0.7.
    const std::vector<std::int64_t> counts = {500, 200, 80, 30, 10};
    double total = 0;
    for (auto n : counts) total += double(n);
    Eigen::MatrixXd W = Eigen::MatrixXd::Zero(5, 3);
    for (Eigen::Index c = 0; c < 5; ++c) W(c, c % 3) = (c % 2 ? -2.0 : 2.0) * std::pow(double(counts[std::size_t(c)]) / total, -0.7);
    const Eigen::VectorXd b = Eigen::VectorXd::LinSpaced(5, -1.0, 1.0);
    AnalysisOptions options;
    options.many_threshold = 100;
    options.few_threshold = 20;
    const Analysis a = analyzeWeights({W, b, counts}, options);
    EXPECT_EQ(a.num_classes, 5);
    EXPECT_EQ(a.feature_dim, 3);
    EXPECT_EQ(a.num_samples, 0);
    for (std::size_t c = 0; c < 5; ++c) {
        EXPECT_NEAR(a.per_class.weight_norm[c], W.row(Eigen::Index(c)).norm(), 1e-12);
        EXPECT_DOUBLE_EQ(a.per_class.bias[c], b[Eigen::Index(c)]);
        EXPECT_EQ(a.per_class.count[c], 0);
        EXPECT_FALSE(a.per_class.accuracy[c].has_value());
    }
    EXPECT_EQ(a.per_class.group[0], ShotGroup::Many);
    EXPECT_EQ(a.per_class.group[2], ShotGroup::Medium);
    EXPECT_EQ(a.per_class.group[4], ShotGroup::Few);
    ASSERT_TRUE(a.implicit_la_tau.has_value());
    EXPECT_NEAR(*a.implicit_la_tau, 0.7, 1e-12);
    EXPECT_NEAR(*a.implicit_la_intercept, std::log(2.0), 1e-12);
    // Nothing that needs samples is made up.
    EXPECT_FALSE(a.accuracy.has_value());
    EXPECT_FALSE(a.nc1.has_value());
    EXPECT_FALSE(a.fdr.has_value());
    EXPECT_FALSE(a.cone_mean_cos.has_value());
    EXPECT_EQ(a.classifier_weight.rows(), 5);
}
