#pragma once
// The networks of the weight-balancing papers: each exposes its penultimate
// features and a separate classifier head (linear, or a fixed simplex ETF
// with a trained bias). Parameter names and layouts are torchvision's
// (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0/.1, fc), so a state_dict
// written by PyTorch loads into them and theirs into PyTorch (weights.cpp).
// Internal to the training module.

#include <torch/torch.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ltlab::train {

// One top-level block's output, for the layer-wise analysis (layers.cpp): its
// name ("input", "stem", "layer1", "layer1.0", "pooled"), the module paths it
// consists of (where its batch normalisations are) and its output.
struct BlockOutput {
    std::string name;
    std::vector<std::string> modules;
    torch::Tensor output;
};
using BlockCallback = std::function<void(const BlockOutput&)>;

class NetworkImpl : public torch::nn::Module {
public:
    // Penultimate features h (N x D): what ltlab analyses.
    virtual torch::Tensor features(torch::Tensor x) = 0;
    torch::Tensor logits(const torch::Tensor& h);
    torch::Tensor forward(torch::Tensor x) { return logits(features(std::move(x))); }
    // The input, then the output of every top-level block in order (the stem,
    // each stage or, with `residual_blocks`, each residual block, the pooled
    // features), one at a time: each is released after `emit` returns.
    // Default: the input and the features.
    virtual void forwardBlocks(torch::Tensor x, bool residual_blocks, const BlockCallback& emit);
    // Every parameter and buffer by its state_dict name (TorchScript: the module's).
    virtual std::vector<std::pair<std::string, torch::Tensor>> namedTensors();

    // The head, registered as `fc`: linear C x D (`fc.weight`, optional
    // `fc.bias`), or the papers' fixed ETF (`fc.weight_vec` = (U M)^T, fixed;
    // `fc.weight_norm` C x 1 of ones, fixed; `fc.bias` trained), W = vec x norm.
    void setLinearHead(std::int64_t classes, bool bias);
    void setEtfHead(std::int64_t classes, bool bias, std::uint64_t seed);
    torch::Tensor classifierWeight() const;   // C x D (ETF: vec x norm)
    torch::Tensor classifierBias() const;     // C (zeros when absent)
    std::vector<torch::Tensor> headParameters();
    std::vector<torch::Tensor> backboneParameters();
    std::int64_t featureDim() const { return feature_dim_; }
    bool etfHead() const { return etf_; }

protected:
    std::int64_t feature_dim_ = 0;

private:
    void registerHead(std::shared_ptr<torch::nn::Module> head);
    bool etf_ = false;
    torch::nn::Linear linear_{nullptr};
    std::shared_ptr<torch::nn::Module> etf_head_;
};

using Network = std::shared_ptr<NetworkImpl>;

// The model a training configuration's `model` names: itself, or for "auto"
// mlp (vector data), resnet32 (3 channels) or cnn (others), as ltlab train picks it.
std::string resolvedModel(const std::string& model, std::int64_t channels, std::int64_t height, std::int64_t width);

// What to build: a name and, for ResNets, the stem.
struct ArchSpec {
    std::string name;              // mlp, cnn, resnet32, resnet18, resnet34, resnet50, resnext50_32x4d
    std::string stem;              // ResNets: cifar (3x3 stride 1, no max-pool; also when empty) or imagenet (7x7/2, max-pool)
};
// "resnet34" (no stem named: the CIFAR form, or the detected one on import), "resnet34-imagenet", "resnet34-cifar", "mlp", ...
ArchSpec parseArch(const std::string& text);
std::string archName(const ArchSpec& spec); // "resnet34-imagenet"; the CIFAR form and others by name alone
const char* knownArchitectures();           // for messages

// channels x height x width is one input sample (mlp: its size is the input width).
Network makeNetwork(const ArchSpec& spec, std::int64_t channels, std::int64_t height, std::int64_t width);
inline Network makeNetwork(const std::string& name, std::int64_t channels, std::int64_t height, std::int64_t width) {
    return makeNetwork(parseArch(name), channels, height, width);
}

} // namespace ltlab::train
