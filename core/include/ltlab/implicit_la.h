#pragma once
// The logit adjustment a classifier implies (analysis.md): the least-squares
// slope tau of log ||w_c|| on -log pi_c over the classes with ||w_c|| > 0 and
// n_c > 0, and its intercept. Null with fewer than two such classes or when
// all their priors are equal. Needs only the weights: `ltlab inspect` uses it
// on a checkpoint's classifier, the analysis engine on a snapshot's.

#include <cstdint>
#include <optional>
#include <vector>

namespace ltlab {

struct ImplicitLogitAdjustment {
    std::optional<double> tau, intercept;
};

ImplicitLogitAdjustment implicitLogitAdjustment(const std::vector<double>& weight_norms,
                                                const std::vector<std::int64_t>& train_counts);

} // namespace ltlab
