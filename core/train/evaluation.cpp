// Network -> features -> analysis -> snapshot (see evaluation.h).

#include "evaluation.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace ltlab::train {

std::vector<std::int64_t> cappedRows(const Split& split, std::int64_t cap, std::int64_t classes, std::uint64_t seed) {
    std::vector<std::int64_t> rows(static_cast<std::size_t>(split.size()));
    std::iota(rows.begin(), rows.end(), 0);
    if (cap < 0) return rows;
    std::mt19937_64 rng(seed);
    std::shuffle(rows.begin(), rows.end(), rng);
    std::vector<std::int64_t> taken(static_cast<std::size_t>(classes), 0), out;
    for (auto r : rows)
        if (taken[static_cast<std::size_t>(split.labels[static_cast<std::size_t>(r)])]++ < cap) out.push_back(r);
    std::sort(out.begin(), out.end());
    return out;
}

namespace {
constexpr std::int64_t kEvalBatch = 256; // a batch's activations stay small enough to be reused
} // namespace

// Penultimate features (eval mode, no augmentation) of the given rows of a
// split, as one N x D float32 tensor on `device`. The output is allocated
// once and filled batch by batch; batch buffers come from the module's
// caching allocator (memory_pool.cpp), so no batch faults in fresh pages.
torch::Tensor computeFeatures(Network& net, const Data& data, const Split& split, const std::vector<std::int64_t>& rows,
                              torch::Device device) {
    const auto n = static_cast<std::int64_t>(rows.size());
    torch::Tensor out = torch::empty({n, net->featureDim()}, torch::TensorOptions(device).dtype(torch::kFloat32));
    if (n == 0) return out;
    c10::InferenceMode inference; // no autograd records, no version counters
    net->eval();
    const bool all = n == split.size();
    const torch::Tensor index = all ? torch::Tensor() : torch::tensor(rows, torch::kInt64);
    for (std::int64_t i = 0; i < n; i += kEvalBatch) {
        const std::int64_t b = std::min(kEvalBatch, n - i);
        const torch::Tensor x = all ? split.x.narrow(0, i, b) : split.x.index_select(0, index.narrow(0, i, b));
        out.narrow(0, i, b).copy_(net->features(normalize(data, x).to(device)));
    }
    return out;
}

namespace {

SplitFeatures evaluateSplit(const std::string& name, Network& net, const Data& data, const Split& split,
                            const std::vector<std::int64_t>& rows, torch::Device device) {
    SplitFeatures f{name, toRowMatrix(computeFeatures(net, data, split, rows, device)), {}};
    f.labels.reserve(rows.size());
    for (auto r : rows) f.labels.push_back(split.labels[static_cast<std::size_t>(r)]);
    return f;
}

} // namespace

// What each epoch evaluates: the train rows that the snapshots store (at most
// train_feature_cap per class, the same seeded rows every epoch; all with -1),
// and all of val and test. The per-epoch train metrics of /history are those
// of these rows, so they equal `ltlab analyze --split train` of the epoch's
// snapshot; a full pass over a large train split every epoch would cost as
// much as training (issue 13).
EvaluationPlan evaluationPlan(const Data& data, const TrainConfig& c) {
    return {cappedRows(data.train, c.train_feature_cap, data.classes(), c.seed), cappedRows(data.val, -1, 0, 0),
            cappedRows(data.test, -1, 0, 0)};
}

Evaluation evaluate(Network& net, const Data& data, const EvaluationPlan& plan, torch::Device device) {
    return {evaluateSplit("train", net, data, data.train, plan.train_rows, device),
            evaluateSplit("val", net, data, data.val, plan.val_rows, device),
            evaluateSplit("test", net, data, data.test, plan.test_rows, device)};
}

ClassifierInput classifierOf(Network& net, const Data& data) {
    const RowMatrix W = toRowMatrix(net->classifierWeight().detach());
    const RowMatrix b = toRowMatrix(net->classifierBias().detach().reshape({-1, 1}));
    return {W, Eigen::VectorXd(b.col(0)), data.train_counts};
}

Analysis analyzeSplit(const SplitFeatures& split, const ClassifierInput& classifier, const Data& data) {
    AnalysisOptions options;
    options.many_threshold = data.many_threshold;
    options.few_threshold = data.few_threshold;
    return analyze(MemorySource(split.h, split.labels), classifier, options);
}

SnapshotData snapshotOf(const Evaluation& eval, const ClassifierInput& classifier, const std::string& name,
                        std::int64_t epoch, int stage, const std::string& label) {
    SnapshotData snapshot;
    snapshot.name = name;
    snapshot.epoch = epoch;
    snapshot.stage = stage;
    snapshot.label = label;
    snapshot.classifier_weight = classifier.weight;
    snapshot.classifier_bias = classifier.bias;
    for (const SplitFeatures* s : {&eval.train, &eval.val, &eval.test})
        if (s->name == "train" || !s->labels.empty()) snapshot.splits.push_back({s->name, s->h, s->labels, std::nullopt});
    return snapshot;
}

} // namespace ltlab::train
