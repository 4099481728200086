// TorchScript modules behind ltlab's Network interface (see weights.h). The
// only translation unit that includes <torch/script.h>.

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>

#include <map>

#include "ltlab/error.h"
#include "weights.h"

namespace ltlab::train {

namespace jit = torch::jit;

namespace {

// ---- the forward graph: the last linear layer and train-mode BatchNorm --------------

// "net.fc.weight" for a chain of prim::GetAttr from the module itself; "" otherwise.
std::string attributePath(const jit::Value* v) {
    std::string path;
    while (v->node()->kind() == jit::prim::GetAttr) {
        path = v->node()->s(jit::attr::name) + (path.empty() ? "" : "." + path);
        v = v->node()->input(0);
    }
    return v->node()->kind() == jit::prim::Param ? path : "";
}

struct ForwardGraph {
    std::shared_ptr<jit::Graph> graph;   // forward, inlined
    jit::Node* last_linear = nullptr;    // top-level nodes only
    bool train_mode_batch_norm = false;
};

ForwardGraph inspectForward(jit::Module& module) {
    ForwardGraph f;
    f.graph = module.get_method("forward").graph()->copy();
    jit::Inline(*f.graph);
    for (jit::Node* n : f.graph->nodes()) {
        if (n->kind() == jit::aten::linear) f.last_linear = n;
        if (n->kind() == jit::aten::batch_norm) {
            const auto training = jit::toIValue(n->input(5));
            f.train_mode_batch_norm = f.train_mode_batch_norm || (training && training->isBool() && training->toBool());
        }
    }
    return f;
}

// forward, also returning the last linear layer's input: (output, features).
std::unique_ptr<jit::GraphFunction> tapFeatures(const ForwardGraph& f) {
    std::shared_ptr<jit::Graph> g = f.graph->copy();
    jit::Node* last = nullptr;
    for (jit::Node* n : g->nodes())
        if (n->kind() == jit::aten::linear) last = n;
    jit::Node* tuple = g->createTuple({g->outputs()[0], last->input(0)});
    g->appendNode(tuple);
    g->eraseOutput(0);
    g->registerOutput(tuple->output());
    return std::make_unique<jit::GraphFunction>(c10::QualifiedName("ltlab_forward_features"), g, nullptr);
}

// ---- the top-level submodules, for the layer-wise analysis ---------------------------

// forward's calls of a top-level submodule's forward with one tensor output, not inlined.
bool isBlockCall(const jit::Node* n, const std::string& head_prefix) {
    if (n->kind() != jit::prim::CallMethod || n->s(jit::attr::name) != "forward" || n->outputs().size() != 1) return false;
    const std::string path = attributePath(n->input(0));
    return !path.empty() && path.find('.') == std::string::npos && path != head_prefix &&
           n->output()->type()->kind() == c10::TypeKind::TensorType;
}

struct BlockTap {
    std::string name;                         // the submodule ("layer1"; "relu#2" when called again)
    std::string module;
    std::unique_ptr<jit::GraphFunction> run;  // forward up to that call, returning its output
};

// One function per call: a copy of forward whose output is that call's, the
// rest removed as dead code, so that each layer is computed (and held) alone.
std::vector<BlockTap> blockTaps(jit::Module& module, const std::string& head_prefix) {
    const std::shared_ptr<jit::Graph> graph = module.get_method("forward").graph();
    std::vector<BlockTap> taps;
    std::map<std::string, int> calls;
    std::size_t index = 0;
    for (jit::Node* n : graph->nodes()) {
        if (!isBlockCall(n, head_prefix)) continue;
        const std::string path = attributePath(n->input(0));
        const int k = ++calls[path];
        std::shared_ptr<jit::Graph> g = graph->copy();
        std::size_t seen = 0;
        for (jit::Node* m : g->nodes()) {
            if (!isBlockCall(m, head_prefix) || seen++ != index) continue;
            while (!g->outputs().empty()) g->eraseOutput(0);
            g->registerOutput(m->output());
            break;
        }
        jit::EliminateDeadCode(g);
        taps.push_back({k == 1 ? path : path + "#" + std::to_string(k), path,
                        std::make_unique<jit::GraphFunction>(c10::QualifiedName("ltlab_block_" + std::to_string(index)), g, nullptr)});
        ++index;
    }
    return taps;
}

// ---- the classifier -------------------------------------------------------------------

std::map<std::string, torch::Tensor> namedTensors(const jit::Module& module) {
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : module.named_parameters(true)) out.emplace(p.name, p.value);
    for (const auto& b : module.named_buffers(true)) out.emplace(b.name, b.value);
    return out;
}

struct Head {
    torch::Tensor weight, bias; // C x D; C or undefined
    std::string name;
};

// `prefix`.weight (+ .bias), or the papers' prefix.weight_vec x prefix.weight_norm.
std::optional<Head> headAt(const std::map<std::string, torch::Tensor>& tensors, const std::string& prefix) {
    const std::string p = prefix.empty() ? "" : prefix + ".";
    auto get = [&](const std::string& n) { const auto it = tensors.find(p + n); return it == tensors.end() ? torch::Tensor() : it->second; };
    Head h;
    h.name = p + "weight";
    h.weight = get("weight");
    if (!h.weight.defined() && get("weight_vec").defined() && get("weight_norm").defined()) {
        h.weight = get("weight_vec") * get("weight_norm").reshape({-1, 1});
        h.name = p + "weight_vec x " + p + "weight_norm";
    }
    if (!h.weight.defined() || h.weight.dim() != 2) return std::nullopt;
    h.bias = get("bias");
    if (h.bias.defined() && h.bias.numel() != h.weight.size(0)) h.bias = torch::Tensor();
    return h;
}

std::string prefixOf(const std::string& name) {
    const auto dot = name.rfind('.');
    return dot == std::string::npos ? "" : name.substr(0, dot);
}

Head findHead(const std::string& path, const std::map<std::string, torch::Tensor>& tensors, const ForwardGraph& f,
              const ckpt::StateDict& listed, const std::string& classifier) {
    if (!classifier.empty()) {
        if (auto h = headAt(tensors, classifier)) return *h;
        throw InputError(path, classifier, "is no classifier (no 2-D " + classifier + ".weight, nor weight_vec and weight_norm)");
    }
    if (f.last_linear) {
        const std::string w = attributePath(f.last_linear->input(1));
        if (auto h = w.empty() ? std::nullopt : headAt(tensors, prefixOf(w))) return *h;
    }
    if (auto c = ckpt::findClassifier(listed)) {
        const std::string prefix = prefixOf(c->weight_name);
        if (auto h = headAt(tensors, prefix)) return *h;
    }
    throw InputError(path, "", "no classifier: forward has no aten::linear and the module no 2-D *.weight; name the "
                               "classifier with --classifier");
}

// ---- the network -----------------------------------------------------------------------

enum class FeatureSource { Method, Tap, Submodule };

class ScriptNetworkImpl : public NetworkImpl {
public:
    ScriptNetworkImpl(jit::Module module, FeatureSource source, std::unique_ptr<jit::GraphFunction> tap,
                      std::optional<jit::Module> submodule, const Head& head)
        : module_(std::move(module)), source_(source), tap_(std::move(tap)), submodule_(std::move(submodule)),
          head_prefix_(prefixOf(head.name.substr(0, head.name.find(' ')))) {
        feature_dim_ = head.weight.size(1);
        setLinearHead(head.weight.size(0), head.bias.defined());
        torch::NoGradGuard no_grad;
        classifierWeight().copy_(head.weight);
        if (head.bias.defined()) classifierBias().copy_(head.bias);
    }
    torch::Tensor features(torch::Tensor x) override {
        torch::Tensor h;
        if (source_ == FeatureSource::Method) h = module_.get_method("features")({x}).toTensor();
        else if (source_ == FeatureSource::Submodule) h = submodule_->forward({x}).toTensor();
        else {
            jit::Stack stack{module_._ivalue(), x};
            tap_->run(stack);
            h = stack.back().toTupleRef().elements()[1].toTensor();
        }
        return h.dim() > 2 ? h.flatten(1) : h;
    }
    // The input, each top-level submodule's output (but the classifier's), the features.
    void forwardBlocks(torch::Tensor x, bool, const BlockCallback& emit) override {
        if (!taps_built_) taps_ = blockTaps(module_, head_prefix_), taps_built_ = true;
        emit({"input", {}, x});
        for (const BlockTap& tap : taps_) {
            jit::Stack stack{module_._ivalue(), x};
            tap.run->run(stack);
            emit({tap.name, {tap.module}, stack.back().toTensor()});
        }
        emit({"pooled", {}, features(x)});
    }
    std::vector<std::pair<std::string, torch::Tensor>> namedTensors() override {
        const auto all = ltlab::train::namedTensors(module_);
        return {all.begin(), all.end()};
    }
    using NetworkImpl::to;
    void to(torch::Device device, bool non_blocking) override {
        NetworkImpl::to(device, non_blocking);
        module_.to(device, non_blocking);
    }
    void train(bool on) override {
        NetworkImpl::train(on);
        module_.train(on);
    }

private:
    jit::Module module_;
    FeatureSource source_;
    std::unique_ptr<jit::GraphFunction> tap_;
    std::optional<jit::Module> submodule_;
    std::string head_prefix_;
    std::vector<BlockTap> taps_;
    bool taps_built_ = false;
};

std::optional<jit::Module> submoduleNamed(const jit::Module& module, const std::string& name) {
    for (const auto& m : module.named_modules())
        if (m.name == name) return m.value;
    return std::nullopt;
}

jit::Module loadModule(const std::string& path) {
    try {
        jit::Module m = jit::load(path, torch::kCPU);
        m.eval();
        return m;
    } catch (const c10::Error& e) {
        throw InputError(path, "", std::string("not a loadable TorchScript module: ") + e.what_without_backtrace());
    }
}

// What the weights look like (for the input shape and the transform).
void describeInput(ImportedModel& m, const ckpt::StateDict& listed) {
    const ckpt::Architecture a = ckpt::detectArchitecture(listed);
    m.in_channels = a.in_channels > 0 ? a.in_channels : 3;
    if (a.name != "unknown" && a.name != "mlp") {
        m.arch = {a.name, a.stem.empty() ? "cifar" : a.stem};
        m.input_size = m.arch.stem == "imagenet" ? 224 : (m.in_channels == 1 ? 28 : 32);
        m.architecture = "torchscript (" + archName(m.arch) + ")";
        return;
    }
    m.arch = {"torchscript", "cifar"};
    m.input_size = m.in_channels == 1 ? 28 : 32;
    m.architecture = "torchscript";
    m.notes.push_back("input shape not known from the weights: " + std::to_string(m.in_channels) + "x" +
                      std::to_string(m.input_size) + "x" + std::to_string(m.input_size) + " assumed (--resize, --crop)");
}

} // namespace

