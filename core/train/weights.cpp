// A checkpoint's state_dict into a built-in network (see weights.h).

#include "weights.h"

#include <cmath>
#include <map>
#include <set>

#include "ltlab/error.h"

namespace ltlab::train {

namespace {

std::string shapeText(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

torch::Dtype torchDtype(ckpt::DType d, const std::string& file, const std::string& name) {
    switch (d) {
    case ckpt::DType::F64: return torch::kFloat64;
    case ckpt::DType::F32: return torch::kFloat32;
    case ckpt::DType::F16: return torch::kFloat16;
    case ckpt::DType::BF16: return torch::kBFloat16;
    case ckpt::DType::I64: return torch::kInt64;
    case ckpt::DType::I32: return torch::kInt32;
    case ckpt::DType::I16: return torch::kInt16;
    case ckpt::DType::I8: return torch::kInt8;
    case ckpt::DType::U8: return torch::kUInt8;
    case ckpt::DType::Bool: return torch::kBool;
    default: throw InputError(file, name, "has an unsupported dtype");
    }
}

// One tensor of the file as a torch tensor of its own dtype (a copy).
torch::Tensor readTensor(const ckpt::Checkpoint& file, const ckpt::NamedTensor& t) {
    ckpt::DenseTensor dense = file.read(*t.tensor);
    const torch::Dtype dtype = torchDtype(dense.dtype, file.path(), t.original_name);
    return torch::from_blob(dense.bytes.data(), dense.shape, dtype).clone();
}

// ---- the architecture ------------------------------------------------------------

std::int64_t isqrt(std::int64_t n) {
    auto r = static_cast<std::int64_t>(std::llround(std::sqrt(double(n))));
    return r * r == n ? r : 0;
}

// Input channels and side of a built-in network for these weights.
void inputShape(ImportedModel& m, const ckpt::StateDict& sd, const ckpt::Architecture& detected) {
    if (m.arch.name == "mlp") {
        const ckpt::NamedTensor* fc1 = sd.find("fc1.weight");
        m.input_features = fc1 && fc1->tensor->shape.size() == 2 ? fc1->tensor->shape[1] : 784;
        m.in_channels = isqrt(m.input_features) ? 1 : isqrt(m.input_features / 3) && m.input_features % 3 == 0 ? 3 : 0;
        m.input_size = m.in_channels ? isqrt(m.input_features / m.in_channels) : 0;
        return;
    }
    m.in_channels = detected.in_channels > 0 ? detected.in_channels : 3;
    if (m.arch.name == "cnn") m.input_size = m.in_channels == 1 ? 28 : 32;
    else m.input_size = m.arch.stem == "imagenet" ? 224 : 32;
}

// ---- matching names and shapes ----------------------------------------------------

struct Match {
    std::vector<std::string> missing, unexpected, wrong_shape;
    bool ok() const { return missing.empty() && unexpected.empty() && wrong_shape.empty(); }
};

std::map<std::string, torch::Tensor> networkTensors(NetworkImpl& net) {
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : net.named_parameters()) out.emplace(p.key(), p.value());
    for (const auto& b : net.named_buffers()) out.emplace(b.key(), b.value());
    return out;
}

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// weight_norm may be stored as [C] or [C, 1]; everything else must match exactly.
bool shapeFits(const std::string& name, const std::vector<std::int64_t>& file_shape, const torch::Tensor& t) {
    if (file_shape == t.sizes().vec()) return true;
    std::int64_t numel = 1;
    for (auto n : file_shape) numel *= n;
    return endsWith(name, "weight_norm") && numel == t.numel();
}

Match match(const ckpt::StateDict& sd, const std::map<std::string, torch::Tensor>& expected) {
    Match m;
    std::set<std::string> seen;
    for (const auto& t : sd.tensors) {
        seen.insert(t.name);
        const auto it = expected.find(t.name);
        if (it == expected.end()) m.unexpected.push_back(t.name);
        else if (!shapeFits(t.name, t.tensor->shape, it->second))
            m.wrong_shape.push_back(t.name + " (file " + shapeText(t.tensor->shape) + ", network " +
                                    shapeText(it->second.sizes().vec()) + ")");
    }
    for (const auto& [name, tensor] : expected) // files from before PyTorch 0.4.1 have no num_batches_tracked
        if (!seen.count(name) && !endsWith(name, "num_batches_tracked")) m.missing.push_back(name);
    return m;
}

std::string listed(const std::vector<std::string>& names, const char* what) {
    if (names.empty()) return "";
    std::string s = std::to_string(names.size()) + " " + what + ": ";
    for (std::size_t i = 0; i < names.size() && i < 8; ++i) s += (i ? ", " : "") + names[i];
    if (names.size() > 8) s += ", ... (" + std::to_string(names.size() - 8) + " more)";
    return s + "; ";
}

void requireMatch(const Match& m, const std::string& file, const std::string& arch) {
    if (m.ok()) return;
    std::string problem = "the weights do not fit " + arch + ": " + listed(m.missing, "missing") +
                          listed(m.unexpected, "unexpected") + listed(m.wrong_shape, "wrongly shaped");
    problem.resize(problem.size() - 2);
    throw InputError(file, "", problem + " (name the architecture with --arch; ltlab inspect lists the file's tensors)");
}

void copyWeights(const ckpt::Checkpoint& file, const ckpt::StateDict& sd, const std::map<std::string, torch::Tensor>& into) {
    torch::NoGradGuard no_grad;
    for (const auto& t : sd.tensors) {
        torch::Tensor target = into.at(t.name);
        target.copy_(readTensor(file, t).reshape(target.sizes()).to(target.scalar_type()));
    }
}

} // namespace

ArchSpec chooseArchitecture(const ckpt::StateDict& sd, const std::string& arch, const ckpt::SideArgs& side,
                            const std::string& file) {
    const ckpt::Architecture detected = ckpt::detectArchitecture(sd);
    if (arch != "auto" && !arch.empty()) {
        ArchSpec spec = parseArch(arch);
        if (spec.stem.empty()) spec.stem = detected.stem.empty() ? "cifar" : detected.stem;
        return spec;
    }
    if (detected.name != "unknown") return {detected.name, detected.stem.empty() ? "cifar" : detected.stem};
    if (side.model_name)
        if (auto a = ckpt::architectureFromModelName(*side.model_name, side.data_name)) return {a->name, a->stem};
    std::string why;
    for (const auto& r : detected.reasons) why += (why.empty() ? "" : "; ") + r;
    throw InputError(file, "", "cannot tell the architecture (" + why + "); name it with --arch (" + knownArchitectures() + ")");
}

ImportedModel loadBuiltIn(const ckpt::Checkpoint& file, const ckpt::StateDict& sd, const std::string& arch, bool copy) {
    ImportedModel m;
    const ckpt::SideArgs side = ckpt::readSideArgs(file.path());
    m.arch = chooseArchitecture(sd, arch, side, file.path());
    m.architecture = archName(m.arch);
    std::vector<std::string> reasons;
    const auto classifier = ckpt::findClassifier(sd, &reasons);
    if (!classifier) throw InputError(file.path(), "", "no classifier: " + (reasons.empty() ? std::string() : reasons[0]));
    m.classes = classifier->num_classes;
    m.etf = classifier->etf;
    inputShape(m, sd, ckpt::detectArchitecture(sd));
    try {
        m.net = m.arch.name == "mlp" ? makeNetwork(m.arch, m.input_features, 1, 1)
                                     : makeNetwork(m.arch, m.in_channels, m.input_size, m.input_size);
    } catch (const UsageError& e) {
        if (arch != "auto" && !arch.empty()) throw;
        throw InputError(file.path(), "", "looks like " + m.architecture + ", which ltlab does not build: " + e.what());
    }
    if (m.etf && m.net->featureDim() >= m.classes) m.net->setEtfHead(m.classes, !classifier->bias_name.empty(), 0);
    else m.net->setLinearHead(m.classes, !classifier->bias_name.empty());
    const auto expected = networkTensors(*m.net);
    requireMatch(match(sd, expected), file.path(), m.architecture);
    if (copy) copyWeights(file, sd, expected);
    m.notes.push_back(m.architecture + " (" + std::to_string(m.net->featureDim()) + "-d features), " +
                      (m.etf ? "ETF head " + classifier->weight_name + " x " + classifier->norm_name : "linear head " + classifier->weight_name) +
                      ", " + std::to_string(m.classes) + " classes; " + std::to_string(sd.tensors.size()) + " tensors from the " +
                      sd.kind + (sd.source.empty() ? "" : " under '" + sd.source + "'"));
    for (const auto& w : side.warnings) m.notes.push_back(w);
    if (side.num_classes && *side.num_classes != m.classes)
        m.notes.push_back("warning: args.json says " + std::to_string(*side.num_classes) + " classes; the classifier has " +
                          std::to_string(m.classes));
    if (side.use_etf && *side.use_etf != m.etf)
        m.notes.push_back(std::string("warning: args.json says use_etf ") + (*side.use_etf ? "true" : "false") +
                          "; the file's head is " + (m.etf ? "an ETF" : "linear"));
    return m;
}

} // namespace ltlab::train
