// The training loop behind ltlab::Trainer: recipes, checkpoints, per-epoch
// evaluation and the run file. Compiled into libltlab_train.so with libtorch.

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <sstream>
#include <thread>

#include "ltlab/analysis.h"
#include "ltlab/error.h"
#include "ltlab/posthoc.h"
#include "ltlab/run_checkpoint.h"
#include "ltlab/run_file.h"
#include "ltlab/run_writer.h"
#include "ltlab/stage2.h"
#include "ltlab/training.h"
#include "data.h"
#include "evaluation.h"
#include "networks.h"

namespace ltlab::train {

namespace {

using Clock = std::chrono::steady_clock;

// Model, optimiser, counters and the CPU generator's state: libtorch's
// archive inside ltlab's envelope (checksum, run id, epoch:
// ltlab/run_checkpoint.h), written to a temporary file and renamed, so that a
// kill never leaves half a checkpoint.
struct CheckpointState {
    std::int64_t epochs_done = 0;
    double maxnorm_threshold = 0;
};

std::string checkpointArchive(Network& net, torch::optim::Optimizer& optimizer, const CheckpointState& state) {
    torch::serialize::OutputArchive archive, model, optim;
    net->save(model);
    optimizer.save(optim);
    archive.write("model", model);
    archive.write("optimizer", optim);
    archive.write("epochs_done", torch::tensor(state.epochs_done, torch::kInt64));
    archive.write("maxnorm_threshold", torch::tensor(state.maxnorm_threshold, torch::kFloat64));
    archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
    std::ostringstream bytes;
    archive.save_to(bytes);
    return bytes.str();
}

void writeCheckpointFile(const std::string& path, const std::string& envelope) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(envelope.data(), static_cast<std::streamsize>(envelope.size()));
        out.close();
        if (!out) throw InputError(tmp, "", "cannot write the checkpoint: " + std::string(std::strerror(errno)));
    }
    replaceFileDurably(tmp, path); // fsync, rename, fsync the folder: durable like the run file
}

// A test-only hook (docs/reliability.md): LTLAB_TEST_STOP_AFTER=created|record
// ends the process at that point of a run's commits, as a kill there would.
void testStopAfter(const char* point) {
    const char* stop = std::getenv("LTLAB_TEST_STOP_AFTER");
    if (stop && std::strcmp(stop, point) == 0) std::_Exit(86);
}

// Tensors are mapped onto the device the network is on now, so that a run
// trained on a GPU can be resumed on the CPU and the other way round.
// `checkpoint` has been read and checked (ltlab/run_checkpoint.h).
CheckpointState loadCheckpoint(const VerifiedCheckpoint& checkpoint, const std::string& path, Network& net,
                               torch::optim::Optimizer* optimizer) {
    if (!checkpoint.exists)
        throw InputError(path, "", "no checkpoint to resume from (ltlab train keeps one beside the run while it trains)");
    torch::serialize::InputArchive archive, model, optim;
    try {
        archive.load_from(checkpoint.archive.data(), checkpoint.archive.size(), net->parameters().front().device());
        archive.read("model", model);
        net->load(model);
    } catch (const c10::Error& e) {
        throw InputError(path, "", std::string("not a checkpoint of this run's network: ") + e.what_without_backtrace());
    }
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
    const std::int64_t done = epochs.item<std::int64_t>();
    if (checkpoint.epoch && *checkpoint.epoch != done)
        throw InputError(path, "", "damaged: its header says epoch " + std::to_string(*checkpoint.epoch) +
                                       ", its archive " + std::to_string(done));
    return {done, threshold.item<double>()};
}

// A checkpoint this run verified or wrote itself: its checksum is checked again.
CheckpointState loadCheckpoint(const std::string& path, Network& net, torch::optim::Optimizer* optimizer) {
    return loadCheckpoint(readCheckpointFile(path), path, net, optimizer);
}

