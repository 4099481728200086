#pragma once
// Importing users' checkpoints, as the rest of ltlab sees it: evaluate
// PyTorch state_dicts, training checkpoints and TorchScript modules on a
// dataset and write (or extend) a run file with one snapshot per checkpoint
// (docs/checkpoints.md). Implemented by the libtorch module
// (libltlab_train.so), loaded only when something imports. No libtorch types.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ltlab/training.h"

namespace ltlab {

struct ImportConfig {
    std::vector<std::string> checkpoints;  // files or folders of them, any order
    // The dataset: training's names (dataset, data_dir and the long-tailed
    // options are used as `ltlab train` uses them), or folder:DIR, or
    // list:[SPLIT=]FILE[,...] (data_dir: the lists' root). Also seed, threads, device.
    TrainConfig data;
    std::string arch = "auto";             // or resnet34, resnet34-imagenet, ... (a name alone takes the detected stem)
    std::vector<std::string> splits;       // empty: every split the dataset has
    std::optional<std::vector<std::int64_t>> counts; // class counts (needed when there is no train split)
    std::string out;                       // the run file; appended to when it exists
    bool overwrite = false;                // replace `out` instead of appending
    bool logits = false;                   // store each split's logits too
    std::int64_t max_per_class = -1;       // at most this many rows per class and split (seeded), -1: all
    std::optional<std::vector<float>> mean, std;    // normalisation (default: by dataset and architecture)
    std::optional<std::int64_t> resize, crop;       // image geometry (default: by architecture)
    std::string features_module, classifier;        // TorchScript: where the features and the classifier are
};

struct ImportedSnapshot {
    std::string checkpoint, snapshot;
    std::optional<std::int64_t> epoch;
    std::string split;                     // the split of `accuracy` (test if present)
    double accuracy = 0;                   // balanced
    std::int64_t images = 0;
    double seconds = 0;                    // evaluation (forward passes) only
};

struct ImportCallbacks {
    std::function<void(double fraction, double eta_seconds, const std::string& what)> progress;
    std::function<void(const ImportedSnapshot&)> snapshot;
    std::function<void(const std::string&)> log;
};

struct ImportSummary {
    std::string out_path;
    std::string architecture;
    std::vector<ImportedSnapshot> snapshots;
    std::int64_t images = 0;               // evaluated, over all checkpoints
    double eval_seconds = 0;
};

class Importer {
public:
    virtual ~Importer() = default;
    // Throws UsageError, InputError (naming the file), or std::runtime_error.
    virtual ImportSummary import(const ImportConfig& config, const ImportCallbacks& callbacks) = 0;
};

// The classes an import will record, found without evaluating anything (so
// the workbench shows the weight norms and implicit tau at once): the train
// counts from config.counts, else from the dataset's train split (image
// folders and lists are listed, built-in datasets are read), and the class
// names. nullopt when there is no train split and no counts. `classes` is the
// classifier's class count. Throws as loading the dataset would.
struct ImportClasses {
    std::vector<std::int64_t> train_counts;
    std::vector<std::string> names;
    std::string source;                    // "--counts", "train split of <dataset>"
};
std::optional<ImportClasses> importClasses(const ImportConfig& config, std::int64_t classes);

// Loads libltlab_train.so (as loadTrainer) and makes an Importer.
std::unique_ptr<Importer> loadImporter();

} // namespace ltlab
