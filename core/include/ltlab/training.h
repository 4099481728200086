#pragma once
// Training, as the rest of ltlab sees it: a configuration, recipes, and a
// Trainer interface implemented by the libtorch module (libltlab_train.so),
// which is loaded only when something trains. No libtorch types here.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ltlab {

struct TrainConfig {
    std::string recipe = "ce";                 // ce, ce-wd, wb, wd-fr-etf
    // Data: fashion-mnist-lt (embedded), fashion-mnist, cifar10-lt, cifar100-lt,
    // idx-lt (data_dir holds train-/t10k- IDX files), gaussian-lt.
    std::string dataset = "fashion-mnist-lt";
    std::string data_dir;
    double imbalance = 100.0;
    bool paper_split = false;                  // the ICLR code's CIFAR construction (file order, 20 val)
    std::int64_t val_per_class = 20;
    std::int64_t gaussian_dim = 32;
    std::int64_t gaussian_per_class = 500;
    bool augment = true;                       // CIFAR: random crop 32 (padding 4) + flip

    std::string model = "auto";                // mlp, cnn, resnet32, resnet34 (auto: by dataset)
    bool classifier_bias = true;

    std::int64_t epochs = 10;                  // stage 1 (and the only stage of one-stage recipes)
    std::int64_t stage2_epochs = 10;           // wb only
    std::int64_t batch_size = 64;
    double lr = 0.01;
    double momentum = 0.9;
    double weight_decay = 5e-3;                // lambda of the explicit term lambda/2 sum ||theta||^2
    double stage2_weight_decay = 0.1;
    double feature_reg = 1e-2;                 // zeta of zeta/2 mean ||h||^2 (wd-fr-etf)
    double cb_beta = 0.9999;
    // How the class-balanced loss of stage 2 is averaged over a batch:
    // "batch", the papers' code, mean_i w_{y_i} CE_i (divides by the batch
    // size); "weight-sum", PyTorch's cross_entropy(weight=w), sum_i w_{y_i} CE_i
    // / sum_i w_{y_i} (ltlab before issue 9).
    std::string cb_reduction = "batch";
    bool maxnorm = true;
    double maxnorm_factor = 0.1;               // threshold min + factor (max - min) of stage-1 norms
    bool maxnorm_per_epoch = false;            // the released code projects once per epoch
    std::optional<double> tau;                 // logit adjustment; chosen on val when absent
    std::string la_mode = "multiplicative";    // or additive

    std::uint64_t seed = 0;
    int threads = 0;                           // 0: all cores
    std::string device = "auto";               // auto, cpu, cuda
    std::int64_t snapshot_every = 1;           // epochs between snapshots (stage ends always)
    std::int64_t train_feature_cap = 500;      // stored train features per class (-1: all)

    // Unknown keys and wrong types are UsageErrors naming the key.
    static TrainConfig fromJson(const std::string& json_text, const TrainConfig& defaults);
    std::string toJson() const;
};

struct RecipeInfo {
    std::string name;
    std::string summary;
    std::vector<std::string> settings; // the config keys that matter, with their defaults
};
const std::vector<RecipeInfo>& recipes();
// The recipe's defaults over the generic ones (e.g. ce has no weight decay).
TrainConfig recipeDefaults(const std::string& recipe);

// What a configuration key means, its values and its default, in one line
// (`ltlab train --help`, the Training dock's tooltips); "" for unknown keys.
std::string configKeyHelp(const std::string& key);

struct EpochReport {
    int stage = 1;
    std::int64_t epoch = 0;                    // counted over both stages, from 1
    std::int64_t epochs_total = 0;
    double train_loss = 0, train_accuracy = 0, test_accuracy = 0, lr = 0, seconds = 0;
    double data_seconds = 0;                   // of `seconds`, spent preparing batches (indexing, augmentation)
    // After training: the eval-mode forward passes, the analyses and the
    // snapshot's conversion, and the run file's commit (not in /history).
    double eval_seconds = 0, analysis_seconds = 0, commit_seconds = 0;
    std::map<std::string, double> metrics;     // per-epoch analysis (nc1, fdr, cone_mean_cos, accuracy_few, ...)
    std::optional<std::string> snapshot;       // written this epoch
};

