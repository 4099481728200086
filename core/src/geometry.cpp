#include "ltlab/geometry.h"

#include <Eigen/Dense>

namespace ltlab {

ClassGeometry3D projectClassGeometry(const Analysis& a) {
    ClassGeometry3D g;
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
    M.rowwise() -= M.colwise().mean();
    // Principal directions of the centred means through the K x K Gram matrix.
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(M * M.transpose());
    Eigen::MatrixXd directions = Eigen::MatrixXd::Zero(D, 3);
    double total = eig.eigenvalues().sum(), kept = 0;
    for (int j = 0; j < 3 && j < K; ++j) {
        const Eigen::Index idx = K - 1 - j; // ascending order
        const double lambda = eig.eigenvalues()[idx];
        if (lambda <= 1e-12 * std::max(total, 1e-300)) continue;
        directions.col(j) = M.transpose() * eig.eigenvectors().col(idx) / std::sqrt(lambda);
        kept += lambda;
    }
    g.explained = total > 0 ? kept / total : 0;
    // The simplex ETF with the means' average norm, aligned by orthogonal Procrustes.
    const double mean_norm = M.rowwise().norm().mean();
    const Eigen::MatrixXd centring = Eigen::MatrixXd::Identity(K, K) - Eigen::MatrixXd::Constant(K, K, 1.0 / double(K));
    const Eigen::MatrixXd Etf = centring / centring.row(0).norm() * mean_norm; // K equal-norm vertices
    const Eigen::BDCSVD<Eigen::MatrixXd> svd(Etf.transpose() * M, Eigen::ComputeThinU | Eigen::ComputeThinV);
    const Eigen::MatrixXd aligned = Etf * svd.matrixU() * svd.matrixV().transpose();
    g.procrustes_residual = M.norm() > 0 ? (aligned - M).norm() / M.norm() : 0;
    const double w_norm = W.rowwise().norm().mean();
    const double w_scale = w_norm > 0 ? mean_norm / w_norm : 0;
    const Eigen::MatrixXd pm = M * directions, pw = W * directions * w_scale, pe = aligned * directions;
    for (Eigen::Index k = 0; k < K; ++k) {
        g.means.emplace_back(pm.row(k).transpose());
        g.weights.emplace_back(pw.row(k).transpose());
        g.etf.emplace_back(pe.row(k).transpose());
    }
    return g;
}

} // namespace ltlab
