// The training loop behind ltlab::Trainer: data, recipes, per-epoch analysis
// and the run file. Compiled into libltlab_train.so with libtorch.

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <cmath>
#include <filesystem>
#include <random>
#include <mutex>
#include <thread>

#include "ltlab/analysis.h"
#include "ltlab/datasets.h"
#include "ltlab/error.h"
#include "ltlab/posthoc.h"
#include "ltlab/run_file.h"
#include "ltlab/run_writer.h"
#include "ltlab/training.h"
#include "networks.h"

namespace ltlab::train {

namespace {

using Clock = std::chrono::steady_clock;

// The thread count asked for, or all cores (Debian's libtorch starts with 1).
int threadsFor(int requested) {
    return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

struct Split {
    torch::Tensor x;                  // N x C x H x W in [0, 1] (images) or N x D
    torch::Tensor y;                  // int64
    std::vector<std::int32_t> labels;
    std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};

struct Data {
    std::string name;
    Split train, val, test;
    std::vector<std::int64_t> train_counts;
    std::vector<std::string> class_names;
    std::int64_t channels = 1, height = 1, width = 1;
    std::vector<float> mean, std;     // per channel; empty: no normalisation
    bool augment = false;             // random crop 32 (padding 4) + horizontal flip
    std::int64_t many_threshold = 100, few_threshold = 20;
    std::int64_t classes() const { return static_cast<std::int64_t>(class_names.size()); }
};

Split toSplit(const Dataset& d) {
    Split s;
    s.labels = d.labels;
    const std::int64_t n = d.size();
    if (!d.images.empty()) {
        s.x = torch::from_blob(const_cast<std::uint8_t*>(d.images.data()), {n, d.channels, d.height, d.width}, torch::kUInt8)
                  .to(torch::kFloat32)
                  .div_(255.0);
    } else {
        s.x = torch::from_blob(const_cast<float*>(d.values.data()), {n, d.sampleSize()}, torch::kFloat32).clone();
    }
    std::vector<std::int64_t> y(d.labels.begin(), d.labels.end());
    s.y = torch::tensor(y, torch::kInt64);
    return s;
}

std::string idxPath(const std::string& dir, const std::string& stem) {
    for (const char* suffix : {"", ".gz"})
        if (std::filesystem::exists(dir + "/" + stem + suffix)) return dir + "/" + stem + suffix;
    return dir + "/" + stem + ".gz"; // the reader reports it missing
}

Data loadData(const TrainConfig& c) {
    Dataset full, test;
    const std::string& ds = c.dataset;
    const bool long_tailed = ds.size() > 3 && ds.compare(ds.size() - 3, 3, "-lt") == 0;
    const std::string base = long_tailed ? ds.substr(0, ds.size() - 3) : ds;
    Data data;
    if (base == "fashion-mnist") {
        const std::string dir = c.data_dir.empty() ? kFashionMnistDir : c.data_dir;
        full = readFashionMnist(true, dir);
        test = readFashionMnist(false, dir);
        data.mean = {0.2860f};
        data.std = {0.3530f};
    } else if (base == "idx") {
        if (c.data_dir.empty()) throw UsageError("dataset idx needs --data-dir with train-/t10k- IDX files");
        full = readIdx(idxPath(c.data_dir, "train-images-idx3-ubyte"), idxPath(c.data_dir, "train-labels-idx1-ubyte"), "idx");
        test = readIdx(idxPath(c.data_dir, "t10k-images-idx3-ubyte"), idxPath(c.data_dir, "t10k-labels-idx1-ubyte"), "idx");
    } else if (base == "cifar10" || base == "cifar100") {
        if (c.data_dir.empty()) throw UsageError("dataset " + ds + " needs --data-dir with the CIFAR binary files");
        const bool ten = base == "cifar10";
        full = ten ? readCifar10(c.data_dir, true) : readCifar100(c.data_dir, true);
        test = ten ? readCifar10(c.data_dir, false) : readCifar100(c.data_dir, false);
        data.mean = {0.4914f, 0.4822f, 0.4465f};
        data.std = ten ? std::vector<float>{0.2470f, 0.2435f, 0.2616f} : std::vector<float>{0.2023f, 0.1994f, 0.2010f};
        data.augment = c.augment;
    } else if (base == "gaussian") {
        // One mixture, split per class, so that train and test share the class means.
        const std::int64_t test_per_class = 100, C = 10;
        Dataset both = gaussianMixture(std::vector<std::int64_t>(C, c.gaussian_per_class + test_per_class), c.gaussian_dim,
                                       4.0, c.seed);
        std::vector<std::int64_t> train_idx, test_idx;
        std::vector<std::int64_t> seen(C, 0);
        for (std::int64_t i = 0; i < both.size(); ++i) {
            const auto y = static_cast<std::size_t>(both.labels[static_cast<std::size_t>(i)]);
            (seen[y]++ < test_per_class ? test_idx : train_idx).push_back(i);
        }
        full = both.subset(train_idx);
        test = both.subset(test_idx);
    } else {
        throw UsageError("unknown dataset '" + ds +
                         "' (known: fashion-mnist-lt, fashion-mnist, idx-lt, idx, cifar10-lt, cifar10, cifar100-lt, "
                         "cifar100, gaussian-lt, gaussian)");
    }
    data.name = ds;
    data.channels = full.channels;
    data.height = full.height;
    data.width = full.width;
    data.class_names = full.class_names;
    if (long_tailed) {
        LongTailedOptions lt;
        lt.imbalance = c.imbalance;
        lt.paper_variant = c.paper_split;
        lt.val_per_class = c.val_per_class;
        lt.seed = c.seed;
        const LongTailedData subset = makeLongTailed(full, lt);
        data.train = toSplit(subset.train);
        data.val = toSplit(subset.val);
        data.train_counts = subset.train_counts;
    } else {
        data.train = toSplit(full);
        data.train_counts = full.classCounts();
    }
    data.test = toSplit(test);
    // Shot-group thresholds: the CIFAR-100 convention scaled to the head class
    // (500 -> 100 / 20; 5000 -> 1000 / 200 as for 10-class datasets).
    const std::int64_t head = *std::max_element(data.train_counts.begin(), data.train_counts.end());
    data.many_threshold = head >= 2500 ? 1000 : std::max<std::int64_t>(1, head / 5);
    data.few_threshold = head >= 2500 ? 200 : std::max<std::int64_t>(1, head / 25);
    return data;
}

torch::Tensor normalize(const Data& data, torch::Tensor x) {
    if (data.mean.empty()) return x;
    const auto shape = std::vector<std::int64_t>{1, static_cast<std::int64_t>(data.mean.size()), 1, 1};
    const torch::Tensor mean = torch::tensor(data.mean).view(shape), std = torch::tensor(data.std).view(shape);
    return (x - mean) / std;
}

// Random crop 32 from the image padded by 4 (zeros, as torchvision pads the
// picture) and a horizontal flip with probability 1/2, per sample.
torch::Tensor augment(torch::Tensor x) {
    const std::int64_t B = x.size(0), H = x.size(2), W = x.size(3);
    const torch::Tensor padded = torch::constant_pad_nd(x, {4, 4, 4, 4}, 0.0);
    const torch::Tensor offsets = torch::randint(0, 9, {B, 2}, torch::kInt64);
    const torch::Tensor flips = torch::randint(0, 2, {B}, torch::kInt64);
    const auto off = offsets.accessor<std::int64_t, 2>();
    const auto flip = flips.accessor<std::int64_t, 1>();
    torch::Tensor out = torch::empty_like(x);
    for (std::int64_t i = 0; i < B; ++i) {
        torch::Tensor crop = padded[i].narrow(1, off[i][0], H).narrow(2, off[i][1], W);
        out[i].copy_(flip[i] ? crop.flip({2}) : crop);
    }
    return out;
}

RowMatrix toRowMatrix(const torch::Tensor& t) {
    const torch::Tensor d = t.to(torch::kCPU, torch::kFloat64).contiguous();
    return Eigen::Map<const RowMatrix>(d.data_ptr<double>(), d.size(0), d.size(1));
}

struct Features {
    torch::Tensor train, val, test; // N x D, on the CPU, eval mode, no augmentation
};

torch::Tensor computeFeatures(Network& net, const Data& data, const Split& split, torch::Device device) {
    if (split.size() == 0) return torch::zeros({0, net->featureDim()});
    torch::NoGradGuard no_grad;
    net->eval();
    std::vector<torch::Tensor> parts;
    for (std::int64_t i = 0; i < split.size(); i += 1024) {
        const torch::Tensor x = normalize(data, split.x.narrow(0, i, std::min<std::int64_t>(1024, split.size() - i)));
        parts.push_back(net->features(x.to(device)).to(torch::kCPU));
    }
    return torch::cat(parts);
}

Features computeAllFeatures(Network& net, const Data& data, torch::Device device) {
    return {computeFeatures(net, data, data.train, device), computeFeatures(net, data, data.val, device),
            computeFeatures(net, data, data.test, device)};
}

ClassifierInput classifierOf(const torch::Tensor& weight, const torch::Tensor& bias, const Data& data) {
    const RowMatrix W = toRowMatrix(weight.detach());
    const RowMatrix b = toRowMatrix(bias.detach().reshape({-1, 1}));
    return {W, Eigen::VectorXd(b.col(0)), data.train_counts};
}

Analysis analyzeSplit(const torch::Tensor& features, const Split& split, const ClassifierInput& classifier,
                      const Data& data) {
    AnalysisOptions options;
    options.many_threshold = data.many_threshold;
    options.few_threshold = data.few_threshold;
    return analyze(MemorySource(toRowMatrix(features), split.labels), classifier, options);
}

// At most `cap` rows per class, chosen with a seeded shuffle (never "the first N").
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

SplitData splitData(const std::string& name, const torch::Tensor& features, const Split& split,
                    const std::vector<std::int64_t>& rows) {
    SplitData s;
    s.name = name;
    const torch::Tensor index = torch::tensor(rows, torch::kInt64);
    s.features = toRowMatrix(features.index_select(0, index));
    for (auto r : rows) s.labels.push_back(split.labels[static_cast<std::size_t>(r)]);
    return s;
}

// Model, optimiser, counters and the CPU generator's state, written to a
// temporary file and renamed, so that a kill never leaves half a checkpoint.
struct CheckpointState {
    std::int64_t epochs_done = 0;
    double maxnorm_threshold = 0;
};

void saveCheckpoint(const std::string& path, Network& net, torch::optim::Optimizer& optimizer, const CheckpointState& state) {
    torch::serialize::OutputArchive archive, model, optim;
    net->save(model);
    optimizer.save(optim);
    archive.write("model", model);
    archive.write("optimizer", optim);
    archive.write("epochs_done", torch::tensor(state.epochs_done, torch::kInt64));
    archive.write("maxnorm_threshold", torch::tensor(state.maxnorm_threshold, torch::kFloat64));
    archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
    const std::string tmp = path + ".tmp";
    archive.save_to(tmp);
    replaceFileDurably(tmp, path); // fsync, rename, fsync the folder: durable like the run file
}

// Tensors are mapped onto the device the network is on now, so that a run
// trained on a GPU can be resumed on the CPU and the other way round.
CheckpointState loadCheckpoint(const std::string& path, Network& net, torch::optim::Optimizer* optimizer) {
    if (!std::filesystem::exists(path))
        throw InputError(path, "", "no checkpoint to resume from (ltlab train keeps one beside the run while it trains)");
    torch::serialize::InputArchive archive, model, optim;
    try {
        archive.load_from(path, net->parameters().front().device());
    } catch (const c10::Error& e) {
        throw InputError(path, "", std::string("not a readable checkpoint: ") + e.what_without_backtrace());
    }
    archive.read("model", model);
    net->load(model);
    if (optimizer) {
        archive.read("optimizer", optim);
        optimizer->load(optim);
    }
    torch::Tensor epochs, threshold, rng;
    archive.read("epochs_done", epochs);
    archive.read("maxnorm_threshold", threshold);
    archive.read("rng", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng.to(torch::kCPU)); // mapped onto the GPU with the rest when resuming there
    return {epochs.item<std::int64_t>(), threshold.item<double>()};
}

class RunRecorder {
public:
    RunRecorder(const std::string& path, const Data& data, const TrainConfig& config, bool create) : path_(path) {
        if (!create) return; // resuming: the file exists
        ClassInfo classes;
        classes.train_counts = data.train_counts;
        classes.names = data.class_names;
        classes.many_threshold = data.many_threshold;
        classes.few_threshold = data.few_threshold;
        createRunFile(path, classes, config.toJson(), {});
    }
    // Each epoch is one transaction (updateRunFile): a kill at any moment
    // leaves a complete file holding every finished epoch.
    void epoch(const EpochReport& report, const std::optional<SnapshotData>& snapshot) {
        updateRunFile(path_, [&](RunFileWriter& writer) { record(writer, report, snapshot); });
    }
    void snapshot(const SnapshotData& snapshot) {
        updateRunFile(path_, [&](RunFileWriter& writer) { writer.writeSnapshot(snapshot); });
    }

private:
    static void record(RunFileWriter& writer, const EpochReport& report, const std::optional<SnapshotData>& snapshot) {
        if (snapshot) writer.writeSnapshot(*snapshot);
        std::vector<std::pair<std::string, double>> row{{"epoch", double(report.epoch)},
                                                        {"stage", double(report.stage)},
                                                        {"train_loss", report.train_loss},
                                                        {"train_accuracy", report.train_accuracy},
                                                        {"test_accuracy", report.test_accuracy},
                                                        {"lr", report.lr},
                                                        {"seconds", report.seconds},
                                                        {"data_seconds", report.data_seconds}};
        for (const auto& [k, v] : report.metrics) row.emplace_back(k, v);
        writer.appendHistory(row);
    }

    std::string path_;
};

class TorchTrainer : public Trainer {
public:
    TrainingSummary train(const TrainConfig& config, const std::string& out_path, const TrainingCallbacks& callbacks,
                          TrainingControl& control, bool resume) override {
        try {
            return run(config, out_path, callbacks, control, resume);
        } catch (const c10::Error& e) { // libtorch's messages carry a C++ backtrace: keep the message
            throw std::runtime_error(e.what_without_backtrace());
        }
    }

    double measureThroughput(const std::string& model, std::int64_t batch_size, std::int64_t channels, std::int64_t height,
                             std::int64_t width, std::int64_t classes, int threads, int steps,
                             const std::string& device_name) override {
        torch::set_num_threads(threadsFor(threads));
        torch::manual_seed(0);
        const torch::Device device = pickDevice(device_name);
        Network net = makeNetwork(model, channels, height, width);
        net->setLinearHead(classes, true);
        net->to(device);
        net->train();
        torch::optim::SGD optimizer(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
        const torch::Tensor x = torch::randn({batch_size, channels, height, width}).to(device);
        const torch::Tensor y = torch::randint(0, classes, {batch_size}, torch::kInt64).to(device);
        torch::Tensor loss;
        auto step = [&] {
            loss = torch::nn::functional::cross_entropy(net->forward(x), y);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
        };
        for (int i = 0; i < 5; ++i) step(); // warm-up: allocations, thread pool, cuDNN's choices
        loss.item<float>();                 // on a GPU: wait for the queued work
        const auto started = Clock::now();
        for (int i = 0; i < steps; ++i) step();
        loss.item<float>();
        return double(batch_size) * steps / std::chrono::duration<double>(Clock::now() - started).count();
    }

private:
    TrainingSummary run(const TrainConfig& config, const std::string& out_path, const TrainingCallbacks& callbacks,
                        TrainingControl& control, bool resume);
    static torch::Device pickDevice(const std::string& name) {
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
};

TrainingSummary TorchTrainer::run(const TrainConfig& c, const std::string& out_path, const TrainingCallbacks& cb,
                                  TrainingControl& control, bool resume) {
    recipeDefaults(c.recipe); // validates the name
    if (c.epochs < 1 || c.batch_size < 1 || !(c.lr > 0)) throw UsageError("epochs, batch_size and lr must be positive");
    const int threads = threadsFor(c.threads);
    torch::set_num_threads(threads); // Debian's libtorch starts with 1
    torch::manual_seed(c.seed);
    const torch::Device device = pickDevice(c.device);
    auto log = [&](const std::string& s) {
        if (cb.log) cb.log(s);
    };

    const Data data = loadData(c);
    const std::int64_t C = data.classes();
    const std::string model_name =
        c.model != "auto" ? c.model : (data.height == 1 && data.width == 1) ? "mlp" : data.channels == 3 ? "resnet32" : "cnn";
    Network net = makeNetwork(model_name, data.channels, data.height, data.width);
    if (c.recipe == "wd-fr-etf")
        net->setEtfHead(C, c.classifier_bias, c.seed);
    else
        net->setLinearHead(C, c.classifier_bias);
    net->to(device);
    log(data.name + ": " + std::to_string(data.train.size()) + " train (" + std::to_string(data.train_counts.front()) +
        " to " + std::to_string(data.train_counts.back()) + " per class), " + std::to_string(data.val.size()) + " val, " +
        std::to_string(data.test.size()) + " test; model " + model_name + " (" + std::to_string(net->featureDim()) +
        "-d features); " +
        (device.is_cuda() ? std::string("CUDA GPU") : "CPU, " + std::to_string(torch::get_num_threads()) + " threads"));

    RunRecorder recorder(out_path, data, c, !resume);
    const bool two_stage = c.recipe == "wb";
    const std::int64_t total_epochs = c.epochs + (two_stage ? c.stage2_epochs : 0);
    TrainingSummary summary;
    summary.out_path = out_path;
    std::int64_t epoch_counter = 0;
    Features features;
    Analysis last_test;
    std::string final_snapshot;

    // A snapshot of the current features with the given classifier.
    auto snapshotOf = [&](const std::string& name, int stage, const std::string& label, const ClassifierInput& classifier) {
        SnapshotData snapshot;
        snapshot.name = name;
        snapshot.epoch = epoch_counter;
        snapshot.stage = stage;
        snapshot.label = label;
        snapshot.classifier_weight = classifier.weight;
        snapshot.classifier_bias = classifier.bias;
        snapshot.splits.push_back(
            splitData("train", features.train, data.train, cappedRows(data.train, c.train_feature_cap, C, c.seed)));
        if (data.val.size()) snapshot.splits.push_back(splitData("val", features.val, data.val, cappedRows(data.val, -1, C, 0)));
        snapshot.splits.push_back(splitData("test", features.test, data.test, cappedRows(data.test, -1, C, 0)));
        return snapshot;
    };

    // One epoch's bookkeeping: analysis of train and test, history, snapshot.
    // `seconds` is the epoch's training time; the evaluation that follows is not counted.
    auto finish_epoch = [&](int stage, double loss, double train_acc, double lr, double seconds, double data_seconds,
                            bool stage_end) {
        ++epoch_counter;
        const ClassifierInput classifier = classifierOf(net->classifierWeight(), net->classifierBias(), data);
        const Analysis train = analyzeSplit(features.train, data.train, classifier, data);
        last_test = analyzeSplit(features.test, data.test, classifier, data);
        EpochReport report;
        report.stage = stage;
        report.epoch = epoch_counter;
        report.epochs_total = total_epochs;
        report.train_loss = loss;
        report.train_accuracy = train_acc;
        report.test_accuracy = last_test.accuracy.value_or(NAN);
        report.lr = lr;
        report.seconds = seconds;
        report.data_seconds = data_seconds;
        for (const auto& [name, value] : epochMetrics(train, last_test)) report.metrics[name] = value;
        std::optional<SnapshotData> snapshot;
        if (stage_end || epoch_counter % std::max<std::int64_t>(1, c.snapshot_every) == 0) {
            char name[32];
            std::snprintf(name, sizeof name, "epoch_%04lld", static_cast<long long>(epoch_counter));
            const std::string snapshot_name =
                stage_end ? (stage == 2 ? "stage2_final" : two_stage ? "stage1_final" : "final") : name;
            snapshot = snapshotOf(snapshot_name, stage, c.recipe + (stage_end ? " end of stage " + std::to_string(stage) : ""),
                                  classifier);
            if (stage_end) final_snapshot = snapshot_name;
            report.snapshot = snapshot->name;
        }
        recorder.epoch(report, snapshot);
        summary.epochs_done = epoch_counter;
        if (cb.epoch) cb.epoch(report);
    };

    auto wait_if_paused = [&] {
        while (control.paused && !control.cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return !control.cancelled;
    };

    const std::string checkpoint = checkpointPath(out_path);
    std::int64_t resume_from = 0; // epochs finished before this call
    if (resume) {
        CheckpointState state = loadCheckpoint(checkpoint, net, nullptr);
        resume_from = state.epochs_done;
        const auto run = RunFile::open(out_path);
        const auto history = run->history();
        if (!history || history->numEpochs() < resume_from)
            throw InputError(out_path, "/history", "has fewer epochs than its checkpoint (" + std::to_string(resume_from) + ")");
        if (history->numEpochs() > resume_from) {
            // Killed after an epoch reached the run file but before its checkpoint:
            // that epoch is trained again, so its record goes.
            log(out_path + ": dropping " + std::to_string(history->numEpochs() - resume_from) +
                " epoch(s) recorded after the last checkpoint");
            std::vector<std::string> later;
            for (const SnapshotInfo& s : run->snapshots())
                if (s.epoch && *s.epoch > resume_from) later.push_back(s.name);
            updateRunFile(out_path, [&](RunFileWriter& writer) {
                writer.truncateHistory(resume_from);
                for (const auto& name : later) writer.removeSnapshot(name);
            });
        }
        epoch_counter = resume_from;
        summary.epochs_done = resume_from;
        final_snapshot = !two_stage ? "final" : resume_from >= total_epochs ? "stage2_final" : "stage1_final";
        features = computeAllFeatures(net, data, device);
        last_test = analyzeSplit(features.test, data.test,
                                 classifierOf(net->classifierWeight(), net->classifierBias(), data), data);
        if (resume_from >= total_epochs) {
            log(out_path + ": all " + std::to_string(total_epochs) + " epochs are done; nothing to resume");
            summary.accuracy = last_test.accuracy.value_or(NAN);
            summary.accuracy_many = last_test.accuracy_many.value_or(NAN);
            summary.accuracy_medium = last_test.accuracy_medium.value_or(NAN);
            summary.accuracy_few = last_test.accuracy_few.value_or(NAN);
            return summary;
        }
        log("resuming " + out_path + " after epoch " + std::to_string(resume_from) + " of " + std::to_string(total_epochs));
    }

    // ---- Stage 1: the whole network --------------------------------------------
    if (resume_from < c.epochs) {
        std::vector<torch::Tensor> params;
        for (auto& p : net->parameters())
            if (p.requires_grad()) params.push_back(p);
        torch::optim::SGD optimizer(params, torch::optim::SGDOptions(c.lr).momentum(c.momentum));
        if (resume_from > 0) loadCheckpoint(checkpoint, net, &optimizer); // the optimiser's momentum too
        const std::int64_t N = data.train.size();
        for (std::int64_t e = resume_from; e < c.epochs; ++e) {
            const auto started = Clock::now();
            // Cosine annealing to 0 over the stage, stepped at the start of each epoch.
            const double lr = c.lr * 0.5 * (1.0 + std::cos(M_PI * double(e) / double(c.epochs)));
            for (auto& group : optimizer.param_groups())
                static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
            net->train();
            const torch::Tensor order = torch::randperm(N, torch::kInt64);
            double loss_sum = 0, data_seconds = 0;
            std::int64_t correct = 0, seen = 0;
            for (std::int64_t b = 0; b < N; b += c.batch_size) {
                if (!wait_if_paused()) break;
                const auto batch_started = Clock::now();
                const torch::Tensor idx = order.narrow(0, b, std::min(c.batch_size, N - b));
                torch::Tensor x = data.train.x.index_select(0, idx);
                if (data.augment) x = augment(x);
                x = normalize(data, x).to(device);
                const torch::Tensor y = data.train.y.index_select(0, idx).to(device);
                data_seconds += std::chrono::duration<double>(Clock::now() - batch_started).count();
                const torch::Tensor h = net->features(x);
                const torch::Tensor z = net->logits(h);
                torch::Tensor loss = torch::nn::functional::cross_entropy(z, y);
                if (c.weight_decay > 0) {
                    torch::Tensor wd = torch::zeros({}, loss.options());
                    for (const auto& p : params) wd = wd + p.pow(2).sum();
                    loss = loss + 0.5 * c.weight_decay * wd;
                }
                if (c.recipe == "wd-fr-etf" && c.feature_reg > 0) loss = loss + 0.5 * c.feature_reg * h.pow(2).sum(1).mean();
                const double value = loss.item<double>();
                if (!std::isfinite(value))
                    throw TrainingDiverged("training diverged in epoch " + std::to_string(epoch_counter + 1) + " (loss " +
                                   std::to_string(value) + "); the run file keeps the " + std::to_string(epoch_counter) +
                                   " finished epochs");
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                loss_sum += value * double(idx.size(0));
                correct += z.argmax(1).eq(y).sum().item<std::int64_t>();
                seen += idx.size(0);
                if (cb.progress)
                    cb.progress((double(epoch_counter) + double(b + idx.size(0)) / double(N)) / double(total_epochs),
                                "stage 1 epoch " + std::to_string(e + 1));
            }
            if (control.cancelled) break;
            const double step_seconds = std::chrono::duration<double>(Clock::now() - started).count();
            features = computeAllFeatures(net, data, device);
            finish_epoch(1, loss_sum / double(seen), double(correct) / double(seen), lr, step_seconds, data_seconds,
                         e + 1 == c.epochs);
            saveCheckpoint(checkpoint, net, optimizer, {epoch_counter, 0.0});
        }
    }

    // ---- Stage 2 (wb): the classifier on frozen features -----------------------
    if (two_stage && !control.cancelled && c.stage2_epochs > 0 && epoch_counter < total_epochs) {
        const torch::Tensor stage1_norms = net->classifierWeight().detach().norm(2, 1);
        const double lo = stage1_norms.min().item<double>(), hi = stage1_norms.max().item<double>();
        double threshold = lo + c.maxnorm_factor * (hi - lo); // fixed at the start of stage 2
        std::vector<double> cb_weights(static_cast<std::size_t>(C));
        double cb_sum = 0;
        for (std::int64_t k = 0; k < C; ++k) {
            const double n = double(data.train_counts[static_cast<std::size_t>(k)]);
            cb_weights[static_cast<std::size_t>(k)] = (1.0 - c.cb_beta) / (1.0 - std::pow(c.cb_beta, n));
            cb_sum += cb_weights[static_cast<std::size_t>(k)];
        }
        for (auto& w : cb_weights) w *= double(C) / cb_sum; // normalised to sum to C
        const torch::Tensor class_weights = torch::tensor(cb_weights, torch::kFloat32).to(device);
        std::vector<torch::Tensor> head = net->headParameters();
        for (auto& p : net->backboneParameters()) p.set_requires_grad(false);
        torch::optim::SGD optimizer(head, torch::optim::SGDOptions(c.lr).momentum(c.momentum));
        const std::int64_t stage2_done = epoch_counter - c.epochs;
        if (stage2_done > 0) threshold = loadCheckpoint(checkpoint, net, &optimizer).maxnorm_threshold;
        log("stage 2: class-balanced loss (beta " + std::to_string(c.cb_beta) + "), weight decay " +
            std::to_string(c.stage2_weight_decay) + (c.maxnorm ? ", MaxNorm at " + std::to_string(threshold) : ""));
        auto project = [&] { // MaxNorm: rows above the threshold back onto it
            torch::NoGradGuard no_grad;
            torch::Tensor W = net->classifierWeight();
            const torch::Tensor scale = (threshold / W.norm(2, 1, true)).clamp_max(1.0);
            W.mul_(scale);
        };
        const torch::Tensor H = features.train.to(device);
        const torch::Tensor Y = data.train.y.to(device);
        const std::int64_t N = H.size(0);
        for (std::int64_t e = stage2_done; e < c.stage2_epochs; ++e) {
            const auto started = Clock::now();
            const double lr = c.lr * 0.5 * (1.0 + std::cos(M_PI * double(e) / double(c.stage2_epochs)));
            for (auto& group : optimizer.param_groups())
                static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
            const torch::Tensor order = torch::randperm(N, torch::kInt64).to(device);
            double loss_sum = 0;
            std::int64_t correct = 0;
            for (std::int64_t b = 0; b < N; b += c.batch_size) {
                if (!wait_if_paused()) break;
                const torch::Tensor idx = order.narrow(0, b, std::min(c.batch_size, N - b));
                const torch::Tensor z = net->logits(H.index_select(0, idx));
                const torch::Tensor y = Y.index_select(0, idx);
                torch::Tensor loss = torch::nn::functional::cross_entropy(
                    z, y, torch::nn::functional::CrossEntropyFuncOptions().weight(class_weights));
                torch::Tensor wd = torch::zeros({}, loss.options());
                for (const auto& p : head) wd = wd + p.pow(2).sum();
                loss = loss + 0.5 * c.stage2_weight_decay * wd;
                const double value = loss.item<double>();
                if (!std::isfinite(value))
                    throw TrainingDiverged("stage 2 diverged in epoch " + std::to_string(epoch_counter + 1) +
                                   "; the run file keeps the finished epochs");
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                if (c.maxnorm && !c.maxnorm_per_epoch) project();
                loss_sum += value * double(idx.size(0));
                correct += z.argmax(1).eq(y).sum().item<std::int64_t>();
            }
            if (control.cancelled) break;
            if (c.maxnorm && c.maxnorm_per_epoch) project();
            if (cb.progress) cb.progress(double(epoch_counter + 1) / double(total_epochs), "stage 2");
            finish_epoch(2, loss_sum / double(N), double(correct) / double(N), lr,
                         std::chrono::duration<double>(Clock::now() - started).count(), 0.0, e + 1 == c.stage2_epochs);
            saveCheckpoint(checkpoint, net, optimizer, {epoch_counter, threshold});
        }
    }

    // ---- Post-hoc logit adjustment (wd-fr-etf, or any recipe given a tau) ------
    if (!control.cancelled && epoch_counter > 0 && (c.recipe == "wd-fr-etf" || c.tau)) {
        const bool multiplicative = c.la_mode != "additive";
        if (c.la_mode != "additive" && c.la_mode != "multiplicative")
            throw UsageError("la_mode must be additive or multiplicative, got '" + c.la_mode + "'");
        ClassifierInput classifier = classifierOf(net->classifierWeight(), net->classifierBias(), data);
        std::optional<double> tau = c.tau;
        if (!tau && data.val.size()) {
            const Analysis val = analyzeSplit(features.val, data.val, classifier, data);
            tau = (multiplicative ? val.la_multiplicative : val.la_additive).best_tau;
        }
        if (tau) {
            adjustClassifier(classifier.weight, classifier.bias, data.train_counts, *tau,
                             multiplicative ? LogitAdjustmentMode::Multiplicative : LogitAdjustmentMode::Additive);
            char label[96];
            std::snprintf(label, sizeof label, "%s logit adjustment, tau %.2f%s", multiplicative ? "multiplicative" : "additive",
                          *tau, c.tau ? "" : " (chosen on val)");
            // Same epoch as the snapshot it adjusts, so it sorts right after it.
            const SnapshotData snapshot = snapshotOf(final_snapshot + "_la", two_stage ? 2 : 1, label, classifier);
            recorder.snapshot(snapshot);
            last_test = analyzeSplit(features.test, data.test, classifier, data);
            summary.tau = tau;
            log(std::string(label));
        }
    }

    summary.cancelled = control.cancelled;
    summary.accuracy = last_test.accuracy.value_or(NAN);
    summary.accuracy_many = last_test.accuracy_many.value_or(NAN);
    summary.accuracy_medium = last_test.accuracy_medium.value_or(NAN);
    summary.accuracy_few = last_test.accuracy_few.value_or(NAN);
    return summary;
}

} // namespace

} // namespace ltlab::train

extern "C" __attribute__((visibility("default"))) ltlab::Trainer* ltlab_create_trainer() {
    return new ltlab::train::TorchTrainer();
}
