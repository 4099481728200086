#include "networks.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <optional>

#include "ltlab/error.h"

namespace ltlab::train {

namespace nn = torch::nn;

namespace {

// The papers' ETF head: weight_vec (C x D, fixed), weight_norm (C x 1) and a bias.
class EtfHeadImpl : public nn::Module {
public:
    EtfHeadImpl(const torch::Tensor& vec, bool bias) {
        weight_vec = register_buffer("weight_vec", vec);
        weight_norm = register_buffer("weight_norm", torch::ones({vec.size(0), 1}));
        if (bias) this->bias = register_parameter("bias", torch::zeros({vec.size(0)}));
    }
    torch::Tensor weight() const { return weight_vec * weight_norm; }
    torch::Tensor forward(const torch::Tensor& h) {
        torch::Tensor z = torch::matmul(h, weight().t());
        return bias.defined() ? z + bias : z;
    }
    torch::Tensor weight_vec, weight_norm, bias;
};

// U: the first C columns of a random orthogonal D x D matrix; M = sqrt(C/(C-1)) (I - 11^T/C); (U M)^T.
torch::Tensor simplexEtf(std::int64_t classes, std::int64_t dim, std::uint64_t seed) {
    auto generator = at::detail::createCPUGenerator(seed);
    const torch::Tensor gaussian = at::normal(0.0, 1.0, {dim, dim}, generator, torch::kFloat64);
    const torch::Tensor U = std::get<0>(at::linalg_qr(gaussian)) // ATen name: torch::linalg is gone from libtorch 2.x
                                .narrow(1, 0, classes);
    const torch::Tensor M = std::sqrt(double(classes) / double(classes - 1)) *
                            (torch::eye(classes, torch::kFloat64) - torch::full({classes, classes}, 1.0 / classes, torch::kFloat64));
    return torch::matmul(U, M).t().to(torch::kFloat32).contiguous();
}

EtfHeadImpl& asEtf(const std::shared_ptr<nn::Module>& m) { return static_cast<EtfHeadImpl&>(*m); }

} // namespace

torch::Tensor NetworkImpl::logits(const torch::Tensor& h) {
    return etf_ ? asEtf(etf_head_).forward(h) : linear_->forward(h);
}

void NetworkImpl::registerHead(std::shared_ptr<nn::Module> head) {
    const auto children = named_children();
    if (children.contains("fc")) replace_module("fc", head);
    else register_module("fc", head);
}

void NetworkImpl::setLinearHead(std::int64_t classes, bool bias) {
    etf_ = false;
    etf_head_.reset();
    linear_ = nn::Linear(nn::LinearOptions(feature_dim_, classes).bias(bias));
    registerHead(linear_.ptr());
}

void NetworkImpl::setEtfHead(std::int64_t classes, bool bias, std::uint64_t seed) {
    if (feature_dim_ < classes)
        throw UsageError("a simplex-ETF classifier needs feature dimension >= classes (" + std::to_string(feature_dim_) +
                         " < " + std::to_string(classes) + ")");
    etf_ = true;
    linear_ = nullptr;
    etf_head_ = std::make_shared<EtfHeadImpl>(simplexEtf(classes, feature_dim_, seed), bias);
    registerHead(etf_head_);
}

torch::Tensor NetworkImpl::classifierWeight() const { return etf_ ? asEtf(etf_head_).weight() : linear_->weight; }

torch::Tensor NetworkImpl::classifierBias() const {
    const torch::Tensor b = etf_ ? asEtf(etf_head_).bias : linear_->bias;
    return b.defined() ? b : torch::zeros({classifierWeight().size(0)}, classifierWeight().options());
}

std::vector<torch::Tensor> NetworkImpl::headParameters() { return etf_ ? etf_head_->parameters() : linear_->parameters(); }

std::vector<torch::Tensor> NetworkImpl::backboneParameters() {
    std::vector<torch::Tensor> out;
    for (const auto& item : named_parameters())
        if (item.key().rfind("fc.", 0) != 0) out.push_back(item.value());
    return out;
}

void NetworkImpl::forwardBlocks(torch::Tensor x, bool, const BlockCallback& emit) {
    emit({"input", {}, x});
    emit({"pooled", {}, features(std::move(x))});
}

std::vector<std::pair<std::string, torch::Tensor>> NetworkImpl::namedTensors() {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& p : named_parameters()) out.emplace_back(p.key(), p.value());
    for (const auto& b : named_buffers()) out.emplace_back(b.key(), b.value());
    return out;
}

