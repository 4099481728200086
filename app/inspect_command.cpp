// `ltlab inspect CHECKPOINT`: what a checkpoint holds (format, tensors,
// architecture, classifier, opaque entries) and, given class counts, the
// per-class classifier norms and the logit adjustment they imply. Reads the
// pickle and the classifier only, never the other tensors' data; no libtorch.

#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ltlab/class_counts.h"
#include "cli_args.h"
#include "commands.h"
#include "ltlab/checkpoint.h"
#include "ltlab/implicit_la.h"
#include "ltlab/run_file.h"

namespace ltlab::app {

namespace {

using namespace ltlab::ckpt;
using Json = nlohmann::ordered_json;

struct Inspection {
    std::unique_ptr<Checkpoint> checkpoint;
    StateDict state_dict;
    Architecture architecture;
    std::optional<Classifier> classifier;
    std::vector<std::string> classifier_reasons;
    std::vector<OpaqueEntry> opaque;
    SideArgs side_args;
    std::vector<std::string> warnings;
    // With counts:
    std::vector<std::int64_t> counts;
    std::vector<double> weight_norm, bias;
    ImplicitLogitAdjustment implicit;
};

// ---- gathering --------------------------------------------------------------------

void crossCheck(Inspection& r) {
    const auto& a = r.side_args;
    if (r.classifier && a.num_classes && *a.num_classes != r.classifier->num_classes)
        r.warnings.push_back("args.json says " + std::to_string(*a.num_classes) + " classes; the classifier has " +
                             std::to_string(r.classifier->num_classes));
    if (r.classifier && a.use_etf && *a.use_etf != r.classifier->etf)
        r.warnings.push_back(std::string("args.json says use_etf ") + (*a.use_etf ? "true" : "false") + "; the classifier is " +
                             (r.classifier->etf ? "an ETF head" : "linear"));
    if (r.classifier && r.architecture.feature_dim && r.architecture.feature_dim != r.classifier->feature_dim)
        r.warnings.push_back("the backbone gives " + std::to_string(r.architecture.feature_dim) + "-d features; the classifier takes " +
                             std::to_string(r.classifier->feature_dim));
    if (r.architecture.name == "unknown" && a.model_name)
        if (auto named = architectureFromModelName(*a.model_name, a.data_name))
            r.warnings.push_back("architecture not recognised from the keys; args.json names " + named->name);
    for (const auto& w : a.warnings) r.warnings.push_back(w);
}

void addCounts(Inspection& r, const std::string& counts_path) {
    r.counts = readCounts(counts_path);
    if (!r.classifier) throw InputError(r.checkpoint->path(), "", "no classifier found, so --counts cannot be used");
    if (static_cast<std::int64_t>(r.counts.size()) != r.classifier->num_classes)
        throw InputError(counts_path, "", "has " + std::to_string(r.counts.size()) + " class counts; the classifier has " +
                                              std::to_string(r.classifier->num_classes) + " classes");
    const ClassifierWeights w = readClassifier(*r.checkpoint, r.state_dict, *r.classifier);
    for (Eigen::Index c = 0; c < w.weight.rows(); ++c) {
        r.weight_norm.push_back(w.weight.row(c).norm());
        r.bias.push_back(w.bias[c]);
    }
    r.implicit = implicitLogitAdjustment(r.weight_norm, r.counts);
}

Inspection inspect(const std::string& path, const std::optional<std::string>& counts) {
    Inspection r;
    r.checkpoint = Checkpoint::open(path);
    r.state_dict = extractStateDict(*r.checkpoint);
    r.architecture = detectArchitecture(r.state_dict);
    r.classifier = findClassifier(r.state_dict, &r.classifier_reasons);
    r.opaque = opaqueEntries(r.checkpoint->root());
    r.side_args = readSideArgs(path);
    if (r.checkpoint->format() == Format::TorchScript)
        r.warnings.push_back("a TorchScript module: running it (features, logits) needs the training module (torch::jit::load)");
    crossCheck(r);
    if (counts) addCounts(r, *counts);
    return r;
}

// ---- output --------------------------------------------------------------------------

std::string shapeText(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

std::string dtypeText(const TensorRef& t) {
    return t.dtype() == DType::Unsupported ? t.storage->type_name : dtypeName(t.dtype());
}

std::pair<std::int64_t, std::int64_t> totals(const StateDict& sd) {
    std::int64_t values = 0, bytes = 0;
    for (const auto& t : sd.tensors) {
        values += t.tensor->numel();
        bytes += t.tensor->numel() * static_cast<std::int64_t>(itemSize(t.tensor->dtype()));
    }
    return {values, bytes};
}

Json optionalJson(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

Json sideArgsJson(const SideArgs& a) {
    if (a.path.empty()) return nullptr;
    Json j;
    j["path"] = a.path;
    j["model_name"] = a.model_name ? Json(*a.model_name) : Json(nullptr);
    j["data_name"] = a.data_name ? Json(*a.data_name) : Json(nullptr);
    j["num_classes"] = a.num_classes ? Json(*a.num_classes) : Json(nullptr);
    j["use_etf"] = a.use_etf ? Json(*a.use_etf) : Json(nullptr);
    j["tau"] = optionalJson(a.tau);
    j["additive_logit_adjustment"] = a.additive_logit_adjustment ? Json(*a.additive_logit_adjustment) : Json(nullptr);
    return j;
}

Json tensorValues(const Checkpoint& ck, const TensorRef& t) {
    if (t.dtype() == DType::Unsupported) return nullptr;
    const DenseTensor d = ck.read(t);
    if (isFloating(d.dtype)) {
        Json list = Json::array();
        for (double v : d.toDoubles()) list.push_back(std::isfinite(v) ? Json(v) : Json(std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"));
        return list;
    }
    return Json(d.toIntegers());
}

Json stateDictJson(const Inspection& r, bool values) {
    const StateDict& sd = r.state_dict;
    Json j;
    j["kind"] = sd.kind;
    j["source"] = sd.source;
    j["prefixes"] = sd.prefixes;
    j["notes"] = sd.notes;
    const auto [num_values, bytes] = totals(sd);
    j["num_tensors"] = sd.tensors.size();
    j["num_values"] = num_values;
    j["bytes"] = bytes;
    Json list = Json::array();
    for (const auto& t : sd.tensors) {
        Json e;
        e["name"] = t.name;
        e["original_name"] = t.original_name;
        e["dtype"] = dtypeText(*t.tensor);
        e["shape"] = t.tensor->shape;
        e["location"] = t.tensor->storage->location;
        if (values) e["values"] = tensorValues(*r.checkpoint, *t.tensor);
        list.push_back(std::move(e));
    }
    j["tensors"] = std::move(list);
    return j;
}

Json topLevelJson(const Value& root) {
    Json list = Json::array();
    for (const auto& [k, v] : root.entries)
        list.push_back({{"key", k->kind == Value::Kind::String ? k->text : describe(*k)}, {"value", describe(*v)}});
    return list;
}

Json toJson(const Inspection& r, bool values) {
    const Checkpoint& ck = *r.checkpoint;
    Json j;
    j["file"] = ck.path();
    j["format"] = formatName(ck.format());
    j["format_detail"] = ck.formatDetail();
    j["metadata"] = ck.metadata();
    j["root"] = describe(ck.root());
    j["top_level"] = topLevelJson(ck.root());
    j["state_dict"] = stateDictJson(r, values);
    const Architecture& a = r.architecture;
    j["architecture"] = {{"name", a.name}, {"stem", a.stem}, {"block", a.block}, {"blocks", a.blocks},
                         {"in_channels", a.in_channels}, {"feature_dim", a.feature_dim}, {"reasons", a.reasons}};
    if (r.classifier) {
        const Classifier& c = *r.classifier;
        j["classifier"] = {{"weight", c.weight_name}, {"norm", c.etf ? Json(c.norm_name) : Json(nullptr)},
                           {"bias", c.bias_name.empty() ? Json(nullptr) : Json(c.bias_name)}, {"etf", c.etf},
                           {"num_classes", c.num_classes}, {"feature_dim", c.feature_dim}};
    } else {
        j["classifier"] = nullptr;
        j["classifier_reasons"] = r.classifier_reasons;
    }
    Json opaque = Json::array();
    for (const auto& o : r.opaque) opaque.push_back({{"path", o.path}, {"type", o.type}});
    j["opaque"] = std::move(opaque);
    j["args_json"] = sideArgsJson(r.side_args);
    j["warnings"] = r.warnings;
    if (!r.counts.empty()) {
        j["classes"] = {{"train_counts", r.counts}, {"weight_norm", r.weight_norm}, {"bias", r.bias}};
        j["implicit_la_tau"] = optionalJson(r.implicit.tau);
        j["implicit_la_intercept"] = optionalJson(r.implicit.intercept);
    }
    return j;
}

std::string architectureText(const Architecture& a) {
    std::string s = a.name;
    if (a.stem == "cifar") s += ", CIFAR stem (3x3 stride-1 conv1, no max-pool)";
    if (a.stem == "imagenet") s += ", ImageNet stem (7x7 conv1, max-pool)";
    if (!a.block.empty()) s += ", " + a.block + " blocks " + shapeText(a.blocks);
    if (a.feature_dim) s += ", " + std::to_string(a.feature_dim) + "-d features";
    for (const auto& why : a.reasons) s += "; " + why;
    return s;
}

std::string contentsText(const StateDict& sd) {
    if (sd.tensors.empty()) return "no model weights found";
    const auto [values, bytes] = totals(sd);
    std::ostringstream s;
    s << sd.kind;
    if (!sd.source.empty()) s << ", weights under '" << sd.source << "'";
    s << "; " << sd.tensors.size() << " tensors, " << values << " values, " << std::fixed << std::setprecision(1)
      << static_cast<double>(bytes) / 1e6 << " MB";
    return s.str();
}

void printClasses(std::ostream& out, const Inspection& r) {
    out << "\nper class (classifier norms with the given counts):\n  class  train_count  weight_norm        bias\n";
    for (std::size_t c = 0; c < r.counts.size(); ++c)
        out << "  " << std::setw(5) << c << "  " << std::setw(11) << r.counts[c] << "  " << std::setw(11) << std::setprecision(6)
            << std::defaultfloat << r.weight_norm[c] << "  " << std::setw(10) << r.bias[c] << "\n";
    out << "implicit tau (slope of log||w|| on -log pi): " << (r.implicit.tau ? std::to_string(*r.implicit.tau) : "null") << "\n";
}

void printText(std::ostream& out, const Inspection& r) {
    const Checkpoint& ck = *r.checkpoint;
    const StateDict& sd = r.state_dict;
    out << "file:          " << ck.path() << "\n"
        << "format:        " << formatName(ck.format()) << " (" << ck.formatDetail() << ")\n"
        << "contents:      " << contentsText(sd) << "\n";
    for (const auto& p : sd.prefixes) out << "names:         prefix '" << p << "' removed\n";
    for (const auto& n : sd.notes) out << "note:          " << n << "\n";
    out << "architecture:  " << architectureText(r.architecture) << "\n";
    if (r.classifier) {
        const Classifier& c = *r.classifier;
        out << "classifier:    " << (c.etf ? c.weight_name + " x " + c.norm_name + " (ETF head)" : c.weight_name)
            << (c.bias_name.empty() ? ", no bias" : " + " + c.bias_name) << ": C = " << c.num_classes << " classes, D = " << c.feature_dim << "\n";
    } else {
        out << "classifier:    none (" << (r.classifier_reasons.empty() ? "" : r.classifier_reasons[0]) << ")\n";
    }
    if (!r.side_args.path.empty()) out << "args.json:     " << sideArgsJson(r.side_args).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    for (const auto& w : r.warnings) out << "warning:       " << w << "\n";
    if (!ck.root().entries.empty() && sd.kind != "state_dict" && sd.kind != "safetensors" && sd.kind != "dict of parameters") {
        out << "\ntop-level entries:\n";
        for (const auto& e : topLevelJson(ck.root())) out << "  " << std::left << std::setw(24) << e["key"].get<std::string>() << std::right << " " << e["value"].get<std::string>() << "\n";
    }
    if (!r.opaque.empty()) {
        out << "\nopaque entries (classes outside the whitelist; never run, not loaded):\n";
        for (const auto& o : r.opaque) out << "  " << std::left << std::setw(24) << o.path << std::right << " " << o.type << "\n";
    }
    out << "\ntensors (" << sd.tensors.size() << "):\n";
    for (const auto& t : sd.tensors)
        out << "  " << std::left << std::setw(44) << t.name << std::right << " " << std::setw(8) << dtypeText(*t.tensor) << "  "
            << shapeText(t.tensor->shape) << "\n";
    if (!r.counts.empty()) printClasses(out, r);
}

} // namespace

int runInspect(const std::vector<std::string>& argv) {
    return guarded("inspect", [&] {
        const cli::Args args({{"counts", "FILE", "class counts (JSON list, text, or a run file): per-class norms and implicit tau"},
                              {"format", "FORMAT", "text (default) or json"},
                              {"values", "", "with --format json: every tensor's elements too (for tests; large)"},
                              {"help", "", "show this help"}},
                             argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab inspect CHECKPOINT [options]\n\n"
                         "Shows what a checkpoint holds: its format (PyTorch zip or legacy torch.save,\n"
                         "safetensors, TorchScript), the model weights with dtypes and shapes, the\n"
                         "architecture and classifier detected from them, and entries of classes that\n"
                         "ltlab does not load (never executed). The file's extension does not matter.\n\n"
                      << args.optionsHelp()
                      << "\nExit status: 0 success, 1 usage error, 2 unreadable or invalid input.\n";
            return kExitOk;
        }
        if (args.positional().size() != 1)
            throw UsageError(args.positional().empty() ? "missing CHECKPOINT (see --help)"
                                                       : "expected one CHECKPOINT, got " + std::to_string(args.positional().size()));
        const std::string format = args.choice("format", {"text", "json"}, "text");
        if (args.flag("values") && format != "json") throw UsageError("--values needs --format json");
        const Inspection r = inspect(args.positional()[0], args.value("counts"));
        if (format == "json")
            // Tensor names and metadata from the file need not be UTF-8: invalid bytes become U+FFFD.
            std::cout << toJson(r, args.flag("values")).dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        else
            printText(std::cout, r);
        return kExitOk;
    });
}

} // namespace ltlab::app
