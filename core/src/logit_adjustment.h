#pragma once
// The post-hoc logit-adjustment sweep of analysis.md, accumulated sample by
// sample (internal).
//
// For each sample and each of the 31 taus we need to know whether the label
// wins argmax_c of the adjusted logit. Each adjusted logit is monotone in tau
// (additive: z - tau log pi, linear; multiplicative: z / pi^tau), so over an
// interval of taus its extremes are at the interval's ends. Bisecting the tau
// grid: a rival whose worst value beats the label's best makes the label lose
// the whole interval; rivals whose best stays below the label's worst drop
// out; when none is left the label wins the whole interval. Only the few
// rivals that remain are evaluated tau by tau, with the exact formula.
// The additive adjustment is linear in tau, so there the label's winning taus
// form one open interval, found in one pass over the rivals; only grid taus
// within a hair of its ends are decided by the exact formula. When every prior
// is positive the multiplicative mode goes tau by tau instead: the largest
// rival score at each tau in one vectorised pass (products with the stored
// 1 / pi^tau), the exact formula only for a close call. The bisection serves
// the runs with an empty training class.
//
// Logits may come with absolute error bounds, one per class (float32 products):
// a decision that the bounds could reverse makes add() count nothing, name the
// classes involved and return false; the caller computes those logits in
// float64 and adds the sample again, until every decision is certain.

#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "ltlab/analysis.h"

namespace ltlab {

enum class Adjustment { Additive, Multiplicative };

class LogitAdjustmentSweeper {
public:
    explicit LogitAdjustmentSweeper(const std::vector<std::int64_t>& train_counts);

    // One sample: its logits (C values), label and unadjusted prediction (which
    // the caller decided). `errors`, when given, bounds each logit's error (C
    // values, 0 where exact). When the bounds leave a decision open, add() counts
    // nothing, appends to `open` (when given) classes whose exact logits would
    // help settle it (the label among them when its own logit is inexact), and
    // returns false.
    bool add(const double* logits, std::int32_t label, std::int32_t prediction, const double* errors = nullptr,
             std::vector<std::int32_t>* open = nullptr);
    void merge(const LogitAdjustmentSweeper& other);

    LogitAdjustmentSweep finish(Adjustment mode, const std::vector<std::int64_t>& split_counts,
                                const std::vector<ShotGroup>& groups) const;

    // hi = max_c u_c w_c, lo = max_c l_c w_c over n values (the multiplicative pass).
    using MaxProducts = void (*)(const double* u, const double* l, const double* w, Eigen::Index n, double& hi,
                                 double& lo);

private:
    template <Adjustment mode>
    double score(std::size_t k, std::size_t c, double z) const;
    // score within an ulp, by a multiplication (for bounds that carry slack; never for a decision).
    template <Adjustment mode>
    double approximateScore(std::size_t k, std::size_t c, double z) const;
    double errorOf(std::size_t c) const { return errors_ ? errors_[c] : 0.0; }
    void markOpen(std::size_t c);
    bool stop() const { return undecided_ && !open_; } // collecting open classes goes on
    void countAdditiveWins(const double* z, std::size_t label);
    bool winsExactly(const double* z, std::size_t label, std::size_t k) const; // additive, every rival
    // The exact decision at tau_k against `rivals` (bounds: open classes are named).
    template <Adjustment mode>
    void decideExactly(const double* z, std::size_t label, std::size_t k, const std::int32_t* rivals, std::size_t n);
    // The multiplicative mode when every prior is positive: tau by tau.
    void countMultiplicativeWins(const double* z, std::size_t label);
    template <Adjustment mode>
    void countWins(const double* z, std::size_t label, std::size_t k_lo, std::size_t k_hi, const std::int32_t* rivals,
                   std::size_t n, std::size_t depth);
    // The error of class c's adjusted logit at tau_k (its bound scaled as the adjustment scales).
    template <Adjustment mode>
    double scaledError(std::size_t k, std::size_t c) const;
    void win(Adjustment mode, std::size_t k, std::size_t c) { pending_.push_back((mode == Adjustment::Additive ? 0 : 1) * taus_.size() * C_ + k * C_ + c); }

    std::size_t C_;
    std::vector<double> taus_;
    std::vector<double> log_prior_;                 // log pi_c (-inf when n_c = 0)
    bool all_priors_positive_ = true;
    std::vector<std::vector<double>> prior_pow_;    // pi_c^tau_k
    std::vector<std::vector<double>> inv_prior_pow_; // 1 / pi_c^tau_k
    Eigen::Array<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> inv_prior_pow_rows_; // the same, one row per tau
    Eigen::Array<double, 1, Eigen::Dynamic> upper_, lower_; // this sample's rival logits plus and minus their bounds
    // correct_[mode][k * C + c]: samples of class c right at tau_k.
    std::vector<std::int64_t> correct_[2];
    std::vector<std::int32_t> all_classes_;                // 0 .. C-1
    std::vector<std::vector<std::int32_t>> rivals_;      // per bisection depth
    std::vector<std::size_t> pending_;                   // this sample's wins, counted when all are certain
    bool undecided_ = false;
    const double* errors_ = nullptr;             // this sample's bounds (nullptr: exact)
    std::vector<std::int32_t>* open_ = nullptr;  // where open classes go
    MaxProducts max_products_;                   // the multiplicative pass's kernel (chosen for the CPU)
};

// Balanced, many, medium, few accuracy of per-class accuracies (null where absent).
ShotAccuracy shotAccuracy(const std::vector<Nullable>& per_class, const std::vector<ShotGroup>& groups);

} // namespace ltlab
