#pragma once
// One path from a network to what ltlab shows: eval-mode penultimate
// features of chosen rows of each split, their analysis with the network's
// classifier, and a run-file snapshot. Training uses it every epoch; import
// and the layer-wise analysis are to use it too. Internal to the module.

#include <torch/torch.h>

#include <string>
#include <vector>

#include "data.h"
#include "ltlab/analysis.h"
#include "ltlab/run_writer.h"
#include "networks.h"

namespace ltlab::train {

// At most `cap` rows per class, chosen with a seeded shuffle (never "the
// first N"), sorted; all rows when cap < 0.
std::vector<std::int64_t> cappedRows(const Split& split, std::int64_t cap, std::int64_t classes, std::uint64_t seed);

// Penultimate features (eval mode, no augmentation) of the given rows of a
// split: one rows x D float32 tensor on `device`.
torch::Tensor computeFeatures(Network& net, const Data& data, const Split& split, const std::vector<std::int64_t>& rows,
                              torch::Device device);

// One split's features for the analysis and the snapshot, converted once.
struct SplitFeatures {
    std::string name;
    RowMatrix h;                       // rows x D, float64
    std::vector<std::int32_t> labels;  // of those rows
};

// Which rows of each split are evaluated.
struct EvaluationPlan {
    std::vector<std::int64_t> train_rows, val_rows, test_rows;
};

// What each training epoch evaluates: the train rows that the snapshots
// store (at most train_feature_cap per class, the same seeded rows every
// epoch; all with -1), and all of val and test.
EvaluationPlan evaluationPlan(const Data& data, const TrainConfig& c);

struct Evaluation {
    SplitFeatures train, val, test;
};

Evaluation evaluate(Network& net, const Data& data, const EvaluationPlan& plan, torch::Device device);

// The network's classifier (C x D weight, C bias) with the train counts.
ClassifierInput classifierOf(Network& net, const Data& data);

// The engine's analysis of one split, with the dataset's shot thresholds.
Analysis analyzeSplit(const SplitFeatures& split, const ClassifierInput& classifier, const Data& data);

// A snapshot of the evaluated splits (val only when it has rows).
SnapshotData snapshotOf(const Evaluation& eval, const ClassifierInput& classifier, const std::string& name,
                        std::int64_t epoch, int stage, const std::string& label);

} // namespace ltlab::train
