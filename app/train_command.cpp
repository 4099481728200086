// `ltlab train` and `ltlab recipes`: training through the libtorch module,
// which is loaded here and nowhere else on the command line.

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "commands.h"
#include "ltlab/input_file.h"
#include "ltlab/posthoc.h"
#include "ltlab/run_checkpoint.h"
#include "ltlab/run_file.h"
#include "ltlab/run_writer.h"
#include "ltlab/training.h"

namespace ltlab::app {

namespace {

TrainingControl* g_control = nullptr;
extern "C" void onInterrupt(int) {
    if (g_control) g_control->cancelled = true; // stops between batches; finished epochs stay in the file
}

std::string dashed(std::string key) {
    for (char& ch : key)
        if (ch == '_') ch = '-';
    return key;
}

// Every configuration key is also an option: weight_decay is --weight-decay.
std::vector<std::string> configKeys() {
    std::vector<std::string> keys;
    const nlohmann::json config = nlohmann::json::parse(TrainConfig().toJson());
    for (const auto& item : config.items()) keys.push_back(item.key());
    return keys;
}

std::string percent(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f %%", 100.0 * v);
    return b;
}

// `--resume RUN --epochs N` (`--stage2-epochs N`): the run continues to N
// epochs. Its cosine schedule is recomputed for the new total from the next
// epoch on (the epochs done keep the rates they had); the stage-end snapshot
// of the old total becomes an ordinary epoch_NNNN one, and what was derived
// from it (the _la snapshot) is made again at the new end. The config records
// the new totals and, under "extended", each extension.
void extendRun(const std::string& run, const RunFile& file, TrainConfig& config, std::optional<std::int64_t> epochs,
               std::optional<std::int64_t> stage2_epochs) {
    const bool wb = config.recipe == "wb";
    if (stage2_epochs && !wb) throw UsageError("--stage2-epochs: only the wb recipe has a stage 2");
    const std::int64_t old1 = config.epochs, old2 = wb ? config.stage2_epochs : 0;
    const std::int64_t new1 = epochs.value_or(old1), new2 = stage2_epochs.value_or(old2);
    if (new1 < old1 || new2 < old2)
        throw UsageError(run + " has " + std::to_string(old1) + (wb ? " + " + std::to_string(old2) : std::string()) +
                         " epochs: --resume extends a run, it never cuts one (use a snapshot of it instead)");
    if (new1 == old1 && new2 == old2) return;
    const auto history = file.history();
    const std::int64_t done = history ? history->numEpochs() : 0;
    if (wb && new1 > old1 && done > old1)
        throw UsageError(run + ": stage 1 ended at epoch " + std::to_string(old1) + " and stage 2 has begun, so stage 1 "
                         "cannot grow; extend stage 2 with --stage2-epochs, or train stage 2 anew on a longer stage 1");
    // The snapshots that ended the old stage and are no longer its end.
    std::vector<std::pair<std::string, std::int64_t>> renamed; // name, its epoch
    std::vector<std::string> removed;
    auto stale = [&](const std::string& name, std::int64_t epoch) {
        for (const SnapshotInfo& s : file.snapshots()) {
            if (s.name == name && s.epoch == epoch) renamed.emplace_back(name, epoch);
            if (s.name == name + "_la") removed.push_back(s.name);
        }
    };
    if (new1 > old1 && done >= old1) stale(wb ? "stage1_final" : "final", old1);
    if (wb && new2 > old2 && done >= old1 + old2) stale("stage2_final", old1 + old2);
    nlohmann::json record = nlohmann::json::parse(*file.config(), nullptr, false);
    nlohmann::json extended = record.is_object() && record.contains("extended") && record["extended"].is_array()
                                  ? record["extended"] : nlohmann::json::array();
    nlohmann::json entry{{"after_epoch", done}, {"epochs", {old1, new1}}};
    if (wb) entry["stage2_epochs"] = {old2, new2};
    extended.push_back(entry);
    config.epochs = new1;
    config.stage2_epochs = wb ? new2 : config.stage2_epochs;
    nlohmann::json updated = nlohmann::json::parse(config.toJson());
    updated["extended"] = extended;
    updateRunFile(run, [&](RunFileWriter& writer) {
        for (const auto& name : removed) writer.removeSnapshot(name);
        for (const auto& [name, epoch] : renamed) {
            char epoch_name[32];
            std::snprintf(epoch_name, sizeof epoch_name, "epoch_%04lld", static_cast<long long>(epoch));
            writer.renameSnapshot(name, epoch_name);
        }
        writer.setConfig(updated.dump());
    });
    std::cerr << "ltlab train: extending " << run << " to " << new1 << (wb ? " + " + std::to_string(new2) : std::string())
              << " epochs after epoch " << done << "; the learning rate follows the cosine schedule of the new total "
              << "from the next epoch on\n";
}

// The la recipe needs no training and no libtorch.
int runPosthoc(const cli::Args& args, const TrainConfig& config, const std::string& out) {
    const auto from = args.value("from");
    if (!from) throw UsageError("recipe la needs --from RUN.h5 (a finished run)");
    if (config.la_mode != "additive" && config.la_mode != "multiplicative")
        throw UsageError("--la-mode must be additive or multiplicative");
    const PosthocResult r = logitAdjustRun(*from, out, args.value("snapshot"), config.tau,
                                           config.la_mode == "additive" ? LogitAdjustmentMode::Additive
                                                                        : LogitAdjustmentMode::Multiplicative);
    std::cout << "run: " << out << "\n"
              << config.la_mode << " logit adjustment tau: " << r.tau << (r.tau_from_val ? " (chosen on val)" : "") << "\n"
              << r.after.split << " accuracy (balanced): " << percent(r.before.accuracy.value_or(NAN)) << " -> "
              << percent(r.after.accuracy.value_or(NAN)) << "; few " << percent(r.before.accuracy_few.value_or(NAN))
              << " -> " << percent(r.after.accuracy_few.value_or(NAN)) << "\n";
    return kExitOk;
}

// Progress for a person: a bar on a terminal, plain lines otherwise (stderr).
TrainingCallbacks humanCallbacks() {
    const bool tty = isatty(STDERR_FILENO);
    TrainingCallbacks callbacks;
    callbacks.log = [](const std::string& s) { std::cerr << s << "\n"; };
    if (tty)
        callbacks.progress = [](double f, const std::string& what) {
            const int width = 30, filled = static_cast<int>(f * width);
            std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ') << "] "
                      << static_cast<int>(100 * f) << "% " << what << "   " << std::flush;
        };
    callbacks.epoch = [tty](const EpochReport& r) {
        char line[256];
        std::snprintf(line, sizeof line, "%sepoch %lld/%lld (stage %d): loss %.4f, train acc %.2f%%, test acc %.2f%% "
                      "(few %.2f%%), FDR %.3g, NC1 %.3g, lr %.4g, %.1f s (data %.1f%%) + %.1f s evaluation%s%s\n",
                      tty ? "\r" : "", static_cast<long long>(r.epoch), static_cast<long long>(r.epochs_total), r.stage,
                      r.train_loss, 100 * r.train_accuracy, 100 * r.test_accuracy,
                      100 * (r.metrics.count("accuracy_few") ? r.metrics.at("accuracy_few") : NAN),
                      r.metrics.count("fdr") ? r.metrics.at("fdr") : NAN, r.metrics.count("nc1") ? r.metrics.at("nc1") : NAN,
                      r.lr, r.seconds, r.seconds > 0 ? 100 * r.data_seconds / r.seconds : 0.0,
                      r.eval_seconds + r.analysis_seconds + r.commit_seconds,
                      r.snapshot ? ", snapshot " : "", r.snapshot ? r.snapshot->c_str() : "");
        std::cerr << line;
    };
    return callbacks;
}

// Progress for a program (the workbench): one JSON object a line on stdout, flushed.
TrainingCallbacks jsonCallbacks() {
    TrainingCallbacks callbacks;
    callbacks.log = [](const std::string& s) {
        std::cout << nlohmann::json{{"event", "log"}, {"message", s}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    };
    callbacks.progress = [last = -1](double f, const std::string& what) mutable {
        const int permille = static_cast<int>(f * 1000);
        if (permille == last) return; // at most a thousand lines a run
        last = permille;
        std::cout << nlohmann::json{{"event", "progress"}, {"fraction", f}, {"what", what}}.dump() << std::endl;
    };
    callbacks.epoch = [](const EpochReport& r) {
        nlohmann::json j{{"event", "epoch"},           {"epoch", r.epoch},
                         {"epochs_total", r.epochs_total}, {"stage", r.stage},
                         {"train_loss", r.train_loss},  {"train_accuracy", r.train_accuracy},
                         {"test_accuracy", r.test_accuracy}, {"seconds", r.seconds},
                         {"metrics", r.metrics},
                         {"timings", {{"train", r.seconds}, {"data", r.data_seconds}, {"features", r.eval_seconds},
                                      {"analysis", r.analysis_seconds}, {"commit", r.commit_seconds}}}};
        if (r.snapshot) j["snapshot"] = *r.snapshot;
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl; // paths need not be UTF-8
    };
    return callbacks;
}

// Runs the trainer with progress (on stderr, or as JSON lines) and the summary on stdout.
int trainAndReport(bool json, const std::function<TrainingSummary(Trainer&, const TrainingCallbacks&, TrainingControl&)>& train) {
    std::unique_ptr<Trainer> trainer = loadTrainer();
    TrainingControl control;
    g_control = &control;
    std::signal(SIGINT, onInterrupt);
    const TrainingCallbacks callbacks = json ? jsonCallbacks() : humanCallbacks();
    TrainingSummary summary;
    try {
        summary = train(*trainer, callbacks, control);
    } catch (const TrainingDiverged& e) {
        std::cerr << "ltlab train: " << e.what() << "\n";
        g_control = nullptr;
        return 3;
    }
    g_control = nullptr;
    std::cout << "run: " << summary.out_path << " (" << summary.epochs_done << " epochs"
              << (summary.cancelled ? ", interrupted" : "") << ")\n";
    if (summary.tau) std::cout << "logit adjustment tau: " << *summary.tau << "\n";
    std::cout << "test accuracy (balanced): " << percent(summary.accuracy) << "; many " << percent(summary.accuracy_many)
              << ", medium " << percent(summary.accuracy_medium) << ", few " << percent(summary.accuracy_few) << "\n";
    return summary.cancelled ? 130 : kExitOk;
}

int trainAndReport(const TrainConfig& config, const std::string& out, bool resume, bool json) {
    return trainAndReport(json, [&](Trainer& t, const TrainingCallbacks& cb, TrainingControl& control) {
        return t.train(config, out, cb, control, resume);
    });
}

} // namespace

int runBenchmarkTraining(const std::vector<std::string>& argv) {
    return guarded("benchmark-training", [&] {
        const cli::Args args({{"model", "NAME", "cnn (1x28x28 input, 10 classes), resnet32 or resnet34 (3x32x32, 100 classes), mlp"},
                              {"batch-size", "N", "default 64"},
                              {"steps", "N", "timed steps after 5 warm-up steps (default 30)"},
                              {"threads", "N", "default: all cores"},
                              {"device", "NAME", "auto, cpu or cuda (default cpu)"},
                              {"help", "", "show this help"}},
                             argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab benchmark-training [options]\n\nTraining throughput (forward, loss, backward, "
                         "SGD step) on random inputs, in images/s.\n\n"
                      << args.optionsHelp();
            return kExitOk;
        }
        const std::string model = args.value("model").value_or("cnn");
        const bool mnist_like = model == "cnn" || model == "mlp";
        const auto batch = args.integer("batch-size", 1).value_or(64);
        const auto steps = args.integer("steps", 1).value_or(30);
        const auto threads = args.integer("threads", 0).value_or(0);
        std::unique_ptr<Trainer> trainer = loadTrainer();
        const double rate = trainer->measureThroughput(model, batch, mnist_like ? 1 : 3, mnist_like ? 28 : 32,
                                                       mnist_like ? 28 : 32, mnist_like ? 10 : 100,
                                                       static_cast<int>(threads), static_cast<int>(steps),
                                                       args.value("device").value_or("cpu"));
        std::cout << "images_per_second: " << rate << "\n";
        return kExitOk;
    });
}

int runRecipes(const std::vector<std::string>& argv) {
    return guarded("recipes", [&] {
        const cli::Args args({{"json", "", "print the defaults as JSON"}, {"help", "", "show this help"}}, argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab recipes [--json]\n\nLists the training recipes and their default settings.\n";
            return kExitOk;
        }
        for (const RecipeInfo& r : recipes()) {
            if (args.flag("json")) {
                std::cout << recipeDefaults(r.name).toJson() << "\n";
                continue;
            }
            std::cout << r.name << "\n  " << r.summary << "\n  settings:";
            for (const auto& s : r.settings) std::cout << " " << s;
            std::cout << "\n";
        }
        return kExitOk;
    });
}

int runTrain(const std::vector<std::string>& argv) {
    return guarded("train", [&] {
        std::vector<cli::OptionSpec> specs{{"recipe", "NAME", "ce, ce-wd, wb, wd-fr-etf or la (post-hoc, with --from); see ltlab recipes"},
                                           {"config", "FILE", "JSON configuration (keys as in ltlab recipes --json)"},
                                           {"out", "FILE", "run file to write (required)"},
                                           {"from", "RUN", "recipe la: the finished run to adjust; wb: stage 2 on RUN's network (RUN.ckpt)"},
                                           {"snapshot", "NAME", "recipe la: the snapshot to adjust (default: the last one not already adjusted); wb: the "
                                                                "stage-1 snapshot to start from (default: the last)"},
                                           {"overwrite", "", "replace an existing run file"},
                                           {"resume", "RUN", "continue RUN.h5 after its last finished epoch; with --epochs N (--stage2-epochs N), "
                                                               "extend it to N epochs"},
                                           {"progress-json", "", "progress as JSON lines on stdout (for the workbench)"}};
        for (const auto& key : configKeys())
            if (key != "recipe") {
                const std::string meaning = configKeyHelp(key);
                specs.push_back({dashed(key), "VALUE", (meaning.empty() ? "" : meaning + "; ") + "config key " + key});
            }
        specs.push_back({"help", "", "show this help"});
        const cli::Args args(specs, argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab train --recipe NAME --out RUN.h5 [--config FILE] [--KEY VALUE ...]\n"
                         "       ltlab train --recipe wb --from RUN.h5 [--snapshot NAME] --out NEW.h5 [stage-2 options]\n\n"
                         "Trains on a long-tailed dataset (default: Fashion-MNIST-LT, IF 100, from Debian's\n"
                         "dataset-fashion-mnist) and writes a run file that grows by one epoch at a time:\n"
                         "history, per-epoch analysis metrics and snapshots. Ctrl-C stops after the current\n"
                         "batch and keeps every finished epoch. Exit status: 0 done, 1 usage error, 2 bad\n"
                         "input, 3 training diverged, 130 interrupted.\n\n"
                      << args.optionsHelp();
            return kExitOk;
        }
        if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
        args.integer("threads", 0); // its range, before any file is opened
        if (const auto run = args.value("resume")) {
            for (const auto& key : configKeys())
                if (args.value(dashed(key)) && key != "threads" && key != "epochs" && key != "stage2_epochs")
                    throw UsageError("--resume continues the run as it was configured; only --threads may change, "
                                     "and --epochs / --stage2-epochs extend it");
            if (args.value("out") || args.value("config") || args.value("recipe"))
                throw UsageError("--resume takes the run file alone");
            const auto file = RunFile::open(*run);
            // The checkpoint is read by libtorch: refuse a FIFO or a device before it blocks there.
            if (std::error_code ignored; std::filesystem::exists(checkpointPath(*run), ignored))
                requireRegularFile(checkpointPath(*run), "checkpoint");
            if (!file->config()) throw InputError(*run, "/", "has no 'config' attribute: not written by ltlab train");
            TrainConfig config;
            try {
                config = TrainConfig::fromJson(*file->config(), TrainConfig());
            } catch (const UsageError& e) {
                throw InputError(*run, "/", std::string("attribute 'config' is not a training configuration: ") + e.what());
            }
            if (const auto threads = args.integer("threads", 0)) config.threads = static_cast<int>(*threads);
            else if (config.threads > cli::maxThreads()) { // recorded on a larger machine
                std::cerr << "ltlab train: the run recorded threads " << config.threads << "; this machine allows at most "
                          << cli::maxThreads() << ": using all cores (pass --threads N to choose)\n";
                config.threads = 0;
            }
            // A run written before cb_reduction existed (issue 9) trained its
            // stage 2 with PyTorch's weighted mean: it continues with that loss.
            const auto recorded = nlohmann::json::parse(*file->config(), nullptr, false);
            if (recorded.is_object() && !recorded.contains("cb_reduction")) {
                config.cb_reduction = "weight-sum";
                if (config.recipe == "wb")
                    std::cerr << "ltlab train: " << *run << " predates cb_reduction: its stage 2 continues with "
                              << "the weight-sum form it was started with\n";
            }
            const auto epochs = args.integer("epochs", 1), stage2_epochs = args.integer("stage2-epochs", 1);
            // The checkpoint is verified (checksum, run id, epoch) before the
            // run file changes in any way (extendRun, or the trainer's cut back).
            const VerifiedCheckpoint checkpoint = verifyRunCheckpoint(*run, checkpointPath(*run));
            if (!checkpoint.exists && file->history() && file->history()->numEpochs() > 0)
                throw InputError(checkpointPath(*run), "", "no checkpoint to resume from (ltlab train keeps one beside the "
                                                           "run while it trains)");
            if (epochs || stage2_epochs) extendRun(*run, *file, config, epochs, stage2_epochs);
            return trainAndReport(config, *run, true, args.flag("progress-json"));
        }
        const auto out = args.value("out");
        if (!out) throw UsageError("missing --out RUN.h5");
        requireOutputFolder(*out); // before the data are loaded
        std::error_code ec;
        if (std::filesystem::exists(*out, ec) && !args.flag("overwrite"))
            throw UsageError("" + *out + " exists; pass --overwrite to replace it");

        // Defaults of the recipe, then the config file, then the options.
        std::string recipe = args.value("recipe").value_or("");
        nlohmann::json file_config = nlohmann::json::object();
        if (auto path = args.value("config")) {
            // Regular files only (a FIFO would block, /dev/zero never ends), at most 16 MB.
            const std::string text = readSmallFile(*path, "config file", 16u << 20);
            try {
                file_config = nlohmann::json::parse(text);
            } catch (const nlohmann::json::exception& e) {
                throw InputError(*path, "", std::string("not valid JSON: ") + e.what());
            }
            if (recipe.empty() && file_config.contains("recipe") && file_config["recipe"].is_string())
                recipe = file_config["recipe"];
        }
        if (recipe.empty()) throw UsageError("missing --recipe (see ltlab recipes)");
        TrainConfig config = recipeDefaults(recipe);
        try {
            config = TrainConfig::fromJson(file_config.dump(), config);
        } catch (const UsageError& e) {
            throw UsageError(args.value("config").value_or("") + ": " + e.what());
        }
        if (config.threads > cli::maxThreads())
            throw UsageError(args.value("config").value_or("") + ": config key threads (--threads) must be at most " +
                             std::to_string(cli::maxThreads()) + " (4 x the cores; 0: all cores), got " +
                             std::to_string(config.threads));
        nlohmann::json overrides = nlohmann::json::object();
        for (const auto& key : configKeys()) {
            const auto text = args.value(dashed(key));
            if (!text || key == "recipe") continue;
            // Numbers, booleans and null as JSON; anything else as a string.
            overrides[key] = nlohmann::json::accept(*text) ? nlohmann::json::parse(*text) : nlohmann::json(*text);
        }
        if (recipe == "wb" && args.value("from")) {
            // Stage 2 on a finished run's network: everything about stage 1 comes from that run.
            if (args.value("config")) throw UsageError("--from takes the run's configuration; give stage-2 options instead of --config");
            if (std::filesystem::exists(*out, ec) && std::filesystem::equivalent(*out, *args.value("from"), ec))
                throw UsageError("--out must differ from --from: the finished run stays as it is");
            if (std::error_code ignored; std::filesystem::exists(checkpointPath(*args.value("from")), ignored))
                requireRegularFile(checkpointPath(*args.value("from")), "checkpoint");
            const Stage2FromPlan plan = planStage2From(*args.value("from"), args.value("snapshot"), overrides.dump());
            std::cerr << "ltlab train: stage 2 from " << *args.value("from") << ", snapshot " << plan.snapshot
                      << " (epoch " << plan.epoch << ")\n";
            return trainAndReport(args.flag("progress-json"), [&](Trainer& t, const TrainingCallbacks& cb, TrainingControl& control) {
                return t.trainStage2From(plan, *args.value("from"), *out, cb, control);
            });
        }
        overrides["recipe"] = recipe;
        config = TrainConfig::fromJson(overrides.dump(), config);

        if (config.recipe == "la") return runPosthoc(args, config, *out);
        if (args.value("from") || args.value("snapshot"))
            throw UsageError("--from and --snapshot belong to the la and wb recipes");

        return trainAndReport(config, *out, false, args.flag("progress-json"));
    });
}

} // namespace ltlab::app
