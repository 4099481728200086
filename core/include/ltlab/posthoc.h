#pragma once
// Post-hoc logit adjustment of a finished run (the `la` recipe): no
// training, no libtorch. Additive z_c - tau log pi_c shifts the biases;
// multiplicative z_c / pi_c^tau scales the classifier rows and biases, so the
// adjusted classifier is again a linear classifier that any snapshot can hold.

#include <optional>
#include <string>

#include "ltlab/analysis.h"
#include "ltlab/run_file.h"

namespace ltlab {

enum class LogitAdjustmentMode { Additive, Multiplicative };

// Adjusts W and b in place for the given train counts.
void adjustClassifier(Eigen::MatrixXd& weight, Eigen::VectorXd& bias, const std::vector<std::int64_t>& train_counts,
                      double tau, LogitAdjustmentMode mode);

struct PosthocResult {
    double tau = 0;
    bool tau_from_val = false;
    Analysis before, after; // on the test split (else the snapshot's default split)
};

// Reads `snapshot` (default: the latest) of `in_path`, picks tau on its val
// split unless given, and writes `out_path`: the classes, the original
// snapshot and "<snapshot>_la" with the adjusted classifier and the same features.
PosthocResult logitAdjustRun(const std::string& in_path, const std::string& out_path,
                             const std::optional<std::string>& snapshot, std::optional<double> tau,
                             LogitAdjustmentMode mode);

} // namespace ltlab
