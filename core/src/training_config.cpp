// Training configuration, recipes and the loader of the libtorch module.

#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

#include "ltlab/error.h"
#include "ltlab/importing.h"
#include "ltlab/modules.h"
#include "ltlab/run_file.h"
#include "ltlab/training.h"

namespace ltlab {

namespace {

constexpr double kMaxLearningRate = 1e9; // far above any schedule, far below float32's 3.4e38
constexpr double kMaxTau = 10;

using Json = nlohmann::json;

// Every key, bound to its field once, for both directions.
template <typename Visitor>
void visitFields(TrainConfig& c, Visitor&& v) {
    v("recipe", c.recipe);
    v("dataset", c.dataset);
    v("data_dir", c.data_dir);
    v("imbalance", c.imbalance);
    v("paper_split", c.paper_split);
    v("val_per_class", c.val_per_class);
    v("gaussian_dim", c.gaussian_dim);
    v("gaussian_per_class", c.gaussian_per_class);
    v("augment", c.augment);
    v("model", c.model);
    v("classifier_bias", c.classifier_bias);
    v("epochs", c.epochs);
    v("stage2_epochs", c.stage2_epochs);
    v("batch_size", c.batch_size);
    v("lr", c.lr);
    v("momentum", c.momentum);
    v("weight_decay", c.weight_decay);
    v("stage2_weight_decay", c.stage2_weight_decay);
    v("feature_reg", c.feature_reg);
    v("cb_beta", c.cb_beta);
    v("cb_reduction", c.cb_reduction);
    v("maxnorm", c.maxnorm);
    v("maxnorm_factor", c.maxnorm_factor);
    v("maxnorm_per_epoch", c.maxnorm_per_epoch);
    v("tau", c.tau);
    v("la_mode", c.la_mode);
    v("seed", c.seed);
    v("threads", c.threads);
    v("device", c.device);
    v("snapshot_every", c.snapshot_every);
    v("train_feature_cap", c.train_feature_cap);
}

std::string dashedKey(std::string key) {
    for (char& ch : key)
        if (ch == '_') ch = '-';
    return key;
}

template <typename T>
const char* wrongTypeWord() {
    return std::is_same_v<T, std::string> ? "a string"
           : std::is_same_v<T, bool>      ? "true or false"
           : std::is_integral_v<T>        ? "an integer"
                                          : "a finite number";
}

template <typename T>
void readValue(const Json& j, const std::string& key, T& field) {
    const auto wrongType = [&] {
        throw UsageError("config key '" + key + "' (--" + dashedKey(key) + ") has the wrong type: expected " +
                         wrongTypeWord<T>() + ", got " + j.dump());
    };
    try {
        if constexpr (std::is_same_v<T, std::optional<double>>) {
            field = j.is_null() ? std::nullopt : std::optional<double>(j.get<double>());
        } else if constexpr (std::is_same_v<T, std::string>) {
            if (!j.is_string()) throw UsageError("");
            field = j.get<std::string>();
        } else if constexpr (std::is_same_v<T, bool>) {
            if (!j.is_boolean()) throw UsageError("");
            field = j.get<bool>();
        } else if constexpr (std::is_integral_v<T>) {
            if (!j.is_number_integer() && !j.is_number_unsigned()) throw UsageError("");
            // get<T> would wrap a value outside T (threads 4294967297 -> 1, seed -1 -> 2^64 - 1).
            const bool fits = j.is_number_unsigned()
                                  ? j.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())
                                  : j.get<std::int64_t>() >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
                                        (j.get<std::int64_t>() < 0 || static_cast<std::uint64_t>(j.get<std::int64_t>()) <=
                                                                          static_cast<std::uint64_t>(std::numeric_limits<T>::max()));
            if (!fits)
                throw UsageError("config key '" + key + "' (--" + dashedKey(key) + ") must be an integer in [" +
                                 std::to_string(std::numeric_limits<T>::min()) + ", " +
                                 std::to_string(std::numeric_limits<T>::max()) + "], got " + j.dump());
            field = j.get<T>();
        } else {
            if (!j.is_number()) throw UsageError("");
            field = j.get<T>();
        }
    } catch (const UsageError& e) {
        if (*e.what()) throw; // already says what is wrong
        wrongType();
    } catch (const std::exception&) {
        wrongType();
    }
}

std::string shown(double v) {
    char b[40];
    std::snprintf(b, sizeof b, "%.10g", v);
    return b;
}

[[noreturn]] void outOfRange(const std::string& key, const std::string& range, const std::string& got) {
    std::string option = key;
    for (char& ch : option)
        if (ch == '_') ch = '-';
    throw UsageError("--" + option + " (config key " + key + ") must be " + range + ", got " + got);
}

void requireInt(const char* key, std::int64_t v, std::int64_t lo, std::int64_t hi, const std::string& range) {
    if (v < lo || v > hi) outOfRange(key, range, std::to_string(v));
}

// lo < v (or lo <= v when closed_lo) and v <= hi (or v < hi when !closed_hi), v finite.
void requireReal(const char* key, double v, double lo, bool closed_lo, double hi, bool closed_hi, const std::string& range) {
    const bool ok = std::isfinite(v) && (closed_lo ? v >= lo : v > lo) && (closed_hi ? v <= hi : v < hi);
    if (!ok) outOfRange(key, range, shown(v));
}

} // namespace

