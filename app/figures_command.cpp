// `ltlab figures RUN.h5 --out DIR`: the workbench's figures, written without
// a window, by the UI module (which is loaded only here and for the GUI).

#include <dlfcn.h>

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
                              {"help", "", "show this help"}},
                             argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab figures RUN.h5 --out DIR [options]\n\n"
                         "Writes every 2D view of a snapshot (weight norms, logit adjustment, training\n"
                         "curves, cone effect, per-class accuracy) as vector PDF/SVG (pdflatex accepts the\n"
                         "PDFs) or PNG, each with the data behind it as CSV, and the text report. No display\n"
                         "is needed for these. The 3D geometry view is written too (PNG, and PDF/SVG with the\n"
                         "scene as a raster image) when an X server is there: VTK renders only through X, so\n"
                         "on a headless machine run `xvfb-run -a ltlab figures ...`.\n\n"
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
        const double dpi = static_cast<double>(args.integer("dpi", 10).value_or(300));
        void* module = loadModule("libltlab_ui.so");
        const auto samples = args.integer("samples-per-class", 0).value_or(0);
        using Entry = int (*)(const char*, const char*, const char*, const char*, const char*, double, long long);
        auto entry = reinterpret_cast<Entry>(dlsym(module, "ltlab_ui_figures"));
        if (!entry) throw UsageError("libltlab_ui.so has no ltlab_ui_figures");
        const auto snapshot = args.value("snapshot"), split = args.value("split");
        return entry(args.positional()[0].c_str(), snapshot ? snapshot->c_str() : nullptr,
                     split ? split->c_str() : nullptr, out->c_str(), formats.c_str(), dpi,
                     static_cast<long long>(samples));
    });
}

} // namespace ltlab::app