std::string resolvedModel(const std::string& model, std::int64_t channels, std::int64_t height, std::int64_t width) {
    if (model != "auto") return model;
    if (height == 1 && width == 1) return "mlp";
    return channels == 3 ? "resnet32" : "cnn";
}

namespace {

// f applied to x in slices of `chunk` samples, into one output: a block's
// intermediate activations exist for one slice at a time, so the layer-wise
// analysis of a 2000-sample batch holds about two layers' outputs, not a
// whole block's internals (eval mode: each sample's output is the same).
torch::Tensor inChunks(const torch::Tensor& x, const std::function<torch::Tensor(const torch::Tensor&)>& f,
                       std::int64_t chunk = 128) {
    const std::int64_t n = x.size(0);
    if (n <= chunk) return f(x);
    torch::Tensor first = f(x.narrow(0, 0, chunk));
    std::vector<std::int64_t> shape = first.sizes().vec();
    shape[0] = n;
    torch::Tensor out = torch::empty(shape, first.options());
    out.narrow(0, 0, chunk).copy_(first);
    first = torch::Tensor();
    for (std::int64_t i = chunk; i < n; i += chunk) {
        const std::int64_t b = std::min(chunk, n - i);
        out.narrow(0, i, b).copy_(f(x.narrow(0, i, b)));
    }
    return out;
}

nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride = 1, std::int64_t groups = 1) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).groups(groups).bias(false));
}

// Two linear layers with ReLUs (fc1, fc2); the head is fc.
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
    void forwardBlocks(torch::Tensor x, bool, const BlockCallback& emit) override {
        emit({"input", {}, x});
        x = torch::relu(fc1_(x.flatten(1)));
        emit({"fc1", {"fc1"}, x});
        emit({"fc2", {"fc2"}, torch::relu(fc2_(x))}); // the features
    }

private:
    nn::Linear fc1_{nullptr}, fc2_{nullptr};
};

// Three conv-BN-ReLU stages (conv1..3, bn1..3: 16, 32, 64 channels), two 2x2
// max-pools and a global average pool: an epoch of Fashion-MNIST-LT in
// seconds on 2 cores.
class SmallCnnImpl : public NetworkImpl {
public:
    explicit SmallCnnImpl(std::int64_t channels) {
        const std::int64_t widths[] = {channels, 16, 32, 64};
        for (int i = 0; i < 3; ++i) {
            convs_.push_back(register_module("conv" + std::to_string(i + 1), conv(widths[i], widths[i + 1], 3)));
            norms_.push_back(register_module("bn" + std::to_string(i + 1), nn::BatchNorm2d(widths[i + 1])));
        }
        feature_dim_ = 64;
    }
    torch::Tensor features(torch::Tensor x) override {
        // Evaluation without autograd (every epoch's features): batch norm folded
        // into the convolution and the ReLU in place, two passes over each
        // activation fewer, and on the CPU in oneDNN's blocked layout throughout
        // (docs/performance.md); the same function within float rounding.
        const bool folded = !is_training() && c10::InferenceMode::is_enabled();
        if (folded && x.is_cpu() && x.scalar_type() == torch::kFloat32 && at::hasMKLDNN()) return blockedFeatures(x);
        for (int i = 0; i < 3; ++i) {
            if (folded) {
                const auto [w, b] = foldedConv(i);
                x = torch::conv2d(x, w, b, /*stride=*/1, /*padding=*/1).relu_(); // 3x3, as conv() pads
            } else {
                x = torch::relu(norms_[i](convs_[i](x)));
            }
            if (i < 2) x = torch::max_pool2d(x, 2);
        }
        return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1); // non-negative, as after the last ReLU
    }
    void forwardBlocks(torch::Tensor x, bool, const BlockCallback& emit) override {
        emit({"input", {}, x});
        for (int i = 0; i < 3; ++i) {
            x = inChunks(x, [&](const torch::Tensor& t) {
                torch::Tensor y = torch::relu(norms_[i](convs_[i](t)));
                return i < 2 ? torch::max_pool2d(y, 2) : y;
            });
            const std::string n = std::to_string(i + 1);
            emit({"block" + n, {"conv" + n, "bn" + n}, x});
        }
        emit({"pooled", {}, torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1)});
    }

