#pragma once
// The post-hoc logit-adjustment sweep of analysis.md, accumulated sample by
// sample (internal).
//
// For each sample and each of the 31 taus we need argmax_c of the adjusted
// logit. Each adjusted logit is monotone in tau on [0.1, 3] (additive:
// z - tau log pi, linear; multiplicative: z / pi^tau), so a class whose best
// value over the range is below another class's worst value never wins; only
// the few surviving candidates are evaluated at every tau.

#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "ltlab/analysis.h"

namespace ltlab {

enum class Adjustment { Additive, Multiplicative };

class LogitAdjustmentSweeper {
public:
    explicit LogitAdjustmentSweeper(const std::vector<std::int64_t>& train_counts);

    // One sample: its logits (C values), label and unadjusted prediction.
    void add(const double* logits, std::int32_t label, std::int32_t prediction);
    void merge(const LogitAdjustmentSweeper& other);

    LogitAdjustmentSweep finish(Adjustment mode, const std::vector<std::int64_t>& split_counts,
                                const std::vector<ShotGroup>& groups) const;

private:
    double score(Adjustment mode, std::size_t k, std::size_t c, double z) const;
    void addMode(Adjustment mode, const double* logits, std::int32_t label);

    std::size_t C_;
    std::vector<double> taus_;
    std::vector<double> log_prior_;                 // log pi_c (-inf when n_c = 0)
    std::vector<std::vector<double>> prior_pow_;    // pi_c^tau_k
    // correct_[mode][k * C + c]: samples of class c right at tau_k.
    std::vector<std::int64_t> correct_[2];
    std::vector<std::int32_t> candidates_;
    std::vector<double> low_, high_;
};

// Balanced, many, medium, few accuracy of per-class accuracies (null where absent).
ShotAccuracy shotAccuracy(const std::vector<Nullable>& per_class, const std::vector<ShotGroup>& groups);

} // namespace ltlab
