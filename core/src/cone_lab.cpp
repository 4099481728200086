// The cone-effect laboratory (see cone_lab.h).

#include "ltlab/cone_lab.h"
#include "ltlab/fdr.h"

#include <chrono>
#include <algorithm>
#include <cmath>
#include <random>

#include "ltlab/error.h"

namespace ltlab {

namespace {

void require(bool ok, const std::string& what) {
    if (!ok) throw UsageError("cone lab: " + what);
}

bool finite(double v) { return std::isfinite(v); }

// Standard normals from one engine: the whole network is a function of the seed.
struct Draw {
    std::mt19937_64 engine;
    std::normal_distribution<double> normal{0.0, 1.0};
    std::uniform_real_distribution<double> uniform{0.0, 1.0};
    explicit Draw(std::uint64_t seed) : engine(seed) {}
    double gauss(double mean, double std) { return std == 0 ? mean : mean + std * normal(engine); }
    bool keep(double p) { return p >= 1 || uniform(engine) < p; }
};

void layerForward(const RowMatrix& in, const ConeLabSettings& s, const RowMatrix& W, const Eigen::VectorXd& gamma,
                  const Eigen::VectorXd& beta, RowMatrix& out) {
    out.noalias() = in * W;
    const Eigen::Index N = out.rows(), D = out.cols();
    if (s.norm == ConeLabSettings::Norm::Batch) {
        const Eigen::RowVectorXd mean = out.colwise().mean();
        out.rowwise() -= mean;
        // Standard deviation as torch.std (unbiased), the paper's code.
        const Eigen::RowVectorXd sd = (out.colwise().squaredNorm() / double(std::max<Eigen::Index>(N - 1, 1))).cwiseSqrt();
        for (Eigen::Index d = 0; d < D; ++d) out.col(d) /= sd[d] + 1e-5;
    } else if (s.norm == ConeLabSettings::Norm::Sample) {
        for (Eigen::Index i = 0; i < N; ++i) {
            auto r = out.row(i);
            const double mean = r.mean();
            r.array() -= mean;
            const double sd = std::sqrt(r.squaredNorm() / double(std::max<Eigen::Index>(D - 1, 1)));
            r /= sd + 1e-5;
        }
    }
    for (Eigen::Index i = 0; i < N; ++i)
        for (Eigen::Index d = 0; d < D; ++d) out(i, d) = std::max(0.0, gamma[d] * out(i, d) + beta[d]);
}

// Every pair i < j of nonzero rows, from the Gram matrix of the unit rows
// (block by block): the mean and (population) std of the cosine, as the
// engine's cone statistics (analysis.md), the same- and different-class
// means, and the histograms of cone.h.
void pairStatistics(const RowMatrix& H, const std::vector<std::int32_t>& labels, int bins, ConeLabLayer& L) {
    std::vector<Eigen::Index> kept;
    for (Eigen::Index i = 0; i < H.rows(); ++i)
        if (H.row(i).squaredNorm() > 0) kept.push_back(i);
    const auto n = static_cast<Eigen::Index>(kept.size());
    // Reused from layer to layer and run to run (a slider's every move):
    // fresh pages for these megabytes would cost more than the products.
    thread_local RowMatrix U;
    thread_local Eigen::MatrixXd G;
    U.resize(n, H.cols());
    std::vector<std::int32_t> y(static_cast<std::size_t>(n));
    for (Eigen::Index k = 0; k < n; ++k) {
        U.row(k) = H.row(kept[static_cast<std::size_t>(k)]).normalized();
        y[static_cast<std::size_t>(k)] = labels[static_cast<std::size_t>(kept[static_cast<std::size_t>(k)])];
    }
    ConeHistograms& h = L.histograms;
    h.bins = bins;
    h.same_class.assign(static_cast<std::size_t>(bins), 0.0);
    h.diff_class.assign(static_cast<std::size_t>(bins), 0.0);
    h.rows_used = n;
    double sum = 0, sq = 0, same_sum = 0, pairs = 0, same_pairs = 0;
    const Eigen::Index block = 256;
    for (Eigen::Index i0 = 0; i0 < n; i0 += block) {
        const Eigen::Index bi = std::min(block, n - i0);
        G.noalias() = U.middleRows(i0, bi) * U.bottomRows(n - i0).transpose(); // row i: pairs with j >= i0
        for (Eigen::Index i = 0; i < bi; ++i) {
            const std::int32_t yi = y[static_cast<std::size_t>(i0 + i)];
            for (Eigen::Index j = i + 1; j < n - i0; ++j) {
                const double c = G(i, j);
                const bool same = yi == y[static_cast<std::size_t>(i0 + j)];
                sum += c;
                sq += c * c;
                if (same) same_sum += c, same_pairs += 1;
                const int bin = ConeHistograms::binOf(c, bins);
                (same ? h.same_class : h.diff_class)[static_cast<std::size_t>(bin)] += 1;
            }
            pairs += double(n - i0 - i - 1);
        }
    }
    if (pairs > 0) {
        const double mean = sum / pairs;
        L.mean_cos = mean;
        L.std_cos = std::sqrt(std::max(0.0, sq / pairs - mean * mean));
        if (same_pairs > 0) L.mean_cos_same_class = same_sum / same_pairs;
        if (pairs > same_pairs) L.mean_cos_diff_class = (sum - same_sum) / (pairs - same_pairs);
    }
}

ConeLabLayer statistics(const std::string& name, const RowMatrix& H, const std::vector<std::int32_t>& labels,
                        std::int64_t classes, int bins) {
    ConeLabLayer L;
    L.name = name;
    const double n = double(H.size());
    const double mean = H.mean();
    L.feature_mean = mean;
    L.feature_std = std::sqrt(std::max(0.0, H.squaredNorm() / n - mean * mean));
    L.zero_fraction = double((H.array() == 0).count()) / n;
    pairStatistics(H, labels, bins, L);
    if (classes > 1) {
        // FDR is the engine's own definition (the constant-dimension rule and
        // the pseudo-inverse of analysis.md), computed alone (ltlab/fdr.h).
        L.fdr = fisherDiscriminantRatio(H, labels, classes).fdr;
    } else {
        L.mean_cos_same_class.reset(); // without labels every pair is "same class": not a statistic
        L.mean_cos_diff_class.reset();
    }
    return L;
}

} // namespace

void ConeLabSettings::validate() const {
    require(layers >= 1 && layers <= 50, "layers must be 1 to 50");
    require(width >= 2 && width <= 4096, "width must be 2 to 4096");
    require(batch >= 2 && batch <= 4096, "batch must be 2 to 4096");
    require(classes >= 2 && classes <= batch, "classes must be 2 to the batch size");
    require(finite(input_mean) && finite(input_std) && input_std >= 0, "the input's mean and std must be finite, std >= 0");
    require(slab_probability > 0 && slab_probability <= 1, "the slab probability must be in (0, 1]");
    require(finite(weight_mean) && finite(weight_std) && weight_std >= 0, "the weights' mean and std must be finite, std >= 0");
    require(weight_keep > 0 && weight_keep <= 1, "the kept fraction of weights must be in (0, 1]");
    require(finite(gamma_mean) && finite(gamma_std) && gamma_std >= 0 && finite(beta_mean) && finite(beta_std) && beta_std >= 0,
            "gamma and beta need finite means and std >= 0");
    require(bins >= 2 && bins <= 1000, "bins must be 2 to 1000");
}

ConeLabSettings coneLabPreset(int index) {
    static const double stds[kConeLabPresets] = {0.0, 0.01, 0.05, 0.1};
    ConeLabSettings s; // the multi-layer study: 5 layers, D 512, batch 1024, per-sample standardisation
    s.gamma_mean = 0.1;
    s.gamma_std = stds[std::clamp(index, 0, kConeLabPresets - 1)];
    return s;
}

const char* coneLabPresetName(int index) {
    static const char* names[kConeLabPresets] = {"paper: gamma 0.1 +- 0", "paper: gamma 0.1 +- 0.01",
                                                 "paper: gamma 0.1 +- 0.05", "paper: gamma 0.1 +- 0.1"};
    return names[std::clamp(index, 0, kConeLabPresets - 1)];
}

ConeLabNetwork drawConeLabNetwork(const ConeLabSettings& s) {
    s.validate();
    const Eigen::Index N = s.batch, D = s.width;
    ConeLabNetwork net;
    Draw draw(s.seed);
    net.labels.assign(static_cast<std::size_t>(N), 0);
    net.input.resize(N, D);
    RowMatrix masks;
    if (s.labelled()) {
        masks.resize(s.classes, D);
        for (Eigen::Index c = 0; c < s.classes; ++c)
            for (Eigen::Index d = 0; d < D; ++d) masks(c, d) = draw.keep(s.slab_probability) ? 1.0 : 0.0;
        for (Eigen::Index i = 0; i < N; ++i) net.labels[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % s.classes);
    }
    for (Eigen::Index i = 0; i < N; ++i)
        for (Eigen::Index d = 0; d < D; ++d) {
            double x = draw.gauss(s.input_mean, s.input_std);
            if (s.input_relu) x = std::max(0.0, x);
            if (s.labelled()) x *= masks(net.labels[static_cast<std::size_t>(i)], d);
            net.input(i, d) = x;
        }
    for (std::int64_t l = 0; l < s.layers; ++l) {
        RowMatrix W(D, D);
        for (Eigen::Index a = 0; a < D; ++a)
            for (Eigen::Index b = 0; b < D; ++b) W(a, b) = draw.keep(s.weight_keep) ? draw.gauss(s.weight_mean, s.weight_std) : 0.0;
        Eigen::VectorXd g(D), b(D);
        for (Eigen::Index d = 0; d < D; ++d) g[d] = draw.gauss(s.gamma_mean, s.gamma_std);
        for (Eigen::Index d = 0; d < D; ++d) b[d] = draw.gauss(s.beta_mean, s.beta_std);
        net.weights.push_back(std::move(W));
        net.gamma.push_back(std::move(g));
        net.beta.push_back(std::move(b));
    }
    return net;
}

ConeLabResult runConeLab(const ConeLabSettings& settings, const std::function<bool(double)>& progress) {
    return runConeLab(settings, drawConeLabNetwork(settings), progress);
}

ConeLabResult runConeLab(const ConeLabSettings& s, const ConeLabNetwork& net, const std::function<bool(double)>& progress) {
    const auto started = std::chrono::steady_clock::now();
    const std::int64_t classes = s.labelled() ? s.classes : 1;
    const auto L = static_cast<std::int64_t>(net.weights.size());
    auto step = [&](std::int64_t done) {
        if (progress && !progress(double(done) / double(L + 1))) throw Cancelled();
    };
    ConeLabResult result;
    result.layers.push_back(statistics("input", net.input, net.labels, classes, s.bins));
    step(1);
    RowMatrix h = net.input, next(net.input.rows(), net.input.cols());
    for (std::int64_t l = 0; l < L; ++l) {
        const auto i = static_cast<std::size_t>(l);
        layerForward(h, s, net.weights[i], net.gamma[i], net.beta[i], next);
        std::swap(h, next);
        result.layers.push_back(statistics("layer " + std::to_string(l + 1), h, net.labels, classes, s.bins));
        step(l + 2);
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

} // namespace ltlab
