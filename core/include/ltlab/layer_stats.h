#pragma once
// Layer-wise analysis (issue 10): the statistics of one layer's activations
// for one batch, and how a run file stores a set of them. No libtorch, no Qt:
// the training module computes the activations (ltlab/layers.h) and hands
// each layer's batch here, one layer at a time. Definitions in
// docs/analysis.md, "Layer-wise analysis"; storage in docs/run-format.md
// (`/layers`).
//
// A batch is N x D row-major (float32 or float64), the layer's output
// flattened per sample (C x H x W, channel-major: channel c is the columns
// [c S, (c + 1) S) with S = D / channels). It is read in blocks of whole
// channels, twice, and never copied whole: memory is O(N^2 + N C + N x block).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "ltlab/analysis.h"

namespace ltlab {

struct LayerBatch {
    const float* f32 = nullptr;            // exactly one of f32, f64
    const double* f64 = nullptr;
    std::int64_t rows = 0, cols = 0;       // N x D
    std::int64_t channels = 0;             // 0: D (a vector layer); else D must be a multiple of it
    const std::vector<std::int32_t>* labels = nullptr; // nullptr: label-free (noise inputs)
    std::int64_t classes = 0;              // labels in [0, classes)
};

struct LayerStatsOptions {
    // (h - mean) / (2 std + 1e-6) per feature over the batch (unbiased std;
    // features with std < 1e-5 set to 0), as the papers' code, before every statistic.
    bool standardize = false;
    // Also the FDR of the flattened maps (in sample space when D > N).
    bool flat_fdr = false;
    // Columns read at a time (rounded to whole channels); 0: about 1M values.
    std::int64_t block_values = 0;
};

struct LayerStats {
    std::string name;                          // "input", "stem", "layer1", ..., "pooled"
    std::int64_t dimension = 0, channels = 0, samples = 0;
    // Cosine of flattened maps, over pairs i < j of nonzero rows (population std).
    Nullable cone_mean_cos, cone_std_cos;
    Nullable cone_mean_cos_same_class, cone_std_cos_same_class;   // labelled inputs only
    Nullable cone_mean_cos_diff_class, cone_std_cos_diff_class;
    // Channel-pooled features (global average per channel): the engine's FDR.
    Nullable fdr, relu_fdr, trace_sw, trace_sb, trace_ratio;      // ratio tr S_B / tr S_W
    // The flattened maps (--flat-fdr): FDR through the sample-space pseudo-inverse.
    Nullable flat_fdr, flat_relu_fdr, flat_trace_sw, flat_trace_sb;
    Nullable feature_mean, feature_var;        // of all N D entries (var unbiased)
    Nullable hoyer_sparsity, hoyer_sparsity_var; // of |h|, over nonzero rows (var unbiased)
    // The layer's batch normalisations (every BN inside the block), across their channels.
    std::int64_t bn_layers = 0;
    Nullable bn_gamma_mean, bn_gamma_std, bn_beta_mean, bn_beta_std;
};

LayerStats computeLayerStats(const std::string& name, const LayerBatch& batch, const LayerStatsOptions& options = {});

// gamma and beta of each BN of the block; their mean and population std over all channels.
void setBatchNormStats(LayerStats& stats, const std::vector<Eigen::VectorXd>& gammas,
                       const std::vector<Eigen::VectorXd>& betas);

// Fisher's discriminant ratio tr(S_W^+ S_B) of X (N x D) as docs/analysis.md
// defines it (constant dimensions dropped, pseudo-inverse with the 1e-8
// cutoff), computed in sample space: from the N x N Gram Xw Xw^T of the
// within-class-centred rows and the N x K cross products Xw B^T, never D x D.
// Null without two present classes.
struct FdrValues {
    Nullable fdr, trace_sw, trace_sb;
};
FdrValues sampleSpaceFdr(const RowMatrix& X, const std::vector<std::int32_t>& labels, std::int64_t classes);

// One set of layer statistics, as `ltlab layers` computes and stores it.
struct LayerRun {
    std::string name;          // its group: /layers/<name>
    std::string inputs;        // noise, train, val, test
    std::string weights;       // trained, init
    std::string source;        // the checkpoint or run it came from
    std::string architecture;
    std::uint64_t seed = 0;
    std::int64_t samples = 0;
    bool blocks = false, standardize = false, flat_fdr = false;
    std::vector<LayerStats> layers; // input first
};

// Every nullable statistic of LayerStats by its name in docs/analysis.md
// (the JSON keys and the /layers datasets), in a fixed order.
const std::vector<std::pair<const char*, Nullable LayerStats::*>>& layerStatisticFields();

// The default group name: <inputs>_<weights>[_blocks][_std].
std::string defaultLayerRunName(const LayerRun& run);

// /layers/* of a run file, in name order (empty without the group). InputError naming the object.
std::vector<LayerRun> readLayerResults(const std::string& path);
// Writes (replaces) /layers/<run.name>, atomically (one updateRunFile transaction).
void writeLayerResults(const std::string& path, const LayerRun& run);

} // namespace ltlab
