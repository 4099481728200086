#include "ltlab/geometry.h"

#include <Eigen/Dense>

#include <algorithm>
#include <random>
#include <string>

#include "ltlab/error.h"

namespace ltlab {

namespace {

// Top three principal directions of the centred means (rows of M), through
// the K x K Gram matrix; columns with no variance stay zero.
Eigen::MatrixXd principalAxes(const Eigen::MatrixXd& M) {
    const Eigen::Index K = M.rows();
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(M * M.transpose());
    Eigen::MatrixXd axes = Eigen::MatrixXd::Zero(M.cols(), 3);
    const double total = eig.eigenvalues().sum();
    for (int j = 0; j < 3 && j < K; ++j) {
        const Eigen::Index idx = K - 1 - j; // ascending order
        const double lambda = eig.eigenvalues()[idx];
        if (lambda <= 1e-12 * std::max(total, 1e-300)) continue;
        axes.col(j) = M.transpose() * eig.eigenvectors().col(idx) / std::sqrt(lambda);
    }
    return axes;
}

Eigen::MatrixXd classifierAxes(const Analysis& a, const std::array<int, 3>& classes) {
    const Eigen::Index C = a.classifier_weight.rows();
    Eigen::MatrixXd axes = Eigen::MatrixXd::Zero(a.classifier_weight.cols(), 3);
    for (int j = 0; j < 3; ++j) {
        const int c = classes[static_cast<std::size_t>(j)];
        if (c < 0 || c >= C)
            throw UsageError("axis class " + std::to_string(c) + " is out of range (0 to " + std::to_string(C - 1) + ")");
        for (int i = 0; i < j; ++i)
            if (classes[static_cast<std::size_t>(i)] == c)
                throw UsageError("axis class " + std::to_string(c) + " is chosen twice");
        const double norm = a.classifier_weight.row(c).norm();
        if (norm > 0) axes.col(j) = a.classifier_weight.row(c).transpose() / norm;
    }
    return axes;
}

} // namespace

ClassGeometry3D projectClassGeometry(const Analysis& a, const GeometryOptions& options) {
    ClassGeometry3D g;
    g.options = options;
    for (std::size_t c = 0; c < a.per_class.count.size(); ++c)
        if (a.per_class.count[c] > 0) g.classes.push_back(static_cast<int>(c));
    const auto K = static_cast<Eigen::Index>(g.classes.size());
    const Eigen::Index D = a.class_means.cols();
    if (K < 2 || D < 1) return g;
    Eigen::MatrixXd M(K, D), W(K, D);
    for (Eigen::Index k = 0; k < K; ++k) {
        M.row(k) = a.class_means.row(g.classes[static_cast<std::size_t>(k)]);
        W.row(k) = a.classifier_weight.row(g.classes[static_cast<std::size_t>(k)]);
    }
    g.centre = M.colwise().mean();
    M.rowwise() -= g.centre;
    g.axes = options.axes == GeometryAxes::Pca ? principalAxes(M) : classifierAxes(a, options.axis_classes);
    // The share of the means' variance in the span of the axes.
    const double total = M.squaredNorm();
    double kept = 0;
    if (options.axes == GeometryAxes::Pca) {
        for (int j = 0; j < 3; ++j) kept += (M * g.axes.col(j)).squaredNorm(); // orthonormal (or zero) columns
    } else {
        const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(g.axes);
        const Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(D, std::min<Eigen::Index>(3, D)); // thin
        kept = (M * q.leftCols(qr.rank())).squaredNorm();
    }
    g.explained = total > 0 ? std::min(1.0, kept / total) : 0;
    // The simplex ETF with the means' average norm, aligned by orthogonal Procrustes.
    const double mean_norm = M.rowwise().norm().mean();
    const Eigen::MatrixXd centring = Eigen::MatrixXd::Identity(K, K) - Eigen::MatrixXd::Constant(K, K, 1.0 / double(K));
    const Eigen::MatrixXd Etf = centring / centring.row(0).norm() * mean_norm; // K equal-norm vertices
    const Eigen::BDCSVD<Eigen::MatrixXd> svd(Etf.transpose() * M, Eigen::ComputeThinU | Eigen::ComputeThinV);
    const Eigen::MatrixXd aligned = Etf * svd.matrixU() * svd.matrixV().transpose();
    g.procrustes_residual = M.norm() > 0 ? (aligned - M).norm() / M.norm() : 0;
    const double w_norm = W.rowwise().norm().mean();
    const double w_scale = w_norm > 0 ? mean_norm / w_norm : 0;
    const Eigen::MatrixXd pm = M * g.axes, pw = W * g.axes * w_scale, pe = aligned * g.axes;
    for (Eigen::Index k = 0; k < K; ++k) {
        g.means.emplace_back(pm.row(k).transpose());
        g.weights.emplace_back(pw.row(k).transpose());
        g.etf.emplace_back(pe.row(k).transpose());
    }
    return g;
}

void addSampleCloud(ClassGeometry3D& g, const FeatureSource& source) {
    g.samples.clear();
    g.sample_classes.clear();
    const std::int64_t cap = g.options.samples_per_class;
    if (cap <= 0 || g.means.empty()) return;
    if (source.featureDim() != g.axes.rows())
        source.fail("features", "have " + std::to_string(source.featureDim()) + " columns, the geometry " +
                                    std::to_string(g.axes.rows()));
    // Per class, a uniform choice of min(cap, n_c) rows (partial Fisher-Yates), kept in file order.
    const auto& labels = source.labels();
    std::vector<std::vector<std::int64_t>> rows_of(static_cast<std::size_t>(*std::max_element(g.classes.begin(), g.classes.end()) + 1));
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(labels.size()); ++i) {
        const auto c = static_cast<std::size_t>(labels[static_cast<std::size_t>(i)]);
        if (c < rows_of.size()) rows_of[c].push_back(i);
    }
    std::mt19937_64 rng(g.options.seed);
    std::vector<std::int64_t> chosen;
    for (int c : g.classes) {
        auto& rows = rows_of[static_cast<std::size_t>(c)];
        const auto take = static_cast<std::size_t>(std::min<std::int64_t>(cap, static_cast<std::int64_t>(rows.size())));
        for (std::size_t i = 0; i < take; ++i) {
            std::uniform_int_distribution<std::size_t> pick(i, rows.size() - 1);
            std::swap(rows[i], rows[pick(rng)]);
        }
        chosen.insert(chosen.end(), rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(take));
    }
    std::sort(chosen.begin(), chosen.end());
    // One pass over the split in blocks; only blocks holding chosen rows are read.
    constexpr std::int64_t kBlock = 4096;
    RowMatrix block;
    std::size_t next = 0;
    const std::int64_t N = source.numSamples();
    for (std::int64_t row0 = 0; row0 < N && next < chosen.size(); row0 += kBlock) {
        const std::int64_t rows = std::min(kBlock, N - row0);
        if (chosen[next] >= row0 + rows) continue;
        block.resize(rows, source.featureDim());
        source.readFeatures(row0, block);
        for (; next < chosen.size() && chosen[next] < row0 + rows; ++next) {
            const std::int64_t r = chosen[next];
            g.samples.emplace_back(((block.row(r - row0) - g.centre) * g.axes).transpose());
            g.sample_classes.push_back(labels[static_cast<std::size_t>(r)]);
        }
    }
}

} // namespace ltlab
