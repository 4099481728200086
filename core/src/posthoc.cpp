#include "ltlab/posthoc.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "ltlab/error.h"
#include "ltlab/run_writer.h"

namespace ltlab {

void adjustClassifier(Eigen::MatrixXd& weight, Eigen::VectorXd& bias, const std::vector<std::int64_t>& train_counts,
                      double tau, LogitAdjustmentMode mode) {
    double total = 0;
    for (auto n : train_counts) total += static_cast<double>(n);
    for (Eigen::Index c = 0; c < weight.rows(); ++c) {
        const double prior = static_cast<double>(train_counts[static_cast<std::size_t>(c)]) / total;
        if (mode == LogitAdjustmentMode::Multiplicative) {
            const double scale = 1.0 / std::pow(prior, tau);
            weight.row(c) *= scale;
            bias[c] *= scale;
        } else {
            bias[c] -= tau * std::log(prior);
        }
    }
}

PosthocResult logitAdjustRun(const std::string& in_path, const std::string& out_path,
                             const std::optional<std::string>& snapshot_name, std::optional<double> tau,
                             LogitAdjustmentMode mode) {
    const auto file = RunFile::open(in_path);
    // By default the last snapshot that is not itself logit-adjusted (wd-fr-etf's
    // last snapshot is final_la: adjusting it again would adjust twice).
    const auto adjusted_already = [](const SnapshotInfo& s) {
        return (s.name.size() > 3 && s.name.compare(s.name.size() - 3, 3, "_la") == 0) ||
               s.label.find("logit adjustment") != std::string::npos;
    };
    const SnapshotInfo* chosen = nullptr;
    if (snapshot_name) {
        chosen = &file->snapshot(*snapshot_name);
    } else {
        for (const SnapshotInfo& s : file->snapshots())
            if (!adjusted_already(s)) chosen = &s;
        if (!chosen)
            throw UsageError(in_path + ": every snapshot is already logit-adjusted; name one with --snapshot to adjust it again");
    }
    const SnapshotInfo& snap = *chosen;
    const AnalysisOptions options = defaultOptionsFor(*file, std::nullopt, std::nullopt);
    const bool multiplicative = mode == LogitAdjustmentMode::Multiplicative;
    PosthocResult result;
    if (!tau) {
        const SplitInfo* val = snap.split("val");
        if (!val)
            throw UsageError(in_path + ": snapshot " + snap.name +
                             " has no val split to choose tau on; give --tau");
        const Analysis on_val = analyzeSnapshot(file, snap, *val, options);
        tau = (multiplicative ? on_val.la_multiplicative : on_val.la_additive).best_tau;
        if (!tau) throw InputError(in_path, snapshotPath(snap) + "/val", "no tau could be chosen (empty split?)");
        result.tau_from_val = true;
    }
    result.tau = *tau;

    SnapshotData original;
    original.name = snap.name;
    original.epoch = snap.epoch;
    original.stage = snap.stage;
    original.label = snap.label;
    original.classifier_weight = file->classifierWeight(snap);
    original.classifier_bias = file->classifierBias(snap);
    for (const SplitInfo& split : snap.splits) original.splits.push_back(readSplitData(*file, snap, split));
    SnapshotData adjusted = original;
    adjusted.name = snap.name + "_la"; // same epoch: sorts right after the original
    char label[96];
    std::snprintf(label, sizeof label, "%s logit adjustment, tau %.2f%s", multiplicative ? "multiplicative" : "additive",
                  *tau, result.tau_from_val ? " (chosen on val)" : "");
    adjusted.label = label;
    adjustClassifier(adjusted.classifier_weight, *adjusted.classifier_bias, file->classes().train_counts, *tau, mode);
    // A run file with an infinite weight or bias would be refused by every reader, this one included.
    const auto finite = [](const auto& m) { return m.array().isFinite().all(); };
    if (!finite(adjusted.classifier_weight) || !finite(*adjusted.classifier_bias)) {
        char b[64];
        std::snprintf(b, sizeof b, "%.17g", *tau);
        const auto& counts = file->classes().train_counts;
        const bool empty_class = std::find(counts.begin(), counts.end(), 0) != counts.end();
        throw UsageError(std::string("--tau ") + b + ": the " + (multiplicative ? "multiplicative" : "additive") +
                         " adjustment of " + in_path + " snapshot " + snap.name + " has non-finite " +
                         (multiplicative ? "weights or biases" : "biases") +
                         (empty_class ? " (a class has no training samples: its prior is 0)" : "; use a smaller tau"));
    }

    nlohmann::json config_json{{"recipe", "la"}, {"from", in_path},
                               {"la_mode", multiplicative ? "multiplicative" : "additive"}, {"tau", *tau}};
    const std::string config = config_json.dump(); // tau exactly as used (to_string kept 6 decimals)
    createRunFile(out_path, file->classes(), config, [&](RunFileWriter& writer) {
        writer.writeSnapshot(original);
        writer.writeSnapshot(adjusted);
    });
    const auto out = RunFile::open(out_path);
    const SnapshotInfo& before = out->snapshot(original.name);
    const SnapshotInfo& after = out->snapshot(adjusted.name);
    result.before = analyzeSnapshot(out, before, before.defaultSplit(), options);
    result.after = analyzeSnapshot(out, after, after.defaultSplit(), options);
    return result;
}

} // namespace ltlab
