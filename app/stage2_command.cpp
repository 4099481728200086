// `ltlab stage2 RUN.h5 --snapshot NAME --out RUN.h5`: weight balancing's
// stage 2 on a snapshot's frozen train features, without libtorch (core's
// Stage2Trainer), written as a new snapshot and analysed like `ltlab analyze`.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "ltlab/analysis.h"
#include "ltlab/analysis_report.h"
#include "ltlab/run_file.h"
#include "ltlab/runtime.h"
#include "ltlab/stage2.h"

namespace ltlab::app {

namespace {

bool onOff(const cli::Args& args, const std::string& name, bool fallback) {
    const auto text = args.value(name);
    if (!text) return fallback;
    if (*text == "on" || *text == "true") return true;
    if (*text == "off" || *text == "false") return false;
    throw UsageError("--" + name + " must be on or off, got '" + *text + "'");
}

std::string percent(const Nullable& v) {
    if (!v) return "n/a";
    char b[32];
    std::snprintf(b, sizeof b, "%.2f %%", 100.0 * *v);
    return b;
}

std::string number(const Nullable& v) {
    if (!v) return "n/a";
    char b[32];
    std::snprintf(b, sizeof b, "%.4f", *v);
    return b;
}

Analysis analyzeSplit(const Stage2Source& src, const SplitData& split, const ClassifierInput& classifier,
                      const std::string& snapshot, std::optional<std::int64_t> epoch) {
    Analysis a = analyze(MemorySource(split.features, split.labels), classifier, src.options);
    a.snapshot = snapshot;
    a.split = split.name;
    a.epoch = epoch;
    return a;
}

} // namespace

int runStage2(const std::vector<std::string>& argv) {
    return guarded("stage2", [&] {
        const cli::Args args(
            {{"snapshot", "NAME", "the snapshot to start from (default: the last); needs train features"},
             {"out", "FILE", "run file to write: RUN.h5 itself (appends) or a new file (a copy with the snapshot)"},
             {"name", "SNAP", "name of the new snapshot (default: <snapshot>_stage2, then _stage2_2, ...)"},
             {"overwrite", "", "replace an existing --out file or a snapshot of the same name"},
             {"loss", "cb|cb-bce|ce", "cb: the ICLR code's class-balanced CE (default); cb-bce: the CVPR code's BCE; ce"},
             {"cb-beta", "B", "effective-number beta of the class-balanced weights (default 0.9999)"},
             {"cb-reduction", "MODE", "batch (the papers' mean_i w_y CE_i, default) or weight-sum (/ sum_i w_y)"},
             {"weight-decay", "X", "stage-2 weight decay lambda of lambda/2 (||W||^2 + ||b||^2) (default 0.1)"},
             {"maxnorm", "on|off", "MaxNorm projection of the classifier rows (default on)"},
             {"maxnorm-threshold", "F", "MaxNorm threshold factor: min + F (max - min) of the start's norms (default 0.1)"},
             {"maxnorm-per-epoch", "true|false", "project once per epoch (the released code) instead of every step"},
             {"epochs", "N", "stage-2 epochs (default 10)"},
             {"lr", "X", "learning rate, cosine-annealed to 0 over the epochs (default 0.01)"},
             {"momentum", "M", "SGD momentum (default 0.9)"},
             {"batch-size", "N", "default 64"},
             {"seed", "N", "shuffling seed (default: the run's seed, else 0)"},
             {"from-zero", "", "start from W = 0, b = 0 instead of the snapshot's classifier"},
             {"freeze-bias", "", "keep the bias as it starts (not trained, not decayed)"},
             {"format", "FORMAT", "text (default) or json (the analysis of the new snapshot, as ltlab analyze)"},
             {"threads", "N", "threads for the numerics (default: all cores)"},
             {"help", "", "show this help"}},
            argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab stage2 RUN.h5 [--snapshot NAME] --out RUN.h5 [options]\n\n"
                         "Weight balancing's stage 2 without a network: retrains the linear classifier\n"
                         "on the snapshot's frozen train features (class-balanced loss, weight decay,\n"
                         "MaxNorm, SGD with momentum, cosine learning rate), in float64, and writes the\n"
                         "result as a new snapshot (atomically) with its settings in the snapshot's\n"
                         "'config' attribute. Options not given come from the run's training\n"
                         "configuration (its stage2_* keys, lr, batch_size, seed) when ltlab train wrote\n"
                         "it, else from the wb recipe's defaults. Prints the new snapshot's analysis.\n\n"
                      << args.optionsHelp()
                      << "\nExit status: 0 success, 1 usage error, 2 unreadable or invalid input, 3 diverged.\n";
            return kExitOk;
        }
        if (args.positional().size() != 1)
            throw UsageError(args.positional().empty() ? "missing RUN.h5 (see --help)"
                                                       : "expected one RUN.h5, got " +
                                                             std::to_string(args.positional().size()));
        const auto out = args.value("out");
        if (!out) throw UsageError("missing --out RUN.h5 (the input file itself appends the snapshot)");
        const std::string in = args.positional()[0];
        const std::string format = args.choice("format", {"text", "json"}, "text");
        initNumericRuntime(static_cast<int>(args.integer("threads", 1).value_or(0)));
        std::error_code ec;
        const bool same = std::filesystem::exists(*out, ec) && std::filesystem::exists(in, ec) &&
                          std::filesystem::equivalent(*out, in, ec);
        if (!same && std::filesystem::exists(*out, ec) && !args.flag("overwrite"))
            throw UsageError(*out + " exists; pass --overwrite to replace it, or --out " + in + " to append");

        // The options, checked at the door (before the run file is read), then
        // laid over the settings that the run's configuration gives.
        auto apply_options = [&args](Stage2Settings& s) {
            if (args.value("loss")) s.loss = parseStage2Loss(args.choice("loss", {"cb", "cb-bce", "ce"}, "cb"));
            if (const auto v = args.number("cb-beta")) s.cb_beta = *v;
            if (const auto v = args.value("cb-reduction")) s.cb_reduction = parseCbReduction(*v);
            if (const auto v = args.number("weight-decay")) s.weight_decay = *v;
            s.maxnorm = onOff(args, "maxnorm", s.maxnorm);
            if (const auto v = args.number("maxnorm-threshold")) s.maxnorm_factor = *v;
            s.maxnorm_per_epoch = onOff(args, "maxnorm-per-epoch", s.maxnorm_per_epoch);
            if (const auto v = args.integer("epochs", 1)) s.epochs = *v;
            if (const auto v = args.number("lr")) s.lr = *v;
            if (const auto v = args.number("momentum")) s.momentum = *v;
            if (const auto v = args.integer("batch-size", 1)) s.batch_size = *v;
            if (const auto v = args.integer("seed", 0)) s.seed = static_cast<std::uint64_t>(*v);
            if (args.flag("from-zero")) s.from_zero = true;
            if (args.flag("freeze-bias")) s.train_bias = false;
            s.validate();
        };
        Stage2Settings door;
        apply_options(door);

        Stage2Source src = loadStage2Source(in, args.value("snapshot"));
        bool from_config = false;
        Stage2Settings s = stage2SettingsFor(src, &from_config);
        apply_options(s);

        std::vector<std::string> taken;
        {
            const auto target = RunFile::open(same ? *out : in); // closed again before writing
            for (const auto& n : target->snapshots()) taken.push_back(n.name);
        }
        const std::string name = args.value("name").value_or(defaultStage2SnapshotName(src, taken));

        std::cerr << "ltlab stage2: " << src.train_rows << " train rows of " << src.path << ":/snapshots/"
                  << src.snapshot.name << " (" << src.classifier.weight.rows() << " classes, "
                  << src.classifier.weight.cols() << "-d features); settings from "
                  << (from_config ? "the run's training configuration" : "the wb recipe's defaults")
                  << " and the options\n";
        if (src.trainIsSample())
            std::cerr << "ltlab stage2: note: the train split holds " << src.train_rows << " of the "
                      << src.training_set_size << " training samples (a sample"
                      << (src.train_feature_cap ? ", train_feature_cap " + std::to_string(*src.train_feature_cap) +
                                                      " per class"
                                                : std::string())
                      << "): stage 2 runs on that sample, not on the full training set; the class-balanced "
                         "weights use the full counts (/classes/train_counts). ltlab train --train-feature-cap -1 "
                         "stores every sample.\n";

        const auto train = src.split("train");
        Stage2Trainer trainer(train->features, train->labels, src.classes.train_counts);
        Stage2Result result;
        try {
            result = trainer.run(src.classifier, s);
        } catch (const Stage2Diverged& e) {
            std::cerr << "ltlab stage2: " << e.what() << "\n";
            return 3;
        }
        const SnapshotData snap = stage2Snapshot(src, s, result, name);
        writeStage2Snapshot(src, *out, snap, args.flag("overwrite"));

        const SplitData* eval = src.split("test") ? src.split("test") : src.split("val") ? src.split("val") : train;
        const Analysis before = analyzeSplit(src, *eval, src.classifier, src.snapshot.name, src.snapshot.epoch);
        const Analysis after = analyzeSplit(src, *eval, result.classifier, name, snap.epoch);
        char line[512];
        std::snprintf(line, sizeof line, "stage 2: %lld epochs in %.3f s, final train loss %.4f%s\n",
                      static_cast<long long>(s.epochs), result.seconds, result.epochs.back().loss,
                      result.maxnorm_threshold ? (", MaxNorm threshold " + number(result.maxnorm_threshold)).c_str() : "");
        std::string header = std::string(line) + "snapshot: " + name + " in " + *out + "\n" + snap.label + "\n" +
                             eval->name + " accuracy (balanced): " + percent(before.accuracy) + " -> " +
                             percent(after.accuracy) + "; few " + percent(before.accuracy_few) + " -> " +
                             percent(after.accuracy_few) + "; implicit tau " + number(before.implicit_la_tau) +
                             " -> " + number(after.implicit_la_tau) + "\n";
        if (format == "json") {
            std::cerr << header;
            std::cout << analysisToJson(after);
        } else {
            std::cout << header << "\n" << analysisToText(after, src.classes);
        }
        return kExitOk;
    });
}

} // namespace ltlab::app