static void validateTrainConfig(const TrainConfig& c) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    constexpr std::int64_t big = std::numeric_limits<std::int64_t>::max();
    requireReal("imbalance", c.imbalance, 1, true, inf, false, "a finite number >= 1");
    requireInt("val_per_class", c.val_per_class, 0, big, "an integer >= 0");
    requireInt("gaussian_dim", c.gaussian_dim, 1, 1 << 20, "an integer in [1, 1048576]");
    requireInt("gaussian_per_class", c.gaussian_per_class, 1, big, "an integer >= 1");
    requireInt("epochs", c.epochs, 1, big, "an integer >= 1");
    requireInt("stage2_epochs", c.stage2_epochs, 0, big, "an integer >= 0 (wb: 0 skips stage 2)");
    requireInt("batch_size", c.batch_size, 1, big, "an integer >= 1");
    // Large enough for any schedule; 1e300 would become inf in libtorch's float32 parameters.
    requireReal("lr", c.lr, 0, false, kMaxLearningRate, true, "a finite number in (0, " + shown(kMaxLearningRate) + "]");
    requireReal("momentum", c.momentum, 0, true, 1, false, "in [0, 1)");
    requireReal("weight_decay", c.weight_decay, 0, true, inf, false, "a finite number >= 0");
    requireReal("stage2_weight_decay", c.stage2_weight_decay, 0, true, inf, false, "a finite number >= 0");
    requireReal("feature_reg", c.feature_reg, 0, true, inf, false, "a finite number >= 0");
    requireReal("cb_beta", c.cb_beta, 0, true, 1, true, "in [0, 1]");
    requireReal("maxnorm_factor", c.maxnorm_factor, 0, true, inf, false, "a finite number >= 0");
    if (c.tau) requireReal("tau", *c.tau, 0, true, kMaxTau, true, "a finite number in [0, " + shown(kMaxTau) + "] (the sweep covers 0..3)");
    if (c.la_mode != "additive" && c.la_mode != "multiplicative")
        outOfRange("la_mode", "additive or multiplicative", "'" + c.la_mode + "'");
    // The upper bound (4 x the cores) depends on the machine: the command line
    // checks it for --threads and --config, not for a run's recorded config.
    requireInt("threads", c.threads, 0, std::numeric_limits<int>::max(), "an integer >= 0 (0: all cores)");
    requireInt("snapshot_every", c.snapshot_every, 1, big, "an integer >= 1");
    requireInt("train_feature_cap", c.train_feature_cap, -1, big, "an integer >= -1 (-1: all)");
}

