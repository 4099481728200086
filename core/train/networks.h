#pragma once
// The networks of the weight-balancing papers: each exposes its penultimate
// features and a separate classifier head (linear, or a fixed simplex ETF
// with a trained bias). Internal to the training module.

#include <torch/torch.h>

#include <string>

namespace ltlab::train {

class NetworkImpl : public torch::nn::Module {
public:
    // Penultimate features h (N x D): what ltlab analyses.
    virtual torch::Tensor features(torch::Tensor x) = 0;
    torch::Tensor logits(const torch::Tensor& h);
    torch::Tensor forward(torch::Tensor x) { return logits(features(std::move(x))); }

    // Replaces the head: linear C x D (optional bias) or the fixed ETF W = (U M)^T.
    void setLinearHead(std::int64_t classes, bool bias);
    void setEtfHead(std::int64_t classes, bool bias, std::uint64_t seed);
    torch::Tensor classifierWeight() const;   // C x D
    torch::Tensor classifierBias() const;     // C (zeros when absent)
    std::vector<torch::Tensor> headParameters();
    std::vector<torch::Tensor> backboneParameters();
    std::int64_t featureDim() const { return feature_dim_; }

protected:
    std::int64_t feature_dim_ = 0;

private:
    bool etf_ = false;
    torch::nn::Linear linear_{nullptr};
    torch::Tensor etf_weight_, bias_;
};

using Network = std::shared_ptr<NetworkImpl>;

// mlp, cnn (28x28 and 32x32), resnet32 (CIFAR), resnet34 (CIFAR form, 512-d).
Network makeNetwork(const std::string& name, std::int64_t channels, std::int64_t height, std::int64_t width);

} // namespace ltlab::train
