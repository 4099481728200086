#include "networks.h"

#include "ltlab/error.h"

namespace ltlab::train {

namespace nn = torch::nn;

torch::Tensor NetworkImpl::logits(const torch::Tensor& h) {
    if (!etf_) return linear_->forward(h);
    torch::Tensor z = torch::matmul(h, etf_weight_.t());
    return bias_.defined() ? z + bias_ : z;
}

void NetworkImpl::setLinearHead(std::int64_t classes, bool bias) {
    etf_ = false;
    linear_ = register_module("classifier", nn::Linear(nn::LinearOptions(feature_dim_, classes).bias(bias)));
}

void NetworkImpl::setEtfHead(std::int64_t classes, bool bias, std::uint64_t seed) {
    if (feature_dim_ < classes)
        throw UsageError("a simplex-ETF classifier needs feature dimension >= classes (" + std::to_string(feature_dim_) +
                         " < " + std::to_string(classes) + ")");
    etf_ = true;
    // U: the first C columns of a random orthogonal D x D matrix; M = sqrt(C/(C-1)) (I - 11^T/C).
    auto generator = at::detail::createCPUGenerator(seed);
    const torch::Tensor gaussian = at::normal(0.0, 1.0, {feature_dim_, feature_dim_}, generator, torch::kFloat64);
    const torch::Tensor U = std::get<0>(at::linalg_qr(gaussian)) // ATen name: torch::linalg is gone from libtorch 2.x
                                .narrow(1, 0, classes);
    const torch::Tensor M = std::sqrt(double(classes) / double(classes - 1)) *
                            (torch::eye(classes, torch::kFloat64) - torch::full({classes, classes}, 1.0 / classes, torch::kFloat64));
    etf_weight_ = register_buffer("etf_weight", torch::matmul(U, M).t().to(torch::kFloat32).contiguous());
    if (bias) bias_ = register_parameter("etf_bias", torch::zeros({classes}));
}

torch::Tensor NetworkImpl::classifierWeight() const { return etf_ ? etf_weight_ : linear_->weight; }

torch::Tensor NetworkImpl::classifierBias() const {
    if (etf_) return bias_.defined() ? bias_ : torch::zeros({etf_weight_.size(0)});
    return linear_->bias.defined() ? linear_->bias : torch::zeros({linear_->weight.size(0)});
}

std::vector<torch::Tensor> NetworkImpl::headParameters() {
    if (etf_) return bias_.defined() ? std::vector<torch::Tensor>{bias_} : std::vector<torch::Tensor>{};
    return linear_->parameters();
}

std::vector<torch::Tensor> NetworkImpl::backboneParameters() {
    std::vector<torch::Tensor> out;
    for (const auto& item : named_parameters())
        if (item.key().rfind("classifier.", 0) != 0 && item.key() != "etf_bias") out.push_back(item.value());
    return out;
}

namespace {

nn::Conv2d conv3x3(std::int64_t in, std::int64_t out, std::int64_t stride = 1) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

class MlpImpl : public NetworkImpl {
public:
    explicit MlpImpl(std::int64_t inputs) {
        fc1_ = register_module("fc1", nn::Linear(inputs, 256));
        fc2_ = register_module("fc2", nn::Linear(256, 128));
        feature_dim_ = 128;
    }
    torch::Tensor features(torch::Tensor x) override {
        x = x.flatten(1);
        return torch::relu(fc2_(torch::relu(fc1_(x))));
    }

private:
    nn::Linear fc1_{nullptr}, fc2_{nullptr};
};

// Three conv-BN-ReLU stages (16, 32, 64 channels), two 2x2 max-pools and a
// global average pool: an epoch of Fashion-MNIST-LT in seconds on 2 cores.
class SmallCnnImpl : public NetworkImpl {
public:
    explicit SmallCnnImpl(std::int64_t channels) {
        const std::int64_t widths[] = {channels, 16, 32, 64};
        for (int i = 0; i < 3; ++i) {
            convs_.push_back(register_module("conv" + std::to_string(i), conv3x3(widths[i], widths[i + 1])));
            norms_.push_back(register_module("bn" + std::to_string(i), nn::BatchNorm2d(widths[i + 1])));
        }
        feature_dim_ = 64;
    }
    torch::Tensor features(torch::Tensor x) override {
        for (int i = 0; i < 3; ++i) {
            x = torch::relu(norms_[i](convs_[i](x)));
            if (i < 2) x = torch::max_pool2d(x, 2);
        }
        return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1); // non-negative, as after the last ReLU
    }

private:
    std::vector<nn::Conv2d> convs_;
    std::vector<nn::BatchNorm2d> norms_;
};

class BasicBlockImpl : public nn::Module {
public:
    BasicBlockImpl(std::int64_t in, std::int64_t out, std::int64_t stride) {
        conv1_ = register_module("conv1", conv3x3(in, out, stride));
        bn1_ = register_module("bn1", nn::BatchNorm2d(out));
        conv2_ = register_module("conv2", conv3x3(out, out));
        bn2_ = register_module("bn2", nn::BatchNorm2d(out));
        if (stride != 1 || in != out) {
            shortcut_ = register_module("shortcut", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                                                                   nn::BatchNorm2d(out)));
        }
    }
    torch::Tensor forward(torch::Tensor x) {
        torch::Tensor y = bn2_(conv2_(torch::relu(bn1_(conv1_(x)))));
        return torch::relu(y + (shortcut_ ? shortcut_->forward(x) : x));
    }

private:
    nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
    nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
    nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(BasicBlock);

// CIFAR ResNets: a 3x3 stride-1 stem, no max-pool, stages of basic blocks,
// global average pooling. ResNet-32: 5+5+5 blocks of 16/32/64; ResNet-34 in
// the weight-balancing code's form: 3+4+6+3 blocks of 64/128/256/512.
class CifarResNetImpl : public NetworkImpl {
public:
    CifarResNetImpl(std::int64_t channels, std::vector<int> blocks, std::vector<std::int64_t> widths) {
        stem_ = register_module("stem", conv3x3(channels, widths[0]));
        stem_bn_ = register_module("stem_bn", nn::BatchNorm2d(widths[0]));
        std::int64_t in = widths[0];
        for (std::size_t s = 0; s < blocks.size(); ++s)
            for (int b = 0; b < blocks[s]; ++b) {
                const std::int64_t stride = (s > 0 && b == 0) ? 2 : 1;
                stages_->push_back(BasicBlock(in, widths[s], stride));
                in = widths[s];
            }
        register_module("stages", stages_);
        feature_dim_ = in;
    }
    torch::Tensor features(torch::Tensor x) override {
        x = torch::relu(stem_bn_(stem_(x)));
        x = stages_->forward(x);
        return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    }

private:
    nn::Conv2d stem_{nullptr};
    nn::BatchNorm2d stem_bn_{nullptr};
    nn::Sequential stages_;
};

} // namespace

Network makeNetwork(const std::string& name, std::int64_t channels, std::int64_t height, std::int64_t width) {
    const bool image = height > 1 || width > 1;
    if (name == "mlp") return std::make_shared<MlpImpl>(channels * height * width);
    if (!image) throw UsageError("model '" + name + "' needs image data; use --model mlp for vector data");
    if (name == "cnn") return std::make_shared<SmallCnnImpl>(channels);
    if (name == "resnet32") return std::make_shared<CifarResNetImpl>(channels, std::vector<int>{5, 5, 5}, std::vector<std::int64_t>{16, 32, 64});
    if (name == "resnet34")
        return std::make_shared<CifarResNetImpl>(channels, std::vector<int>{3, 4, 6, 3}, std::vector<std::int64_t>{64, 128, 256, 512});
    throw UsageError("unknown model '" + name + "' (known: mlp, cnn, resnet32, resnet34)");
}

} // namespace ltlab::train