private:
    // Batch norm folded into each convolution's weight and bias.
    std::pair<torch::Tensor, torch::Tensor> foldedConv(int i) const {
        const auto& bn = norms_[i];
        const torch::Tensor scale = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
        return {(convs_[i]->weight * scale.view({-1, 1, 1, 1})).contiguous(), bn->bias - bn->running_mean * scale};
    }
    // Evaluation on the CPU with the activations kept in oneDNN's blocked
    // layout from the input to the pooled features: no reorder between the
    // layers, 2.5x faster than NCHW at these sizes (docs/performance.md).
    torch::Tensor blockedFeatures(const torch::Tensor& input) const {
        torch::Tensor x = input.contiguous().to_mkldnn();
        for (int i = 0; i < 3; ++i) {
            const auto [w, b] = foldedConv(i);
            x = at::mkldnn_convolution(x, w, b, /*padding=*/{1, 1}, /*stride=*/{1, 1}, /*dilation=*/{1, 1}, 1);
            x = torch::relu_(x);
            if (i < 2) x = torch::max_pool2d(x, 2);
        }
        return torch::adaptive_avg_pool2d(x, {1, 1}).to_dense().flatten(1);
    }

    std::vector<nn::Conv2d> convs_;
    std::vector<nn::BatchNorm2d> norms_;
};

// A residual block as torchvision builds it; `downsample` (a 1x1 conv and a
// BN, names downsample.0/.1) when the shape changes.
class BlockImpl : public nn::Module {
public:
    virtual torch::Tensor forward(torch::Tensor x) = 0;

protected:
    void addDownsample(std::int64_t in, std::int64_t out, std::int64_t stride) {
        if (stride != 1 || in != out)
            downsample_ = register_module("downsample", nn::Sequential(conv(in, out, 1, stride), nn::BatchNorm2d(out)));
    }
    torch::Tensor identity(const torch::Tensor& x) { return downsample_ ? downsample_->forward(x) : x; }

private:
    nn::Sequential downsample_{nullptr};
};

class BasicBlockImpl : public BlockImpl {
public:
    static constexpr std::int64_t kExpansion = 1;
    BasicBlockImpl(std::int64_t in, std::int64_t planes, std::int64_t stride, std::int64_t, std::int64_t) {
        conv1_ = register_module("conv1", conv(in, planes, 3, stride));
        bn1_ = register_module("bn1", nn::BatchNorm2d(planes));
        conv2_ = register_module("conv2", conv(planes, planes, 3));
        bn2_ = register_module("bn2", nn::BatchNorm2d(planes));
        addDownsample(in, planes, stride);
    }
    torch::Tensor forward(torch::Tensor x) override {
        torch::Tensor y = bn2_(conv2_(bn1_(conv1_(x)).relu_())); // in place, as torchvision
        return y.add_(identity(x)).relu_();
    }

private:
    nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
    nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
};

