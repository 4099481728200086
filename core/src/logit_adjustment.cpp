#include "logit_adjustment.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ltlab {

std::vector<double> laSweepTaus() {
    std::vector<double> taus(31);
    for (int k = 0; k <= 30; ++k) taus[static_cast<std::size_t>(k)] = k / 10.0;
    return taus;
}

LogitAdjustmentSweeper::LogitAdjustmentSweeper(const std::vector<std::int64_t>& train_counts)
    : C_(train_counts.size()), taus_(laSweepTaus()) {
    double total = 0;
    for (auto n : train_counts) total += static_cast<double>(n);
    log_prior_.resize(C_);
    prior_pow_.assign(taus_.size(), std::vector<double>(C_));
    for (std::size_t c = 0; c < C_; ++c) {
        const double prior = static_cast<double>(train_counts[c]) / total;
        log_prior_[c] = std::log(prior);
        for (std::size_t k = 0; k < taus_.size(); ++k) prior_pow_[k][c] = std::pow(prior, taus_[k]);
    }
    for (auto& correct : correct_) correct.assign(taus_.size() * C_, 0);
    low_.resize(C_);
    high_.resize(C_);
}

double LogitAdjustmentSweeper::score(Adjustment mode, std::size_t k, std::size_t c, double z) const {
    // Written as analysis.md writes them, so that ties break as in any float64 implementation.
    const double s = mode == Adjustment::Additive ? z - taus_[k] * log_prior_[c] : z / prior_pow_[k][c];
    return std::isnan(s) ? -std::numeric_limits<double>::infinity() : s; // 0 / 0 for an empty class
}

void LogitAdjustmentSweeper::add(const double* logits, std::int32_t label, std::int32_t prediction) {
    const auto m = static_cast<std::size_t>(label);
    // tau = 0 is no adjustment in both modes: the plain prediction.
    if (prediction == label) {
        ++correct_[0][m];
        ++correct_[1][m];
    }
    addMode(Adjustment::Additive, logits, label);
    addMode(Adjustment::Multiplicative, logits, label);
}

void LogitAdjustmentSweeper::addMode(Adjustment mode, const double* z, std::int32_t label) {
    const std::size_t first = 1, last = taus_.size() - 1;
    double floor = -std::numeric_limits<double>::infinity();
    for (std::size_t c = 0; c < C_; ++c) {
        const double a = score(mode, first, c, z[c]), b = score(mode, last, c, z[c]);
        low_[c] = std::min(a, b);
        high_[c] = std::max(a, b);
        floor = std::max(floor, low_[c]);
    }
    // A small slack keeps classes whose rounding could still reach the floor.
    const double slack = std::isfinite(floor) ? 1e-9 * std::max(1.0, std::abs(floor)) : 0.0;
    candidates_.clear();
    for (std::size_t c = 0; c < C_; ++c)
        if (high_[c] >= floor - slack) candidates_.push_back(static_cast<std::int32_t>(c));
    auto& correct = correct_[mode == Adjustment::Additive ? 0 : 1];
    for (std::size_t k = first; k <= last; ++k) {
        std::int32_t best = candidates_.front();
        double best_score = score(mode, k, static_cast<std::size_t>(best), z[best]);
        for (std::size_t i = 1; i < candidates_.size(); ++i) {
            const auto c = static_cast<std::size_t>(candidates_[i]);
            const double s = score(mode, k, c, z[c]);
            if (s > best_score) { // ties go to the lowest class id
                best_score = s;
                best = candidates_[i];
            }
        }
        if (best == label) ++correct[k * C_ + static_cast<std::size_t>(label)];
    }
}

void LogitAdjustmentSweeper::merge(const LogitAdjustmentSweeper& other) {
    for (int m = 0; m < 2; ++m)
        for (std::size_t i = 0; i < correct_[m].size(); ++i) correct_[m][i] += other.correct_[m][i];
}

ShotAccuracy shotAccuracy(const std::vector<Nullable>& per_class, const std::vector<ShotGroup>& groups) {
    double sum[4] = {0, 0, 0, 0};
    int count[4] = {0, 0, 0, 0};
    for (std::size_t c = 0; c < per_class.size(); ++c) {
        if (!per_class[c]) continue;
        const int g = 1 + static_cast<int>(groups[c]);
        sum[0] += *per_class[c];
        ++count[0];
        sum[g] += *per_class[c];
        ++count[g];
    }
    auto mean = [&](int i) -> Nullable { return count[i] ? Nullable(sum[i] / count[i]) : std::nullopt; };
    return {mean(0), mean(1), mean(2), mean(3)};
}

LogitAdjustmentSweep LogitAdjustmentSweeper::finish(Adjustment mode, const std::vector<std::int64_t>& split_counts,
                                                    const std::vector<ShotGroup>& groups) const {
    LogitAdjustmentSweep sweep;
    sweep.tau = taus_;
    const auto& correct = correct_[mode == Adjustment::Additive ? 0 : 1];
    std::optional<double> best_accuracy;
    for (std::size_t k = 0; k < taus_.size(); ++k) {
        std::vector<Nullable> per_class(C_);
        for (std::size_t c = 0; c < C_; ++c)
            if (split_counts[c] > 0)
                per_class[c] = static_cast<double>(correct[k * C_ + c]) / static_cast<double>(split_counts[c]);
        sweep.accuracy.push_back(shotAccuracy(per_class, groups));
        const Nullable acc = sweep.accuracy.back().all;
        if (acc && (!best_accuracy || *acc > *best_accuracy)) {
            best_accuracy = acc;
            sweep.best_tau = taus_[k];
        }
        sweep.per_class_accuracy.push_back(std::move(per_class));
    }
    return sweep;
}

} // namespace ltlab
