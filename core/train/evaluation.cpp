// Network -> features -> analysis -> snapshot (see evaluation.h).

#include "evaluation.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <thread>

#include "ltlab/error.h"

namespace ltlab::train {

int threadsFor(int requested) {
    return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

torch::Device pickDevice(const std::string& name) {
    if (name == "cpu") return torch::kCPU;
    if (name == "cuda") {
        if (!torch::cuda::is_available())
            throw UsageError("--device cuda: this libtorch has no CUDA or no GPU is present (Debian's libtorch is "
                             "CPU-only; build with Torch_DIR pointing at a CUDA libtorch)");
        return torch::kCUDA;
    }
    if (name != "auto") throw UsageError("unknown device '" + name + "' (auto, cpu, cuda)");
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

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

std::vector<std::int64_t> stratifiedRows(const Split& split, std::int64_t n, std::int64_t classes, std::uint64_t seed) {
    const std::int64_t per_class = (n + classes - 1) / std::max<std::int64_t>(classes, 1);
    std::vector<std::int64_t> rows = cappedRows(split, per_class, classes, seed);
    if (static_cast<std::int64_t>(rows.size()) <= n) return rows;
    std::mt19937_64 rng(seed + 1);
    std::shuffle(rows.begin(), rows.end(), rng);
    rows.resize(static_cast<std::size_t>(n));
    std::sort(rows.begin(), rows.end());
    return rows;
}

void computeBlockOutputs(Network& net, const torch::Tensor& input, bool residual_blocks, const BlockCallback& emit) {
    c10::InferenceMode inference; // no autograd records, as computeOutputs
    net->eval();
    net->forwardBlocks(input, residual_blocks, emit);
}

namespace {

// 256 CIFAR-sized images a batch, fewer for larger ones (at most ~256 x 32 x 32
// pixels): a batch's activations stay small enough to be reused.
std::int64_t evalBatchSize(const Data& data) {
    const std::int64_t pixels = std::max<std::int64_t>(1, data.height * data.width);
    return std::clamp<std::int64_t>(256 * 32 * 32 / pixels, 16, 256);
}

} // namespace

// The outputs are allocated once and filled batch by batch; batch buffers
// come from the module's caching allocator (memory_pool.cpp), so no batch
// faults in fresh pages.
Outputs computeOutputs(Network& net, const Data& data, const Split& split, const std::vector<std::int64_t>& rows,
                       torch::Device device, const EvalOptions& options) {
    const auto n = static_cast<std::int64_t>(rows.size());
    const auto f32 = torch::TensorOptions(device).dtype(torch::kFloat32);
    Outputs out{torch::empty({n, net->featureDim()}, f32), {}};
    if (options.logits) out.logits = torch::empty({n, net->classifierWeight().size(0)}, f32);
    if (n == 0) return out;
    c10::InferenceMode inference; // no autograd records, no version counters
    net->eval();
    const std::int64_t batch = evalBatchSize(data);
    for (std::int64_t i = 0; i < n; i += batch) {
        const std::int64_t b = std::min(batch, n - i);
        const torch::Tensor h = net->features(evalBatch(data, split, rows, i, b).to(device));
        out.features.narrow(0, i, b).copy_(h);
        if (options.logits) out.logits.narrow(0, i, b).copy_(net->logits(h));
        if (options.progress) options.progress(i + b);
    }
    return out;
}

namespace {

SplitFeatures evaluateSplit(const std::string& name, Network& net, const Data& data, const Split& split,
                            const std::vector<std::int64_t>& rows, torch::Device device, const EvalOptions& options) {
    const Outputs o = computeOutputs(net, data, split, rows, device, options);
    SplitFeatures f{name, toRowMatrix(o.features), {}, std::nullopt};
    if (o.logits.defined()) f.logits = toRowMatrix(o.logits);
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
// much as training (issue 13). A stage's last epoch evaluates every train row.
EvaluationPlan evaluationPlan(const Data& data, const TrainConfig& c, bool all_train) {
    return {cappedRows(data.train, all_train ? -1 : c.train_feature_cap, data.classes(), c.seed),
            cappedRows(data.val, -1, 0, 0), cappedRows(data.test, -1, 0, 0)};
}

Evaluation evaluate(Network& net, const Data& data, const EvaluationPlan& plan, torch::Device device,
                    const EvalOptions& options) {
    // Progress counts the rows of all three splits.
    auto after = [&](std::int64_t offset) {
        EvalOptions o = options;
        if (options.progress) o.progress = [&options, offset](std::int64_t rows) { options.progress(offset + rows); };
        return o;
    };
    const auto n_train = static_cast<std::int64_t>(plan.train_rows.size()), n_val = static_cast<std::int64_t>(plan.val_rows.size());
    Evaluation e;
    e.train = evaluateSplit("train", net, data, data.train, plan.train_rows, device, after(0));
    e.val = evaluateSplit("val", net, data, data.val, plan.val_rows, device, after(n_train));
    e.test = evaluateSplit("test", net, data, data.test, plan.test_rows, device, after(n_train + n_val));
    return e;
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
                        std::optional<std::int64_t> epoch, std::optional<int> stage, const std::string& label,
                        bool keep_empty_train) {
    SnapshotData snapshot;
    snapshot.name = name;
    snapshot.epoch = epoch;
    if (stage) snapshot.stage = *stage;
    snapshot.label = label;
    snapshot.classifier_weight = classifier.weight;
    snapshot.classifier_bias = classifier.bias;
    for (const SplitFeatures* s : {&eval.train, &eval.val, &eval.test})
        if ((keep_empty_train && s->name == "train") || !s->labels.empty())
            snapshot.splits.push_back({s->name, s->h, s->labels, s->logits});
    return snapshot;
}

} // namespace ltlab::train
