// `ltlab synth`: a synthetic long-tailed run file for demos, tests and benchmarks.

#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "ltlab/runtime.h"
#include "ltlab/synthetic.h"

namespace ltlab::app {

int runSynth(const std::vector<std::string>& argv) {
    return guarded("synth", [&] {
        const cli::Args args({{"out", "FILE", "run file to write (required)"},
                              {"classes", "C", "number of classes (default 10)"},
                              {"dim", "D", "feature dimension (default 64)"},
                              {"imbalance", "IF", "imbalance factor n_max / n_min (default 100)"},
                              {"max-per-class", "N", "training samples of the largest class (default 500)"},
                              {"train-total", "N", "scale the profile to exactly N training samples"},
                              {"test-per-class", "N", "balanced test split size per class (default 100; 0: none)"},
                              {"val-per-class", "N", "balanced val split size per class (default 0: none)"},
                              {"train-cap", "N", "store at most N train features per class"},
                              {"snapshots", "E", "epochs to write, collapsing progressively (default 1)"},
                              {"noise", "X", "within-class spread at the first epoch (default 1)"},
                              {"collapse", "X", "fraction of the spread gone by the last epoch (default 0.7)"},
                              {"tail-norm-ratio", "X", "||w_tail|| / ||w_head|| (default 0.5)"},
                              {"seed", "S", "random seed (default 0)"},
                              {"logits", "", "also store logits"},
                              {"float64", "", "store float64 instead of float32"},
                              {"no-history", "", "do not analyse each epoch into /history"},
                              {"threads", "N", "threads for the numerics (default: all cores)"},
                              {"help", "", "show this help"}},
                             argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab synth --out FILE [options]\n\n"
                         "Writes a synthetic long-tailed run: class means moving towards a simplex ETF\n"
                         "inside a cone, shrinking within-class noise and a classifier whose norms\n"
                         "fall from head to tail, with n_i = round(n_max IF^(-i/(C-1))).\n\n"
                      << args.optionsHelp();
            return kExitOk;
        }
        if (!args.positional().empty())
            throw UsageError("unexpected argument '" + args.positional()[0] + "'");
        const auto out = args.value("out");
        if (!out) throw UsageError("missing --out FILE (see --help)");
        SynthConfig cfg;
        cfg.classes = args.integer("classes", 2).value_or(cfg.classes);
        cfg.dim = args.integer("dim", 1).value_or(cfg.dim);
        cfg.imbalance = args.number("imbalance").value_or(cfg.imbalance);
        if (cfg.imbalance < 1) throw UsageError("--imbalance must be at least 1");
        cfg.max_per_class = args.integer("max-per-class", 1).value_or(cfg.max_per_class);
        cfg.train_total = args.integer("train-total", cfg.classes).value_or(0);
        cfg.test_per_class = args.integer("test-per-class", 0).value_or(cfg.test_per_class);
        cfg.val_per_class = args.integer("val-per-class", 0).value_or(cfg.val_per_class);
        cfg.stored_train_cap = args.integer("train-cap", 1).value_or(-1);
        cfg.snapshots = args.integer("snapshots", 1).value_or(cfg.snapshots);
        cfg.noise = args.number("noise").value_or(cfg.noise);
        cfg.collapse = args.number("collapse").value_or(cfg.collapse);
        if (cfg.noise < 0 || cfg.collapse < 0 || cfg.collapse > 1)
            throw UsageError("--noise must be >= 0 and --collapse in [0, 1]");
        cfg.norm_tail_ratio = args.number("tail-norm-ratio").value_or(cfg.norm_tail_ratio);
        if (cfg.norm_tail_ratio <= 0) throw UsageError("--tail-norm-ratio must be positive");
        cfg.seed = static_cast<std::uint64_t>(args.integer("seed", 0).value_or(0));
        cfg.store_logits = args.flag("logits");
        cfg.float64 = args.flag("float64");
        cfg.history = !args.flag("no-history");
        initNumericRuntime(static_cast<int>(args.integer("threads", 1).value_or(0)));
        writeSyntheticRun(*out, cfg);
        return kExitOk;
    });
}

} // namespace ltlab::app
