#pragma once
// Layer results of known numbers for the view tests (the Layers tab and its
// baseline images), to write with writeLayerResults: no `ltlab layers` run.

#include <string>

#include "ltlab/layer_stats.h"

namespace ltlab::test {

// A ResNet-like set of layers with known numbers; `null_at` has no cosine.
inline LayerRun layerGroup(const std::string& inputs, const std::string& weights, double offset, std::size_t null_at) {
    LayerRun run;
    run.inputs = inputs;
    run.weights = weights;
    run.name = inputs + "_" + weights;
    run.source = "synthetic";
    run.architecture = "resnet32";
    run.seed = 3;
    run.samples = 100;
    const char* names[] = {"input", "stem", "layer1", "layer2", "layer3", "pooled"};
    for (std::size_t i = 0; i < 6; ++i) {
        LayerStats s;
        s.name = names[i];
        s.dimension = 64 * static_cast<std::int64_t>(6 - i);
        s.channels = 16;
        s.samples = 100;
        if (i != null_at) {
            s.cone_mean_cos = offset + 0.1 * double(i);
            s.cone_std_cos = 0.01 * double(i + 1);
        }
        s.feature_mean = offset - double(i);
        s.feature_var = 1.0 + double(i);
        s.hoyer_sparsity = 0.2 + 0.05 * double(i);
        s.hoyer_sparsity_var = 0.0004;
        if (inputs != "noise") { // labelled: the class statistics
            s.cone_mean_cos_same_class = 0.5;
            s.fdr = s.relu_fdr = 10.0 * double(i + 1);
            s.trace_sw = 100.0 / double(i + 1);
            s.trace_sb = 5.0;
            s.trace_ratio = *s.trace_sb / *s.trace_sw;
        }
        if (i > 0 && i < 5) {
            s.bn_layers = 2;
            s.bn_gamma_mean = 1.0 - 0.1 * double(i);
            s.bn_gamma_std = 0.05;
            s.bn_beta_mean = 0.01 * double(i);
            s.bn_beta_std = 0.02;
        }
        run.layers.push_back(s);
    }
    return run;
}

} // namespace ltlab::test