// torchvision's Bottleneck (stride on the 3x3 conv, "ResNet v1.5"); ResNeXt
// through groups and width_per_group.
class BottleneckImpl : public BlockImpl {
public:
    static constexpr std::int64_t kExpansion = 4;
    BottleneckImpl(std::int64_t in, std::int64_t planes, std::int64_t stride, std::int64_t groups, std::int64_t width_per_group) {
        const std::int64_t width = planes * width_per_group / 64 * groups;
        conv1_ = register_module("conv1", conv(in, width, 1));
        bn1_ = register_module("bn1", nn::BatchNorm2d(width));
        conv2_ = register_module("conv2", conv(width, width, 3, stride, groups));
        bn2_ = register_module("bn2", nn::BatchNorm2d(width));
        conv3_ = register_module("conv3", conv(width, planes * kExpansion, 1));
        bn3_ = register_module("bn3", nn::BatchNorm2d(planes * kExpansion));
        addDownsample(in, planes * kExpansion, stride);
    }
    torch::Tensor forward(torch::Tensor x) override {
        torch::Tensor y = bn1_(conv1_(x)).relu_();
        y = bn2_(conv2_(y)).relu_();
        return bn3_(conv3_(y)).add_(identity(x)).relu_();
    }

private:
    nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
    nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
};

struct ResNetSpec {
    bool bottleneck = false;
    std::vector<int> blocks;
    std::vector<std::int64_t> widths{64, 128, 256, 512};
    std::int64_t groups = 1, width_per_group = 64;
    bool imagenet_stem = false;
};

// torchvision's ResNet: conv1, bn1, [max-pool], layer1..N (stage s > 1 starts
// with stride 2), global average pooling (the papers' avg_pool2d(x, 4) on the
// 4x4 map of a 32x32 input), fc. The CIFAR stem is a 3x3 stride-1 conv1
// without max-pool (HN410, ShadeAlsha); 3-stage 16/32/64 gives the CIFAR
// ResNet-(6n+2).
class ResNetImpl : public NetworkImpl {
public:
    ResNetImpl(std::int64_t channels, const ResNetSpec& spec) : imagenet_stem_(spec.imagenet_stem) {
        conv1_ = register_module("conv1", imagenet_stem_ ? nn::Conv2d(nn::Conv2dOptions(channels, spec.widths[0], 7).stride(2).padding(3).bias(false))
                                                          : conv(channels, spec.widths[0], 3));
        bn1_ = register_module("bn1", nn::BatchNorm2d(spec.widths[0]));
        std::int64_t in = spec.widths[0];
        for (std::size_t s = 0; s < spec.blocks.size(); ++s) {
            nn::Sequential stage;
            for (int b = 0; b < spec.blocks[s]; ++b) {
                const std::int64_t stride = (s > 0 && b == 0) ? 2 : 1;
                if (spec.bottleneck) stage->push_back(block<BottleneckImpl>(in, spec.widths[s], stride, spec));
                else stage->push_back(block<BasicBlockImpl>(in, spec.widths[s], stride, spec));
            }
            stages_.push_back(register_module("layer" + std::to_string(s + 1), stage));
        }
        feature_dim_ = in;
    }
    torch::Tensor features(torch::Tensor x) override {
        x = bn1_(conv1_(x)).relu_();
        if (imagenet_stem_) x = torch::max_pool2d(x, 3, 2, 1);
        for (auto& stage : stages_) x = stage->forward(x);
        return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    }
    // Each output after its ReLU (the papers' ResnetEncoder.forward with outAllFeatures).
    void forwardBlocks(torch::Tensor x, bool residual_blocks, const BlockCallback& emit) override {
        emit({"input", {}, x});
        x = inChunks(x, [&](const torch::Tensor& t) {
            torch::Tensor y = bn1_(conv1_(t)).relu_();
            return imagenet_stem_ ? torch::max_pool2d(y, 3, 2, 1) : y;
        });
        emit({"stem", {"conv1", "bn1"}, x});
        for (std::size_t s = 0; s < stages_.size(); ++s) {
            const std::string stage = "layer" + std::to_string(s + 1);
            if (!residual_blocks) {
                x = inChunks(x, [&](const torch::Tensor& t) { return stages_[s]->forward(t); });
                emit({stage, {stage}, x});
                continue;
            }
            for (std::size_t b = 0; b < stages_[s]->size(); ++b) {
                auto residual = std::dynamic_pointer_cast<BlockImpl>(stages_[s]->ptr(b));
                x = inChunks(x, [&](const torch::Tensor& t) { return residual->forward(t); });
                const std::string block = stage + "." + std::to_string(b);
                emit({block, {block}, x});
            }
        }
        emit({"pooled", {}, torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1)});
    }