TrainConfig TrainConfig::fromJson(const std::string& text, const TrainConfig& defaults) {
    Json j;
    try {
        j = Json::parse(text);
    } catch (const Json::exception& e) { // syntax, and numbers out of range (406: "1e99999")
        throw UsageError(std::string("config is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw UsageError("config must be a JSON object");
    TrainConfig config = defaults;
    std::vector<std::string> known;
    visitFields(config, [&](const char* key, auto& field) {
        known.push_back(key);
        if (j.contains(key)) readValue(j.at(key), key, field);
    });
    for (const auto& item : j.items())
        if (item.key() != "extended" && // the record of `--resume --epochs N` extensions, not a setting
            std::find(known.begin(), known.end(), item.key()) == known.end())
            throw UsageError("unknown config key '" + item.key() + "'");
    if (config.cb_reduction != "batch" && config.cb_reduction != "weight-sum")
        throw UsageError("config key 'cb_reduction' must be batch (the papers' mean over the batch) or weight-sum "
                         "(divided by the batch's sum of class weights), got '" + config.cb_reduction + "'");
    validateTrainConfig(config);
    return config;
}

std::string TrainConfig::toJson() const {
    Json j = Json::object();
    TrainConfig copy = *this;
    visitFields(copy, [&](const char* key, auto& field) {
        if constexpr (std::is_same_v<std::decay_t<decltype(field)>, std::optional<double>>)
            j[key] = field ? Json(*field) : Json(nullptr);
        else
            j[key] = field;
    });
    return j.dump();
}

const std::vector<RecipeInfo>& recipes() {
    static const std::vector<RecipeInfo> list{
        {"ce", "cross-entropy, no weight decay", {"epochs", "lr", "batch_size"}},
        {"ce-wd",
         "cross-entropy + weight decay as the explicit term lambda/2 sum ||theta||^2 over all trained parameters",
         {"epochs", "weight_decay=5e-3"}},
        {"wb",
         "weight balancing: stage 1 = ce-wd; stage 2 retrains the classifier on frozen features with the "
         "class-balanced loss (effective number, beta), weight decay and MaxNorm",
         {"epochs", "weight_decay=5e-3", "stage2_epochs=10", "stage2_weight_decay=0.1", "cb_beta=0.9999",
          "cb_reduction=batch", "maxnorm=true", "maxnorm_factor=0.1", "maxnorm_per_epoch=false"}},
        {"wd-fr-etf",
         "one stage: cross-entropy + weight decay + feature regularisation with a fixed simplex-ETF classifier, then "
         "post-hoc multiplicative logit adjustment (tau chosen on val)",
         {"epochs", "weight_decay=5e-3", "feature_reg=1e-2", "la_mode=multiplicative", "tau=(val)"}},
        {"la",
         "post-hoc logit adjustment of a finished run (--from RUN.h5): additive z - tau log pi or multiplicative "
         "z / pi^tau, tau chosen on the run's val split or given; no training",
         {"la_mode=additive", "tau=(val)"}},
    };
    return list;
}

std::string configKeyHelp(const std::string& key) {
    static const std::map<std::string, std::string> help{
        {"recipe", "ce, ce-wd, wb, wd-fr-etf or la (see ltlab recipes)"},
        {"dataset", "fashion-mnist-lt (default, Debian's dataset-fashion-mnist), fashion-mnist, cifar10-lt, cifar10, "
                    "cifar100-lt, cifar100 (need --data-dir with the CIFAR binary files), idx-lt, idx (IDX files in "
                    "--data-dir), gaussian-lt (synthetic, fast)"},
        {"data_dir", "folder of the dataset's files (CIFAR binaries, IDX files); default: Debian's Fashion-MNIST"},
        {"imbalance", "-lt datasets: imbalance factor n_max / n_min, counts n_max IF^(-i/(C-1)) (default 100)"},
        {"paper_split", "true: the ICLR code's CIFAR construction (file order, 20 per class held out as val) (default false)"},
        {"val_per_class", "validation images held out per class (default 20)"},
        {"gaussian_dim", "gaussian-lt: feature dimension (default 32)"},
        {"gaussian_per_class", "gaussian-lt: samples of the largest class (default 500)"},
        {"augment", "CIFAR: random crop 32 with padding 4 and horizontal flip in training (default true)"},
        {"model", "auto (cnn for Fashion-MNIST, resnet32 for CIFAR, mlp for vectors), mlp, cnn, resnet32 (and the "
                  "CIFAR resnet20, 44, ... of 6n+2 layers), resnet18, resnet34, resnet50, resnext50_32x4d; ResNets "
                  "take -imagenet for the 7x7 stem (default auto)"},
        {"classifier_bias", "the classifier has a bias (default true)"},
        {"epochs", "epochs of stage 1 (the only stage of ce, ce-wd, wd-fr-etf); lr is cosine-annealed to 0 over them "
                   "(default 10)"},
        {"stage2_epochs", "wb: epochs of stage 2 (classifier only, frozen features) (default 10)"},
        {"batch_size", "samples per SGD step (default 64)"},
        {"lr", "initial learning rate of SGD, cosine-annealed to 0 over each stage (default 0.01)"},
        {"momentum", "SGD momentum (default 0.9)"},
        {"weight_decay", "lambda of the loss term lambda/2 sum ||theta||^2 over all trained parameters in stage 1 "
                         "(default 5e-3; ce: 0)"},
        {"stage2_weight_decay", "wb: lambda of stage 2's weight decay on the classifier (default 0.1, the CVPR demo's)"},
        {"feature_reg", "wd-fr-etf: zeta of the feature regularisation zeta/2 mean ||h||^2 (default 1e-2)"},
        {"cb_beta", "wb: beta of the class-balanced weights (1 - beta) / (1 - beta^n_c), normalised to sum to C "
                    "(default 0.9999)"},
        {"cb_reduction", "wb: batch (the papers' mean_i w_y CE_i, default) or weight-sum (PyTorch's "
                         "cross_entropy(weight=w))"},
        {"maxnorm", "wb: MaxNorm projection of the classifier rows in stage 2 (default true)"},
        {"maxnorm_factor", "wb: MaxNorm threshold min + F (max - min) of the stage-1 row norms (default 0.1)"},
        {"maxnorm_per_epoch", "wb: project once per epoch (the released code) instead of after every step (default false)"},
        {"tau", "logit adjustment strength; default: chosen on the validation split (wd-fr-etf, la)"},
        {"la_mode", "multiplicative z / pi^tau (default for wd-fr-etf) or additive z - tau log pi (default for la)"},
        {"seed", "seed of the data's long-tailed choice, the shuffling and the initialisation (default 0)"},
        {"threads", "CPU threads (default 0: all cores; at most 4 x the cores)"},
        {"device", "auto (a CUDA GPU when present), cpu or cuda (default auto)"},
        {"snapshot_every", "epochs between snapshots; the end of each stage always has one (default 1)"},
        {"train_feature_cap", "train features stored per class in the snapshots during a stage (the stage-end "
                              "snapshots hold every train row); -1: all (default 500)"},
    };
    const auto it = help.find(key);
    return it == help.end() ? std::string() : it->second;
}

TrainConfig recipeDefaults(const std::string& recipe) {
    TrainConfig c;
    c.recipe = recipe;
    if (recipe == "ce") {
        c.weight_decay = 0.0;
    } else if (recipe == "ce-wd" || recipe == "wb") {
        c.weight_decay = 5e-3;
    } else if (recipe == "la") {
        c.la_mode = "additive";
    } else if (recipe == "wd-fr-etf") {
        c.weight_decay = 5e-3;
        c.feature_reg = 1e-2;
    } else {
        std::string names;
        for (const auto& r : recipes()) names += (names.empty() ? "" : ", ") + r.name;
        throw UsageError("unknown recipe '" + recipe + "' (known: " + names + ")");
    }
    return c;
}

const std::vector<std::string>& stage2FromKeys() {
    static const std::vector<std::string> keys{"stage2_epochs",  "stage2_weight_decay", "cb_beta",
                                               "cb_reduction",   "maxnorm",             "maxnorm_factor",
                                               "maxnorm_per_epoch", "tau",              "la_mode",
                                               "threads",        "device",              "snapshot_every",
                                               "train_feature_cap", "data_dir"};
    return keys;
}

Stage2FromPlan planStage2From(const std::string& from, const std::optional<std::string>& snapshot_name,
                              const std::string& overrides_json) {
    const auto file = RunFile::open(from);
    if (!file->config()) throw InputError(from, "/", "has no 'config' attribute: not written by ltlab train");
    Stage2FromPlan plan;
    try {
        plan.config = TrainConfig::fromJson(*file->config(), TrainConfig());
    } catch (const UsageError& e) {
        throw InputError(from, "/", std::string("attribute 'config' is not a training configuration: ") + e.what());
    }
    if (plan.config.recipe == "wd-fr-etf")
        throw UsageError(from + " trained a fixed simplex-ETF classifier (wd-fr-etf): stage 2 retrains a linear one; "
                         "use ltlab stage2 on its features instead");
    if (plan.config.recipe == "la") throw UsageError(from + " is a post-hoc adjustment, not a trained run");
    const auto history = file->history();
    if (!history || !history->series.count("stage"))
        throw InputError(from, "/history", "has no per-epoch 'stage' series: not written by ltlab train");
    const std::vector<double>& stage = history->series.at("stage");
    plan.history_epochs = history->numEpochs();

    const SnapshotInfo* snap = nullptr;
    if (snapshot_name) {
        snap = &file->snapshot(*snapshot_name);
    } else {
        for (const SnapshotInfo& s : file->snapshots())
            if (s.epoch && s.stage.value_or(1) == 1 &&
                !(s.name.size() > 3 && s.name.compare(s.name.size() - 3, 3, "_la") == 0)) // not a post-hoc adjustment
                snap = &s;
        if (!snap) throw InputError(from, "/snapshots", "has no stage-1 snapshot to start stage 2 from");
    }
    if (!snap->epoch) throw InputError(from, snapshotPath(*snap), "has no 'epoch' attribute");
    if (snap->stage.value_or(1) != 1)
        throw UsageError(from + ": snapshot '" + snap->name + "' is from stage 2; stage 2 starts from a stage-1 snapshot "
                         "(e.g. stage1_final)");
    plan.snapshot = snap->name;
    plan.epoch = *snap->epoch;
    if (plan.epoch < 1 || plan.epoch > plan.history_epochs)
        throw InputError(from, snapshotPath(*snap), "epoch " + std::to_string(plan.epoch) + " is not one of the " +
                                                        std::to_string(plan.history_epochs) + " epochs in /history");
    // RUN.h5.ckpt holds the network after the last epoch: its backbone is the
    // snapshot's only if every later epoch trained the classifier alone.
    for (std::int64_t e = plan.epoch; e < plan.history_epochs; ++e)
        if (stage[static_cast<std::size_t>(e)] != 2)
            throw UsageError(from + ": epoch " + std::to_string(e + 1) + " trained the backbone after snapshot '" +
                             snap->name + "' (epoch " + std::to_string(plan.epoch) + "), and the checkpoint holds only "
                             "the last epoch's network: start from the run's last stage-1 snapshot, or run ltlab "
                             "stage2 on this snapshot's frozen features");

    nlohmann::json overrides;
    try {
        overrides = Json::parse(overrides_json);
    } catch (const Json::exception& e) { // syntax, and numbers out of range
        throw UsageError(std::string("stage-2 options are not valid JSON: ") + e.what());
    }
    const auto& allowed = stage2FromKeys();
    for (const auto& item : overrides.items())
        if (item.key() != "recipe" && std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
            std::string list;
            for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
            throw UsageError("with --from, '" + item.key() + "' comes from " + from +
                             " (it describes stage 1 or the data); the options that may be given are " + list);
        }
    overrides.erase("recipe");
    const std::string stage1_recipe = plan.config.recipe;
    plan.config = TrainConfig::fromJson(overrides.dump(), plan.config);
    if (stage1_recipe != "wb") { // a ce or ce-wd run: stage 2 takes the wb recipe's stage-2 defaults
        const TrainConfig wb = recipeDefaults("wb");
        auto keep = [&](const char* key, auto& field, const auto& fallback) {
            if (!overrides.contains(key)) field = fallback;
        };
        keep("stage2_epochs", plan.config.stage2_epochs, wb.stage2_epochs);
        keep("stage2_weight_decay", plan.config.stage2_weight_decay, wb.stage2_weight_decay);
        keep("cb_beta", plan.config.cb_beta, wb.cb_beta);
        keep("cb_reduction", plan.config.cb_reduction, wb.cb_reduction);
        keep("maxnorm", plan.config.maxnorm, wb.maxnorm);
        keep("maxnorm_factor", plan.config.maxnorm_factor, wb.maxnorm_factor);
        keep("maxnorm_per_epoch", plan.config.maxnorm_per_epoch, wb.maxnorm_per_epoch);
    }
    plan.config.recipe = "wb";
    plan.config.epochs = plan.epoch;
    if (plan.config.stage2_epochs < 1) throw UsageError("stage2_epochs must be at least 1");
    return plan;
}

std::unique_ptr<Trainer> loadTrainer() {
    void* module = loadModule("libltlab_train.so");
    using Factory = Trainer* (*)();
    auto factory = reinterpret_cast<Factory>(dlsym(module, "ltlab_create_trainer"));
    if (!factory) throw UsageError("libltlab_train.so has no ltlab_create_trainer");
    return std::unique_ptr<Trainer>(factory());
}

std::unique_ptr<Importer> loadImporter() {
    void* module = loadModule("libltlab_train.so");
    using Factory = Importer* (*)();
    auto factory = reinterpret_cast<Factory>(dlsym(module, "ltlab_create_importer"));
    if (!factory) throw UsageError("libltlab_train.so has no ltlab_create_importer");
    return std::unique_ptr<Importer>(factory());
}

} // namespace ltlab
