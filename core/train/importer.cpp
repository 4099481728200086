// `ltlab import`: users' checkpoints evaluated on a dataset into one run file,
// a snapshot per checkpoint (ltlab/importing.h). Every network goes through
// evaluation.h, the path training takes each epoch.

#include <torch/torch.h>

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "data.h"
#include "evaluation.h"
#include "ltlab/checkpoint.h"
#include "ltlab/error.h"
#include "ltlab/importing.h"
#include "ltlab/posthoc.h"
#include "ltlab/run_file.h"
#include "ltlab/run_writer.h"
#include "import_model.h"
#include "weights.h"

namespace ltlab::train {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

// ---- the checkpoint files, in epoch order --------------------------------------------

struct Source {
    std::string path;
    std::optional<std::int64_t> epoch;  // stored in the file, or the number in its name
    std::string snapshot;               // its snapshot's name in the run
};

bool isCheckpointName(const fs::path& p) {
    static const std::set<std::string> extensions = {".pt", ".pth", ".ckpt", ".paramOnly", ".bin", ".safetensors", ".tar"};
    return extensions.count(p.extension().string()) && p.filename() != "trackRecords.ckpt";
}

// Folders become their checkpoint files (HN410's trackRecords.ckpt is a side file).
std::vector<std::string> expandSources(const std::vector<std::string>& items) {
    std::vector<std::string> out;
    for (const auto& item : items) {
        std::error_code ec;
        if (!fs::is_directory(item, ec)) {
            out.push_back(item);
            continue;
        }
        std::vector<std::string> files;
        for (const auto& e : fs::directory_iterator(item))
            if (e.is_regular_file() && isCheckpointName(e.path())) files.push_back(e.path().string());
        if (files.empty()) throw InputError(item, "", "holds no checkpoint files (.pt, .pth, .ckpt, .paramOnly, .bin, .safetensors)");
        std::sort(files.begin(), files.end());
        out.insert(out.end(), files.begin(), files.end());
    }
    if (out.empty()) throw UsageError("no checkpoint given");
    return out;
}

std::optional<std::int64_t> numberInName(const std::string& path) {
    static const std::regex digits("([0-9]+)[^0-9]*$");
    std::smatch m;
    const std::string stem = fs::path(path).stem().string();
    if (!std::regex_search(stem, m, digits) || m[1].length() > 15) return std::nullopt;
    return std::stoll(m[1].str());
}

std::optional<std::int64_t> storedEpoch(const ckpt::Checkpoint& file) {
    const ckpt::Value* epoch = file.root().kind == ckpt::Value::Kind::Dict ? file.root().get("epoch") : nullptr;
    if (epoch && epoch->kind == ckpt::Value::Kind::Int) return epoch->integer;
    return std::nullopt;
}

std::string snapshotName(const std::string& path, std::set<std::string>& taken) {
    std::string base = fs::path(path).stem().string();
    for (char& ch : base)
        if (ch == '/' || ch == '\\' || std::isspace(static_cast<unsigned char>(ch))) ch = '_';
    if (base.empty() || base == ".") base = "checkpoint";
    std::string name = base;
    for (int i = 2; taken.count(name); ++i) name = base + "_" + std::to_string(i);
    taken.insert(name);
    return name;
}

// Opens every file once (their pickles only) for its epoch; ordered by epoch
// (files without one first, as the run file orders snapshots), then by name.
std::vector<Source> orderSources(const std::vector<std::string>& paths, std::set<std::string> taken) {
    std::vector<Source> out;
    for (const auto& path : paths) {
        const auto file = ckpt::Checkpoint::open(path);
        out.push_back({path, storedEpoch(*file), ""});
        if (!out.back().epoch) out.back().epoch = numberInName(path);
    }
    std::stable_sort(out.begin(), out.end(), [](const Source& a, const Source& b) {
        if (a.epoch.has_value() != b.epoch.has_value()) return !a.epoch.has_value();
        if (a.epoch != b.epoch) return *a.epoch < *b.epoch;
        return a.path < b.path;
    });
    for (auto& s : out) s.snapshot = snapshotName(s.path, taken);
    return out;
}

std::string sha256(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path, "", "cannot read");
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
    std::vector<char> buffer(1 << 20);
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
        EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx.get(), digest, &length);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) out += {hex[digest[i] >> 4], hex[digest[i] & 15]};
    return out;
}

