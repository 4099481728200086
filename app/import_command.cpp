// `ltlab import CHECKPOINT... --dataset SPEC --out RUN.h5`: users' checkpoints
// evaluated on a dataset into a run file, through the libtorch module
// (docs/checkpoints.md).

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ltlab/class_counts.h"
#include "cli_args.h"
#include "commands.h"
#include "ltlab/importing.h"

namespace ltlab::app {

namespace {

std::vector<std::string> commaList(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream s(text);
    for (std::string item; std::getline(s, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

std::vector<float> floatList(const std::string& option, const std::string& text) {
    std::vector<float> out;
    for (const auto& item : commaList(text)) {
        char* end = nullptr;
        const float v = std::strtof(item.c_str(), &end);
        if (*end != '\0' || !std::isfinite(v)) throw UsageError("--" + option + " expects numbers separated by commas, got '" + text + "'");
        out.push_back(v);
    }
    return out;
}

std::string duration(double seconds) {
    if (!std::isfinite(seconds)) return "?";
    char b[32];
    if (seconds < 90) std::snprintf(b, sizeof b, "%.0f s", seconds);
    else std::snprintf(b, sizeof b, "%d min %02d s", int(seconds) / 60, int(seconds) % 60);
    return b;
}

std::string percent(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f %%", 100.0 * v);
    return b;
}

// Progress for a person: a bar with the ETA on a terminal (stderr).
ImportCallbacks humanCallbacks() {
    const bool tty = isatty(STDERR_FILENO);
    ImportCallbacks cb;
    cb.log = [tty](const std::string& s) { std::cerr << (tty ? "\r\033[K" : "") << s << "\n"; };
    if (tty)
        cb.progress = [](double f, double eta, const std::string& what) {
            const int width = 30, filled = static_cast<int>(f * width);
            std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ') << "] " << static_cast<int>(100 * f)
                      << "% " << what << ", ETA " << duration(eta) << "\033[K" << std::flush;
        };
    cb.snapshot = [tty](const ImportedSnapshot& s) {
        std::cerr << (tty ? "\r\033[K" : "") << "snapshot " << s.snapshot << (s.epoch ? " (epoch " + std::to_string(*s.epoch) + ")" : "")
                  << ": " << s.split << " accuracy (balanced) " << percent(s.accuracy) << ", " << s.images << " images in "
                  << duration(s.seconds) << "\n";
    };
    return cb;
}

// Progress for a program: one JSON object a line on stdout, as `ltlab train --progress-json`.
ImportCallbacks jsonCallbacks() {
    ImportCallbacks cb;
    cb.log = [](const std::string& s) {
        std::cout << nlohmann::json{{"event", "log"}, {"message", s}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                  << std::endl;
    };
    cb.progress = [last = -1](double f, double eta, const std::string& what) mutable {
        const int permille = static_cast<int>(f * 1000);
        if (permille == last) return; // at most a thousand lines a run
        last = permille;
        nlohmann::json j{{"event", "progress"}, {"fraction", f}, {"what", what}};
        j["eta_seconds"] = std::isfinite(eta) ? nlohmann::json(eta) : nlohmann::json(nullptr);
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl; // paths need not be UTF-8
    };
    cb.snapshot = [](const ImportedSnapshot& s) {
        nlohmann::json j{{"event", "snapshot"}, {"snapshot", s.snapshot}, {"checkpoint", s.checkpoint}, {"split", s.split},
                         {"accuracy", s.accuracy}, {"images", s.images}, {"seconds", s.seconds}};
        j["epoch"] = s.epoch ? nlohmann::json(*s.epoch) : nlohmann::json(nullptr);
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl; // paths need not be UTF-8
    };
    return cb;
}

const std::vector<cli::OptionSpec> kOptions{
    {"dataset", "SPEC", "fashion-mnist(-lt), cifar10(-lt), cifar100(-lt), idx(-lt), gaussian(-lt), folder:DIR, list:[SPLIT=]FILE[,...]"},
    {"data-dir", "DIR", "the dataset's files; for list: the images' root (default: each list's folder)"},
    {"arch", "NAME", "auto (detected) or mlp, cnn, resnet32, resnet18/34/50, resnext50_32x4d [-imagenet|-cifar]"},
    {"splits", "LIST", "splits to evaluate, e.g. train,val,test (default: all the dataset has)"},
    {"counts", "FILE", "class counts (JSON, text or a run file); needed without a train split"},
    {"out", "RUN.h5", "run file to write; appended to when it exists (required)"},
    {"overwrite", "", "replace --out instead of appending to it"},
    {"device", "NAME", "auto, cpu or cuda (default auto)"},
    {"threads", "N", "default: all cores"},
    {"max-per-class", "N", "at most N images per class and split (a seeded choice)"},
    {"logits", "", "store the logits of every split too"},
    {"mean", "LIST", "normalisation mean per channel (default: by dataset and architecture)"},
    {"std", "LIST", "normalisation standard deviation per channel"},
    {"resize", "N", "resize the shorter side to N (default: 256 for ImageNet forms, the input size for image files)"},
    {"crop", "N", "centre crop N x N (default: 224 for ImageNet forms, 32 for CIFAR forms, 28 for one channel)"},
    {"features-module", "NAME", "TorchScript: the submodule whose output are the features"},
    {"classifier", "NAME", "TorchScript: the classifier's submodule (NAME.weight, NAME.bias)"},
    {"imbalance", "IF", "-lt datasets: imbalance factor (default 100)"},
    {"seed", "N", "-lt datasets and --max-per-class: seed (default 0)"},
    {"paper-split", "", "-lt CIFAR: the ICLR code's construction (as ltlab train --paper-split true)"},
    {"val-per-class", "N", "-lt datasets: balanced validation images per class (default 20)"},
    {"progress-json", "", "progress as JSON lines on stdout (for the workbench)"},
    {"help", "", "show this help"}};

constexpr const char* kHelp =
    "Usage: ltlab import CHECKPOINT... --dataset SPEC --out RUN.h5 [options]\n\n"
    "Evaluates PyTorch checkpoints (state_dicts, training checkpoints, pickled modules,\n"
    "safetensors) in a built-in network, or TorchScript modules, in eval mode on a dataset,\n"
    "and writes one snapshot per checkpoint (ordered by the stored epoch or the number in\n"
    "the file name; a folder stands for its checkpoint files) with the features of every\n"
    "split and the classifier. Exit status: 0 done, 1 usage error, 2 bad input.\n\n";

ImportConfig configFrom(const cli::Args& args) {
    ImportConfig c;
    c.checkpoints = args.positional();
    if (c.checkpoints.empty()) throw UsageError("no checkpoint given (ltlab import CHECKPOINT... --dataset SPEC --out RUN.h5)");
    const auto dataset = args.value("dataset"), out = args.value("out");
    if (!dataset) throw UsageError("missing --dataset SPEC");
    if (!out) throw UsageError("missing --out RUN.h5");
    c.data.dataset = *dataset;
    readModelOptions(args, c);
    c.data.seed = static_cast<std::uint64_t>(args.integer("seed", 0).value_or(0));
    c.data.paper_split = args.flag("paper-split");
    c.data.val_per_class = args.integer("val-per-class", 0).value_or(20);
    c.splits = commaList(args.value("splits").value_or(""));
    if (const auto counts = args.value("counts")) c.counts = readCounts(*counts);
    c.out = *out;
    c.overwrite = args.flag("overwrite");
    c.logits = args.flag("logits");
    c.max_per_class = args.integer("max-per-class", 1).value_or(-1);
    return c;
}

} // namespace

void readModelOptions(const cli::Args& args, ImportConfig& c) {
    c.data.data_dir = args.value("data-dir").value_or("");
    c.data.device = args.choice("device", {"auto", "cpu", "cuda"}, "auto");
    c.data.threads = static_cast<int>(args.integer("threads", 1).value_or(0));
    c.data.imbalance = args.number("imbalance").value_or(100.0);
    c.arch = args.value("arch").value_or("auto");
    if (const auto v = args.value("mean")) c.mean = floatList("mean", *v);
    if (const auto v = args.value("std")) c.std = floatList("std", *v);
    if (const auto v = args.integer("resize", 1)) c.resize = *v;
    if (const auto v = args.integer("crop", 1)) c.crop = *v;
    c.features_module = args.value("features-module").value_or("");
    c.classifier = args.value("classifier").value_or("");
}

int runImport(const std::vector<std::string>& argv) {
    return guarded("import", [&] {
        const cli::Args args(kOptions, argv);
        if (args.flag("help")) {
            std::cout << kHelp << args.optionsHelp();
            return kExitOk;
        }
        const ImportConfig config = configFrom(args);
        std::unique_ptr<Importer> importer = loadImporter();
        const bool json = args.flag("progress-json");
        const ImportSummary s = importer->import(config, json ? jsonCallbacks() : humanCallbacks());
        std::ostream& out = json ? std::cerr : std::cout;
        out << "run: " << s.out_path << " (" << s.snapshots.size() << " snapshot" << (s.snapshots.size() == 1 ? "" : "s") << ", "
            << s.architecture << ")\n";
        for (const auto& snap : s.snapshots)
            out << "  " << snap.snapshot << (snap.epoch ? " (epoch " + std::to_string(*snap.epoch) + ")" : "") << ": " << snap.split
                << " accuracy (balanced) " << percent(snap.accuracy) << "\n";
        char rate[160];
        std::snprintf(rate, sizeof rate, "evaluated %lld images in %.2f s (%.1f images/s)\n", static_cast<long long>(s.images),
                      s.eval_seconds, s.eval_seconds > 0 ? double(s.images) / s.eval_seconds : 0.0);
        out << rate;
        return kExitOk;
    });
}

} // namespace ltlab::app