ImportedModel loadTorchScript(const std::string& path, const ckpt::StateDict& listed, const std::string& features_module,
                              const std::string& classifier) {
    jit::Module module = loadModule(path);
    const ForwardGraph graph = inspectForward(module);
    const Head head = findHead(path, namedTensors(module), graph, listed, classifier);
    ImportedModel m;
    describeInput(m, listed);
    FeatureSource source = FeatureSource::Tap;
    std::optional<jit::Module> sub;
    if (!features_module.empty()) {
        sub = submoduleNamed(module, features_module);
        if (!sub) throw InputError(path, features_module, "no such submodule (for --features-module)");
        source = FeatureSource::Submodule;
    } else if (module.find_method("features")) {
        source = FeatureSource::Method;
    } else if (!graph.last_linear) {
        throw InputError(path, "", "no features: no 'features' method and no aten::linear in forward; name the submodule "
                                   "that computes them with --features-module");
    }
    const std::string how = source == FeatureSource::Method ? "its 'features' method"
                            : source == FeatureSource::Tap  ? "the input of the last linear layer of forward"
                                                            : "the submodule " + features_module;
    m.notes.push_back("TorchScript: features from " + how + ", classifier " + head.name);
    if (graph.train_mode_batch_norm)
        m.notes.push_back("warning: the module was traced in train mode: its BatchNorm layers use the batch's statistics "
                          "even in eval mode (trace after model.eval())");
    m.classes = head.weight.size(0);
    m.net = std::make_shared<ScriptNetworkImpl>(std::move(module), source,
                                                source == FeatureSource::Tap ? tapFeatures(graph) : nullptr, sub, head);
    return m;
}

} // namespace ltlab::train