// ---- one checkpoint's network ------------------------------------------------------------

using Loaded = LoadedCheckpoint;

} // namespace

LoadedCheckpoint loadCheckpointModel(const std::string& path, const ImportConfig& c) {
    Loaded l;
    l.file = ckpt::Checkpoint::open(path);
    l.state_dict = ckpt::extractStateDict(*l.file);
    l.model = l.file->format() == ckpt::Format::TorchScript
                  ? loadTorchScript(path, l.state_dict, c.features_module, c.classifier)
                  : loadBuiltIn(*l.file, l.state_dict, c.arch);
    return l;
}

namespace {

Loaded loadCheckpoint(const std::string& path, const ImportConfig& c) { return loadCheckpointModel(path, c); }

// ---- the data and how images are shaped -----------------------------------------------------

bool isImageSpec(const std::string& spec) { return spec.rfind("folder:", 0) == 0 || spec.rfind("list:", 0) == 0; }

// ImageNet forms: resize 256, centre 224; CIFAR forms and the small CNN:
// image files to their 32x32 (28x28 for one channel); training's datasets as they are.
InputTransform transformFor(const ImportedModel& m, const ImportConfig& c, bool files) {
    InputTransform t;
    if (m.arch.stem == "imagenet") t = {256, 224};
    else if (files && m.input_size > 0) t = {m.input_size, m.input_size};
    if (c.resize) t.resize = *c.resize;
    if (c.crop) t.crop = *c.crop;
    if (files && t.crop <= 0) throw UsageError("image files need a crop size (--crop)");
    return t;
}

void setNormalisation(Data& data, const ImportedModel& m, const ImportConfig& c, bool files) {
    if (files) {
        if (data.channels == 1) data.mean = {0.2860f}, data.std = {0.3530f};                 // Fashion-MNIST, as training
        else if (m.arch.stem == "imagenet") data.mean = {0.485f, 0.456f, 0.406f}, data.std = {0.229f, 0.224f, 0.225f};
        else data.mean = {0.4914f, 0.4822f, 0.4465f}, data.std = {0.2023f, 0.1994f, 0.2010f}; // CIFAR (HN410, ShadeAlsha)
    }
    if (c.mean) data.mean = *c.mean;
    if (c.std) data.std = *c.std;
    if (data.mean.size() != data.std.size() || (!data.mean.empty() && static_cast<std::int64_t>(data.mean.size()) != data.channels))
        throw UsageError("--mean and --std need one value per channel (" + std::to_string(data.channels) + ")");
}

void keepSplits(Data& data, const std::vector<std::string>& splits) {
    if (splits.empty()) return;
    for (const auto& s : splits)
        if (s != "train" && s != "val" && s != "test") throw UsageError("unknown split '" + s + "' (train, val, test)");
    const std::pair<const char*, Split*> all[] = {{"train", &data.train}, {"val", &data.val}, {"test", &data.test}};
    for (const auto& [name, split] : all) {
        const bool wanted = std::find(splits.begin(), splits.end(), name) != splits.end();
        if (wanted && split->size() == 0) throw UsageError(data.name + " has no " + name + " split");
        if (!wanted) *split = Split{};
    }
}

} // namespace

