#pragma once
// The numbers behind the papers' figure set (issue 10): class x class
// heatmaps, the grouped confusion matrix, the loss composition and the
// weight-norm evolution. Everything comes from an Analysis (the engine's
// accumulators) or, for the evolution, from a run file's snapshots or
// /history. The views draw these, `ltlab figures` writes them as CSV; the
// definitions are in docs/analysis.md ("Figure set").

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ltlab/analysis.h"
#include "ltlab/run_file.h"

namespace ltlab {

// A rows x cols table, row-major; null where a value is not defined.
struct ClassMatrix {
    std::int64_t rows = 0, cols = 0;
    std::vector<Nullable> values;
    const Nullable& at(std::int64_t r, std::int64_t c) const { return values[static_cast<std::size_t>(r * cols + c)]; }
};

// The class x class heatmaps of the papers' code (peer-code-notes.md 4.1), by
// class id, row c and column c'; all uncentred, as the papers plot them:
//  - FeatureCosine: mean of cos(h_i, h_j) over pairs i in c, j in c' (the
//    diagonal includes i = j), = ubar_c . ubar_c' with ubar the mean unit feature;
//  - FeatureWeightCosine: mean over i in c of cos(h_i, w_c') = ubar_c . w_c' / ||w_c'||;
//  - FeatureWeightNorm: mean over i in c of ||h_i|| ||w_c'|| = feature_norm_c ||w_c'||;
//  - WeightCosine: cos(w_c, w_c').
// Samples with ||h_i|| = 0 are left out of the cosines (as of the cone
// statistics); a class without samples in the split has null rows/columns
// (WeightCosine: a zero classifier row).
enum class ClassHeatmap { FeatureCosine, FeatureWeightCosine, FeatureWeightNorm, WeightCosine };
ClassMatrix classHeatmap(const Analysis& analysis, ClassHeatmap kind);

// The confusion matrix in shot groups (many, medium, few by training count):
// count[g][h] sums the engine's confusion counts of true classes in g
// predicted as classes in h; fraction[g][h] = count[g][h] / sum_h count[g][h]
// (null for a group without samples).
struct GroupedConfusion {
    std::array<std::array<std::int64_t, 3>, 3> count{};
    std::array<std::array<Nullable, 3>, 3> fraction{};
    std::array<std::int64_t, 3> classes{}; // classes per group
};
GroupedConfusion groupedConfusion(const Analysis& analysis);

// The weight decay lambda that trained a snapshot's classifier, from what the
// run recorded: the snapshot's own `config` key `weight_decay` (ltlab stage2),
// else the run's `config`: `stage2_weight_decay` for a stage-2 snapshot,
// `weight_decay` otherwise. Null when nothing says.
struct WeightDecayChoice {
    double lambda = 0;
    std::string source; // e.g. "run config weight_decay (stage 1)"
};
std::optional<WeightDecayChoice> recordedWeightDecay(const RunFile& file, const SnapshotInfo& snapshot);

// "Composition of losses": per class, the split's mean cross-entropy
// (Analysis::PerClass::loss) and the weight-decay penalty of its classifier
// row, (lambda / 2)(||w_c||^2 + b_c^2).
struct LossComposition {
    double lambda = 0;
    std::vector<Nullable> loss;
    std::vector<double> penalty;
};
LossComposition lossComposition(const Analysis& analysis, double lambda);

// ||w_c|| over training: one row per epoch of /history when it has the
// per-class series weight_norm_0 .. weight_norm_<C-1> (ltlab import of HN410's
// trackRecords), else one row per snapshot (in the file's order) from its
// classifier. Columns are class ids.
struct WeightNormEvolution {
    std::string source;                          // "history" or "snapshots"
    std::vector<std::string> row_labels;         // "epoch 3" or the snapshot's name
    std::vector<std::optional<std::int64_t>> epochs, stages;
    RowMatrix norms;                             // rows x C
};
WeightNormEvolution weightNormEvolution(const RunFile& file, const std::optional<History>& history);

// A baseline for per-class comparisons must have the run's classes: throws
// UsageError naming the baseline file otherwise.
void requireComparableBaseline(const RunFile& run, const RunFile& baseline);

} // namespace ltlab
