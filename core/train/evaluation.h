#pragma once
// One path from a network to what ltlab shows: eval-mode penultimate
// features of chosen rows of each split, their analysis with the network's
// classifier, and a run-file snapshot. Training uses it every epoch, import
// for every checkpoint (built-in networks and TorchScript modules alike);
// the layer-wise analysis is to use it too. Internal to the module.

#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data.h"
#include "ltlab/analysis.h"
#include "ltlab/run_writer.h"
#include "networks.h"

namespace ltlab::train {

// The thread count asked for, or all cores (Debian's libtorch starts with 1).
int threadsFor(int requested);
// auto, cpu or cuda; UsageError when cuda is asked for and absent.
torch::Device pickDevice(const std::string& name);

// At most `cap` rows per class, chosen with a seeded shuffle (never "the
// first N"), sorted; all rows when cap < 0.
std::vector<std::int64_t> cappedRows(const Split& split, std::int64_t cap, std::int64_t classes, std::uint64_t seed);

// A seeded, class-stratified batch of at most n rows: at most ceil(n / C) of
// each class (cappedRows' seeded choice), then a seeded n of those when more
// remain (a long-tailed split's small classes give fewer), sorted.
std::vector<std::int64_t> stratifiedRows(const Split& split, std::int64_t n, std::int64_t classes, std::uint64_t seed);

struct EvalOptions {
    bool logits = false;                                  // also the network's logits of each row
    std::function<void(std::int64_t rows)> progress;      // after each batch: rows done (evaluate: over its splits)
};

struct Outputs {
    torch::Tensor features;  // rows x D float32
    torch::Tensor logits;    // rows x C float32 (undefined unless asked for)
};

// Penultimate features (eval mode, no augmentation; evalBatch's inputs) of
// the given rows of a split, on `device`; the logits too when asked.
Outputs computeOutputs(Network& net, const Data& data, const Split& split, const std::vector<std::int64_t>& rows,
                       torch::Device device, const EvalOptions& options);
inline torch::Tensor computeFeatures(Network& net, const Data& data, const Split& split,
                                     const std::vector<std::int64_t>& rows, torch::Device device) {
    return computeOutputs(net, data, split, rows, device, {}).features;
}

// The layer-wise analysis' pass: `input` (N x ... on `device`, already as the
// network takes it: evalBatch's rows, or noise) through the network in eval
// mode without autograd, each block's output handed to `emit` in turn.
void computeBlockOutputs(Network& net, const torch::Tensor& input, bool residual_blocks, const BlockCallback& emit);

// One split's features for the analysis and the snapshot, converted once.
struct SplitFeatures {
    std::string name;
    RowMatrix h;                       // rows x D, float64
    std::vector<std::int32_t> labels;  // of those rows
    std::optional<RowMatrix> logits;   // rows x C, when asked for
};

// Which rows of each split are evaluated.
struct EvaluationPlan {
    std::vector<std::int64_t> train_rows, val_rows, test_rows;
};

// What each training epoch evaluates: the train rows that the snapshots
// store (at most train_feature_cap per class, the same seeded rows every
// epoch; all with -1, or with all_train: the epochs that end a stage, whose
// snapshots stage 2 and the sandbox retrain on), and all of val and test.
EvaluationPlan evaluationPlan(const Data& data, const TrainConfig& c, bool all_train = false);

struct Evaluation {
    SplitFeatures train, val, test;
};

Evaluation evaluate(Network& net, const Data& data, const EvaluationPlan& plan, torch::Device device,
                    const EvalOptions& options = {});

// The network's classifier (C x D weight, C bias) with the train counts.
ClassifierInput classifierOf(Network& net, const Data& data);

// The engine's analysis of one split, with the dataset's shot thresholds.
Analysis analyzeSplit(const SplitFeatures& split, const ClassifierInput& classifier, const Data& data);

// A snapshot of the evaluated splits: val and test only when they have rows,
// train always (training) or only then too (keep_empty_train false: import).
SnapshotData snapshotOf(const Evaluation& eval, const ClassifierInput& classifier, const std::string& name,
                        std::optional<std::int64_t> epoch, std::optional<int> stage, const std::string& label,
                        bool keep_empty_train = true);

} // namespace ltlab::train
