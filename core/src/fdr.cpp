// Fisher's discriminant ratio of in-memory features (see ltlab/fdr.h).

#include "ltlab/fdr.h"

#include <cmath>
#include <string>
#include <utility>

#include "linalg.h"
#include "ltlab/error.h"

namespace ltlab {

namespace {
constexpr double kFdrConstantDimTolerance = 1e-3; // analysis.md, as the engine's
} // namespace

FisherRatio fisherDiscriminantRatio(const RowMatrix& H, const std::vector<std::int32_t>& labels, std::int64_t classes) {
    using Eigen::Index;
    const Index N = H.rows(), D = H.cols();
    if (static_cast<Index>(labels.size()) != N)
        throw UsageError("FDR: " + std::to_string(labels.size()) + " labels for " + std::to_string(N) + " samples");
    FisherRatio out;
    if (N == 0 || D == 0 || classes < 2) return out;

    // ---- Class sums and the constant-dimension rule --------------------------
    std::vector<std::int64_t> count(static_cast<std::size_t>(classes), 0);
    RowMatrix sums = RowMatrix::Zero(classes, D);
    Eigen::RowVectorXd max_dev = Eigen::RowVectorXd::Zero(D);
    const auto first = H.row(0);
    double entry_sum = 0;
    for (Index i = 0; i < N; ++i) {
        const std::int32_t y = labels[static_cast<std::size_t>(i)];
        if (y < 0 || y >= classes) throw UsageError("FDR: label " + std::to_string(y) + " outside [0, " + std::to_string(classes) + ")");
        ++count[static_cast<std::size_t>(y)];
        sums.row(y) += H.row(i);
        max_dev = max_dev.cwiseMax((H.row(i) - first).cwiseAbs());
        entry_sum += H.row(i).sum();
    }
    std::vector<Index> present;
    for (Index c = 0; c < classes; ++c)
        if (count[static_cast<std::size_t>(c)] > 0) present.push_back(c);
    if (present.size() < 2) return out;
    const double threshold = kFdrConstantDimTolerance * std::abs(entry_sum / (double(N) * double(D)));
    std::vector<Index> kept;
    for (Index d = 0; d < D; ++d)
        if (max_dev[d] > threshold) kept.push_back(d);
    out.dims_kept = static_cast<std::int64_t>(kept.size());
    if (kept.empty()) return out;
    const auto Dk = static_cast<Index>(kept.size());

    // ---- Scatter matrices on the dimensions kept ------------------------------
    RowMatrix means(classes, Dk);
    for (Index c = 0; c < classes; ++c)
        for (Index a = 0; a < Dk; ++a)
            means(c, a) = count[static_cast<std::size_t>(c)] ? sums(c, kept[static_cast<std::size_t>(a)]) /
                                                                   double(count[static_cast<std::size_t>(c)])
                                                             : 0.0;
    thread_local RowMatrix centred; // reused from call to call: no fresh pages each time
    centred.resize(N, Dk);
    for (Index i = 0; i < N; ++i) {
        const std::int32_t y = labels[static_cast<std::size_t>(i)];
        for (Index a = 0; a < Dk; ++a) centred(i, a) = H(i, kept[static_cast<std::size_t>(a)]) - means(y, a);
    }
    Eigen::MatrixXd sw = Eigen::MatrixXd::Zero(Dk, Dk);
    linalg::addGramLower(sw, centred.data(), N, Dk);
    linalg::symmetrizeFromLower(sw);
    Eigen::RowVectorXd overall = Eigen::RowVectorXd::Zero(Dk);
    for (Index a = 0; a < Dk; ++a) overall[a] = sums.col(kept[static_cast<std::size_t>(a)]).sum() / double(N);
    RowMatrix between(static_cast<Index>(present.size()), Dk); // rows sqrt(n_c) (mu_c - mu)
    for (std::size_t k = 0; k < present.size(); ++k)
        between.row(static_cast<Index>(k)) =
            std::sqrt(double(count[static_cast<std::size_t>(present[k])])) * (means.row(present[k]) - overall);
    out.trace_sw = sw.trace();
    out.trace_sb = between.squaredNorm();
    out.fdr = linalg::traceOfPinvTimesGram(sw, std::move(between));
    return out;
}

} // namespace ltlab
