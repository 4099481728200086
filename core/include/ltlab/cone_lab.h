#pragma once
// The cone-effect laboratory: a seeded random network of L layers, small
// enough to recompute at a slider's pace, that shows how ReLU and
// normalisation put features into a narrow cone even for noise inputs
// (the paper's one- and multi-layer studies, peer-code-notes.md 3.6;
// definitions in docs/analysis.md, "Cone-effect laboratory").
//
// Layer l maps H_{l-1} (N x D) to H_l = ReLU(gamma_l * norm(H_{l-1} W_l) + beta_l):
// W_l (D x D) ~ N(weight_mean, weight_std) (each entry kept with probability
// weight_keep, else 0), gamma_l and beta_l drawn per channel from N(mean, std),
// and norm() nothing, batch standardisation (each channel over the batch:
// (f - mean) / (std + 1e-5), BN without affine) or per-sample standardisation
// (each row over its features, the paper's multi-layer study). The input
// H_0 is N(input_mean, input_std) noise, optionally ReLU'd, or spike-and-slab:
// class c's rows are that noise times a fixed Bernoulli(slab_probability)
// mask of class c, so that labels exist and FDR means something.
//
// Each layer's statistics come from the analysis engine itself (the exact
// all-pairs cone statistics and FDR of `ltlab analyze`) and cone.h's
// histograms, over every pair of the batch. No libtorch.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ltlab/analysis.h"
#include "ltlab/cone.h"

namespace ltlab {

struct ConeLabSettings {
    std::int64_t layers = 5, width = 512, batch = 1024;
    std::uint64_t seed = 0;
    enum class Input { Gaussian, SpikeAndSlab } input = Input::Gaussian;
    double input_mean = 0, input_std = 1;
    bool input_relu = false;
    std::int64_t classes = 10;          // spike-and-slab only
    double slab_probability = 0.5;
    double weight_mean = 0, weight_std = 0.01, weight_keep = 1.0;
    enum class Norm { None, Batch, Sample } norm = Norm::Sample;
    double gamma_mean = 0.1, gamma_std = 0.0, beta_mean = 0.0, beta_std = 0.01;
    int bins = 80;

    // UsageError naming the first value out of range (sizes are capped so a
    // slider can never ask for gigabytes: width, batch <= 4096, layers <= 50).
    void validate() const;
    bool labelled() const { return input == Input::SpikeAndSlab; }
};

// The paper's multi-layer settings with gamma std 0, 0.01, 0.05, 0.1 (index 0..3).
ConeLabSettings coneLabPreset(int index);
const char* coneLabPresetName(int index);
constexpr int kConeLabPresets = 4;

// The drawn network, so that others can recompute it (the numpy test does).
struct ConeLabNetwork {
    RowMatrix input;                       // N x D
    std::vector<std::int32_t> labels;      // N (all 0 without labels)
    std::vector<RowMatrix> weights;        // L of D x D
    std::vector<Eigen::VectorXd> gamma, beta; // L of D
};
ConeLabNetwork drawConeLabNetwork(const ConeLabSettings& settings);

struct ConeLabLayer {
    std::string name;                       // "input", "layer 1", ...
    Nullable mean_cos, std_cos;             // over all pairs of nonzero rows
    Nullable mean_cos_same_class, mean_cos_diff_class, fdr; // labelled inputs only
    Nullable feature_mean, feature_std;     // of all entries
    double zero_fraction = 0;               // of entries exactly 0 (after ReLU)
    ConeHistograms histograms;              // all pairs (without labels: every pair is "same class")
};

struct ConeLabResult {
    std::vector<ConeLabLayer> layers;       // input first, then each layer
    double seconds = 0;
};

// Throws Cancelled when `progress` returns false.
ConeLabResult runConeLab(const ConeLabSettings& settings, const std::function<bool(double)>& progress = {});
// The same on a given network (its sizes win over the settings').
ConeLabResult runConeLab(const ConeLabSettings& settings, const ConeLabNetwork& network,
                         const std::function<bool(double)>& progress = {});

} // namespace ltlab