private:
    template <typename Block>
    std::shared_ptr<BlockImpl> block(std::int64_t& in, std::int64_t planes, std::int64_t stride, const ResNetSpec& spec) {
        auto b = std::make_shared<Block>(in, planes, stride, spec.groups, spec.width_per_group);
        in = planes * Block::kExpansion;
        return b;
    }

    bool imagenet_stem_;
    nn::Conv2d conv1_{nullptr};
    nn::BatchNorm2d bn1_{nullptr};
    std::vector<nn::Sequential> stages_;
};

// The CIFAR family resnet(6n+2): 3 stages of n basic blocks, 16/32/64 wide.
std::optional<int> cifarDepth(const std::string& name) {
    if (name.rfind("resnet", 0) != 0 || name.size() < 7 || name.size() > 10) return std::nullopt;
    const std::string digits = name.substr(6);
    if (!std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); })) return std::nullopt;
    const int depth = std::stoi(digits);
    if (depth < 8 || (depth - 2) % 6 != 0 || depth == 50) return std::nullopt; // resnet50 is torchvision's
    return (depth - 2) / 6;
}

std::optional<ResNetSpec> resnetSpec(const std::string& name) {
    ResNetSpec s;
    if (const auto n = cifarDepth(name)) {
        s.blocks = {*n, *n, *n};
        s.widths = {16, 32, 64};
    } else if (name == "resnet18") s.blocks = {2, 2, 2, 2};
    else if (name == "resnet34") s.blocks = {3, 4, 6, 3};
    else if (name == "resnet50" || name == "resnext50_32x4d") {
        s.blocks = {3, 4, 6, 3};
        s.bottleneck = true;
        if (name == "resnext50_32x4d") s.groups = 32, s.width_per_group = 4;
    } else return std::nullopt;
    return s;
}

} // namespace

const char* knownArchitectures() {
    return "mlp, cnn, resnet32 (and the CIFAR resnet20, resnet44, ... of 6n+2 layers), resnet18, resnet34, resnet50, "
           "resnext50_32x4d (ResNets: CIFAR form, or -imagenet)";
}

ArchSpec parseArch(const std::string& text) {
    ArchSpec spec{text, ""};
    for (const char* stem : {"imagenet", "cifar"}) {
        const std::string suffix = std::string("-") + stem;
        if (text.size() > suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0) {
            spec.name = text.substr(0, text.size() - suffix.size());
            spec.stem = stem;
        }
    }
    return spec;
}

std::string archName(const ArchSpec& spec) {
    return spec.stem == "imagenet" && spec.name != "mlp" && spec.name != "cnn" ? spec.name + "-imagenet" : spec.name;
}

Network makeNetwork(const ArchSpec& spec, std::int64_t channels, std::int64_t height, std::int64_t width) {
    const bool image = height > 1 || width > 1;
    if (spec.name == "mlp") return std::make_shared<MlpImpl>(channels * height * width);
    auto resnet = resnetSpec(spec.name);
    if (spec.name != "cnn" && !resnet) throw UsageError("unknown model '" + spec.name + "' (known: " + knownArchitectures() + ")");
    if (!image) throw UsageError("model '" + spec.name + "' needs image data; use --model mlp for vector data");
    if (spec.name == "cnn") return std::make_shared<SmallCnnImpl>(channels);
    if (!spec.stem.empty() && spec.stem != "cifar" && spec.stem != "imagenet")
        throw UsageError("unknown stem '" + spec.stem + "' (cifar, imagenet)");
    resnet->imagenet_stem = spec.stem == "imagenet";
    return std::make_shared<ResNetImpl>(channels, *resnet);
}

} // namespace ltlab::train
