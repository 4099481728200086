// `ltlab layers MODEL|RUN.h5`: the layer-wise analysis (cone effect, FDR,
// sparsity, batch norm per layer) through the libtorch module
// (ltlab/layers.h; definitions in docs/analysis.md, "Layer-wise analysis").

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "commands.h"
#include "ltlab/layers.h"

namespace ltlab::app {

namespace {

using Json = nlohmann::ordered_json;

const std::vector<cli::OptionSpec> kOptions{
    {"inputs", "KIND", "noise (a seeded N(0,1) batch of the model's input shape, no labels) or train, val, test "
                       "(a seeded class-stratified batch of that split); default noise"},
    {"samples", "N", "batch size (default 2000)"},
    {"seed", "S", "seed of the noise, of the stratified rows and of --init's weights (default 0)"},
    {"init", "", "the same architecture at seeded initialisation instead of the trained weights"},
    {"blocks", "", "after every residual block instead of every stage"},
    {"standardize", "", "standardise each feature over the batch first: (h - mean) / (2 std + 1e-6)"},
    {"flat-fdr", "", "also the FDR of the flattened maps (sample-space pseudo-inverse when D > N; slower)"},
    {"format", "FMT", "text (default) or json (one object per layer, input first)"},
    {"out", "RUN.h5", "store the results in this run file under /layers/<name> (docs/run-format.md)"},
    {"name", "NAME", "the group name under /layers (default <inputs>_<trained|init>[_blocks][_std])"},
    {"snapshot", "NAME", "RUN.h5 of an import: the source checkpoint of this snapshot (default: the last)"},
    {"dataset", "SPEC", "MODEL: the dataset (as ltlab import), needed for --inputs train|val|test"},
    {"data-dir", "DIR", "the dataset's files"},
    {"arch", "NAME", "MODEL: auto (detected) or a built-in architecture, as ltlab import"},
    {"imbalance", "IF", "-lt datasets: imbalance factor (default 100)"},
    {"mean", "LIST", "MODEL: normalisation mean per channel"},
    {"std", "LIST", "MODEL: normalisation standard deviation per channel"},
    {"resize", "N", "MODEL: resize the shorter side to N"},
    {"crop", "N", "MODEL: centre crop N x N (also the noise's size)"},
    {"features-module", "NAME", "TorchScript: the submodule whose output are the features"},
    {"classifier", "NAME", "TorchScript: the classifier's submodule"},
    {"device", "NAME", "auto, cpu or cuda (default auto)"},
    {"threads", "N", "default: all cores"},
    {"help", "", "show this help"}};

constexpr const char* kHelp =
    "Usage: ltlab layers MODEL|RUN.h5 [--inputs noise|train|val|test] [--samples N] [--seed S]\n"
    "                    [--init] [--blocks] [--standardize] [--flat-fdr] [--format text|json] [--out RUN.h5]\n\n"
    "Features after every top-level block (input, stem, each stage or residual block, pooled\n"
    "features) of a model in eval mode, and per layer: the mean and std of the pairwise cosine\n"
    "of the flattened maps (same and different class with labels), FDR and ReLU-FDR of the\n"
    "channel-pooled features, tr S_W, tr S_B and their ratio, the mean and variance of the\n"
    "entries, the Hoyer sparsity of |h|, and gamma/beta of the block's batch normalisations.\n"
    "Noise has no labels: the statistics that need them are null. One layer is held at a time.\n"
    "RUN.h5: a run of ltlab train (its checkpoint RUN.h5.ckpt) or of ltlab import (its recorded\n"
    "source); MODEL: a checkpoint as ltlab import takes it. Definitions: docs/analysis.md.\n"
    "Exit status: 0 done, 1 usage error, 2 bad input.\n\n";

LayersConfig configFrom(const cli::Args& args) {
    if (args.positional().size() != 1) throw UsageError("give one MODEL or RUN.h5 (ltlab layers --help)");
    LayersConfig c;
    c.path = args.positional().front();
    c.inputs = args.choice("inputs", {"noise", "train", "val", "test"}, "noise");
    c.samples = args.integer("samples", 2).value_or(2000);
    c.seed = static_cast<std::uint64_t>(args.integer("seed", 0).value_or(0));
    c.init = args.flag("init");
    c.blocks = args.flag("blocks");
    c.stats.standardize = args.flag("standardize");
    c.stats.flat_fdr = args.flag("flat-fdr");
    c.snapshot = args.value("snapshot").value_or("");
    ImportConfig& m = c.model;
    m.data.dataset = args.value("dataset").value_or("");
    m.data.seed = c.seed;
    readModelOptions(args, m); // as ltlab import reads them
    return c;
}

Json layerJson(const LayerStats& s) {
    Json j{{"name", s.name}, {"dimension", s.dimension}, {"channels", s.channels}, {"samples", s.samples},
           {"bn_layers", s.bn_layers}};
    for (const auto& [key, member] : layerStatisticFields()) {
        const Nullable& v = s.*member;
        j[key] = v && std::isfinite(*v) ? Json(*v) : Json(nullptr);
    }
    return j;
}

std::string cell(const Nullable& v) {
    if (!v || !std::isfinite(*v)) return "-";
    char b[32];
    std::snprintf(b, sizeof b, "%.4g", *v);
    return b;
}

void printText(const LayerRun& run) {
    std::cout << run.architecture << ", " << run.weights << " weights (" << run.source << "), " << run.samples << " "
              << run.inputs << " inputs, seed " << run.seed << (run.standardize ? ", standardised" : "") << "\n";
    char line[512];
    std::snprintf(line, sizeof line, "%-12s %8s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n", "layer", "dim", "cos", "cos_std",
                  "cos_same", "cos_diff", "fdr", "relu_fdr", "trSB/trSW", "mean", "var", "hoyer");
    std::cout << line;
    for (const LayerStats& s : run.layers) {
        std::snprintf(line, sizeof line, "%-12s %8lld %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n", s.name.c_str(),
                      static_cast<long long>(s.dimension), cell(s.cone_mean_cos).c_str(), cell(s.cone_std_cos).c_str(),
                      cell(s.cone_mean_cos_same_class).c_str(), cell(s.cone_mean_cos_diff_class).c_str(), cell(s.fdr).c_str(),
                      cell(s.relu_fdr).c_str(), cell(s.trace_ratio).c_str(), cell(s.feature_mean).c_str(),
                      cell(s.feature_var).c_str(), cell(s.hoyer_sparsity).c_str());
        std::cout << line;
        if (s.bn_layers > 0)
            std::cout << "             batch norm (" << s.bn_layers << "): gamma " << cell(s.bn_gamma_mean) << " +- "
                      << cell(s.bn_gamma_std) << ", beta " << cell(s.bn_beta_mean) << " +- " << cell(s.bn_beta_std) << "\n";
        if (run.flat_fdr)
            std::cout << "             flattened: fdr " << cell(s.flat_fdr) << ", relu_fdr " << cell(s.flat_relu_fdr) << "\n";
    }
}

} // namespace

int runLayers(const std::vector<std::string>& argv) {
    return guarded("layers", [&] {
        const cli::Args args(kOptions, argv);
        if (args.flag("help")) {
            std::cout << kHelp << args.optionsHelp();
            return kExitOk;
        }
        const LayersConfig config = configFrom(args);
        const std::string format = args.choice("format", {"text", "json"}, "text");
        std::unique_ptr<LayerAnalyzer> analyzer = loadLayerAnalyzer();
        LayersCallbacks cb;
        cb.log = [](const std::string& s) { std::cerr << s << "\n"; };
        cb.layer = [](const LayerStats& s) { std::cerr << "  " << s.name << " (" << s.dimension << ") done\n"; };
        LayerRun run = analyzer->analyze(config, cb);
        if (const auto name = args.value("name")) run.name = *name;
        if (format == "json") {
            Json layers = Json::array();
            for (const LayerStats& s : run.layers) layers.push_back(layerJson(s));
            std::cout << layers.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n"; // names need not be UTF-8
        } else {
            printText(run);
        }
        if (const auto out = args.value("out")) {
            writeLayerResults(*out, run);
            std::cerr << "stored in " << *out << ": /layers/" << run.name << "\n";
        }
        return kExitOk;
    });
}

} // namespace ltlab::app
