// `ltlab cone-lab`: the cone-effect laboratory without a window (core/include/ltlab/cone_lab.h).

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "commands.h"
#include "ltlab/cone_lab.h"
#include "ltlab/runtime.h"

namespace ltlab::app {

namespace {

nlohmann::json orNull(const Nullable& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

// A float64 (or int32) array as a .npy file (format version 1.0), for numpy.
void writeNpy(const std::filesystem::path& path, const void* data, std::size_t bytes, const char* descr,
              const std::vector<std::int64_t>& shape) {
    std::string dims;
    for (auto d : shape) dims += std::to_string(d) + ",";
    if (shape.size() > 1) dims.pop_back();
    std::string header = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': (" + dims + "), }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::ofstream out(path, std::ios::binary);
    const unsigned char magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    out.write(reinterpret_cast<const char*>(magic), sizeof magic);
    const auto n = static_cast<std::uint16_t>(header.size());
    const char len[2] = {static_cast<char>(n & 0xff), static_cast<char>(n >> 8)};
    out.write(len, 2);
    out << header;
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    if (!out) throw InputError(path.string(), "", "cannot write");
}

void saveNetwork(const std::string& dir, const ConeLabNetwork& net) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (!std::filesystem::is_directory(dir, ec)) throw InputError(dir, "", "cannot create the folder");
    const std::filesystem::path d(dir);
    auto matrix = [&](const std::string& name, const RowMatrix& m) {
        writeNpy(d / (name + ".npy"), m.data(), sizeof(double) * std::size_t(m.size()), "<f8", {m.rows(), m.cols()});
    };
    auto vector = [&](const std::string& name, const Eigen::VectorXd& v) {
        writeNpy(d / (name + ".npy"), v.data(), sizeof(double) * std::size_t(v.size()), "<f8", {v.size()});
    };
    matrix("input", net.input);
    writeNpy(d / "labels.npy", net.labels.data(), sizeof(std::int32_t) * net.labels.size(), "<i4",
             {static_cast<std::int64_t>(net.labels.size())});
    for (std::size_t l = 0; l < net.weights.size(); ++l) {
        matrix("weight_" + std::to_string(l + 1), net.weights[l]);
        vector("gamma_" + std::to_string(l + 1), net.gamma[l]);
        vector("beta_" + std::to_string(l + 1), net.beta[l]);
    }
}

std::string text(const Nullable& v, int precision = 4) {
    if (!v) return "null";
    std::ostringstream s;
    s << std::setprecision(precision) << std::fixed << *v;
    return s.str();
}

} // namespace

int runConeLab(const std::vector<std::string>& argv) {
    return guarded("cone-lab", [&] {
        const cli::Args args({{"preset", "K", "the paper's multi-layer study, gamma std 0 / 0.01 / 0.05 / 0.1 (K = 0..3)"},
                              {"layers", "L", "layers (default 5)"},
                              {"width", "D", "features per layer (default 512)"},
                              {"batch", "N", "inputs (default 1024)"},
                              {"seed", "S", "seed of the inputs and the network (default 0)"},
                              {"input", "KIND", "gaussian, relu-gaussian or spike-slab (labelled; default gaussian)"},
                              {"input-mean", "X", "mean of the input noise (default 0)"},
                              {"input-std", "X", "std of the input noise (default 1)"},
                              {"classes", "C", "spike-slab: classes, each with its Bernoulli mask (default 10)"},
                              {"slab-p", "P", "spike-slab: probability that a feature is on (default 0.5)"},
                              {"weight-mean", "X", "mean of the weights (default 0)"},
                              {"weight-std", "X", "std of the weights (default 0.01)"},
                              {"weight-keep", "P", "fraction of weights kept, the rest 0 (default 1)"},
                              {"norm", "KIND", "none, batch or sample standardisation before the affine ReLU (default sample)"},
                              {"gamma-mean", "X", "mean of the per-channel scale (default 0.1)"},
                              {"gamma-std", "X", "std of the per-channel scale (default 0)"},
                              {"beta-mean", "X", "mean of the per-channel shift (default 0)"},
                              {"beta-std", "X", "std of the per-channel shift (default 0.01)"},
                              {"bins", "B", "histogram bins over [-1, 1] (default 80)"},
                              {"json", "", "the statistics (and histograms) as JSON"},
                              {"save-network", "DIR", "also write the inputs, labels and each layer's W, gamma, beta as .npy"},
                              {"threads", "N", "threads for the numerics (default: all cores)"},
                              {"help", "", "show this help"}},
                             argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab cone-lab [options]\n\n"
                         "A seeded random network: each layer is ReLU(gamma * norm(H W) + beta) with W, gamma,\n"
                         "beta drawn per layer. Prints, for the input and each layer, the mean and std of the\n"
                         "cosine over all pairs of the batch (the cone effect), the same-class and\n"
                         "different-class means and FDR for labelled (spike-slab) inputs.\n\n"
                      << args.optionsHelp();
            return kExitOk;
        }
        if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
        ConeLabSettings s;
        if (const auto k = args.integer("preset", 0)) {
            if (*k >= kConeLabPresets) throw UsageError("--preset is 0 to " + std::to_string(kConeLabPresets - 1));
            s = coneLabPreset(static_cast<int>(*k));
        }
        s.layers = args.integer("layers", 1).value_or(s.layers);
        s.width = args.integer("width", 2).value_or(s.width);
        s.batch = args.integer("batch", 2).value_or(s.batch);
        s.seed = static_cast<std::uint64_t>(args.integer("seed", 0).value_or(0));
        if (const auto input = args.value("input")) {
            if (*input == "gaussian") s.input = ConeLabSettings::Input::Gaussian;
            else if (*input == "relu-gaussian") s.input = ConeLabSettings::Input::Gaussian, s.input_relu = true;
            else if (*input == "spike-slab") s.input = ConeLabSettings::Input::SpikeAndSlab;
            else throw UsageError("--input is gaussian, relu-gaussian or spike-slab, not '" + *input + "'");
        }
        s.input_mean = args.number("input-mean").value_or(s.input_mean);
        s.input_std = args.number("input-std").value_or(s.input_std);
        s.classes = args.integer("classes", 2).value_or(s.classes);
        s.slab_probability = args.number("slab-p").value_or(s.slab_probability);
        s.weight_mean = args.number("weight-mean").value_or(s.weight_mean);
        s.weight_std = args.number("weight-std").value_or(s.weight_std);
        s.weight_keep = args.number("weight-keep").value_or(s.weight_keep);
        if (const auto norm = args.value("norm")) {
            if (*norm == "none") s.norm = ConeLabSettings::Norm::None;
            else if (*norm == "batch") s.norm = ConeLabSettings::Norm::Batch;
            else if (*norm == "sample") s.norm = ConeLabSettings::Norm::Sample;
            else throw UsageError("--norm is none, batch or sample, not '" + *norm + "'");
        }
        s.gamma_mean = args.number("gamma-mean").value_or(s.gamma_mean);
        s.gamma_std = args.number("gamma-std").value_or(s.gamma_std);
        s.beta_mean = args.number("beta-mean").value_or(s.beta_mean);
        s.beta_std = args.number("beta-std").value_or(s.beta_std);
        s.bins = static_cast<int>(args.integer("bins", 2).value_or(s.bins));
        s.validate();
        initNumericRuntime(static_cast<int>(args.integer("threads", 1).value_or(0)));
        const ConeLabNetwork net = drawConeLabNetwork(s);
        if (const auto dir = args.value("save-network")) saveNetwork(*dir, net);
        const ConeLabResult r = runConeLab(s, net);
        if (args.flag("json")) {
            nlohmann::json layers = nlohmann::json::array();
            for (const ConeLabLayer& l : r.layers)
                layers.push_back({{"name", l.name},
                                  {"mean_cos", orNull(l.mean_cos)},
                                  {"std_cos", orNull(l.std_cos)},
                                  {"mean_cos_same_class", orNull(l.mean_cos_same_class)},
                                  {"mean_cos_diff_class", orNull(l.mean_cos_diff_class)},
                                  {"fdr", orNull(l.fdr)},
                                  {"feature_mean", orNull(l.feature_mean)},
                                  {"feature_std", orNull(l.feature_std)},
                                  {"zero_fraction", l.zero_fraction},
                                  {"histogram_same_class", l.histograms.same_class},
                                  {"histogram_diff_class", l.histograms.diff_class}});
            std::cout << nlohmann::json{{"layers", layers}, {"seconds", r.seconds}}.dump(2) << "\n";
            return kExitOk;
        }
        std::cout << "layer      mean cos   std cos  same cls  diff cls       FDR   zeros\n";
        for (const ConeLabLayer& l : r.layers)
            std::cout << std::left << std::setw(9) << l.name << std::right << std::setw(10) << text(l.mean_cos)
                      << std::setw(10) << text(l.std_cos) << std::setw(10) << text(l.mean_cos_same_class) << std::setw(10)
                      << text(l.mean_cos_diff_class) << std::setw(10) << text(l.fdr, 3) << std::setw(7)
                      << std::setprecision(0) << std::fixed << l.zero_fraction * 100 << "%\n";
        std::cout << std::setprecision(3) << "(" << r.seconds << " s)\n";
        return kExitOk;
    });
}

} // namespace ltlab::app