class RunRecorder {
public:
    explicit RunRecorder(const std::string& path) : path_(path) {}
    // A new run: the file, with `fill` (the run id and checkpoint record) in the same transaction.
    void create(const Data& data, const TrainConfig& config, const std::function<void(RunFileWriter&)>& fill) {
        ClassInfo classes;
        classes.train_counts = data.train_counts;
        classes.names = data.class_names;
        classes.many_threshold = data.many_threshold;
        classes.few_threshold = data.few_threshold;
        createRunFile(path_, classes, config.toJson(), fill);
    }
    // Each epoch is one transaction (updateRunFile): a kill at any moment
    // leaves a complete file holding every finished epoch, and the
    // checkpoint record (`also`) that goes with it.
    void epoch(const EpochReport& report, const std::optional<SnapshotData>& snapshot,
               const std::function<void(RunFileWriter&)>& also) {
        updateRunFile(path_, [&](RunFileWriter& writer) {
            record(writer, report, snapshot);
            also(writer);
        });
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

    TrainingSummary trainStage2From(const Stage2FromPlan& plan, const std::string& from_path, const std::string& out_path,
                                    const TrainingCallbacks& callbacks, TrainingControl& control) override {
        try {
            return stage2From(plan, from_path, out_path, callbacks, control);
        } catch (const c10::Error& e) {
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
    TrainingSummary stage2From(const Stage2FromPlan& plan, const std::string& from_path, const std::string& out_path,
                               const TrainingCallbacks& callbacks, TrainingControl& control);
};

// One call of Trainer::train, in named phases: set-up, resume, stage 1,
// stage 2 (wb), post-hoc logit adjustment, summary.
class TrainingRun {
public:
    TrainingRun(const TrainConfig& c, const std::string& out_path, const TrainingCallbacks& cb, TrainingControl& control,
                bool resume, torch::Device device)
        : c_(c), out_path_(out_path), cb_(cb), control_(control), device_(device), data_(loadData(c)),
          plan_(evaluationPlan(data_, c)), stage_end_plan_(evaluationPlan(data_, c, true)), net_(buildNetwork()), recorder_(out_path),
          two_stage_(c.recipe == "wb"), total_epochs_(c.epochs + (two_stage_ ? c.stage2_epochs : 0)),
          checkpoint_(checkpointPath(out_path)) {
        summary_.out_path = out_path;
        final_snapshot_ = two_stage_ ? "stage1_final" : "final";
    }

    // --from: the source run's network with the snapshot's classifier becomes
    // this run's checkpoint after `epoch` (the stage-1 epochs it keeps).
    // `write_run` makes the new run file (a copy of the source's, cut back);
    // it is called once the source checkpoint is verified and loaded.
    void startFrom(const std::string& source_run, const std::string& source_checkpoint, std::int64_t source_epochs,
                   std::int64_t epoch, const Eigen::MatrixXd& weight, const Eigen::VectorXd& bias,
                   const std::function<void(const std::function<void(RunFileWriter&)>&)>& write_run) {
        const VerifiedCheckpoint source = verifyRunCheckpoint(source_run, source_checkpoint);
        if (!source.warning.empty()) log("warning: " + source_checkpoint + " " + source.warning);
        const std::int64_t done = loadCheckpoint(source, source_checkpoint, net_, nullptr).epochs_done;
        if (done != source_epochs)
            throw InputError(source_checkpoint, "", "holds epoch " + std::to_string(done) + " but the run's /history has " +
                                                        std::to_string(source_epochs) +
                                                        " (it was stopped between the two): resume it first");
        if (net_->etfHead()) throw UsageError("stage 2 needs a linear classifier; this network has a fixed ETF head");
        const torch::Tensor W = net_->classifierWeight(), b = net_->classifierBias();
        if (W.size(0) != weight.rows() || W.size(1) != weight.cols())
            throw InputError(out_path_, "", "the snapshot's classifier does not fit the checkpoint's network");
        {
            torch::NoGradGuard no_grad;
            const RowMatrixF w = weight.cast<float>(); // as stored: the float32 values the network had
            W.copy_(torch::from_blob(const_cast<float*>(w.data()), {w.rows(), w.cols()}, torch::kFloat32));
            if (c_.classifier_bias) {
                const Eigen::VectorXf bf = bias.cast<float>();
                b.copy_(torch::from_blob(const_cast<float*>(bf.data()), {bf.size()}, torch::kFloat32));
            }
        }
        std::vector<torch::Tensor> params = net_->parameters();
        torch::optim::SGD optimizer(params, torch::optim::SGDOptions(c_.lr).momentum(c_.momentum));
        run_id_ = newRunId(); // a new run: its own id
        mark_.reset();
        const std::string archive = checkpointArchive(net_, optimizer, {epoch, 0.0});
        const Mark next{epoch, sha256Hex(archive)};
        std::error_code ec;
        std::filesystem::remove(checkpoint_, ec); // an overwritten run's
        // The checkpoint first: the new run file records epochs (the source's)
        // from the start, so it must never exist without its checkpoint. A kill
        // between the two leaves only RUN.h5.ckpt, which the next --from replaces.
        writeCheckpointFile(checkpoint_, checkpointEnvelope(run_id_, epoch, archive));
        testStopAfter("from-checkpoint");
        write_run([&](RunFileWriter& writer) { recordCheckpoint(writer, next); });
        testStopAfter("created");
        mark_ = next;
        log("stage 2 from " + source_checkpoint + " with the classifier of epoch " + std::to_string(epoch));
    }

    TrainingSummary run(bool resume) {
        if (!resume) startRun(true);
        if (resume && !resumeFromCheckpoint()) return finish();
        if (epochs_ < c_.epochs) trainStage1();
        if (two_stage_ && !control_.cancelled && c_.stage2_epochs > 0 && epochs_ < total_epochs_) trainStage2();
        if (!control_.cancelled && epochs_ > 0 && (c_.recipe == "wd-fr-etf" || c_.tau)) adjustLogits();
        summary_.cancelled = control_.cancelled;
        return finish();
    }

private:
    using Seconds = std::chrono::duration<double>;

    void log(const std::string& s) const {
        if (cb_.log) cb_.log(s);
    }

    Network buildNetwork() const {
        const std::string model = resolvedModel(c_.model, data_.channels, data_.height, data_.width);
        Network net = makeNetwork(model, data_.channels, data_.height, data_.width);
        if (c_.recipe == "wd-fr-etf")
            net->setEtfHead(data_.classes(), c_.classifier_bias, c_.seed);
        else
            net->setLinearHead(data_.classes(), c_.classifier_bias);
        net->to(device_);
        log(data_.name + ": " + std::to_string(data_.train.size()) + " train (" + std::to_string(data_.train_counts.front()) +
            " to " + std::to_string(data_.train_counts.back()) + " per class), " + std::to_string(data_.val.size()) +
            " val, " + std::to_string(data_.test.size()) + " test; model " + model + " (" +
            std::to_string(net->featureDim()) + "-d features); " +
            (device_.is_cuda() ? std::string("CUDA GPU") : "CPU, " + std::to_string(torch::get_num_threads()) + " threads"));
        return net;
    }

    ClassifierInput classifier() { return classifierOf(net_, data_); }

    // The features of the plan's rows; every train row at a stage's end, so
    // that the stage-end snapshots (stage1_final, final) hold the whole train
    // split, and /history's train metrics of that epoch are of it too.
    void reevaluate(bool stage_end) {
        const auto started = Clock::now();
        eval_ = evaluate(net_, data_, stage_end ? stage_end_plan_ : plan_, device_);
        eval_seconds_ = Seconds(Clock::now() - started).count();
    }

    // ---- Resume: the checkpoint's state, and the run file cut back to it ------
    // Returns false when every epoch is done already.
    bool resumeFromCheckpoint() {
        // Everything is checked before anything changes (docs/reliability.md).
        const VerifiedCheckpoint checkpoint = verifyRunCheckpoint(out_path_, checkpoint_);
        const auto run = RunFile::open(out_path_);
        const auto history = run->history();
        const std::int64_t recorded = history ? history->numEpochs() : 0;
        if (!checkpoint.exists && recorded == 0) {
            // Killed after the run file was made, before its first checkpoint.
            log(out_path_ + ": no epoch finished and no checkpoint yet: starting the run");
            startRun(false);
            return true;
        }
        if (!checkpoint.warning.empty()) log("warning: " + checkpoint_ + " " + checkpoint.warning);
        const std::int64_t done = loadCheckpoint(checkpoint, checkpoint_, net_, nullptr).epochs_done;
        run_id_ = readRunCheckpointRecord(out_path_).run_id.value_or(""); // "": a run from before run ids
        if (!run_id_.empty()) mark_ = Mark{done, checkpoint.sha256};
        if (recorded < done)
            throw InputError(out_path_, "/history", "has fewer epochs than its checkpoint (" + std::to_string(done) + ")");
        if (recorded > done) {
            // Killed after an epoch reached the run file but before its checkpoint:
            // that epoch is trained again, so its record goes.
            log(out_path_ + ": dropping " + std::to_string(recorded - done) +
                " epoch(s) recorded after the last checkpoint");
            std::vector<std::string> later;
            for (const SnapshotInfo& s : run->snapshots())
                if (s.epoch && *s.epoch > done) later.push_back(s.name);
            updateRunFile(out_path_, [&](RunFileWriter& writer) {
                writer.truncateHistory(done);
                for (const auto& name : later) writer.removeSnapshot(name);
                if (mark_) recordCheckpoint(writer, *mark_, *mark_);
            });
        }
        epochs_ = done;
        summary_.epochs_done = done;
        if (two_stage_ && done >= total_epochs_) final_snapshot_ = "stage2_final";
        reevaluate(done >= c_.epochs); // stage 2 and the logit adjustment start from stage 1's end
        last_test_ = analyzeSplit(eval_.test, classifier(), data_);
        if (done >= total_epochs_) {
            log(out_path_ + ": all " + std::to_string(total_epochs_) + " epochs are done; nothing to resume");
            return false;
        }
        log("resuming " + out_path_ + " after epoch " + std::to_string(done) + " of " + std::to_string(total_epochs_));
        return true;
    }

    // ---- The run's identity and its checkpoint record ---------------------------
    struct Mark {
        std::int64_t epoch;
        std::string sha256;
    };
    // The run file's record of the checkpoint `next` (and of the one in place
    // now, which a kill before `next` is in place leaves: docs/reliability.md).
    void recordCheckpoint(RunFileWriter& writer, const Mark& next) { recordCheckpoint(writer, next, mark_.value_or(next)); }
    void recordCheckpoint(RunFileWriter& writer, const Mark& next, const Mark& previous) {
        if (run_id_.empty()) return; // a run from before run ids stays as it was
        writer.setRootAttribute("run_id", run_id_);
        writer.setRootAttribute("checkpoint_epoch", next.epoch);
        writer.setRootAttribute("checkpoint_sha256", next.sha256);
        writer.setRootAttribute("checkpoint_previous_epoch", previous.epoch);
        writer.setRootAttribute("checkpoint_previous_sha256", previous.sha256);
    }

    // A new run (or one killed before its first checkpoint): a run id, and the
    // checkpoint of epoch 0 in place before any epoch is recorded.
    void startRun(bool create) {
        run_id_ = newRunId();
        mark_.reset();
        std::vector<torch::Tensor> params = net_->parameters();
        torch::optim::SGD initial(params, torch::optim::SGDOptions(c_.lr).momentum(c_.momentum)); // no state yet
        const std::string archive = checkpointArchive(net_, initial, {0, 0.0});
        const Mark first{0, sha256Hex(archive)};
        std::error_code ec;
        std::filesystem::remove(checkpoint_, ec); // an overwritten run's: never taken for this one's
        auto fill = [&](RunFileWriter& writer) { recordCheckpoint(writer, first); };
        if (create) recorder_.create(data_, c_, fill);
        else updateRunFile(out_path_, fill);
        testStopAfter("created");
        writeCheckpointFile(checkpoint_, checkpointEnvelope(run_id_, 0, archive));
        mark_ = first;
        epochs_ = 0;
    }

    // The epoch's record with the record of its checkpoint, then the checkpoint.
    void commitEpoch(const EpochReport& report, const std::optional<SnapshotData>& snapshot,
                     torch::optim::Optimizer& optimizer, double threshold) {
        const std::string archive = checkpointArchive(net_, optimizer, {epochs_, threshold});
        const Mark next{epochs_, sha256Hex(archive)};
        recorder_.epoch(report, snapshot, [&](RunFileWriter& writer) { recordCheckpoint(writer, next); });
        testStopAfter("record");
        writeCheckpointFile(checkpoint_, checkpointEnvelope(run_id_, epochs_, archive));
        if (!run_id_.empty()) mark_ = next;
    }

    bool waitIfPaused() const {
        while (control_.paused && !control_.cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return !control_.cancelled;
    }

    // ---- One epoch's bookkeeping: analysis, history row, snapshot, commit -----
    struct EpochResult {
        int stage;
        double loss, accuracy, lr, seconds, data_seconds;
        bool stage_end;
    };

    void finishEpoch(const EpochResult& r, torch::optim::Optimizer& optimizer, double threshold) {
        ++epochs_;
        const auto analysis_started = Clock::now();
        const ClassifierInput head = classifier();
        const Analysis train = analyzeSplit(eval_.train, head, data_);
        last_test_ = analyzeSplit(eval_.test, head, data_);
        EpochReport report;
        report.stage = r.stage;
        report.epoch = epochs_;
        report.epochs_total = total_epochs_;
        report.train_loss = r.loss;
        report.train_accuracy = r.accuracy;
        report.test_accuracy = last_test_.accuracy.value_or(NAN);
        report.lr = r.lr;
        report.seconds = r.seconds;
        report.data_seconds = r.data_seconds;
        report.eval_seconds = eval_seconds_;
        for (const auto& [name, value] : epochMetrics(train, last_test_)) report.metrics[name] = value;
        report.metrics["train_rows"] = double(eval_.train.labels.size()); // what the train metrics are of
        std::optional<SnapshotData> snapshot;
        if (r.stage_end || epochs_ % std::max<std::int64_t>(1, c_.snapshot_every) == 0) {
            char name[32];
            std::snprintf(name, sizeof name, "epoch_%04lld", static_cast<long long>(epochs_));
            const std::string snapshot_name =
                r.stage_end ? (r.stage == 2 ? "stage2_final" : two_stage_ ? "stage1_final" : "final") : name;
            snapshot = snapshotOf(eval_, head, snapshot_name, epochs_, r.stage,
                                  c_.recipe + (r.stage_end ? " end of stage " + std::to_string(r.stage) : ""));
            if (r.stage_end) final_snapshot_ = snapshot_name;
            report.snapshot = snapshot->name;
        }
        report.analysis_seconds = Seconds(Clock::now() - analysis_started).count();
        const auto commit_started = Clock::now();
        commitEpoch(report, snapshot, optimizer, threshold);
        report.commit_seconds = Seconds(Clock::now() - commit_started).count();
        summary_.epochs_done = epochs_;
        if (cb_.epoch) cb_.epoch(report);
    }

    // ---- Stage 1: the whole network --------------------------------------------
    void trainStage1() {
        std::vector<torch::Tensor> params;
        for (auto& p : net_->parameters())
            if (p.requires_grad()) params.push_back(p);
        torch::optim::SGD optimizer(params, torch::optim::SGDOptions(c_.lr).momentum(c_.momentum));
        if (epochs_ > 0) loadCheckpoint(checkpoint_, net_, &optimizer); // the optimiser's momentum too
        for (std::int64_t e = epochs_; e < c_.epochs; ++e) {
            const auto started = Clock::now();
            // Cosine annealing to 0 over the stage, stepped at the start of each epoch.
            const double lr = c_.lr * 0.5 * (1.0 + std::cos(M_PI * double(e) / double(c_.epochs)));
            setLearningRate(optimizer, lr);
            net_->train();
            const std::int64_t N = data_.train.size();
            const torch::Tensor order = torch::randperm(N, torch::kInt64);
            double loss_sum = 0, data_seconds = 0;
            std::int64_t correct = 0, seen = 0;
            for (std::int64_t b = 0; b < N; b += c_.batch_size) {
                if (!waitIfPaused()) break;
                const auto batch_started = Clock::now();
                const torch::Tensor idx = order.narrow(0, b, std::min(c_.batch_size, N - b));
                torch::Tensor x = data_.train.x.index_select(0, idx);
                if (data_.augment) x = augment(x);
                x = normalize(data_, x).to(device_);
                const torch::Tensor y = data_.train.y.index_select(0, idx).to(device_);
                data_seconds += Seconds(Clock::now() - batch_started).count();
                const torch::Tensor h = net_->features(x);
                const torch::Tensor z = net_->logits(h);
                torch::Tensor loss = torch::nn::functional::cross_entropy(z, y);
                if (c_.weight_decay > 0) loss = loss + 0.5 * c_.weight_decay * squaredNorm(params, loss);
                if (c_.recipe == "wd-fr-etf" && c_.feature_reg > 0)
                    loss = loss + 0.5 * c_.feature_reg * h.pow(2).sum(1).mean();
                const double value = checkedLoss(loss, "training");
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                loss_sum += value * double(idx.size(0));
                correct += z.argmax(1).eq(y).sum().item<std::int64_t>();
                seen += idx.size(0);
                if (cb_.progress)
                    cb_.progress((double(epochs_) + double(b + idx.size(0)) / double(N)) / double(total_epochs_),
                                 (two_stage_ ? "stage 1, epoch " : "epoch ") + std::to_string(e + 1) + "/" +
                                     std::to_string(c_.epochs));
            }
            if (control_.cancelled) break;
            const double step_seconds = Seconds(Clock::now() - started).count();
            reevaluate(e + 1 == c_.epochs);
            finishEpoch({1, loss_sum / double(seen), double(correct) / double(seen), lr, step_seconds, data_seconds,
                         e + 1 == c_.epochs},
                        optimizer, 0.0);
        }
    }

    // ---- Stage 2 (wb): the classifier on frozen features -----------------------
    void trainStage2() {
        // The class weights, the MaxNorm threshold and the shuffling order come
        // from core (ltlab/stage2.h), which the torch-free stage-2 engine uses
        // too, so that the two compute the same run (docs/stage2.md).
        const CbReduction reduction = parseCbReduction(c_.cb_reduction);
        double threshold = maxNormThreshold(classifier().weight, c_.maxnorm_factor); // fixed at the start of stage 2
        const std::vector<double> cb_weights = classBalancedWeights(data_.train_counts, c_.cb_beta); // sum to C
        const torch::Tensor class_weights = torch::tensor(cb_weights, torch::kFloat32).to(device_);
        std::vector<torch::Tensor> head = net_->headParameters();
        for (auto& p : net_->backboneParameters()) p.set_requires_grad(false);
        torch::optim::SGD optimizer(head, torch::optim::SGDOptions(c_.lr).momentum(c_.momentum));
        const std::int64_t stage2_done = epochs_ - c_.epochs;
        if (stage2_done > 0) threshold = loadCheckpoint(checkpoint_, net_, &optimizer).maxnorm_threshold;
        log("stage 2: class-balanced loss (beta " + std::to_string(c_.cb_beta) + ", " + c_.cb_reduction +
            " reduction), weight decay " + std::to_string(c_.stage2_weight_decay) +
            (c_.maxnorm ? ", MaxNorm at " + std::to_string(threshold) : ""));
        auto project = [&] { // MaxNorm: rows above the threshold back onto it
            torch::NoGradGuard no_grad;
            torch::Tensor W = net_->classifierWeight();
            const torch::Tensor scale = (threshold / W.norm(2, 1, true)).clamp_max(1.0);
            W.mul_(scale);
        };
        // Every train sample, once: the backbone is frozen from here on, so
        // neither these features nor the evaluated ones change in stage 2.
        // They are stage 1's last evaluation (every train row, in order).
        if (static_cast<std::int64_t>(eval_.train.labels.size()) != data_.train.size()) reevaluate(true);
        const RowMatrixF h = eval_.train.h.cast<float>(); // the float32 features, exactly
        const torch::Tensor H =
            torch::from_blob(const_cast<float*>(h.data()), {h.rows(), h.cols()}, torch::kFloat32).to(device_).clone();
        const torch::Tensor Y = data_.train.y.to(device_);
        const std::int64_t N = H.size(0);
        std::vector<std::int64_t> order_rows;
        eval_seconds_ = 0;
        for (std::int64_t e = stage2_done; e < c_.stage2_epochs; ++e) {
            const auto started = Clock::now();
            const double lr = c_.lr * 0.5 * (1.0 + std::cos(M_PI * double(e) / double(c_.stage2_epochs)));
            setLearningRate(optimizer, lr);
            stage2Permutation(N, c_.seed, e, order_rows);
            const torch::Tensor order = torch::from_blob(order_rows.data(), {N}, torch::kInt64).clone().to(device_);
            double loss_sum = 0;
            std::int64_t correct = 0;
            for (std::int64_t b = 0; b < N; b += c_.batch_size) {
                if (!waitIfPaused()) break;
                const torch::Tensor idx = order.narrow(0, b, std::min(c_.batch_size, N - b));
                const torch::Tensor z = net_->logits(H.index_select(0, idx));
                const torch::Tensor y = Y.index_select(0, idx);
                // The papers' mean_i w_{y_i} CE_i, or PyTorch's weighted mean
                // sum_i w_{y_i} CE_i / sum_i w_{y_i} (cb_reduction weight-sum).
                torch::Tensor loss =
                    reduction == CbReduction::Batch
                        ? (class_weights.index_select(0, y) *
                           torch::nn::functional::cross_entropy(
                               z, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone)))
                              .mean()
                        : torch::nn::functional::cross_entropy(
                              z, y, torch::nn::functional::CrossEntropyFuncOptions().weight(class_weights));
                loss = loss + 0.5 * c_.stage2_weight_decay * squaredNorm(head, loss);
                const double value = checkedLoss(loss, "stage 2");
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                if (c_.maxnorm && !c_.maxnorm_per_epoch) project();
                loss_sum += value * double(idx.size(0));
                correct += z.argmax(1).eq(y).sum().item<std::int64_t>();
            }
            if (control_.cancelled) break;
            if (c_.maxnorm && c_.maxnorm_per_epoch) project();
            if (cb_.progress)
                cb_.progress(double(epochs_ + 1) / double(total_epochs_),
                             "stage 2, epoch " + std::to_string(e + 1) + "/" + std::to_string(c_.stage2_epochs));
            finishEpoch({2, loss_sum / double(N), double(correct) / double(N), lr, Seconds(Clock::now() - started).count(),
                         0.0, e + 1 == c_.stage2_epochs},
                        optimizer, threshold);
        }
    }

    // ---- Post-hoc logit adjustment (wd-fr-etf, or any recipe given a tau) ------
    void adjustLogits() {
        const bool multiplicative = c_.la_mode != "additive";
        if (c_.la_mode != "additive" && c_.la_mode != "multiplicative")
            throw UsageError("la_mode must be additive or multiplicative, got '" + c_.la_mode + "'");
        ClassifierInput head = classifier();
        std::optional<double> tau = c_.tau;
        if (!tau && !eval_.val.labels.empty()) {
            const Analysis val = analyzeSplit(eval_.val, head, data_);
            tau = (multiplicative ? val.la_multiplicative : val.la_additive).best_tau;
        }
        if (!tau) return;
        adjustClassifier(head.weight, head.bias, data_.train_counts, *tau,
                         multiplicative ? LogitAdjustmentMode::Multiplicative : LogitAdjustmentMode::Additive);
        char label[96];
        std::snprintf(label, sizeof label, "%s logit adjustment, tau %.2f%s", multiplicative ? "multiplicative" : "additive",
                      *tau, c_.tau ? "" : " (chosen on val)");
        // Same epoch as the snapshot it adjusts, so it sorts right after it.
        recorder_.snapshot(snapshotOf(eval_, head, final_snapshot_ + "_la", epochs_, two_stage_ ? 2 : 1, label));
        last_test_ = analyzeSplit(eval_.test, head, data_);
        summary_.tau = tau;
        log(std::string(label));
    }

    TrainingSummary finish() {
        summary_.accuracy = last_test_.accuracy.value_or(NAN);
        summary_.accuracy_many = last_test_.accuracy_many.value_or(NAN);
        summary_.accuracy_medium = last_test_.accuracy_medium.value_or(NAN);
        summary_.accuracy_few = last_test_.accuracy_few.value_or(NAN);
        return summary_;
    }

    // ---- Small steps ------------------------------------------------------------
    static void setLearningRate(torch::optim::SGD& optimizer, double lr) {
        for (auto& group : optimizer.param_groups()) static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
    }
    // sum ||theta||^2 over the parameters (the explicit weight-decay term).
    static torch::Tensor squaredNorm(const std::vector<torch::Tensor>& params, const torch::Tensor& like) {
        torch::Tensor sum = torch::zeros({}, like.options());
        for (const auto& p : params) sum = sum + p.pow(2).sum();
        return sum;
    }
    double checkedLoss(const torch::Tensor& loss, const char* what) const {
        const double value = loss.item<double>();
        if (!std::isfinite(value))
            throw TrainingDiverged(std::string(what) + " diverged in epoch " + std::to_string(epochs_ + 1) + " (loss " +
                                   std::to_string(value) + "); the run file keeps the " + std::to_string(epochs_) +
                                   " finished epochs");
        return value;
    }

    const TrainConfig& c_;
    const std::string out_path_;
    const TrainingCallbacks& cb_;
    TrainingControl& control_;
    const torch::Device device_;
    const Data data_;
    const EvaluationPlan plan_, stage_end_plan_; // each epoch; the last of a stage (every train row)
    Network net_;
    RunRecorder recorder_;
    const bool two_stage_;
    const std::int64_t total_epochs_;
    const std::string checkpoint_;
    std::string run_id_;       // "" for a run written before run ids
    std::optional<Mark> mark_; // the checkpoint in place, as the run file records it
    TrainingSummary summary_;
    std::int64_t epochs_ = 0; // finished, over both stages
    Evaluation eval_;
    double eval_seconds_ = 0;
    Analysis last_test_;
    std::string final_snapshot_;
};

TrainingSummary TorchTrainer::run(const TrainConfig& c, const std::string& out_path, const TrainingCallbacks& cb,
                                  TrainingControl& control, bool resume) {
    recipeDefaults(c.recipe); // validates the name
    parseCbReduction(c.cb_reduction);
    if (c.epochs < 1 || c.batch_size < 1 || !(c.lr > 0)) throw UsageError("epochs, batch_size and lr must be positive");
    torch::set_num_threads(threadsFor(c.threads)); // Debian's libtorch starts with 1
    torch::manual_seed(c.seed);
    const torch::Device device = pickDevice(c.device);
    return TrainingRun(c, out_path, cb, control, resume, device).run(resume);
}

TrainingSummary TorchTrainer::stage2From(const Stage2FromPlan& plan, const std::string& from, const std::string& out,
                                         const TrainingCallbacks& cb, TrainingControl& control) {
    const TrainConfig& c = plan.config;
    if (c.recipe != "wb") throw UsageError("stage 2 from a run is the wb recipe's");
    parseCbReduction(c.cb_reduction);
    const std::string source_checkpoint = checkpointPath(from);
    if (!std::filesystem::exists(source_checkpoint))
        throw InputError(from, "", "no checkpoint beside it (" + source_checkpoint + ", which ltlab train keeps): stage 2 "
                                   "needs the run's network; ltlab stage2 retrains on the stored features alone");
    Eigen::MatrixXd weight;
    Eigen::VectorXd bias;
    std::vector<std::string> later;
    {
        const auto source = RunFile::open(from);
        const SnapshotInfo& snap = source->snapshot(plan.snapshot);
        weight = source->classifierWeight(snap);
        bias = source->classifierBias(snap);
        for (const SnapshotInfo& s : source->snapshots())
            if ((s.epoch && *s.epoch > plan.epoch) || s.stage.value_or(1) == 2) later.push_back(s.name);
    }
    torch::set_num_threads(threadsFor(c.threads));
    torch::manual_seed(c.seed);
    const torch::Device device = pickDevice(c.device);
    // The source checkpoint is verified before anything is written; then the
    // new run: RUN.h5 up to the snapshot's epoch, with the wb configuration.
    TrainingRun run(c, out, cb, control, true, device);
    try {
        run.startFrom(from, source_checkpoint, plan.history_epochs, plan.epoch, weight, bias,
                      [&](const std::function<void(RunFileWriter&)>& record) {
                          updateRunFileCopy(from, out, [&](RunFileWriter& writer) {
                              writer.truncateHistory(plan.epoch);
                              for (const auto& name : later) writer.removeSnapshot(name);
                              writer.setConfig(c.toJson());
                              record(writer);
                          });
                      });
        return run.run(true);
    } catch (...) {
        // Failed before the run file was made: no stray checkpoint is left
        // behind. (Once the run file exists, it and its checkpoint stay: --resume.)
        std::error_code ec;
        if (!std::filesystem::exists(out, ec)) std::filesystem::remove(checkpointPath(out), ec);
        throw;
    }
}

} // namespace

} // namespace ltlab::train


extern "C" __attribute__((visibility("default"))) ltlab::Trainer* ltlab_create_trainer() {
    return new ltlab::train::TorchTrainer();
}
