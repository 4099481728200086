// What a checkpoint holds as a model: the state_dict (wherever it sits in the
// file), normalised names, the architecture and the classifier.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "ltlab/checkpoint.h"
#include "ltlab/error.h"

namespace ltlab::ckpt {

using Kind = Value::Kind;

const NamedTensor* StateDict::find(std::string_view name) const {
    for (const auto& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

namespace {

constexpr int kMaxDepth = 64;

// ---- finding the state_dict ---------------------------------------------------

// A dict with string keys whose values are mostly tensors.
bool isTensorDict(const Value& v) {
    if (v.kind != Kind::Dict || v.entries.empty()) return false;
    std::size_t tensors = 0, others = 0;
    for (const auto& [k, x] : v.entries) {
        if (k->kind != Kind::String) return false;
        if (x->kind == Kind::Tensor) ++tensors;
        else if (x->kind != Kind::None) ++others;
    }
    return tensors > 0 && tensors >= others;
}

bool isModule(const Value& v) {
    return v.kind == Kind::Object && v.state && v.state->kind == Kind::Dict &&
           (v.state->get("_parameters") || v.state->get("_modules"));
}

bool isTorchScriptObject(const Value& v) {
    return v.kind == Kind::Object && v.text.rfind("__torch__.", 0) == 0 && v.state && v.state->kind == Kind::Dict;
}

void collectDict(const Value& d, std::vector<NamedTensor>& out) {
    for (const auto& [k, x] : d.entries)
        if (x->kind == Kind::Tensor) out.push_back({k->text, k->text, x->tensor});
}

std::set<std::string> stringSet(const Value* v) {
    std::set<std::string> out;
    if (v && (v->kind == Kind::Set || v->kind == Kind::List))
        for (const Value* s : v->items)
            if (s->kind == Kind::String) out.insert(s->text);
    return out;
}

// nn.Module: _parameters, then persistent _buffers, then _modules (state_dict order).
void walkModule(const Value& module, const std::string& prefix, std::vector<NamedTensor>& out, int depth) {
    if (depth > kMaxDepth) return;
    const Value& state = *module.state;
    if (const Value* params = state.get("_parameters"); params && params->kind == Kind::Dict)
        for (const auto& [k, x] : params->entries)
            if (k->kind == Kind::String && x->kind == Kind::Tensor) out.push_back({prefix + k->text, prefix + k->text, x->tensor});
    const auto transient = stringSet(state.get("_non_persistent_buffers_set"));
    if (const Value* buffers = state.get("_buffers"); buffers && buffers->kind == Kind::Dict)
        for (const auto& [k, x] : buffers->entries)
            if (k->kind == Kind::String && x->kind == Kind::Tensor && !transient.count(k->text))
                out.push_back({prefix + k->text, prefix + k->text, x->tensor});
    if (const Value* children = state.get("_modules"); children && children->kind == Kind::Dict)
        for (const auto& [k, x] : children->entries)
            if (k->kind == Kind::String && isModule(*x)) walkModule(*x, prefix + k->text + ".", out, depth + 1);
}

// A TorchScript object: attributes are parameters, buffers and submodules.
void walkScriptObject(const Value& object, const std::string& prefix, std::vector<NamedTensor>& out, int depth) {
    if (depth > kMaxDepth) return;
    for (const auto& [k, x] : object.state->entries) {
        if (k->kind != Kind::String) continue;
        if (x->kind == Kind::Tensor) out.push_back({prefix + k->text, prefix + k->text, x->tensor});
        else if (isTorchScriptObject(*x)) walkScriptObject(*x, prefix + k->text + ".", out, depth + 1);
    }
}

bool fromValue(const Value& v, StateDict& sd) {
    if (isTensorDict(v)) {
        collectDict(v, sd.tensors);
        bool all_parameters = true;
        for (const auto& t : sd.tensors) all_parameters = all_parameters && t.tensor->parameter;
        sd.kind = all_parameters ? "dict of parameters" : "state_dict";
        return true;
    }
    if (isModule(v)) {
        walkModule(v, "", sd.tensors, 0);
        sd.kind = "pickled module";
        sd.notes.push_back("weights read from the pickled " + v.text + " (_parameters, _buffers, _modules)");
        return !sd.tensors.empty();
    }
    if (isTorchScriptObject(v)) {
        walkScriptObject(v, "", sd.tensors, 0);
        sd.kind = "torchscript module";
        return !sd.tensors.empty();
    }
    return false;
}

const char* const kStateKeys[] = {"state_dict", "model_state_dict", "model", "net", "module", "network",
                                  "model_state", "state", "weights", "params", "ema", "model_ema"};

// A training-checkpoint dict: the state_dict under one of the usual keys (maybe nested).
bool fromKnownKey(const Value& v, const std::string& path, StateDict& sd, int depth) {
    if (v.kind != Kind::Dict || depth > 3) return false;
    for (const char* key : kStateKeys) {
        const Value* x = v.get(key);
        if (!x) continue;
        const std::string sub = path.empty() ? key : path + "." + key;
        if (fromValue(*x, sd) || fromKnownKey(*x, sub, sd, depth + 1)) {
            if (sd.source.empty()) sd.source = sub;
            if (sd.kind == "state_dict" || sd.kind == "dict of parameters") sd.kind = "training checkpoint";
            return true;
        }
    }
    return false;
}

// Otherwise the largest dict of tensors anywhere near the root.
void largestTensorDict(const Value& v, const std::string& path, int depth, const Value*& best, std::string& best_path,
                       std::size_t& best_count) {
    if (depth > 3 || v.kind != Kind::Dict) return;
    if (isTensorDict(v)) {
        std::size_t n = 0;
        for (const auto& e : v.entries) n += e.second->kind == Kind::Tensor;
        if (n > best_count) best = &v, best_path = path, best_count = n;
        return;
    }
    for (const auto& [k, x] : v.entries)
        if (k->kind == Kind::String) largestTensorDict(*x, path.empty() ? k->text : path + "." + k->text, depth + 1, best, best_path, best_count);
}

// ---- names ------------------------------------------------------------------------

bool allStartWith(const std::vector<NamedTensor>& ts, const std::string& p) {
    return std::all_of(ts.begin(), ts.end(), [&](const NamedTensor& t) { return t.name.rfind(p, 0) == 0; });
}

// Strips `p` from the names that have it, when most do and no name collides.
bool mapPrefix(std::vector<NamedTensor>& ts, const std::string& p) {
    std::size_t with = 0;
    std::unordered_set<std::string> names;
    for (const auto& t : ts) {
        with += t.name.rfind(p, 0) == 0;
        names.insert(t.name);
    }
    if (with == 0 || 2 * with < ts.size()) return false;
    for (const auto& t : ts)
        if (t.name.rfind(p, 0) == 0 && names.count(t.name.substr(p.size()))) return false;
    for (auto& t : ts)
        if (t.name.rfind(p, 0) == 0) t.name.erase(0, p.size());
    return true;
}

void normaliseNames(StateDict& sd) {
    for (int round = 0; round < 4 && !sd.tensors.empty(); ++round) {
        bool changed = false;
        if (allStartWith(sd.tensors, "module.")) {
            for (auto& t : sd.tensors) t.name.erase(0, 7);
            sd.prefixes.push_back("module.");
            changed = true;
        }
        for (const char* p : {"encoder.", "backbone.", "model."})
            if (mapPrefix(sd.tensors, p)) {
                sd.prefixes.push_back(p);
                changed = true;
            }
        if (!changed) break;
    }
}

// ---- architecture ---------------------------------------------------------------

const TensorRef* tensorNamed(const StateDict& sd, const std::string& name) {
    const NamedTensor* t = sd.find(name);
    return t ? t->tensor : nullptr;
}

std::vector<std::int64_t> shapeOf(const StateDict& sd, const std::string& name) {
    const TensorRef* t = tensorNamed(sd, name);
    return t ? t->shape : std::vector<std::int64_t>{};
}

// Blocks per stage from "layer<S>.<I>." names (S = 1..4).
std::vector<std::int64_t> countBlocks(const StateDict& sd) {
    static const std::regex pattern(R"(^layer([1-9])\.([0-9]+)\.)");
    std::vector<std::int64_t> blocks;
    for (const auto& t : sd.tensors) {
        std::smatch m;
        if (!std::regex_search(t.name, m, pattern)) continue;
        const auto s = static_cast<std::size_t>(std::stoi(m[1].str())), i = static_cast<std::size_t>(std::stoll(m[2].str()));
        if (i > 1000) continue;
        if (blocks.size() < s) blocks.resize(s, 0);
        blocks[s - 1] = std::max<std::int64_t>(blocks[s - 1], static_cast<std::int64_t>(i) + 1);
    }
    return blocks;
}

void nameResNet(Architecture& a, const StateDict& sd) {
    const std::vector<std::int64_t> b = a.blocks;
    const bool basic = a.block == "basic";
    if (b.size() == 3 && basic && b[0] == b[1] && b[1] == b[2]) {
        a.name = "resnet" + std::to_string(6 * b[0] + 2); // the CIFAR family (ResNet-32: 5 blocks per stage)
        return;
    }
    if (b.size() != 4) {
        a.reasons.push_back(std::to_string(b.size()) + " stages (layer1..): torchvision ResNets have 4, CIFAR ResNets 3");
        return;
    }
    using V = std::vector<std::int64_t>;
    if (basic && b == V{2, 2, 2, 2}) a.name = "resnet18";
    else if (basic && b == V{3, 4, 6, 3}) a.name = "resnet34";
    else if (!basic && (b == V{3, 4, 6, 3} || b == V{3, 4, 23, 3} || b == V{3, 8, 36, 3})) {
        const std::string depth = b[2] == 6 ? "50" : b[2] == 23 ? "101" : "152";
        const auto conv2 = shapeOf(sd, "layer1.0.conv2.weight");
        const std::int64_t width = conv2.size() == 4 ? conv2[0] : 0, groups = conv2.size() == 4 && conv2[1] > 0 ? width / conv2[1] : 1;
        if (groups == 32 && width == 128) a.name = "resnext" + depth + "_32x4d";
        else if (groups == 32 && width == 256) a.name = "resnext" + depth + "_32x8d";
        else if (groups == 1 && width == 128) a.name = "wide_resnet" + depth + "_2";
        else if (groups == 1 && width == 64) a.name = "resnet" + depth;
        else a.reasons.push_back("bottleneck width " + std::to_string(width) + " with " + std::to_string(groups) + " groups");
    } else {
        std::string s;
        for (auto n : b) s += (s.empty() ? "" : ",") + std::to_string(n);
        a.reasons.push_back(std::string(basic ? "basic" : "bottleneck") + " blocks per stage [" + s + "] match no torchvision ResNet");
    }
}

void detectStem(Architecture& a, const std::vector<std::int64_t>& conv1) {
    a.in_channels = conv1[1];
    if (conv1[2] == 7 && conv1[3] == 7) a.stem = "imagenet";
    else if (conv1[2] == 3 && conv1[3] == 3) a.stem = "cifar";
    else a.reasons.push_back("conv1 is " + std::to_string(conv1[2]) + "x" + std::to_string(conv1[3]) + " (neither 7x7 nor 3x3)");
}

void detectFeatureDim(Architecture& a, const StateDict& sd) {
    if (a.blocks.empty()) return;
    const std::string last = "layer" + std::to_string(a.blocks.size()) + "." + std::to_string(a.blocks.back() - 1) + ".";
    const auto w = shapeOf(sd, last + (a.block == "basic" ? "conv2.weight" : "conv3.weight"));
    if (!w.empty()) a.feature_dim = w[0];
}

// ltlab's own small CNN (core/train/networks.cpp): conv1..3 of 16, 32, 64
// 3x3 filters, each with a BatchNorm (bn1..3), and a head.
bool looksLikeLtlabCnn(const StateDict& sd) {
    const std::int64_t widths[] = {16, 32, 64};
    for (int i = 0; i < 3; ++i) {
        const std::string n = std::to_string(i + 1);
        const auto w = shapeOf(sd, "conv" + n + ".weight");
        if (w.size() != 4 || w[0] != widths[i] || w[2] != 3 || w[3] != 3 || (i > 0 && w[1] != widths[i - 1])) return false;
        if (!tensorNamed(sd, "bn" + n + ".running_mean")) return false;
    }
    return !tensorNamed(sd, "conv4.weight");
}

bool looksLikeMlp(const StateDict& sd, std::size_t& layers) {
    layers = 0;
    for (const auto& t : sd.tensors) {
        if (t.tensor->shape.size() > 2) return false;
        if (t.tensor->shape.size() == 2) ++layers;
    }
    return layers >= 2;
}

// ---- classifier -----------------------------------------------------------------

std::optional<Classifier> etfHead(const StateDict& sd) {
    std::optional<Classifier> found;
    for (const auto& t : sd.tensors) {
        const std::string suffix = "weight_vec";
        if (t.name.size() < suffix.size() || t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
        const std::string base = t.name.substr(0, t.name.size() - suffix.size());
        const TensorRef* norm = tensorNamed(sd, base + "weight_norm");
        if (t.tensor->shape.size() != 2 || !norm || norm->numel() != t.tensor->shape[0]) continue;
        Classifier c;
        c.etf = true;
        c.weight_name = t.name;
        c.norm_name = base + "weight_norm";
        c.num_classes = t.tensor->shape[0];
        c.feature_dim = t.tensor->shape[1];
        if (const TensorRef* b = tensorNamed(sd, base + "bias"); b && b->shape == std::vector<std::int64_t>{c.num_classes})
            c.bias_name = base + "bias";
        found = c;
        if (base == "fc.") break;
    }
    return found;
}

std::optional<Classifier> linearHead(const StateDict& sd) {
    const NamedTensor* weight = nullptr;
    for (const auto& t : sd.tensors) {
        const bool is_weight = t.name == "weight" || (t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, ".weight") == 0);
        if (is_weight && t.tensor->shape.size() == 2 && isFloating(t.tensor->dtype())) weight = &t;
    }
    if (const NamedTensor* fc = sd.find("fc.weight"); fc && fc->tensor->shape.size() == 2 && isFloating(fc->tensor->dtype()))
        weight = fc;
    if (!weight) return std::nullopt;
    Classifier c;
    c.weight_name = weight->name;
    c.num_classes = weight->tensor->shape[0];
    c.feature_dim = weight->tensor->shape[1];
    const std::string bias = weight->name.substr(0, weight->name.size() - 6) + "bias";
    if (const TensorRef* b = tensorNamed(sd, bias); b && b->shape == std::vector<std::int64_t>{c.num_classes} && isFloating(b->dtype()))
        c.bias_name = bias;
    return c;
}

// ---- opaque entries ---------------------------------------------------------------

std::string keyText(const Value& k) {
    if (k.kind == Kind::String) return k.text;
    if (k.kind == Kind::Int) return std::to_string(k.integer);
    return "<" + std::string(kindName(k.kind)) + ">";
}

void walkOpaque(const Value& v, const std::string& path, int depth, std::unordered_set<const Value*>& seen,
                std::vector<OpaqueEntry>& out, std::size_t limit) {
    if (out.size() >= limit || depth > kMaxDepth || !seen.insert(&v).second) return;
    if (v.kind == Kind::Object) {
        out.push_back({path.empty() ? "(root)" : path, v.text});
        return;
    }
    auto join = [&](const std::string& k) { return path.empty() ? k : path + "." + k; };
    for (const auto& [k, x] : v.entries) walkOpaque(*x, join(keyText(*k)), depth + 1, seen, out, limit);
    if (v.kind == Kind::List || v.kind == Kind::Tuple || v.kind == Kind::Set)
        for (std::size_t i = 0; i < v.items.size(); ++i)
            walkOpaque(*v.items[i], (path.empty() ? "(root)" : path) + "[" + std::to_string(i) + "]", depth + 1, seen, out, limit);
}

} // namespace

StateDict extractStateDict(const Checkpoint& checkpoint) {
    StateDict sd;
    const Value& root = checkpoint.root();
    if (checkpoint.format() == Format::Safetensors) {
        collectDict(root, sd.tensors);
        sd.kind = "safetensors";
    } else if (!fromValue(root, sd) && !fromKnownKey(root, "", sd, 0)) {
        const Value* best = nullptr;
        std::string path;
        std::size_t count = 0;
        largestTensorDict(root, "", 0, best, path, count);
        if (best) {
            collectDict(*best, sd.tensors);
            sd.kind = "training checkpoint";
            sd.source = path;
        }
    }
    normaliseNames(sd);
    return sd;
}

Architecture detectArchitecture(const StateDict& sd) {
    Architecture a;
    const auto conv1 = shapeOf(sd, "conv1.weight");
    a.blocks = countBlocks(sd);
    if (conv1.size() == 4 && !a.blocks.empty() && a.blocks[0] > 0) {
        a.block = tensorNamed(sd, "layer1.0.conv3.weight") ? "bottleneck" : "basic";
        detectStem(a, conv1);
        nameResNet(a, sd);
        detectFeatureDim(a, sd);
        if (a.name.rfind("resnet", 0) == 0 && a.blocks.size() == 3 && a.stem == "imagenet")
            a.reasons.push_back("a 3-stage CIFAR ResNet with a 7x7 stem");
        return a;
    }
    if (conv1.size() == 4 && looksLikeLtlabCnn(sd)) {
        a.name = "cnn";
        a.in_channels = conv1[1];
        a.feature_dim = 64;
        a.reasons.push_back("ltlab's small CNN (conv1..3 of 16/32/64 filters with bn1..3)");
        return a;
    }
    std::size_t layers = 0;
    if (looksLikeMlp(sd, layers)) {
        a.name = "mlp";
        a.reasons.push_back(std::to_string(layers) + " linear layers, no convolutions");
        return a;
    }
    if (sd.tensors.empty()) a.reasons.push_back("no tensors");
    else if (conv1.size() != 4) a.reasons.push_back("no 4-D conv1.weight (torchvision's stem)");
    else a.reasons.push_back("no layer1.0.* blocks (torchvision's ResNet stages)");
    return a;
}

std::optional<Classifier> findClassifier(const StateDict& sd, std::vector<std::string>* reasons) {
    if (auto etf = etfHead(sd)) return etf;
    if (auto linear = linearHead(sd)) return linear;
    if (reasons) reasons->push_back("no 2-D floating-point *.weight (C x D) and no ETF head (*.weight_vec, *.weight_norm)");
    return std::nullopt;
}

ClassifierWeights readClassifier(const Checkpoint& checkpoint, const StateDict& sd, const Classifier& c) {
    using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    ClassifierWeights out;
    const auto w = checkpoint.read(*sd.find(c.weight_name)->tensor).toDoubles();
    out.weight = Eigen::Map<const RowMajor>(w.data(), c.num_classes, c.feature_dim);
    if (c.etf) {
        const auto norm = checkpoint.read(*sd.find(c.norm_name)->tensor).toDoubles();
        for (Eigen::Index r = 0; r < out.weight.rows(); ++r) out.weight.row(r) *= norm[static_cast<std::size_t>(r)];
    }
    out.bias = Eigen::VectorXd::Zero(c.num_classes);
    if (!c.bias_name.empty()) {
        const auto b = checkpoint.read(*sd.find(c.bias_name)->tensor).toDoubles();
        out.bias = Eigen::Map<const Eigen::VectorXd>(b.data(), c.num_classes);
        out.has_bias = true;
    }
    return out;
}

std::optional<Architecture> architectureFromModelName(const std::string& model, const std::optional<std::string>& data) {
    static const std::map<std::string, std::string> names = {
        {"ResNet18", "resnet18"}, {"ResNet34", "resnet34"}, {"ResNet50", "resnet50"}, {"ResNeXt50", "resnext50_32x4d"}};
    const bool im = model.rfind("IM", 0) == 0;
    const auto it = names.find(im ? model.substr(2) : model);
    if (it == names.end()) return std::nullopt;
    Architecture a;
    a.name = it->second;
    const bool for224 = im || (data && (data->rfind("ImageNet", 0) == 0 || data->rfind("MiniImagenet", 0) == 0));
    a.stem = for224 ? "imagenet" : "cifar";
    a.block = a.name == "resnet18" || a.name == "resnet34" ? "basic" : "bottleneck";
    return a;
}

SideArgs readSideArgs(const std::string& checkpoint_path) {
    SideArgs out;
    const auto path = std::filesystem::path(checkpoint_path).parent_path() / "args.json";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return out;
    out.path = path.string();
    std::ifstream in(path);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        out.warnings.push_back(out.path + ": not a JSON object; ignored");
        return out;
    }
    auto at = [&](const char* pointer) -> const nlohmann::json* {
        try {
            return &j.at(nlohmann::json::json_pointer(pointer));
        } catch (const nlohmann::json::exception&) { // absent, or a parent is not an object
            return nullptr;
        }
    };
    if (auto v = at("/model/name"); v && v->is_string()) out.model_name = v->get<std::string>();
    if (auto v = at("/data/name"); v && v->is_string()) out.data_name = v->get<std::string>();
    if (auto v = at("/data/n_classes"); v && v->is_number_integer()) out.num_classes = v->get<std::int64_t>();
    if (auto v = at("/model/use_etf"); v && v->is_boolean()) out.use_etf = v->get<bool>();
    if (auto v = at("/model/logit_adjustment_tau"); v && v->is_number()) out.tau = v->get<double>();
    if (auto v = at("/model/use_additive_logit_adjustment"); v && v->is_boolean()) out.additive_logit_adjustment = v->get<bool>();
    return out;
}

std::vector<OpaqueEntry> opaqueEntries(const Value& root, std::size_t limit) {
    std::vector<OpaqueEntry> out;
    std::unordered_set<const Value*> seen;
    walkOpaque(root, "", 0, seen, out, limit);
    return out;
}

} // namespace ltlab::ckpt
