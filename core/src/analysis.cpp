// The analysis engine: two streamed passes over one split's features, then
// the metrics of shared/spec/analysis.md from the accumulated statistics.

#include "ltlab/analysis.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <Eigen/Dense>
#include <omp.h>

#include "linalg.h"
#include "logit_adjustment.h"
#include "ltlab/error.h"

namespace ltlab {

namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;

constexpr double kFdrConstantDimTolerance = 1e-3;

// Counts non-finite entries of a chunk and remembers where the first one is.
struct FiniteCheck {
    std::int64_t bad = 0, first_row = -1, first_col = -1;

    template <typename Block>
    void scan(const Block& m, std::int64_t row0) {
        if (m.allFinite()) return;
        for (Index r = 0; r < m.rows(); ++r)
            for (Index c = 0; c < m.cols(); ++c)
                if (!std::isfinite(m(r, c)) && bad++ == 0) {
                    first_row = row0 + r;
                    first_col = c;
                }
    }
    void report(const FeatureSource& source, const char* what) const {
        if (bad)
            source.fail(what, std::to_string(bad) + " non-finite values (NaN or Inf; first at row " +
                                  std::to_string(first_row) + ", column " + std::to_string(first_col) + ")");
    }
};

// Index of the largest entry; ties go to the lowest index.
inline Index argmaxLowest(const double* v, Index n) {
    Index best = 0;
    for (Index c = 1; c < n; ++c)
        if (v[c] > v[best]) best = c;
    return best;
}

// argmin_k ||h - mu_k||^2 from scores = h . mu_k: the expansion ||mu_k||^2 - 2 h.mu_k
// is exact enough except in near ties, which are settled with direct distances.
template <typename Row, typename ScoreRow>
Index nearestMean(const Row& h, const ScoreRow& scores, const RowMatrix& means, const VectorXd& mean_sq_norms) {
    const Index K = means.rows();
    Index best = 0, second = -1;
    double best_d = mean_sq_norms[0] - 2 * scores[0], second_d = std::numeric_limits<double>::infinity();
    for (Index k = 1; k < K; ++k) {
        const double d = mean_sq_norms[k] - 2 * scores[k];
        if (d < best_d) {
            second = best;
            second_d = best_d;
            best = k;
            best_d = d;
        } else if (d < second_d) {
            second = k;
            second_d = d;
        }
    }
    if (second >= 0 && second_d - best_d <= 1e-10 * (h.squaredNorm() + mean_sq_norms[best])) {
        best_d = std::numeric_limits<double>::infinity();
        for (Index k = 0; k < K; ++k) {
            const double d = (h - means.row(k)).squaredNorm();
            if (d < best_d) { // ties go to the lowest class id
                best_d = d;
                best = k;
            }
        }
    }
    return best;
}

template <typename Values>
std::pair<double, double> meanAndStd(const Values& v) { // population std (ddof 0)
    const double n = static_cast<double>(v.size());
    double mean = 0;
    for (double x : v) mean += x;
    mean /= n;
    double var = 0;
    for (double x : v) var += (x - mean) * (x - mean);
    return {mean, std::sqrt(var / n)};
}

// Equiangularity statistics of the rows of X (K x D): std of pairwise cosines
// and mean |cos + 1/(K-1)|. Null when a row is zero.
struct AngleStats {
    Nullable equiangular, maxangle, mean_cos;
};
// cos(x_i, x_j) between the rows of X; NaN where a row is zero.
MatrixXd cosineMatrix(const MatrixXd& X) {
    const VectorXd norms = X.rowwise().norm();
    MatrixXd cos = X * X.transpose();
    for (Index i = 0; i < X.rows(); ++i)
        for (Index j = 0; j < X.rows(); ++j)
            cos(i, j) = norms[i] > 0 && norms[j] > 0 ? cos(i, j) / (norms[i] * norms[j]) : std::nan("");
    return cos;
}

// The statistics of the off-diagonal cosines (none when a row was zero).
AngleStats cosineStats(const MatrixXd& cos) {
    const Index K = cos.rows();
    AngleStats out;
    if (K < 2 || cos.diagonal().array().isNaN().any()) return out;
    std::vector<double> cosines;
    cosines.reserve(static_cast<std::size_t>(K * (K - 1) / 2));
    for (Index i = 0; i < K; ++i)
        for (Index j = i + 1; j < K; ++j) cosines.push_back(cos(i, j));
    const auto [mean, std] = meanAndStd(cosines);
    double maxangle = 0;
    for (double c : cosines) maxangle += std::abs(c + 1.0 / static_cast<double>(K - 1));
    out.equiangular = std;
    out.maxangle = maxangle / static_cast<double>(cosines.size());
    out.mean_cos = mean;
    return out;
}

AngleStats pairwiseCosineStats(const MatrixXd& X) { return cosineStats(cosineMatrix(X)); }

Nullable ratio(double numerator, double denominator) {
    return denominator != 0 && std::isfinite(numerator / denominator) ? Nullable(numerator / denominator) : std::nullopt;
}

} // namespace

