// `ltlab analyze FILE`: every metric of analysis.md for one snapshot and split.

#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "ltlab/analysis.h"
#include "ltlab/analysis_report.h"
#include "ltlab/run_file.h"
#include "ltlab/runtime.h"

namespace ltlab::app {

int runAnalyze(const std::vector<std::string>& argv) {
    return guarded("analyze", [&] {
        const cli::Args args({{"snapshot", "NAME", "snapshot to analyse (default: the last by epoch)"},
                              {"split", "SPLIT", "train, val or test (default: test, else val, else train)"},
                              {"format", "FORMAT", "text (default) or json"},
                              {"many-threshold", "N", "many-shot classes have more than N training samples (default: the run file's /classes attribute, else 100)"},
                              {"few-threshold", "N", "few-shot classes have fewer than N training samples (default: the run file's, else 20)"},
                              {"threads", "N", "threads for the numerics (default: all cores)"},
                              {"timings", "", "print time, BLAS work and rate on stderr"},
                              {"help", "", "show this help"}},
                             argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab analyze FILE [options]\n\n"
                         "Analyses one snapshot of a run file: neural collapse (NC1-NC4), Fisher's\n"
                         "discriminant ratio, cone-effect statistics, per-class series, shot-group\n"
                         "accuracies and logit adjustment, as defined in the analysis spec.\n\n"
                      << args.optionsHelp()
                      << "\nExit status: 0 success, 1 usage error, 2 unreadable or invalid input.\n";
            return kExitOk;
        }
        if (args.positional().size() != 1)
            throw UsageError(args.positional().empty() ? "missing FILE (see --help)"
                                                       : "expected one FILE, got " +
                                                             std::to_string(args.positional().size()));
        const std::string format = args.choice("format", {"text", "json"}, "text");
        const auto split_name = args.value("split");
        if (split_name) args.choice("split", {"train", "val", "test"}, "");
        const auto many = args.integer("many-threshold", 0);
        const auto few = args.integer("few-threshold", 0);
        initNumericRuntime(static_cast<int>(args.integer("threads", 1).value_or(0)));

        // Opening validates the file (reads of up to a few MiB); the analysis's
        // buffers follow, once the split's shape is known.
        reserveHugePageHeap(std::size_t{16} << 20);
        const auto file = RunFile::open(args.positional()[0]);
        const SnapshotInfo& snapshot =
            args.value("snapshot") ? file->snapshot(*args.value("snapshot")) : file->latestSnapshot();
        const SplitInfo* split = split_name ? snapshot.split(*split_name) : &snapshot.defaultSplit();
        if (!split) {
            std::string present;
            for (const auto& s : snapshot.splits) present += (present.empty() ? "" : ", ") + s.name;
            file->fail(snapshotPath(snapshot), "has no split '" + *split_name + "' (present: " + present + ")");
        }
        reserveHugePageHeap(analysisWorkingSetBytes(split->num_samples, snapshot.feature_dim,
                                                    file->classes().numClasses()));
        const Analysis analysis = analyzeSnapshot(file, snapshot, *split, defaultOptionsFor(*file, many, few));
        if (format == "json")
            std::cout << analysisToJson(analysis);
        else
            std::cout << analysisToText(analysis, file->classes());
        if (args.flag("timings")) {
            std::cerr << "analysis: " << analysis.seconds << " s, " << analysis.blas_flops / 1e9 << " GFLOP in BLAS ("
                      << analysis.blas_flops / 1e9 / analysis.seconds << " GFLOP/s); " << blasDescription()
                      << (analysis.float32_products ? "; float32 products: " + analysis.float32_library : std::string())
                      << "\n";
            for (const auto& [phase, seconds] : analysis.phase_seconds)
                std::cerr << "  " << phase << ": " << seconds << " s\n";
        }
        return kExitOk;
    });
}

} // namespace ltlab::app
