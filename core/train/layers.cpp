// `ltlab layers`: the layer-wise analysis behind ltlab::LayerAnalyzer
// (ltlab/layers.h). A network is rebuilt from a run file or a checkpoint,
// fed a seeded batch (a split's rows through evalBatch, or N(0,1) noise of its
// input shape) through evaluation.h's computeBlockOutputs, and each block's
// output goes to core's computeLayerStats as soon as it exists; only that
// layer's batch is held. Phases: the model, the inputs, the pass.

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "data.h"
#include "evaluation.h"
#include "import_model.h"
#include "ltlab/error.h"
#include "ltlab/run_checkpoint.h"
#include "ltlab/input_file.h"
#include "ltlab/layers.h"
#include "ltlab/run_file.h"
#include "networks.h"

namespace ltlab::train {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// ---- phase 1: the model -----------------------------------------------------------------------

struct Model {
    Network net;
    std::string architecture, source;
    std::optional<Data> data;          // the dataset the run or --dataset names
    std::int64_t channels = 3, height = 32, width = 32; // one input sample
    bool builtin = true;
    ArchSpec arch;
    std::int64_t classes = 0;
    bool etf = false, bias = true;
};

bool isHdf5(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    char magic[8] = {};
    in.read(magic, 8);
    return in.gcount() == 8 && std::string(magic, 8) == std::string("\x89HDF\r\n\x1a\n", 8);
}

void setShapeFromData(Model& m) {
    m.channels = m.data->channels;
    m.height = m.data->height;
    m.width = m.data->width;
    if (m.data->eval_transform.crop > 0) m.height = m.width = m.data->eval_transform.crop;
}

// A run that `ltlab train` made: its config and the checkpoint beside it.
Model trainedRun(const std::string& path, const std::string& config_json, bool init) {
    const TrainConfig c = TrainConfig::fromJson(config_json, TrainConfig{});
    Model m;
    m.data = loadData(c);
    setShapeFromData(m);
    m.arch = parseArch(resolvedModel(c.model, m.channels, m.height, m.width));
    m.architecture = archName(m.arch);
    m.classes = m.data->classes();
    m.etf = c.recipe == "wd-fr-etf";
    m.bias = c.classifier_bias;
    m.source = checkpointPath(path);
    m.net = makeNetwork(m.arch, m.channels, m.height, m.width);
    if (m.etf) m.net->setEtfHead(m.classes, m.bias, c.seed);
    else m.net->setLinearHead(m.classes, m.bias);
    if (init) return m;
    if (!fs::is_regular_file(m.source))
        throw InputError(path, "", "no checkpoint beside it (" + m.source + ", which ltlab train keeps): the trained "
                                   "weights are needed (or use --init)");
    // Verified as --resume verifies it (checksum, run id, epoch; docs/reliability.md),
    // and read from memory past its header.
    const VerifiedCheckpoint checkpoint = verifyRunCheckpoint(path, m.source);
    torch::serialize::InputArchive archive, model;
    try {
        archive.load_from(checkpoint.archive.data(), checkpoint.archive.size(), torch::kCPU);
        archive.read("model", model);
        m.net->load(model);
    } catch (const c10::Error& e) {
        throw InputError(m.source, "", std::string("not a readable ltlab checkpoint: ") + e.what_without_backtrace());
    }
    return m;
}

Model fromImported(LoadedCheckpoint loaded, const ImportConfig& c, bool need_data) {
    Model m;
    const ImportedModel& im = loaded.model;
    m.net = im.net;
    m.architecture = im.architecture;
    m.source = loaded.file->path();
    m.arch = im.arch;
    m.builtin = loaded.file->format() != ckpt::Format::TorchScript;
    m.classes = im.classes;
    m.etf = im.etf;
    m.channels = im.input_size > 0 ? im.in_channels : im.input_features;
    m.height = m.width = im.input_size > 0 ? (im.arch.stem == "imagenet" ? 224 : im.input_size) : 1;
    if (c.crop && im.input_size > 0) m.height = m.width = *c.crop;
    if (need_data) {
        if (c.data.dataset.empty()) throw UsageError("--inputs train, val or test needs --dataset");
        m.data = loadImportData(im, c, m.source);
        setShapeFromData(m);
    }
    return m;
}

// An import's run: the recorded source of the chosen (default: the last) snapshot.
Model importedRun(const std::string& path, const Json& config, const LayersConfig& cfg, bool need_data) {
    const Json& sources = config.contains("sources") ? config["sources"] : Json::array();
    const Json* chosen = nullptr;
    for (const Json& s : sources)
        if (cfg.snapshot.empty() || s.value("snapshot", "") == cfg.snapshot) chosen = &s;
    if (!chosen) throw InputError(path, "/", cfg.snapshot.empty() ? "the import records no source checkpoint"
                                                                  : "the import records no source for snapshot '" + cfg.snapshot + "'");
    ImportConfig ic = cfg.model;
    const Json& d = config.value("dataset", Json::object());
    ic.data.dataset = d.value("spec", "");
    ic.data.data_dir = d.value("data_dir", "");
    ic.data.imbalance = d.value("imbalance", 100.0);
    ic.data.seed = d.value("seed", std::uint64_t(0));
    const Json& t = config.value("transform", Json::object());
    if (t.value("resize", 0) > 0) ic.resize = t.value("resize", 0);
    if (t.value("crop", 0) > 0) ic.crop = t.value("crop", 0);
    if (t.contains("mean") && !t["mean"].empty()) ic.mean = t["mean"].get<std::vector<float>>();
    if (t.contains("std") && !t["std"].empty()) ic.std = t["std"].get<std::vector<float>>();
    const std::string arch = chosen->value("architecture", "auto");
    ic.arch = arch.rfind("torchscript", 0) == 0 ? "auto" : arch;
    const std::string checkpoint = chosen->value("path", "");
    if (!fs::is_regular_file(checkpoint))
        throw InputError(path, "/", "its source checkpoint " + checkpoint + " is not there any more");
    return fromImported(loadCheckpointModel(checkpoint, ic), ic, need_data);
}

Model loadModel(const LayersConfig& cfg) {
    const bool need_data = cfg.inputs != "noise";
    if (!isHdf5(cfg.path)) return fromImported(loadCheckpointModel(cfg.path, cfg.model), cfg.model, need_data);
    std::optional<std::string> config;
    {
        const auto run = RunFile::open(cfg.path); // validated, then let go
        config = run->config();
    }
    if (!config) throw InputError(cfg.path, "/", "records no config: neither ltlab train nor ltlab import made it, so its "
                                                 "model cannot be rebuilt (give the checkpoint instead)");
    const Json j = Json::parse(*config, nullptr, false);
    if (!j.is_object()) throw InputError(cfg.path, "/", "attribute 'config' is not a JSON object");
    if (j.value("kind", "") == "import") return importedRun(cfg.path, j, cfg, need_data);
    return trainedRun(cfg.path, *config, cfg.init);
}

// --init: the same architecture, freshly initialised from the seed.
void reinitialise(Model& m, std::uint64_t seed) {
    if (!m.builtin) throw UsageError("--init needs a built-in architecture; " + m.source + " is a TorchScript module");
    torch::manual_seed(seed);
    m.net = makeNetwork(m.arch, m.channels, m.arch.name == "mlp" ? 1 : m.height, m.arch.name == "mlp" ? 1 : m.width);
    if (m.etf) m.net->setEtfHead(m.classes, m.bias, seed);
    else m.net->setLinearHead(m.classes, m.bias);
}

// ---- phase 2: the inputs ----------------------------------------------------------------------

struct Inputs {
    torch::Tensor x;
    std::optional<std::vector<std::int32_t>> labels;
};

Inputs makeInputs(const Model& m, const LayersConfig& cfg) {
    if (cfg.samples < 2) throw UsageError("--samples must be at least 2");
    Inputs in;
    if (cfg.inputs == "noise") {
        auto generator = at::detail::createCPUGenerator(cfg.seed);
        std::vector<std::int64_t> shape{cfg.samples, m.channels};
        if (m.height > 1 || m.width > 1) shape.push_back(m.height), shape.push_back(m.width);
        in.x = at::normal(0.0, 1.0, shape, generator, torch::kFloat32); // N(0,1) in the normalised input space
        return in;
    }
    const Data& data = *m.data;
    const Split* split = cfg.inputs == "train" ? &data.train : cfg.inputs == "val" ? &data.val : cfg.inputs == "test" ? &data.test : nullptr;
    if (!split) throw UsageError("unknown --inputs '" + cfg.inputs + "' (noise, train, val, test)");
    if (split->size() == 0) throw UsageError(data.name + " has no " + cfg.inputs + " split");
    const std::vector<std::int64_t> rows = stratifiedRows(*split, cfg.samples, data.classes(), cfg.seed);
    in.x = evalBatch(data, *split, rows, 0, static_cast<std::int64_t>(rows.size()));
    in.labels.emplace();
    for (auto r : rows) in.labels->push_back(split->labels[static_cast<std::size_t>(r)]);
    return in;
}

// ---- phase 3: the pass --------------------------------------------------------------------------

// gamma and beta of every batch normalisation inside the block's modules (a BN: a module with running_mean).
void batchNormOf(const std::vector<std::pair<std::string, torch::Tensor>>& tensors, const std::vector<std::string>& modules,
                 LayerStats& s) {
    static const std::string suffix = ".running_mean";
    std::map<std::string, torch::Tensor> byName(tensors.begin(), tensors.end());
    std::vector<Eigen::VectorXd> gammas, betas;
    auto vec = [](const torch::Tensor& t) {
        const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().flatten();
        return Eigen::VectorXd(Eigen::Map<const Eigen::VectorXd>(c.data_ptr<double>(), c.numel()));
    };
    for (const auto& [name, t] : tensors) {
        if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
        const std::string prefix = name.substr(0, name.size() - suffix.size());
        bool inside = false;
        for (const auto& m : modules) inside = inside || prefix == m || prefix.rfind(m + ".", 0) == 0;
        if (!inside) continue;
        const auto w = byName.find(prefix + ".weight"), b = byName.find(prefix + ".bias");
        if (w == byName.end() || b == byName.end()) continue; // a BN without affine parameters
        gammas.push_back(vec(w->second));
        betas.push_back(vec(b->second));
    }
    if (!gammas.empty()) setBatchNormStats(s, gammas, betas);
}

LayerStats layerStats(const BlockOutput& block, const Inputs& in, std::int64_t classes, const LayerStatsOptions& options,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
    const torch::Tensor h = block.output.to(torch::kCPU, torch::kFloat32).contiguous().reshape({block.output.size(0), -1});
    LayerBatch b;
    b.f32 = h.data_ptr<float>();
    b.rows = h.size(0);
    b.cols = h.size(1);
    b.channels = block.output.dim() > 2 ? block.output.size(1) : 0;
    if (in.labels) b.labels = &*in.labels, b.classes = classes;
    LayerStats s = computeLayerStats(block.name, b, options);
    batchNormOf(tensors, block.modules, s);
    return s;
}

class TorchLayerAnalyzer : public LayerAnalyzer {
public:
    LayerRun analyze(const LayersConfig& cfg, const LayersCallbacks& cb) override {
        torch::set_num_threads(threadsFor(cfg.model.data.threads));
        try {
            return run(cfg, cb);
        } catch (const c10::Error& e) { // libtorch's messages carry a C++ backtrace: keep the message
            throw std::runtime_error(e.what_without_backtrace());
        }
    }

private:
    static LayerRun run(const LayersConfig& cfg, const LayersCallbacks& cb) {
        requireRegularFile(cfg.path, "model or run file");
        Model m = loadModel(cfg);
        if (cfg.init) reinitialise(m, cfg.seed);
        const torch::Device device = pickDevice(cfg.model.data.device);
        m.net->to(device);
        const Inputs in = makeInputs(m, cfg);
        if (cb.log)
            cb.log(m.architecture + " (" + (cfg.init ? "initialised, seed " + std::to_string(cfg.seed) : "trained") + ") on " +
                   std::to_string(in.x.size(0)) + " " + (cfg.inputs == "noise" ? "N(0,1) noise inputs" : cfg.inputs + " images"));
        LayerRun run;
        run.inputs = cfg.inputs;
        run.weights = cfg.init ? "init" : "trained";
        run.source = m.source;
        run.architecture = m.architecture;
        run.seed = cfg.seed;
        run.samples = in.x.size(0);
        run.blocks = cfg.blocks;
        run.standardize = cfg.stats.standardize;
        run.flat_fdr = cfg.stats.flat_fdr;
        run.name = defaultLayerRunName(run);
        const auto tensors = m.net->namedTensors();
        computeBlockOutputs(m.net, in.x.to(device), cfg.blocks, [&](const BlockOutput& block) {
            run.layers.push_back(layerStats(block, in, m.classes, cfg.stats, tensors));
            if (cb.layer) cb.layer(run.layers.back());
        });
        return run;
    }
};

} // namespace

} // namespace ltlab::train

extern "C" __attribute__((visibility("default"))) ltlab::LayerAnalyzer* ltlab_create_layer_analyzer() {
    return new ltlab::train::TorchLayerAnalyzer();
}
