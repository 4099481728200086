// Layer-wise statistics (ltlab/layer_stats.h) against closed forms and
// direct computations: constructed cosines, Hoyer of one-hot and constant
// rows, the sample-space FDR against a direct D x D pseudo-inverse, the
// pooled FDR against the engine, label-free nulls, and the /layers storage.

#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>

#include <cmath>
#include <filesystem>
#include <random>

#include "ltlab/layer_stats.h"
#include "ltlab/run_file.h"
#include "ltlab/run_writer.h"

namespace {

using ltlab::LayerBatch;
using ltlab::LayerStats;
using ltlab::RowMatrix;

LayerBatch batchOf(const RowMatrix& X, const std::vector<std::int32_t>* labels = nullptr, std::int64_t classes = 0,
                   std::int64_t channels = 0) {
    LayerBatch b;
    b.f64 = X.data();
    b.rows = X.rows();
    b.cols = X.cols();
    b.labels = labels;
    b.classes = classes;
    b.channels = channels;
    return b;
}

RowMatrix gaussian(Eigen::Index n, Eigen::Index d, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    RowMatrix X(n, d);
    for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < d; ++j) X(i, j) = normal(rng);
    return X;
}

// tr(S_W^+ S_B) with the D x D matrices, the 1e-8 eigenvalue cutoff, no constant dims.
double directFdr(const RowMatrix& X, const std::vector<std::int32_t>& y, int classes) {
    const Eigen::Index D = X.cols();
    Eigen::MatrixXd sw = Eigen::MatrixXd::Zero(D, D), sb = Eigen::MatrixXd::Zero(D, D);
    const Eigen::RowVectorXd mu = X.colwise().mean();
    for (int c = 0; c < classes; ++c) {
        Eigen::RowVectorXd m = Eigen::RowVectorXd::Zero(D);
        int n = 0;
        for (Eigen::Index i = 0; i < X.rows(); ++i)
            if (y[static_cast<std::size_t>(i)] == c) m += X.row(i), ++n;
        if (n == 0) continue;
        m /= n;
        sb += double(n) * (m - mu).transpose() * (m - mu);
        for (Eigen::Index i = 0; i < X.rows(); ++i)
            if (y[static_cast<std::size_t>(i)] == c) sw += (X.row(i) - m).transpose() * (X.row(i) - m);
    }
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(sw);
    const double largest = eig.eigenvalues().maxCoeff();
    Eigen::MatrixXd pinv = Eigen::MatrixXd::Zero(D, D);
    for (Eigen::Index j = 0; j < D; ++j)
        if (eig.eigenvalues()[j] > 1e-8 * largest)
            pinv += eig.eigenvectors().col(j) * eig.eigenvectors().col(j).transpose() / eig.eigenvalues()[j];
    return (pinv * sb).trace();
}

TEST(LayerStats, CosinesOfConstructedVectors) {
    // Rows e1, e1, e2, (e1 + e2)/sqrt2 scaled: pair cosines 1, 0, r, 0, r, r with r = 1/sqrt2.
    RowMatrix X(4, 3);
    X << 1, 0, 0, 3, 0, 0, 0, 2, 0, 1, 1, 0;
    const double r = 1 / std::sqrt(2.0);
    const std::vector<double> c{1, 0, r, 0, r, r};
    double mean = 0, sq = 0;
    for (double v : c) mean += v / 6, sq += v * v / 6;
    const std::vector<std::int32_t> y{0, 0, 1, 1};
    const LayerStats s = ltlab::computeLayerStats("x", batchOf(X, &y, 2));
    EXPECT_NEAR(*s.cone_mean_cos, mean, 1e-12);
    EXPECT_NEAR(*s.cone_std_cos, std::sqrt(sq - mean * mean), 1e-12);
    EXPECT_NEAR(*s.cone_mean_cos_same_class, (1 + r) / 2, 1e-12); // pairs (0,1) and (2,3)
    EXPECT_NEAR(*s.cone_std_cos_same_class, (1 - r) / 2, 1e-12);
    EXPECT_NEAR(*s.cone_mean_cos_diff_class, (0 + r + 0 + r) / 4, 1e-12);
}

TEST(LayerStats, ZeroRowsLeaveThePairs) {
    RowMatrix X(3, 2);
    X << 1, 0, 0, 0, 1, 1;
    const LayerStats s = ltlab::computeLayerStats("x", batchOf(X));
    EXPECT_NEAR(*s.cone_mean_cos, 1 / std::sqrt(2.0), 1e-12); // the one pair of nonzero rows
    EXPECT_NEAR(*s.cone_std_cos, 0, 1e-12);
}

