// `ltlab figures RUN.h5 --out DIR`: the workbench's figures, written without
// a window, by the UI module (which is loaded only here and for the GUI).

#include <dlfcn.h>

#include <cmath>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "ltlab/modules.h"

namespace ltlab::app {

int runFigures(const std::vector<std::string>& argv) {
    return guarded("figures", [&]() -> int {
        const cli::Args args({{"out", "DIR", "folder for the figures (created; required)"},
                              {"snapshot", "NAME", "snapshot (default: the last by epoch)"},
                              {"split", "SPLIT", "train, val or test (default: test, else val, else train)"},
                              {"format", "LIST", "comma-separated: pdf,png,svg (default pdf,png)"},
                              {"dpi", "N", "PNG resolution (default 300)"},
                              {"samples-per-class", "N", "3D view: a seeded sample of N features per class (default 0)"},
                              {"size", "SIZE", "column (3.5 in wide, the default) or page (7 in): every figure"},
                              {"baseline", "OTHER.h5", "a run with the same classes: per-class accuracy against it"},
                              {"baseline-snapshot", "NAME", "the baseline's snapshot (default: its last)"},
                              {"weight-decay", "LAMBDA", "lambda of per_class_loss's penalty (default: the run's recorded)"},
                              {"help", "", "show this help"}},
                             argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab figures RUN.h5 --out DIR [options]\n\n"
                         "Writes every 2D view of a snapshot (weight norms, logit adjustment, training\n"
                         "curves, cone effect, per-class accuracy) and the papers' figure set as vector\n"
                         "PDF/SVG (pdflatex accepts the PDFs) or PNG, each with the data behind it as CSV,\n"
                         "and the text report, sized for one column (--size column, 3.5 in) or the page\n"
                         "(--size page, 7 in). No display is needed for these. The 3D geometry view is\n"
                         "written too (PNG, and PDF/SVG with the scene as a raster image) when an X server\n"
                         "is there: VTK renders only through X, so on a headless machine run\n"
                         "`xvfb-run -a ltlab figures ...`. Definitions: docs/analysis.md (Figure set).\n\n"
                         "Files written into DIR (FMT: each of --format):\n"
                         "  report.txt, report.json            the engine's report (as ltlab analyze)\n"
                         "  weight_norms.FMT, .csv             per-class ||w_c|| (and biases), head to tail\n"
                         "  logit_adjustment.FMT, .csv         balanced accuracy against tau (the LA sweep)\n"
                         "  logit_adjustment_implicit.FMT, .csv  log||w_c|| against -log pi_c, the implicit-tau fit\n"
                         "  logit_adjustment_per_class.csv     per-class accuracy at each tau\n"
                         "  cone.FMT, .csv                     pairwise-cosine histograms, same / different class\n"
                         "  cone_class_means.FMT, .csv         cosines between the class means (heatmap)\n"
                         "  per_class.FMT, .csv                per-class accuracy with the training counts\n"
                         "  per_class_confusion.FMT, .csv      the row-normalised confusion matrix\n"
                         "  training_curves.FMT, .csv          the run's /history (when it has one)\n"
                         "  layers.FMT, .csv                   layer-wise cosine mean +- std per /layers group; the CSV: every\n"
                         "                                     statistic of every layer (when the run has /layers)\n"
                         "  weight_norm_evolution.FMT, .csv    ||w_c||: epochs x classes (snapshots or /history)\n"
                         "  features_cos_sim.FMT, .csv         class x class mean cosine of sample pairs\n"
                         "  features_weights_cos_sim.FMT, .csv class x class mean cos(h_i, w_c')\n"
                         "  features_weights_norm.FMT, .csv    class x class mean ||h_i|| ||w_c'||\n"
                         "  weights_cos_sim.FMT, .csv          class x class cos(w_c, w_c')\n"
                         "  features_norms.FMT, .csv           per-class mean feature norm\n"
                         "  per_class_loss.FMT, .csv           per-class mean cross-entropy and (lambda/2)(||w_c||^2 + b_c^2)\n"
                         "  per_class_vs_baseline.FMT, .csv    per-class accuracy against --baseline, with the counts\n"
                         "  confusion_grouped.FMT, .csv        confusion in many / medium / few, rows normalised\n"
                         "  geometry.FMT, .csv                 the 3D class-mean geometry (needs an X server)\n\n"
                      << args.optionsHelp();
            return kExitOk;
        }
        if (args.positional().size() != 1) throw UsageError("expected one RUN.h5 (see --help)");
        const auto out = args.value("out");
        if (!out) throw UsageError("missing --out DIR");
        const std::string formats = args.value("format").value_or("pdf,png");
        std::string list = formats + ",";
        for (std::size_t start = 0, comma; (comma = list.find(',', start)) != std::string::npos; start = comma + 1) {
            const std::string f = list.substr(start, comma - start);
            if (f != "pdf" && f != "png" && f != "svg")
                throw UsageError("unknown format '" + f + "' (pdf, png, svg)");
        }
        if (auto split = args.value("split")) args.choice("split", {"train", "val", "test"}, "");
        const std::string size = args.choice("size", {"column", "page"}, "column");
        const auto weight_decay = args.number("weight-decay");
        if (weight_decay && !(*weight_decay >= 0 && std::isfinite(*weight_decay)))
            throw UsageError("--weight-decay must be a finite number >= 0");
        const auto baseline = args.value("baseline"), baseline_snapshot = args.value("baseline-snapshot");
        if (baseline_snapshot && !baseline) throw UsageError("--baseline-snapshot needs --baseline OTHER.h5");
        const double dpi = static_cast<double>(args.integer("dpi", 10).value_or(300));
        void* module = loadModule("libltlab_ui.so");
        const auto samples = args.integer("samples-per-class", 0).value_or(0);
        using Entry = int (*)(const char*, const char*, const char*, const char*, const char*, double, long long,
                              const char*, const char*, const char*, double);
        auto entry = reinterpret_cast<Entry>(dlsym(module, "ltlab_ui_figures"));
        if (!entry) throw UsageError("libltlab_ui.so has no ltlab_ui_figures");
        const auto snapshot = args.value("snapshot"), split = args.value("split");
        return entry(args.positional()[0].c_str(), snapshot ? snapshot->c_str() : nullptr,
                     split ? split->c_str() : nullptr, out->c_str(), formats.c_str(), dpi,
                     static_cast<long long>(samples), baseline ? baseline->c_str() : nullptr,
                     baseline_snapshot ? baseline_snapshot->c_str() : nullptr, size.c_str(),
                     weight_decay ? *weight_decay : std::nan(""));
    });
}

} // namespace ltlab::app
