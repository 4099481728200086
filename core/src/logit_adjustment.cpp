#include "logit_adjustment.h"

#include "ltlab/error.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ltlab {

namespace {

using Eigen::Index;

// hi = max_c u_c w_c and lo = max_c l_c w_c over n values (no NaN can arise:
// finite or -inf values times positive finite ones). The multiplicative
// sweep's inner loop, with AVX-512 or AVX2 where the CPU has them (the build
// targets baseline x86-64).
using MaxProducts = LogitAdjustmentSweeper::MaxProducts;

void maxProductsPortable(const double* u, const double* l, const double* w, Index n, double& hi, double& lo) {
    using Row = Eigen::Map<const Eigen::Array<double, 1, Eigen::Dynamic>>;
    hi = (Row(u, n) * Row(w, n)).maxCoeff();
    lo = (Row(l, n) * Row(w, n)).maxCoeff();
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) void maxProductsAvx2(const double* u, const double* l, const double* w, Index n,
                                                     double& hi, double& lo) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    __m256d h = _mm256_set1_pd(-inf), g = h;
    Index c = 0;
    for (; c + 4 <= n; c += 4) {
        const __m256d wc = _mm256_loadu_pd(w + c);
        h = _mm256_max_pd(h, _mm256_mul_pd(_mm256_loadu_pd(u + c), wc));
        g = _mm256_max_pd(g, _mm256_mul_pd(_mm256_loadu_pd(l + c), wc));
    }
    alignas(32) double hs[4], gs[4];
    _mm256_store_pd(hs, h);
    _mm256_store_pd(gs, g);
    hi = std::max({hs[0], hs[1], hs[2], hs[3]});
    lo = std::max({gs[0], gs[1], gs[2], gs[3]});
    for (; c < n; ++c) {
        hi = std::max(hi, u[c] * w[c]);
        lo = std::max(lo, l[c] * w[c]);
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push // GCC 12's own _mm512_max_pd warns of an uninitialised operand
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
__attribute__((target("avx512f"))) void maxProductsAvx512(const double* u, const double* l, const double* w, Index n,
                                                          double& hi, double& lo) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    __m512d h = _mm512_set1_pd(-inf), g = h;
    Index c = 0;
    for (; c + 8 <= n; c += 8) {
        const __m512d wc = _mm512_loadu_pd(w + c);
        h = _mm512_max_pd(h, _mm512_mul_pd(_mm512_loadu_pd(u + c), wc));
        g = _mm512_max_pd(g, _mm512_mul_pd(_mm512_loadu_pd(l + c), wc));
    }
    alignas(64) double hs[8], gs[8];
    _mm512_store_pd(hs, h);
    _mm512_store_pd(gs, g);
    hi = *std::max_element(hs, hs + 8);
    lo = *std::max_element(gs, gs + 8);
    for (; c < n; ++c) {
        hi = std::max(hi, u[c] * w[c]);
        lo = std::max(lo, l[c] * w[c]);
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// The widest kernel the CPU has; LTLAB_SWEEP_KERNEL=portable|avx2|avx512 picks
// one (for tests and comparisons; one the CPU lacks is refused).
MaxProducts chooseMaxProducts() {
    const char* env = std::getenv("LTLAB_SWEEP_KERNEL");
    const std::string wanted = env ? env : "";
    if (wanted == "portable") return maxProductsPortable;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
#else
    const bool avx512 = false, avx2 = false;
#endif
    if (wanted == "avx512" && !avx512) throw UsageError("LTLAB_SWEEP_KERNEL=avx512: this CPU has no AVX-512");
    if (wanted == "avx2" && !avx2) throw UsageError("LTLAB_SWEEP_KERNEL=avx2: this CPU has no AVX2");
    if (!wanted.empty() && wanted != "avx512" && wanted != "avx2")
        throw UsageError("LTLAB_SWEEP_KERNEL must be portable, avx2 or avx512, not '" + wanted + "'");
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (avx512 && wanted != "avx2") return maxProductsAvx512;
    if (avx2) return maxProductsAvx2;
#endif
    return maxProductsPortable;
}

} // namespace

std::vector<double> laSweepTaus() {
    std::vector<double> taus(31);
    for (int k = 0; k <= 30; ++k) taus[static_cast<std::size_t>(k)] = k / 10.0;
    return taus;
}

LogitAdjustmentSweeper::LogitAdjustmentSweeper(const std::vector<std::int64_t>& train_counts)
    : C_(train_counts.size()), taus_(laSweepTaus()), max_products_(chooseMaxProducts()) {
    double total = 0;
    for (auto n : train_counts) total += static_cast<double>(n);
    log_prior_.resize(C_);
    prior_pow_.assign(taus_.size(), std::vector<double>(C_));
    inv_prior_pow_.assign(taus_.size(), std::vector<double>(C_));
    for (std::size_t c = 0; c < C_; ++c) {
        const double prior = static_cast<double>(train_counts[c]) / total;
        log_prior_[c] = std::log(prior);
        all_priors_positive_ = all_priors_positive_ && prior > 0;
        for (std::size_t k = 0; k < taus_.size(); ++k) {
            prior_pow_[k][c] = std::pow(prior, taus_[k]);
            inv_prior_pow_[k][c] = 1.0 / prior_pow_[k][c]; // inf for an empty class
        }
    }
    inv_prior_pow_rows_.resize(static_cast<Eigen::Index>(taus_.size()), static_cast<Eigen::Index>(C_));
    for (std::size_t k = 0; k < taus_.size(); ++k)
        for (std::size_t c = 0; c < C_; ++c)
            inv_prior_pow_rows_(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(c)) = inv_prior_pow_[k][c];
    upper_.resize(static_cast<Eigen::Index>(C_));
    lower_.resize(static_cast<Eigen::Index>(C_));
    for (auto& correct : correct_) correct.assign(taus_.size() * C_, 0);
    all_classes_.resize(C_);
    for (std::size_t c = 0; c < C_; ++c) all_classes_[c] = static_cast<std::int32_t>(c);
    rivals_.assign(8, std::vector<std::int32_t>(C_)); // 30 taus bisect in at most 5 levels
}

template <Adjustment mode>
inline double LogitAdjustmentSweeper::score(std::size_t k, std::size_t c, double z) const {
    // Written as analysis.md writes them, so that ties break as in any float64 implementation.
    const double s = mode == Adjustment::Additive ? z - taus_[k] * log_prior_[c] : z / prior_pow_[k][c];
    return s == s ? s : -std::numeric_limits<double>::infinity(); // NaN: 0 / 0 for an empty class
}

template <Adjustment mode>
inline double LogitAdjustmentSweeper::approximateScore(std::size_t k, std::size_t c, double z) const {
    if constexpr (mode == Adjustment::Additive) return score<mode>(k, c, z);
    const double s = z * inv_prior_pow_[k][c]; // z / 0 and 0 / 0 as the division gives them
    return s == s ? s : -std::numeric_limits<double>::infinity();
}

bool LogitAdjustmentSweeper::add(const double* logits, std::int32_t label, std::int32_t prediction,
                                 const double* errors, std::vector<std::int32_t>* open) {
    const auto y = static_cast<std::size_t>(label);
    pending_.clear();
    undecided_ = false;
    errors_ = errors;
    open_ = open;
    // tau = 0 is no adjustment in both modes: the plain prediction (decided by the caller).
    if (prediction == label) {
        win(Adjustment::Additive, 0, y);
        win(Adjustment::Multiplicative, 0, y);
    }
    const std::size_t last = taus_.size() - 1;
    if (all_priors_positive_)
        countAdditiveWins(logits, y);
    else
        countWins<Adjustment::Additive>(logits, y, 1, last, all_classes_.data(), C_, 0);
    if (stop()) {
    } else if (all_priors_positive_) {
        countMultiplicativeWins(logits, y);
    } else {
        countWins<Adjustment::Multiplicative>(logits, y, 1, last, all_classes_.data(), C_, 0);
    }
    errors_ = nullptr;
    open_ = nullptr;
    if (undecided_) {
        if (open && errors[y] > 0) open->push_back(label);
        return false;
    }
    const std::size_t per_mode = taus_.size() * C_;
    for (std::size_t i : pending_) ++correct_[i / per_mode][i % per_mode];
    return true;
}

void LogitAdjustmentSweeper::markOpen(std::size_t c) {
    undecided_ = true;
    if (open_) open_->push_back(static_cast<std::int32_t>(c));
}

template <Adjustment mode>
inline double LogitAdjustmentSweeper::scaledError(std::size_t k, std::size_t c) const {
    const double error = errorOf(c);
    if (error == 0) return 0;
    // An ulp of the product is far inside the bounds' own margins.
    return mode == Adjustment::Additive ? error : error * inv_prior_pow_[k][c];
}

bool LogitAdjustmentSweeper::winsExactly(const double* z, std::size_t y, std::size_t k) const {
    const double own = score<Adjustment::Additive>(k, y, z[y]);
    for (std::size_t c = 0; c < C_; ++c) {
        if (c == y) continue;
        const double s = score<Adjustment::Additive>(k, c, z[c]);
        if (s > own || (s == own && c < y)) return false; // ties go to the lowest class id
    }
    return true;
}

void LogitAdjustmentSweeper::countAdditiveWins(const double* z, std::size_t y) {
    // The label beats rival c at tau iff (z_y - z_c) - tau (l_y - l_c) > 0, l = log pi:
    // an upper bound on tau where l_y > l_c, a lower bound where l_y < l_c. With
    // logit errors e_y and e_c, z_y - z_c is known within e_y + e_c, and so is each
    // bound within a range: [lower_lo, lower_hi] and [upper_lo, upper_hi].
    constexpr double inf = std::numeric_limits<double>::infinity();
    double lower_lo = -inf, lower_hi = -inf, upper_lo = inf, upper_hi = inf;
    for (std::size_t c = 0; c < C_; ++c) {
        if (c == y) continue;
        const double e2 = errorOf(y) + errorOf(c);
        const double dz = z[y] - z[c], dl = log_prior_[y] - log_prior_[c];
        if (dl > 0) {
            upper_lo = std::min(upper_lo, (dz - e2) / dl);
            upper_hi = std::min(upper_hi, (dz + e2) / dl);
        } else if (dl < 0) {
            lower_lo = std::max(lower_lo, (dz + e2) / dl);
            lower_hi = std::max(lower_hi, (dz - e2) / dl);
        } else if (dz < -e2 || (e2 == 0 && dz == 0 && c < y)) {
            return; // an equally frequent class that stays ahead at every tau
        } else if (dz <= e2 && e2 > 0) {
            markOpen(c);
            if (stop()) return;
        }
    }
    if (undecided_) return;
    constexpr double kMargin = 1e-7; // grid taus this close to an end are decided exactly
    for (std::size_t k = 1; k < taus_.size(); ++k) {
        const double tau = taus_[k];
        const bool inside = tau > lower_hi + kMargin && tau < upper_lo - kMargin;
        const bool outside = tau < lower_lo - kMargin || tau > upper_hi + kMargin;
        if (!inside && !outside && errors_) {
            // Open when a rival whose crossing with the label is this close to tau
            // has an inexact crossing; the rest are certain either way.
            bool open = false;
            for (std::size_t c = 0; c < C_; ++c) {
                const double e2 = errorOf(y) + errorOf(c);
                const double dl = log_prior_[y] - log_prior_[c];
                if (c == y || e2 == 0 || dl == 0) continue;
                const double dz = z[y] - z[c], a = (dz - e2) / dl, b = (dz + e2) / dl;
                if (tau >= std::min(a, b) - kMargin && tau <= std::max(a, b) + kMargin) {
                    open = true;
                    markOpen(c);
                    if (stop()) return;
                }
            }
            if (open) continue;
        }
        if (inside || (!outside && winsExactly(z, y, k))) win(Adjustment::Additive, k, y);
    }
}

template <Adjustment mode>
void LogitAdjustmentSweeper::decideExactly(const double* z, std::size_t y, std::size_t k, const std::int32_t* rivals,
                                           std::size_t n) {
    const double own = score<mode>(k, y, z[y]), own_error = scaledError<mode>(k, y);
    bool wins = true, open = false;
    for (std::size_t i = 0; i < n && wins; ++i) {
        const auto c = static_cast<std::size_t>(rivals[i]);
        if (c == y) continue;
        const double s = score<mode>(k, c, z[c]), bound = own_error + scaledError<mode>(k, c);
        if (bound != 0 && !(std::abs(s - own) > bound * (1 + 1e-12))) { // NaN and inf bounds included
            open = true;
            markOpen(c);
            if (stop()) return;
            continue;
        }
        wins = s < own || (s == own && c > y); // ties go to the lowest class id
    }
    if (wins && !open) win(mode, k, y);
}

void LogitAdjustmentSweeper::countMultiplicativeWins(const double* z, std::size_t y) {
    // Every prior is positive, so every pi_c^-tau is finite. Rivals' scores as
    // products with the stored inverse powers (within two ulps of the quotient),
    // their bounds folded in: the largest upper and the largest lower value
    // among the rivals, a vectorised pass per tau.
    const auto C = static_cast<Eigen::Index>(C_);
    const Eigen::Map<const Eigen::Array<double, 1, Eigen::Dynamic>> logits(z, C);
    if (errors_) {
        const Eigen::Map<const Eigen::Array<double, 1, Eigen::Dynamic>> errors(errors_, C);
        upper_ = logits + errors;
        lower_ = logits - errors;
    } else {
        upper_ = lower_ = logits;
    }
    constexpr double inf = std::numeric_limits<double>::infinity();
    upper_[static_cast<Eigen::Index>(y)] = lower_[static_cast<Eigen::Index>(y)] = -inf; // no rival of its own
    for (std::size_t k = 1; k < taus_.size() && !stop(); ++k) {
        double hi = 0, lo = 0;
        max_products_(upper_.data(), lower_.data(), inv_prior_pow_rows_.row(static_cast<Eigen::Index>(k)).data(), C, hi,
                      lo);
        const double own = approximateScore<Adjustment::Multiplicative>(k, y, z[y]);
        const double own_error = scaledError<Adjustment::Multiplicative>(k, y);
        const double own_lo = own - own_error, own_hi = own + own_error;
        // A little slack, as in countWins, so that rounding never decides.
        const double scale = std::max({1.0, std::abs(own_lo), std::abs(own_hi)});
        const double slack = 1e-9 * scale;
        if (!std::isfinite(slack)) {
            decideExactly<Adjustment::Multiplicative>(z, y, k, all_classes_.data(), C_);
        } else if (hi < own_lo - slack) {
            win(Adjustment::Multiplicative, k, y); // every rival stays below the label
        } else if (!(lo > own_hi + slack)) {
            decideExactly<Adjustment::Multiplicative>(z, y, k, all_classes_.data(), C_); // a close call
        } // else a rival is certainly ahead: the label loses at tau_k
    }
}

template <Adjustment mode>
void LogitAdjustmentSweeper::countWins(const double* z, std::size_t y, std::size_t k_lo, std::size_t k_hi,
                                       const std::int32_t* rivals, std::size_t n, std::size_t depth) {
    if (stop()) return;
    if (k_hi - k_lo <= 1) { // one or two taus: decide exactly
        for (std::size_t k = k_lo; k <= k_hi && !stop(); ++k) decideExactly<mode>(z, y, k, rivals, n);
        return;
    }
    const double a = score<mode>(k_lo, y, z[y]), b = score<mode>(k_hi, y, z[y]);
    // The adjusted errors grow with tau (pi^-tau): the largest is at k_hi.
    const double own_error = scaledError<mode>(k_hi, y);
    const double own_lo = std::min(a, b) - own_error, own_hi = std::max(a, b) + own_error;
    // Bounds are compared with a little slack so that rounding never decides.
    const double scale = std::max({1.0, std::abs(own_lo), std::abs(own_hi)});
    const double slack = std::isfinite(scale) ? 1e-9 * scale : 0.0;
    std::int32_t* next = rivals_[depth + 1].data();
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<std::size_t>(rivals[i]);
        if (c == y) continue;
        // Within an ulp: the slack above keeps rounding from deciding.
        const double ca = approximateScore<mode>(k_lo, c, z[c]), cb = approximateScore<mode>(k_hi, c, z[c]);
        const double c_error = scaledError<mode>(k_hi, c);
        if (std::min(ca, cb) - c_error > own_hi + slack) return; // the label loses every tau here
        if (!(std::max(ca, cb) + c_error < own_lo - slack)) next[m++] = rivals[i];
    }
    if (m == 0) { // no rival reaches the label anywhere in the interval
        for (std::size_t k = k_lo; k <= k_hi; ++k) win(mode, k, y);
        return;
    }
    const std::size_t mid = (k_lo + k_hi) / 2;
    countWins<mode>(z, y, k_lo, mid, next, m, depth + 1);
    countWins<mode>(z, y, mid + 1, k_hi, next, m, depth + 1);
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
    for (std::size_t k = 0; k < taus_.size(); ++k) {
        std::vector<Nullable> per_class(C_);
        for (std::size_t c = 0; c < C_; ++c)
            if (split_counts[c] > 0)
                per_class[c] = static_cast<double>(correct[k * C_ + c]) / static_cast<double>(split_counts[c]);
        sweep.accuracy.push_back(shotAccuracy(per_class, groups));
        sweep.per_class_accuracy.push_back(std::move(per_class));
    }
    // The first tau of maximal accuracy. Equal accuracies can differ in the last
    // bit after summing per-class fractions in another order, so values within
    // 1e-12 of the maximum count as equal (distinct accuracies differ by far more).
    std::optional<double> best_accuracy;
    for (const auto& a : sweep.accuracy)
        if (a.all && (!best_accuracy || *a.all > *best_accuracy)) best_accuracy = a.all;
    for (std::size_t k = 0; best_accuracy && k < taus_.size(); ++k)
        if (sweep.accuracy[k].all && *sweep.accuracy[k].all >= *best_accuracy - 1e-12) {
            sweep.best_tau = taus_[k];
            break;
        }
    return sweep;
}

} // namespace ltlab