TEST(LayerStats, HoyerOfOneHotIsOneAndOfConstantIsZero) {
    RowMatrix onehot = RowMatrix::Zero(3, 16);
    onehot(0, 2) = 5, onehot(1, 7) = -1, onehot(2, 15) = 0.1; // |h| is one-hot
    EXPECT_NEAR(*ltlab::computeLayerStats("a", batchOf(onehot)).hoyer_sparsity, 1.0, 1e-12);
    const RowMatrix constant = RowMatrix::Constant(3, 16, -2.5);
    const LayerStats c = ltlab::computeLayerStats("b", batchOf(constant));
    EXPECT_NEAR(*c.hoyer_sparsity, 0.0, 1e-12);
    EXPECT_NEAR(*c.hoyer_sparsity_var, 0.0, 1e-12);
    EXPECT_NEAR(*c.feature_mean, -2.5, 1e-12);
    EXPECT_NEAR(*c.feature_var, 0.0, 1e-12);
}

TEST(LayerStats, MeanAndUnbiasedVarianceOfEntries) {
    const RowMatrix X = gaussian(7, 5, 3);
    const double n = double(X.size()), mean = X.mean();
    const LayerStats s = ltlab::computeLayerStats("x", batchOf(X));
    EXPECT_NEAR(*s.feature_mean, mean, 1e-12);
    EXPECT_NEAR(*s.feature_var, (X.array() - mean).square().sum() / (n - 1), 1e-12);
}

TEST(LayerStats, SampleSpaceFdrEqualsDirectPseudoInverse) {
    // D > N: S_W (40 x 40) is singular, rank N - C.
    const RowMatrix X = gaussian(12, 40, 7);
    std::vector<std::int32_t> y;
    for (int i = 0; i < 12; ++i) y.push_back(i % 3);
    const ltlab::FdrValues f = ltlab::sampleSpaceFdr(X, y, 3);
    const double direct = directFdr(X, y, 3);
    ASSERT_TRUE(f.fdr.has_value());
    EXPECT_NEAR(*f.fdr, direct, 1e-8 * std::abs(direct));
    // The same value through computeLayerStats' column blocks (3 columns a block).
    ltlab::LayerStatsOptions o;
    o.flat_fdr = true;
    o.block_values = 36;
    const LayerStats s = ltlab::computeLayerStats("x", batchOf(X, &y, 3), o);
    EXPECT_NEAR(*s.flat_fdr, direct, 1e-8 * std::abs(direct));
    EXPECT_NEAR(*s.flat_relu_fdr, directFdr(X.cwiseMax(0.0), y, 3), 1e-8 * std::abs(direct));
    EXPECT_NEAR(*s.flat_trace_sw, *f.trace_sw, 1e-9 * *f.trace_sw);
}

TEST(LayerStats, SampleSpaceFdrEqualsTheEngineWhenDIsSmall) {
    const RowMatrix X = gaussian(30, 6, 11);
    std::vector<std::int32_t> y;
    for (int i = 0; i < 30; ++i) y.push_back(i % 4);
    ltlab::LayerStatsOptions o;
    o.flat_fdr = true; // D <= N: the engine itself
    const LayerStats s = ltlab::computeLayerStats("x", batchOf(X, &y, 4), o);
    const ltlab::FdrValues f = ltlab::sampleSpaceFdr(X, y, 4);
    EXPECT_NEAR(*s.flat_fdr, *f.fdr, 1e-8 * *f.fdr);
    EXPECT_NEAR(*s.flat_fdr, directFdr(X, y, 4), 1e-8 * *f.fdr);
    // One channel per column: the pooled FDR is the flat one.
    EXPECT_NEAR(*s.fdr, *s.flat_fdr, 1e-12 * *s.fdr);
    EXPECT_NEAR(*s.trace_ratio, *s.trace_sb / *s.trace_sw, 1e-12);
}

TEST(LayerStats, PooledFeaturesAverageEachChannel) {
    // 2 channels x 3 positions: the pooled FDR is that of the channel means.
    const RowMatrix X = gaussian(20, 6, 5);
    std::vector<std::int32_t> y;
    for (int i = 0; i < 20; ++i) y.push_back(i % 2);
    RowMatrix P(20, 2);
    for (int i = 0; i < 20; ++i) P(i, 0) = X.row(i).head(3).mean(), P(i, 1) = X.row(i).tail(3).mean();
    const LayerStats s = ltlab::computeLayerStats("x", batchOf(X, &y, 2, 2));
    EXPECT_EQ(s.channels, 2);
    EXPECT_NEAR(*s.fdr, directFdr(P, y, 2), 1e-9 * *s.fdr);
    RowMatrix R(20, 2);
    const RowMatrix Xr = X.cwiseMax(0.0);
    for (int i = 0; i < 20; ++i) R(i, 0) = Xr.row(i).head(3).mean(), R(i, 1) = Xr.row(i).tail(3).mean();
    EXPECT_NEAR(*s.relu_fdr, directFdr(R, y, 2), 1e-9 * *s.relu_fdr);
}