Data loadImportData(const ImportedModel& m, const ImportConfig& c, const std::string& checkpoint) {
    const bool files = isImageSpec(c.data.dataset);
    if (files && m.in_channels == 0) throw UsageError("this mlp takes " + std::to_string(m.input_features) + " inputs, not images");
    Data data = files ? loadImageData(c.data.dataset, c.data.data_dir, m.in_channels, m.classes, transformFor(m, c, true))
                      : loadData(c.data);
    if (!files) data.eval_transform = transformFor(m, c, false);
    const bool vectors = data.height == 1 && data.width == 1;
    if (m.arch.name == "mlp" ? data.channels * data.height * data.width != m.input_features
                             : (vectors || data.channels != m.in_channels))
        throw InputError(checkpoint, "", "the network takes " + (m.arch.name == "mlp" ? std::to_string(m.input_features) + " inputs"
                                                                                        : std::to_string(m.in_channels) + "-channel images") +
                                             "; " + data.name + " has " + std::to_string(data.channels) + "x" +
                                             std::to_string(data.height) + "x" + std::to_string(data.width));
    if (data.classes() != m.classes)
        throw InputError(checkpoint, "", "the classifier has " + std::to_string(m.classes) + " classes; " + data.name + " has " +
                                             std::to_string(data.classes()));
    setNormalisation(data, m, c, files);
    if (c.counts) {
        if (static_cast<std::int64_t>(c.counts->size()) != m.classes)
            throw UsageError("--counts has " + std::to_string(c.counts->size()) + " classes; the classifier has " + std::to_string(m.classes));
        data.train_counts = *c.counts;
        const ShotThresholds t = shotThresholds(data.train_counts); // the groups follow the counts recorded
        data.many_threshold = t.many;
        data.few_threshold = t.few;
    }
    keepSplits(data, c.splits);
    return data;
}

namespace {

// ---- HN410's trackRecords.ckpt: per-epoch class weight norms into /history ----------------

std::vector<double> numbers(const ckpt::Checkpoint& file, const ckpt::Value& v) {
    using Kind = ckpt::Value::Kind;
    if (v.kind == Kind::Tensor) return file.read(*v.tensor).toDoubles();
    if (v.kind == Kind::Float) return {v.real};
    if (v.kind == Kind::Int) return {double(v.integer)};
    std::vector<double> out;
    if (v.kind == Kind::List || v.kind == Kind::Tuple)
        for (const ckpt::Value* x : v.items) {
            const auto xs = numbers(file, *x);
            out.insert(out.end(), xs.begin(), xs.end());
        }
    return out;
}

// Rows: epoch, train_accuracy (acc_train), test_accuracy (acc_test), weight_norm_<c>.
std::vector<std::vector<std::pair<std::string, double>>> trackRecordRows(const std::string& path, std::int64_t classes,
                                                                          std::vector<std::string>& notes) {
    const auto file = ckpt::Checkpoint::open(path);
    const ckpt::Value* norms = file->root().get("weightNorm");
    if (!norms || (norms->kind != ckpt::Value::Kind::List && norms->kind != ckpt::Value::Kind::Tuple)) {
        notes.push_back(path + ": no weightNorm list; not used");
        return {};
    }
    auto series = [&](const char* key) {
        const ckpt::Value* v = file->root().get(key);
        return v ? numbers(*file, *v) : std::vector<double>{};
    };
    const auto acc_train = series("acc_train"), acc_test = series("acc_test");
    std::vector<std::vector<std::pair<std::string, double>>> rows;
    for (std::size_t e = 0; e < norms->items.size(); ++e) {
        const auto w = numbers(*file, *norms->items[e]);
        if (static_cast<std::int64_t>(w.size()) != classes) {
            notes.push_back(path + ": weightNorm[" + std::to_string(e) + "] has " + std::to_string(w.size()) + " values, not " +
                            std::to_string(classes) + "; not used");
            return {};
        }
        std::vector<std::pair<std::string, double>> row{{"epoch", double(e + 1)}};
        if (e < acc_train.size()) row.emplace_back("train_accuracy", acc_train[e]);
        if (e < acc_test.size()) row.emplace_back("test_accuracy", acc_test[e]);
        for (std::int64_t k = 0; k < classes; ++k) row.emplace_back("weight_norm_" + std::to_string(k), w[static_cast<std::size_t>(k)]);
        rows.push_back(std::move(row));
    }
    notes.push_back(path + ": " + std::to_string(rows.size()) + " epochs of class weight norms into /history");
    return rows;
}

// ---- the run -----------------------------------------------------------------------------------

class ImportRun {
public:
    ImportRun(const ImportConfig& c, const ImportCallbacks& cb) : c_(c), cb_(cb), device_(pickDevice(c.data.device)) {}