AnalysisOptions defaultOptionsFor(const RunFile& file, std::optional<std::int64_t> many_threshold,
                                  std::optional<std::int64_t> few_threshold) {
    AnalysisOptions options;
    options.many_threshold = many_threshold.value_or(file.classes().many_threshold.value_or(100));
    options.few_threshold = few_threshold.value_or(file.classes().few_threshold.value_or(20));
    return options;
}

Analysis analyze(const FeatureSource& source, const ClassifierInput& classifier, const AnalysisOptions& options) {
    const auto started = std::chrono::steady_clock::now();
    const Index N = source.numSamples(), D = source.featureDim(), C = classifier.weight.rows();
    if (classifier.weight.cols() != D || classifier.bias.size() != C ||
        static_cast<Index>(classifier.train_counts.size()) != C)
        throw UsageError("classifier, bias, train counts and features disagree in shape");
    const std::vector<std::int32_t>& labels = source.labels();
    const auto Cs = static_cast<std::size_t>(C);

    Analysis result;
    result.num_classes = C;
    result.feature_dim = D;
    result.num_samples = N;
    result.many_threshold = options.many_threshold;
    result.few_threshold = options.few_threshold;

    // Rows per chunk: about 1M doubles (8 MB) per buffer. The buffers are allocated
    // once and reused: fresh pages cost more here than the arithmetic on them.
    const Index chunk = std::min<Index>(std::max<Index>(N, 1), options.chunk_rows > 0
                            ? options.chunk_rows
                            : std::clamp<Index>((1 << 20) / std::max<Index>(std::max(D, C), 1), 64, 1 << 14));
    auto phase_start = started;
    auto mark_phase = [&](const char* name) {
        const auto now = std::chrono::steady_clock::now();
        result.phase_seconds.emplace_back(name, std::chrono::duration<double>(now - phase_start).count());
        phase_start = now;
    };
    auto report_progress = [&](double fraction) {
        if (options.progress && !options.progress(fraction)) throw Cancelled();
    };

    // ---- Pass 1: everything that needs no class means -------------------------
    std::vector<std::int64_t> count(Cs, 0), nonzero(Cs, 0), correct(Cs, 0);
    std::vector<double> norm_sum(Cs, 0), unit_sq_sum(Cs, 0);
    RowMatrix class_sum = RowMatrix::Zero(C, D), unit_class_sum = RowMatrix::Zero(C, D);
    MatrixXd unit_gram = MatrixXd::Zero(D, D);
    double unit_quartic_sum = 0, entry_sum = 0;
    VectorXd max_dev_from_first = VectorXd::Zero(D), first_row;
    std::vector<std::int32_t> prediction(static_cast<std::size_t>(N));
    result.confusion.assign(Cs * Cs, 0);
    LogitAdjustmentSweeper sweeper(classifier.train_counts);
    FiniteCheck feature_check, logit_check;
    const MatrixXd weight_t = classifier.weight.transpose();

    // Each OpenMP thread sweeps its own rows; the sweeps are merged after the pass.
    const int threads = std::max(1, omp_get_max_threads());
    std::vector<LogitAdjustmentSweeper> thread_sweepers(static_cast<std::size_t>(threads), sweeper);
    RowMatrix H_buffer(chunk, D), Z_buffer(chunk, C), U_buffer(chunk, D);
    VectorXd norms_buffer(chunk);
    for (Index row0 = 0; row0 < N; row0 += chunk) {
        const Index R = std::min(chunk, N - row0);
        auto H = H_buffer.topRows(R);
        auto Z = Z_buffer.topRows(R);
        auto U = U_buffer.topRows(R);
        auto norms = norms_buffer.head(R);
        source.readFeatures(row0, H);
        feature_check.scan(H, row0);
        if (feature_check.bad) continue; // keep counting; the pass ends in an error
        if (source.hasLogits()) {
            source.readLogits(row0, Z);
            logit_check.scan(Z, row0);
        } else {
            Z.noalias() = H * weight_t;
            Z.rowwise() += classifier.bias.transpose();
            result.blas_flops += 2.0 * R * C * D;
        }
        if (row0 == 0) first_row = H.row(0).transpose();
#pragma omp parallel for schedule(static)
        for (Index i = 0; i < R; ++i) {
            norms[i] = H.row(i).norm();
            if (norms[i] > 0)
                U.row(i) = H.row(i) / norms[i];
            else
                U.row(i).setZero(); // left out of the cone statistics
        }
        linalg::addGramLower(unit_gram, U.data(), R, D);
        result.blas_flops += static_cast<double>(R) * D * (D + 1);

        // Sums by class. Threads take disjoint column ranges, so no two write the same entry.
        for (Index i = 0; i < R; ++i) {
            const auto y = static_cast<std::size_t>(labels[static_cast<std::size_t>(row0 + i)]);
            ++count[y];
            norm_sum[y] += norms[i];
            if (norms[i] > 0) {
                const double sq = U.row(i).squaredNorm();
                ++nonzero[y];
                unit_sq_sum[y] += sq;
                unit_quartic_sum += sq * sq;
            }
        }
#pragma omp parallel
        {
            const Index parts = omp_get_num_threads(), part = omp_get_thread_num();
            const Index d0 = D * part / parts, width = D * (part + 1) / parts - d0;
            for (Index i = 0; i < R && width > 0; ++i) {
                const Index y = labels[static_cast<std::size_t>(row0 + i)];
                class_sum.row(y).segment(d0, width) += H.row(i).segment(d0, width);
                unit_class_sum.row(y).segment(d0, width) += U.row(i).segment(d0, width);
                max_dev_from_first.segment(d0, width) = max_dev_from_first.segment(d0, width).cwiseMax(
                    (H.row(i).segment(d0, width).transpose() - first_row.segment(d0, width)).cwiseAbs());
            }
        }
        entry_sum += H.sum();

        // Predictions and the logit-adjustment sweep: independent rows, all threads.
        const bool sweep = !logit_check.bad;
#pragma omp parallel for schedule(static)
        for (Index i = 0; i < R; ++i) {
            const auto g = static_cast<std::size_t>(row0 + i);
            const auto pred = static_cast<std::int32_t>(argmaxLowest(Z.row(i).data(), C));
            prediction[g] = pred;
            if (sweep) thread_sweepers[static_cast<std::size_t>(omp_get_thread_num())].add(Z.row(i).data(), labels[g], pred);
        }
        for (Index i = 0; i < R; ++i) {
            const auto g = static_cast<std::size_t>(row0 + i);
            const auto y = static_cast<std::size_t>(labels[g]);
            ++result.confusion[y * Cs + static_cast<std::size_t>(prediction[g])];
            if (prediction[g] == labels[g]) ++correct[y];
        }
        report_progress(0.5 * static_cast<double>(row0 + R) / static_cast<double>(N));
    }
    for (const auto& part : thread_sweepers) sweeper.merge(part);
    feature_check.report(source, "features");
    logit_check.report(source, "logits");
    mark_phase("pass 1 (sums, cone Gram, logits, LA sweep)");

    // Class statistics.
    std::vector<Index> present;
    for (Index c = 0; c < C; ++c)
        if (count[static_cast<std::size_t>(c)] > 0) present.push_back(c);
    const Index K = static_cast<Index>(present.size());
    RowMatrix means = RowMatrix::Zero(C, D); // mu_c (zero rows for absent classes)
    for (Index c : present) means.row(c) = class_sum.row(c) / static_cast<double>(count[static_cast<std::size_t>(c)]);
    RowMatrix present_means(K, D), centred_means(K, D), present_weights(K, D);
    for (Index k = 0; k < K; ++k) {
        present_means.row(k) = means.row(present[static_cast<std::size_t>(k)]);
        present_weights.row(k) = classifier.weight.row(present[static_cast<std::size_t>(k)]);
    }
    const Eigen::RowVectorXd mean_of_means = K ? Eigen::RowVectorXd(present_means.colwise().mean()) : Eigen::RowVectorXd::Zero(D);
    centred_means = present_means.rowwise() - mean_of_means;

    // ---- Pass 2: within-class scatter (centred: exact) and nearest class mean --
    MatrixXd scatter_within = MatrixXd::Zero(D, D);
    const VectorXd mean_sq_norms = present_means.rowwise().squaredNorm();
    const MatrixXd present_means_t = present_means.transpose();
    std::int64_t nc4_mismatches = 0;
    RowMatrix& centred_buffer = U_buffer; // free after pass 1
    RowMatrix scores_buffer(chunk, K);
    for (Index row0 = 0; row0 < N; row0 += chunk) {
        const Index R = std::min(chunk, N - row0);
        auto H = H_buffer.topRows(R);
        auto centred = centred_buffer.topRows(R);
        auto scores = scores_buffer.topRows(R);
        source.readFeatures(row0, H);
#pragma omp parallel for schedule(static)
        for (Index i = 0; i < R; ++i) centred.row(i) = H.row(i) - means.row(labels[static_cast<std::size_t>(row0 + i)]);
        linalg::addGramLower(scatter_within, centred.data(), R, D);
        // argmin_c ||h - mu_c||^2 = argmin_c (||mu_c||^2 - 2 h.mu_c); near ties are settled exactly.
        scores.noalias() = H * present_means_t;
        result.blas_flops += static_cast<double>(R) * D * (D + 1) + 2.0 * R * K * D;
        std::int64_t mismatches = 0;
#pragma omp parallel for schedule(static) reduction(+ : mismatches)
        for (Index i = 0; i < R; ++i) {
            const Index best = nearestMean(H.row(i), scores.row(i), present_means, mean_sq_norms);
            if (present[static_cast<std::size_t>(best)] != prediction[static_cast<std::size_t>(row0 + i)]) ++mismatches;
        }
        nc4_mismatches += mismatches;
        report_progress(0.5 + 0.5 * static_cast<double>(row0 + R) / static_cast<double>(N));
    }
    linalg::symmetrizeFromLower(scatter_within);
    linalg::symmetrizeFromLower(unit_gram);
    mark_phase("pass 2 (within-class scatter, nearest mean)");

    // ---- Per-class series and accuracies -------------------------------------
    auto& pc = result.per_class;
    pc.train_count = classifier.train_counts;
    pc.count = count;
    pc.weight_norm.resize(Cs);
    pc.bias.resize(Cs);
    pc.feature_norm.assign(Cs, std::nullopt);
    pc.mean_norm.assign(Cs, std::nullopt);
    pc.accuracy.assign(Cs, std::nullopt);
    pc.group.resize(Cs);
    for (std::size_t c = 0; c < Cs; ++c) {
        const auto ci = static_cast<Index>(c);
        pc.weight_norm[c] = classifier.weight.row(ci).norm();
        pc.bias[c] = classifier.bias[ci];
        const std::int64_t n = classifier.train_counts[c];
        pc.group[c] = n > options.many_threshold ? ShotGroup::Many
                      : n < options.few_threshold ? ShotGroup::Few
                                                  : ShotGroup::Medium;
        if (count[c] == 0) continue;
        pc.feature_norm[c] = norm_sum[c] / static_cast<double>(count[c]);
        pc.mean_norm[c] = (means.row(ci) - mean_of_means).norm();
        pc.accuracy[c] = static_cast<double>(correct[c]) / static_cast<double>(count[c]);
    }
    const ShotAccuracy shots = shotAccuracy(pc.accuracy, pc.group);
    result.accuracy = shots.all;
    result.accuracy_many = shots.many;
    result.accuracy_medium = shots.medium;
    result.accuracy_few = shots.few;
    std::int64_t total_correct = 0;
    for (auto c : correct) total_correct += c;
    if (N > 0) result.sample_accuracy = static_cast<double>(total_correct) / static_cast<double>(N);
    if (N > 0) result.nc4 = static_cast<double>(nc4_mismatches) / static_cast<double>(N);

    // ---- Neural collapse ------------------------------------------------------
    if (K >= 2) {
        const MatrixXd sigma_w = scatter_within / static_cast<double>(N);
        const linalg::PseudoInverse sigma_b_pinv = linalg::pseudoInverseOfGram(centred_means, static_cast<double>(K));
        result.nc1 = linalg::traceOfPinvTimes(sigma_b_pinv, sigma_w) / static_cast<double>(K);

        const VectorXd mean_norms = centred_means.rowwise().norm();
        const auto [mn_mean, mn_std] = meanAndStd(mean_norms);
        result.nc2_equinorm_means = ratio(mn_std, mn_mean);
        const VectorXd weight_norms = present_weights.rowwise().norm();
        const auto [wn_mean, wn_std] = meanAndStd(weight_norms);
        result.nc2_equinorm_weights = ratio(wn_std, wn_mean);

        const AngleStats mean_angles = pairwiseCosineStats(centred_means);
        result.nc2_equiangular_means = mean_angles.equiangular;
        result.nc2_maxangle_means = mean_angles.maxangle;
        const AngleStats weight_angles = pairwiseCosineStats(present_weights);
        result.nc2_equiangular_weights = weight_angles.equiangular;
        result.nc2_maxangle_weights = weight_angles.maxangle;

        const double wf = present_weights.norm(), mf = centred_means.norm();
        if (wf > 0 && mf > 0) result.nc3 = (present_weights / wf - centred_means / mf).squaredNorm();

    }

    result.class_means = means;
    result.classifier_weight = classifier.weight;

    // Cosines between the (uncentred) class means: their mean, and the C x C
    // matrix for the heatmap views.
    const MatrixXd mean_cosines = cosineMatrix(present_means);
    result.class_means_mean_cos = cosineStats(mean_cosines).mean_cos;
    result.class_mean_cosine.assign(Cs * Cs, std::nullopt);
    for (Index a = 0; a < K; ++a)
        for (Index b = 0; b < K; ++b)
            if (!std::isnan(mean_cosines(a, b)))
                result.class_mean_cosine[static_cast<std::size_t>(present[static_cast<std::size_t>(a)]) * Cs +
                                         static_cast<std::size_t>(present[static_cast<std::size_t>(b)])] = mean_cosines(a, b);

    // ---- Fisher's discriminant ratio on the non-constant dimensions ------------
    if (K >= 2) {
        const double threshold =
            kFdrConstantDimTolerance * std::abs(entry_sum / (static_cast<double>(N) * static_cast<double>(D)));
        std::vector<Index> kept;
        for (Index d = 0; d < D; ++d)
            if (max_dev_from_first[d] > threshold) kept.push_back(d);
        result.fdr_dims_kept = static_cast<std::int64_t>(kept.size());
        if (!kept.empty()) {
            const auto Dk = static_cast<Index>(kept.size());
            const Eigen::RowVectorXd overall_mean = class_sum.colwise().sum() / static_cast<double>(N);
            MatrixXd sw(Dk, Dk);
            RowMatrix between(K, Dk); // rows sqrt(n_c) (mu_c - mu)
            for (Index a = 0; a < Dk; ++a)
                for (Index b = 0; b < Dk; ++b) sw(a, b) = scatter_within(kept[static_cast<std::size_t>(a)], kept[static_cast<std::size_t>(b)]);
            for (Index k = 0; k < K; ++k) {
                const double w = std::sqrt(static_cast<double>(count[static_cast<std::size_t>(present[static_cast<std::size_t>(k)])]));
                for (Index a = 0; a < Dk; ++a) {
                    const Index d = kept[static_cast<std::size_t>(a)];
                    between(k, a) = w * (present_means(k, d) - overall_mean[d]);
                }
            }
            result.trace_sw = sw.trace();
            result.trace_sb = between.squaredNorm();
            // tr(S_W^+ S_B) with S_B = B^T B: the D x D S_B is never formed.
            result.fdr = linalg::traceOfPinvTimesGram(sw, between);
        }
    }

    // ---- Cone effect: exact all-pairs statistics from sums and the Gram matrix --
    {
        double n_unit = 0, sq_sum = 0, same_pairs = 0, same_sum = 0;
        for (std::size_t c = 0; c < Cs; ++c) {
            const double n = static_cast<double>(nonzero[c]);
            n_unit += n;
            sq_sum += unit_sq_sum[c];
            same_pairs += n * (n - 1) / 2;
            same_sum += (unit_class_sum.row(static_cast<Index>(c)).squaredNorm() - unit_sq_sum[c]) / 2;
        }
        const double pairs = n_unit * (n_unit - 1) / 2;
        if (pairs > 0) {
            const double pair_sum = (unit_class_sum.colwise().sum().squaredNorm() - sq_sum) / 2;
            const double pair_sq_sum = (unit_gram.squaredNorm() - unit_quartic_sum) / 2;
            const double mean = pair_sum / pairs;
            result.cone_mean_cos = mean;
            result.cone_std_cos = std::sqrt(std::max(0.0, pair_sq_sum / pairs - mean * mean));
            if (same_pairs > 0) result.cone_mean_cos_same_class = same_sum / same_pairs;
            if (pairs - same_pairs > 0) result.cone_mean_cos_diff_class = (pair_sum - same_sum) / (pairs - same_pairs);
        }
    }

    // ---- Logit adjustment -----------------------------------------------------
    {
        std::vector<double> x, y;
        double total = 0;
        for (auto n : classifier.train_counts) total += static_cast<double>(n);
        for (std::size_t c = 0; c < Cs; ++c)
            if (pc.weight_norm[c] > 0 && classifier.train_counts[c] > 0) {
                x.push_back(-std::log(static_cast<double>(classifier.train_counts[c]) / total));
                y.push_back(std::log(pc.weight_norm[c]));
            }
        if (x.size() >= 2 && *std::max_element(x.begin(), x.end()) > *std::min_element(x.begin(), x.end())) {
            const double xm = meanAndStd(x).first, ym = meanAndStd(y).first;
            double sxy = 0, sxx = 0;
            for (std::size_t i = 0; i < x.size(); ++i) {
                sxy += (x[i] - xm) * (y[i] - ym);
                sxx += (x[i] - xm) * (x[i] - xm);
            }
            result.implicit_la_tau = sxy / sxx;
            result.implicit_la_intercept = ym - *result.implicit_la_tau * xm;
        }
        result.la_additive = sweeper.finish(Adjustment::Additive, count, pc.group);
        result.la_multiplicative = sweeper.finish(Adjustment::Multiplicative, count, pc.group);
    }

    mark_phase("metrics (eigen-decompositions, sweeps)");
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

Analysis analyzeSnapshot(const std::shared_ptr<const RunFile>& file, const SnapshotInfo& snapshot,
                         const SplitInfo& split, const AnalysisOptions& options) {
    ClassifierInput classifier{file->classifierWeight(snapshot), file->classifierBias(snapshot),
                               file->classes().train_counts};
    const RunFileSource source(file, snapshot, split);
    Analysis result = analyze(source, classifier, options);
    result.snapshot = snapshot.name;
    result.split = split.name;
    result.epoch = snapshot.epoch;
    return result;
}

} // namespace ltlab