struct TrainingCallbacks {
    std::function<void(double fraction, const std::string& what)> progress; // within the run, 0..1
    std::function<void(const EpochReport&)> epoch;
    std::function<void(const std::string&)> log;
};

// Control from another thread: pause, resume and cancel take effect between batches.
struct TrainingControl {
    std::atomic<bool> paused{false};
    std::atomic<bool> cancelled{false};
};

struct TrainingSummary {
    std::string out_path;
    std::int64_t epochs_done = 0;
    bool cancelled = false;
    std::optional<double> tau;                 // the logit adjustment chosen
    double accuracy = 0, accuracy_many = 0, accuracy_medium = 0, accuracy_few = 0; // test, balanced
};

// A run whose loss became NaN or infinite; the run file keeps the finished epochs.
class TrainingDiverged : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// `ltlab train --recipe wb --from RUN.h5 [--snapshot NAME]`: stage 2 on a
// finished run's network instead of a new stage 1 (issue 9).
struct Stage2FromPlan {
    TrainConfig config;           // RUN.h5's, recipe wb, epochs = the snapshot's epoch, the stage-2 options over it
    std::string snapshot;         // the stage-1 snapshot whose classifier stage 2 starts from
    std::int64_t epoch = 0;       // its epoch: the new run keeps RUN.h5's /history and snapshots up to it
    std::int64_t history_epochs = 0; // RUN.h5's finished epochs (its checkpoint's)
};
// Checks RUN.h5 (written by ltlab train, not wd-fr-etf; the snapshot at a
// stage-1 epoch after which only stage 2 trained, so that RUN.h5.ckpt's
// backbone is the snapshot's) and merges `overrides_json` (config keys; only
// stage-2, evaluation and device keys may be given: the rest describe stage 1
// and come from RUN.h5). Default snapshot: the last stage-1 snapshot
// (stage1_final of a wb run, final of ce/ce-wd). UsageError or InputError.
Stage2FromPlan planStage2From(const std::string& from_path, const std::optional<std::string>& snapshot,
                              const std::string& overrides_json);
// The keys planStage2From accepts as overrides.
const std::vector<std::string>& stage2FromKeys();

class Trainer {
public:
    virtual ~Trainer() = default;
    // Trains and writes the run file; throws UsageError/InputError,
    // TrainingDiverged, or std::runtime_error for anything else.
    // With `resume`, out_path is a run this trainer wrote: training continues
    // after its last finished epoch from the checkpoint beside it
    // (checkpointPath), with the RNG state saved there, so the numbers are
    // those of an uninterrupted run.
    virtual TrainingSummary train(const TrainConfig& config, const std::string& out_path,
                                  const TrainingCallbacks& callbacks, TrainingControl& control,
                                  bool resume = false) = 0;
    // Stage 2 of wb from a finished run (planStage2From): out_path becomes a
    // copy of plan's source cut back to the snapshot's epoch with plan.config;
    // the network is the source's checkpoint with the snapshot's classifier;
    // then stage 2 trains as in train(). out_path is then an ordinary run
    // (--resume works on it).
    virtual TrainingSummary trainStage2From(const Stage2FromPlan& plan, const std::string& from_path,
                                            const std::string& out_path, const TrainingCallbacks& callbacks,
                                            TrainingControl& control) = 0;
    // Training throughput (images/s: forward, loss, backward, SGD step) of a
    // model on random inputs of the given shape, after a warm-up, on `device`
    // (auto, cpu or cuda, as TrainConfig::device).
    virtual double measureThroughput(const std::string& model, std::int64_t batch_size, std::int64_t channels,
                                     std::int64_t height, std::int64_t width, std::int64_t classes, int threads,
                                     int steps, const std::string& device) = 0;
};

// Model, optimiser and RNG state after the last finished epoch, beside the run.
inline std::string checkpointPath(const std::string& run_path) { return run_path + ".ckpt"; }

// Loads libltlab_train.so (next to the executable, or in ../lib/ltlab) and
// makes a Trainer; throws UsageError with what went wrong.
std::unique_ptr<Trainer> loadTrainer();

} // namespace ltlab