    ImportSummary run() {
        openTarget();
        sources_ = orderSources(expandSources(c_.checkpoints), taken_);
        Loaded first = loadCheckpoint(sources_.front().path, c_);
        prepareData(first);
        validateOthers(first.model);
        createTarget(first);
        for (std::size_t i = 0; i < sources_.size(); ++i) importOne(i, i == 0 ? std::move(first) : loadCheckpoint(sources_[i].path, c_));
        return summary_;
    }

private:
    void log(const std::string& s) const {
        if (cb_.log) cb_.log(s);
    }

    // ---- phase 1: the run file, when it exists -----------------------------------------------
    void openTarget() {
        std::error_code ec;
        exists_ = fs::exists(c_.out, ec) && !c_.overwrite;
        if (!exists_) return;
        // Read and let go: each commit replaces the file (updateRunFile).
        const auto run = RunFile::open(c_.out);
        for (const auto& s : run->snapshots()) taken_.insert(s.name);
        has_history_ = run->history().has_value();
        existing_counts_ = run->classes().train_counts;
        if (run->config()) {
            const Json j = Json::parse(*run->config(), nullptr, false);
            if (j.is_object() && j.value("kind", "") == "import") config_ = j;
        }
        keep_config_ = run->config().has_value() && config_.is_null();
    }

    // ---- phase 2: the data, from the first checkpoint's architecture --------------------------
    void prepareData(const Loaded& first) {
        data_ = loadImportData(first.model, c_, first.file->path());
        if (data_.train_counts.empty() && exists_) {
            data_.train_counts = existing_counts_;
            const ShotThresholds t = shotThresholds(data_.train_counts);
            data_.many_threshold = t.many;
            data_.few_threshold = t.few;
        }
        if (data_.train_counts.empty())
            throw UsageError(data_.name + " has no train split to count the classes: give them with --counts FILE");
        plan_ = {cappedRows(data_.train, c_.max_per_class, data_.classes(), c_.data.seed),
                 cappedRows(data_.val, c_.max_per_class, data_.classes(), c_.data.seed),
                 cappedRows(data_.test, c_.max_per_class, data_.classes(), c_.data.seed)};
        rows_per_checkpoint_ = std::int64_t(plan_.train_rows.size() + plan_.val_rows.size() + plan_.test_rows.size());
        if (rows_per_checkpoint_ == 0) throw UsageError(data_.name + ": no images to evaluate in the chosen splits");
        summary_.architecture = first.model.architecture;
        log(data_.name + ": " + std::to_string(plan_.train_rows.size()) + " train, " + std::to_string(plan_.val_rows.size()) +
            " val, " + std::to_string(plan_.test_rows.size()) + " test images; " + std::to_string(data_.classes()) + " classes; " +
            (device_.is_cuda() ? std::string("CUDA GPU") : "CPU, " + std::to_string(torch::get_num_threads()) + " threads"));
    }

    // Every other checkpoint must fit the same network shape, before anything is evaluated.
    void validateOthers(const ImportedModel& first) {
        for (std::size_t i = 1; i < sources_.size(); ++i) {
            const auto file = ckpt::Checkpoint::open(sources_[i].path);
            const auto sd = ckpt::extractStateDict(*file);
            if (file->format() == ckpt::Format::TorchScript) continue; // checked when it is loaded
            const ImportedModel m = loadBuiltIn(*file, sd, c_.arch, false);
            if (m.architecture != first.architecture || m.classes != first.classes)
                throw InputError(sources_[i].path, "", "is a " + m.architecture + " with " + std::to_string(m.classes) +
                                                           " classes; " + sources_.front().path + " is a " + first.architecture +
                                                           " with " + std::to_string(first.classes));
        }
    }