TEST(LayerStats, LabelFreeInputsHaveOnlyLabelFreeStatistics) {
    const RowMatrix X = gaussian(10, 8, 1);
    ltlab::LayerStatsOptions o;
    o.flat_fdr = true;
    const LayerStats s = ltlab::computeLayerStats("noise", batchOf(X), o);
    EXPECT_TRUE(s.cone_mean_cos && s.cone_std_cos && s.feature_mean && s.feature_var && s.hoyer_sparsity);
    for (const auto& v : {s.cone_mean_cos_same_class, s.cone_mean_cos_diff_class, s.fdr, s.relu_fdr, s.trace_sw, s.trace_sb,
                          s.trace_ratio, s.flat_fdr, s.flat_relu_fdr})
        EXPECT_FALSE(v.has_value());
}

TEST(LayerStats, StandardisedFeatures) {
    RowMatrix X = gaussian(9, 4, 2);
    X.col(3).setConstant(4.0); // constant: becomes 0
    RowMatrix Z = X;
    for (Eigen::Index j = 0; j < 4; ++j) {
        const double m = X.col(j).mean();
        const double sd = std::sqrt((X.col(j).array() - m).square().sum() / 8);
        Z.col(j) = sd < 1e-5 ? Eigen::VectorXd::Zero(9) : Eigen::VectorXd((X.col(j).array() - m) / (2 * sd + 1e-6));
    }
    ltlab::LayerStatsOptions o;
    o.standardize = true;
    const LayerStats a = ltlab::computeLayerStats("x", batchOf(X), o), b = ltlab::computeLayerStats("z", batchOf(Z));
    EXPECT_NEAR(*a.cone_mean_cos, *b.cone_mean_cos, 1e-12);
    EXPECT_NEAR(*a.feature_var, *b.feature_var, 1e-12);
    EXPECT_NEAR(*a.hoyer_sparsity, *b.hoyer_sparsity, 1e-12);
}

TEST(LayerStats, Float32InputEqualsItsFloat64Widening) {
    const RowMatrix X = gaussian(15, 10, 4);
    const ltlab::RowMatrixF F = X.cast<float>();
    const RowMatrix W = F.cast<double>();
    LayerBatch b = batchOf(W);
    b.f64 = nullptr;
    b.f32 = F.data();
    EXPECT_NEAR(*ltlab::computeLayerStats("f", b).cone_mean_cos, *ltlab::computeLayerStats("d", batchOf(W)).cone_mean_cos, 1e-14);
}

TEST(LayerStats, BatchNormStatistics) {
    LayerStats s;
    ltlab::setBatchNormStats(s, {Eigen::Vector2d(1, 3), Eigen::Vector2d(2, 2)}, {Eigen::Vector2d(0, 0), Eigen::Vector2d(1, -1)});
    EXPECT_EQ(s.bn_layers, 2);
    EXPECT_NEAR(*s.bn_gamma_mean, 2.0, 1e-12);
    EXPECT_NEAR(*s.bn_gamma_std, std::sqrt(0.5), 1e-12);
    EXPECT_NEAR(*s.bn_beta_mean, 0.0, 1e-12);
    EXPECT_NEAR(*s.bn_beta_std, std::sqrt(0.5), 1e-12);
}

TEST(LayerResults, StoredAndReadBackAndTheRunStillOpens) {
    const std::string path = (std::filesystem::temp_directory_path() / "ltlab_layer_results_test.h5").string();
    ltlab::ClassInfo classes;
    classes.train_counts = {5, 3};
    ltlab::createRunFile(path, classes, std::nullopt, [](ltlab::RunFileWriter& w) {
        ltlab::SnapshotData s;
        s.name = "final";
        s.classifier_weight = Eigen::MatrixXd::Identity(2, 2);
        s.splits.push_back({"test", RowMatrix::Identity(2, 2), {0, 1}, std::nullopt});
        w.writeSnapshot(s);
    });
    ltlab::LayerRun run;
    run.inputs = "noise";
    run.weights = "init";
    run.seed = 7;
    run.samples = 10;
    run.name = ltlab::defaultLayerRunName(run);
    const RowMatrix X = gaussian(10, 4, 9);
    run.layers.push_back(ltlab::computeLayerStats("input", batchOf(X)));
    run.layers.push_back(ltlab::computeLayerStats("stem", batchOf(X.cwiseMax(0.0), nullptr, 0, 2)));
    ltlab::writeLayerResults(path, run);
    run.seed = 8;
    ltlab::writeLayerResults(path, run); // replaces the group of that name
    const auto back = ltlab::readLayerResults(path);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].name, "noise_init");
    EXPECT_EQ(back[0].seed, 8u);
    ASSERT_EQ(back[0].layers.size(), 2u);
    EXPECT_EQ(back[0].layers[1].name, "stem");
    EXPECT_EQ(back[0].layers[1].channels, 2);
    EXPECT_DOUBLE_EQ(*back[0].layers[0].cone_mean_cos, *run.layers[0].cone_mean_cos);
    EXPECT_FALSE(back[0].layers[0].fdr.has_value()); // null stays null
    const auto file = ltlab::RunFile::open(path);     // readers that ignore /layers still open it
    EXPECT_EQ(file->snapshots().size(), 1u);
    std::filesystem::remove(path);
}

} // namespace
