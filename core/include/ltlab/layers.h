#pragma once
// The layer-wise analysis of a network (issue 10), as the rest of ltlab sees
// it: features after every top-level block of a model that a checkpoint or a
// run file describes, on a seeded batch of a split or of N(0,1) noise, each
// layer's statistics computed by core (ltlab/layer_stats.h) as soon as its
// batch exists. Implemented by the libtorch module (libltlab_train.so),
// loaded only when needed. No libtorch types.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ltlab/importing.h"
#include "ltlab/layer_stats.h"

namespace ltlab {

struct LayersConfig {
    // A run file (its own training's checkpoint RUN.h5.ckpt and config, or an
    // import's recorded source) or a checkpoint file (then `model` below).
    std::string path;
    // For a checkpoint: arch, dataset (data.dataset, data_dir, ...), transform
    // and TorchScript options as `ltlab import` takes them; data.seed, threads, device.
    ImportConfig model;
    std::string snapshot;          // run file of an import: the source of this snapshot (default: the last)
    std::string inputs = "noise";  // noise, train, val, test
    std::int64_t samples = 2000;
    std::uint64_t seed = 0;        // the noise, the stratified sample, --init's weights
    bool init = false;             // the same architecture at seeded initialisation
    bool blocks = false;           // each residual block instead of each stage
    LayerStatsOptions stats;
};

struct LayersCallbacks {
    std::function<void(const LayerStats&)> layer; // as each layer is done
    std::function<void(const std::string&)> log;
};

class LayerAnalyzer {
public:
    virtual ~LayerAnalyzer() = default;
    // Throws UsageError, InputError (naming the file), or std::runtime_error.
    virtual LayerRun analyze(const LayersConfig& config, const LayersCallbacks& callbacks) = 0;
};

// Loads libltlab_train.so (as loadImporter) and makes a LayerAnalyzer.
std::unique_ptr<LayerAnalyzer> loadLayerAnalyzer();

} // namespace ltlab