    void createTarget(const Loaded& first) {
        if (exists_) checkClasses();
        if (config_.is_null() && !keep_config_) config_ = newConfig(first.model);
        if (exists_) return;
        ClassInfo classes;
        classes.train_counts = data_.train_counts;
        classes.names = data_.class_names;
        classes.many_threshold = data_.many_threshold;
        classes.few_threshold = data_.few_threshold;
        const auto history = trackRecords(first);
        createRunFile(c_.out, classes, config_.dump(), [&](RunFileWriter& w) {
            for (const auto& row : history) w.appendHistory(row);
        });
        has_history_ = !history.empty();
    }

    void checkClasses() const {
        if (existing_counts_ != data_.train_counts)
            throw InputError(c_.out, "/classes/train_counts", "differ from the dataset's (" + std::to_string(existing_counts_.size()) +
                                                                  " classes in the run, " + std::to_string(data_.classes()) +
                                                                  " in " + data_.name + "): import into a new run with --out");
    }

    Json newConfig(const ImportedModel& m) const {
        const InputTransform& t = data_.eval_transform;
        return Json{{"kind", "import"},
                    {"architecture", m.architecture},
                    {"dataset", {{"spec", c_.data.dataset}, {"data_dir", c_.data.data_dir}, {"imbalance", c_.data.imbalance},
                                 {"seed", c_.data.seed}, {"max_per_class", c_.max_per_class},
                                 {"counts", c_.counts ? "given" : "train split"}}},
                    {"transform", {{"channels", data_.channels}, {"resize", t.resize}, {"crop", t.crop},
                                   {"mean", data_.mean}, {"std", data_.std}}},
                    {"sources", Json::array()}};
    }

    std::vector<std::vector<std::pair<std::string, double>>> trackRecords(const Loaded& first) {
        const fs::path side = fs::path(first.file->path()).parent_path() / "trackRecords.ckpt";
        std::error_code ec;
        if (has_history_ || !fs::is_regular_file(side, ec)) return {};
        std::vector<std::string> notes;
        auto rows = trackRecordRows(side.string(), data_.classes(), notes);
        for (const auto& n : notes) log(n);
        return rows;
    }

    // ---- phase 3: each checkpoint: evaluate, analyse, commit ------------------------------------
    void importOne(std::size_t index, Loaded loaded) {
        const Source& source = sources_[index];
        for (const auto& note : loaded.model.notes) log(fs::path(source.path).filename().string() + ": " + note);
        Network net = loaded.model.net;
        net->to(device_);
        const auto started = Clock::now();
        const Evaluation eval = evaluate(net, data_, plan_, device_, evalOptions(index));
        const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
        const ClassifierInput head = classifierOf(net, data_);
        const std::string hash = sha256(source.path);
        const std::string label = "imported from " + fs::path(source.path).filename().string() + " (sha256 " + hash.substr(0, 12) + ")";
        std::vector<SnapshotData> snapshots{snapshotOf(eval, head, source.snapshot, source.epoch, std::nullopt, label, false)};
        if (auto la = logitAdjusted(loaded, eval, head, source)) snapshots.push_back(std::move(*la));
        recordSource(source, loaded, hash);
        commit(snapshots);
        report(source, eval, head, seconds);
    }

    EvalOptions evalOptions(std::size_t index) {
        EvalOptions o;
        o.logits = c_.logits;
        const std::int64_t before = std::int64_t(index) * rows_per_checkpoint_;
        const std::int64_t total = std::int64_t(sources_.size()) * rows_per_checkpoint_;
        const std::string what = "checkpoint " + std::to_string(index + 1) + "/" + std::to_string(sources_.size()) + " " +
                                 fs::path(sources_[index].path).filename().string();
        o.progress = [this, before, total, what](std::int64_t rows) {
            const std::int64_t done = before + rows;
            if (!started_) started_ = Clock::now();
            const double elapsed = std::chrono::duration<double>(Clock::now() - *started_).count();
            const double eta = done > 0 ? elapsed * double(total - done) / double(done) : NAN;
            if (cb_.progress) cb_.progress(double(done) / double(total), eta, what);
        };
        return o;
    }

    // HN410's args.json with a tau: the run's logit adjustment, as a second snapshot.
    std::optional<SnapshotData> logitAdjusted(const Loaded& loaded, const Evaluation& eval, ClassifierInput head,
                                              const Source& source) const {
        const ckpt::SideArgs side = ckpt::readSideArgs(loaded.file->path());
        if (!side.tau || *side.tau == 0) return std::nullopt;
        const bool additive = side.additive_logit_adjustment.value_or(false);
        adjustClassifier(head.weight, head.bias, data_.train_counts, *side.tau,
                         additive ? LogitAdjustmentMode::Additive : LogitAdjustmentMode::Multiplicative);
        char label[128];
        std::snprintf(label, sizeof label, "%s logit adjustment, tau %.3g (args.json)", additive ? "additive" : "multiplicative", *side.tau);
        std::set<std::string> taken = taken_;
        return snapshotOf(eval, head, snapshotName(source.snapshot + "_la", taken), source.epoch, std::nullopt, label, false);
    }

    void recordSource(const Source& source, const Loaded& loaded, const std::string& hash) {
        if (config_.is_null()) return; // a run that ltlab trained: its config stays as it is
        std::error_code ec;
        Json entry{{"path", fs::absolute(source.path).lexically_normal().string()},
                   {"sha256", hash},
                   {"bytes", fs::file_size(source.path, ec)},
                   {"format", ckpt::formatName(loaded.file->format())},
                   {"content", loaded.state_dict.kind},
                   {"architecture", loaded.model.architecture},
                   {"snapshot", source.snapshot}};
        if (source.epoch) entry["epoch"] = *source.epoch;
        const ckpt::SideArgs side = ckpt::readSideArgs(source.path);
        if (!side.path.empty()) entry["args_json"] = side.path;
        config_["sources"].push_back(entry);
    }

    // One transaction per checkpoint: its snapshots and the extended config.
    void commit(const std::vector<SnapshotData>& snapshots) {
        updateRunFile(c_.out, [&](RunFileWriter& w) {
            for (const auto& s : snapshots) w.writeSnapshot(s);
            if (!config_.is_null()) w.setConfig(config_.dump());
        });
        for (const auto& s : snapshots) taken_.insert(s.name);
    }

    void report(const Source& source, const Evaluation& eval, const ClassifierInput& head, double seconds) {
        const SplitFeatures& shown = !eval.test.labels.empty() ? eval.test : !eval.val.labels.empty() ? eval.val : eval.train;
        const Analysis a = analyzeSplit(shown, head, data_);
        ImportedSnapshot s{source.path, source.snapshot, source.epoch, shown.name, a.accuracy.value_or(NAN), rows_per_checkpoint_, seconds};
        summary_.snapshots.push_back(s);
        summary_.images += rows_per_checkpoint_;
        summary_.eval_seconds += seconds;
        if (cb_.snapshot) cb_.snapshot(s);
    }

    const ImportConfig& c_;
    const ImportCallbacks& cb_;
    const torch::Device device_;
    bool exists_ = false, has_history_ = false, keep_config_ = false;
    std::vector<std::int64_t> existing_counts_;
    std::set<std::string> taken_;
    std::vector<Source> sources_;
    Data data_;
    EvaluationPlan plan_;
    std::int64_t rows_per_checkpoint_ = 0;
    Json config_;
    std::optional<Clock::time_point> started_;
    ImportSummary summary_;
};

class TorchImporter : public Importer {
public:
    ImportSummary import(const ImportConfig& config, const ImportCallbacks& callbacks) override {
        torch::set_num_threads(threadsFor(config.data.threads)); // Debian's libtorch starts with 1
        try {
            ImportSummary s = ImportRun(config, callbacks).run();
            s.out_path = config.out;
            return s;
        } catch (const c10::Error& e) { // libtorch's messages carry a C++ backtrace: keep the message
            throw std::runtime_error(e.what_without_backtrace());
        }
    }
};

} // namespace

} // namespace ltlab::train

extern "C" __attribute__((visibility("default"))) ltlab::Importer* ltlab_create_importer() {
    return new ltlab::train::TorchImporter();
}
