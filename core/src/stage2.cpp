// Stage 2 of weight balancing on frozen features (see ltlab/stage2.h).

#include "ltlab/stage2.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>

#include <omp.h>

#include <nlohmann/json.hpp>

#include "ltlab/error.h"
#include "ltlab/training.h"

namespace ltlab {

CbReduction parseCbReduction(const std::string& name) {
    if (name == "batch") return CbReduction::Batch;
    if (name == "weight-sum") return CbReduction::WeightSum;
    throw UsageError("the class-balanced reduction must be batch (the papers' mean over the batch) or weight-sum "
                     "(divided by the batch's sum of class weights), got '" + name + "'");
}

Stage2Loss parseStage2Loss(const std::string& name) {
    if (name == "ce") return Stage2Loss::CrossEntropy;
    if (name == "cb") return Stage2Loss::ClassBalanced;
    if (name == "cb-bce") return Stage2Loss::ClassBalancedBce;
    throw UsageError("the stage-2 loss must be ce (cross-entropy), cb (the ICLR code's class-balanced cross-entropy) "
                     "or cb-bce (the CVPR code's class-balanced binary cross-entropy of the softmax), got '" + name + "'");
}

std::string stage2LossName(Stage2Loss loss) {
    switch (loss) {
    case Stage2Loss::CrossEntropy: return "ce";
    case Stage2Loss::ClassBalanced: return "cb";
    case Stage2Loss::ClassBalancedBce: return "cb-bce";
    }
    return "cb";
}

std::string cbReductionName(CbReduction reduction) { return reduction == CbReduction::Batch ? "batch" : "weight-sum"; }

void Stage2Settings::validate() const {
    // Each range names the setting as `ltlab stage2` spells it (and its key in the
    // snapshot's config), the range and the value given (docs/stage2.md).
    auto need = [](bool ok, const char* option, const char* range, double value) {
        if (ok) return;
        std::ostringstream got;
        got << value;
        throw UsageError(std::string("--") + option + " must be " + range + ", got " + got.str());
    };
    auto finite_in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
    need(finite_in(cb_beta, 0, 1), "cb-beta", "a number in [0, 1]", cb_beta);
    need(finite_in(weight_decay, 0, 1e9), "weight-decay", "a finite number in [0, 1e9]", weight_decay);
    need(finite_in(maxnorm_factor, 0, 1e9), "maxnorm-threshold", "a finite number in [0, 1e9]", maxnorm_factor);
    if (maxnorm_threshold)
        need(finite_in(*maxnorm_threshold, 0, 1e300), "maxnorm-threshold", "a finite number >= 0 (absolute threshold)",
             *maxnorm_threshold);
    need(epochs >= 1 && epochs <= 1000000, "epochs", "an integer in [1, 1000000]", static_cast<double>(epochs));
    need(finite_in(lr, 0, 1e9) && lr > 0, "lr", "a finite number in (0, 1e9]", lr);
    need(finite_in(momentum, 0, 1) && momentum < 1, "momentum", "a number in [0, 1)", momentum);
    need(batch_size >= 1 && batch_size <= (std::int64_t{1} << 31), "batch-size", "an integer in [1, 2^31]",
         static_cast<double>(batch_size));
}

std::string Stage2Settings::toJson() const {
    nlohmann::json j{{"loss", stage2LossName(loss)},
                     {"cb_beta", cb_beta},
                     {"cb_reduction", cbReductionName(cb_reduction)},
                     {"weight_decay", weight_decay},
                     {"maxnorm", maxnorm},
                     {"maxnorm_factor", maxnorm_factor},
                     {"maxnorm_threshold", maxnorm_threshold ? nlohmann::json(*maxnorm_threshold) : nlohmann::json()},
                     {"maxnorm_per_epoch", maxnorm_per_epoch},
                     {"epochs", epochs},
                     {"lr", lr},
                     {"momentum", momentum},
                     {"batch_size", batch_size},
                     {"seed", seed},
                     {"from_zero", from_zero},
                     {"train_bias", train_bias}};
    return j.dump();
}

std::vector<double> classBalancedWeights(const std::vector<std::int64_t>& counts, double beta) {
    if (!(beta >= 0 && beta <= 1)) throw UsageError("cb_beta must be in [0, 1], got " + std::to_string(beta));
    std::vector<double> w(counts.size(), 0.0);
    double sum = 0;
    for (std::size_t c = 0; c < counts.size(); ++c) {
        if (counts[c] <= 0) continue;
        const double n = static_cast<double>(counts[c]);
        // beta = 1 is the limit 1/n (HN410's code); beta = 0 gives 1 for every class.
        w[c] = beta == 1.0 ? 1.0 / n : (1.0 - beta) / (1.0 - std::pow(beta, n));
        sum += w[c];
    }
    if (sum > 0)
        for (auto& x : w) x *= static_cast<double>(counts.size()) / sum; // normalised to sum to C
    return w;
}

double maxNormThreshold(const Eigen::MatrixXd& weight, double factor) {
    if (weight.rows() == 0) return 0;
    const Eigen::VectorXd norms = weight.rowwise().norm();
    const double lo = norms.minCoeff(), hi = norms.maxCoeff();
    return lo + factor * (hi - lo);
}

void maxNormProject(RowMatrix& weight, double threshold) {
    for (Eigen::Index c = 0; c < weight.rows(); ++c) {
        const double n = weight.row(c).norm();
        if (n > threshold) weight.row(c) *= threshold / n;
    }
}

namespace {

// SplitMix64 (Steele, Lea and Flood 2014; Vigna's constants).
struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
};

// The CVPR form on one sample: p (the softmax, in place) becomes
// d loss / d z for loss = scale sum_c BCE(p_c, [c = y]), as PyTorch computes
// binary_cross_entropy and its gradient: log clamped at -100, and
// d BCE / d p_c = (p_c - t_c) / max(p_c (1 - p_c), 1e-12). Through the
// softmax, d loss / d z_k = p_k (g_k - sum_c g_c p_c). Returns the loss.
double bceSoftmaxStep(Eigen::Map<Eigen::ArrayXd>& p, int y, double scale) {
    auto dLossDp = [&](Eigen::Index c) {
        const double pc = p[c], t = c == y ? 1.0 : 0.0;
        return scale * (pc - t) / std::max(pc * (1.0 - pc), 1e-12);
    };
    double loss = 0, gp = 0;
    for (Eigen::Index c = 0; c < p.size(); ++c) {
        loss -= c == y ? std::max(std::log(p[c]), -100.0) : std::max(std::log1p(-p[c]), -100.0);
        gp += dLossDp(c) * p[c];
    }
    for (Eigen::Index c = 0; c < p.size(); ++c) p[c] = p[c] * (dLossDp(c) - gp);
    return scale * loss;
}

} // namespace

void stage2Permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch, std::vector<std::int64_t>& out) {
    out.resize(static_cast<std::size_t>(std::max<std::int64_t>(0, n)));
    std::iota(out.begin(), out.end(), std::int64_t{0});
    SplitMix64 rng{seed ^ (0xD1B54A32D192ED03ULL * (static_cast<std::uint64_t>(epoch) + 1))};
    for (std::int64_t i = n - 1; i > 0; --i) {
        // j uniform in [0, i] by the high half of a 64 x 64-bit product (bias below 2^-40 here).
        const auto j = static_cast<std::int64_t>((static_cast<unsigned __int128>(rng.next()) *
                                                  static_cast<unsigned __int128>(i + 1)) >> 64);
        std::swap(out[static_cast<std::size_t>(i)], out[static_cast<std::size_t>(j)]);
    }
}

std::vector<std::int64_t> stage2Permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
    std::vector<std::int64_t> out;
    stage2Permutation(n, seed, epoch, out);
    return out;
}

namespace {

void checkInputs(const RowMatrix& features, const std::vector<std::int32_t>& labels,
                 const std::vector<std::int64_t>& counts, const FeatureSource* source) {
    auto fail = [&](const std::string& what, const std::string& problem) {
        if (source) source->fail(what, problem);
        throw UsageError(what + ": " + problem);
    };
    if (counts.size() < 2) throw UsageError("stage 2 needs at least 2 classes");
    if (static_cast<std::int64_t>(labels.size()) != features.rows())
        fail("labels", "has " + std::to_string(labels.size()) + " entries for " + std::to_string(features.rows()) + " rows");
    if (features.rows() == 0) fail("features", "no train samples: stage 2 needs the train split's features");
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= static_cast<std::int32_t>(counts.size()))
            fail("labels", "label " + std::to_string(labels[i]) + " at row " + std::to_string(i) + " is outside [0, " +
                               std::to_string(counts.size()) + ")");
    const Eigen::Index bad = (!features.array().isFinite()).count();
    if (bad > 0) fail("features", std::to_string(bad) + " non-finite values");
}

} // namespace

Stage2Trainer::Stage2Trainer(const FeatureSource& train, std::vector<std::int64_t> train_counts)
    : labels_(train.labels()), counts_(std::move(train_counts)) {
    features_.resize(train.numSamples(), train.featureDim());
    // In blocks of about 8 MB, as the analysis reads.
    const std::int64_t block = std::max<std::int64_t>(1, (std::int64_t{1} << 20) / std::max<std::int64_t>(1, train.featureDim()));
    for (std::int64_t r = 0; r < train.numSamples(); r += block) {
        const std::int64_t n = std::min(block, train.numSamples() - r);
        train.readFeatures(r, features_.middleRows(r, n));
    }
    checkInputs(features_, labels_, counts_, &train);
}

Stage2Trainer::Stage2Trainer(RowMatrix features, std::vector<std::int32_t> labels, std::vector<std::int64_t> train_counts)
    : features_(std::move(features)), labels_(std::move(labels)), counts_(std::move(train_counts)) {
    checkInputs(features_, labels_, counts_, nullptr);
}

Stage2Result Stage2Trainer::run(const ClassifierInput& start, const Stage2Settings& s,
                                const std::function<bool(double)>& progress) {
    const auto started = std::chrono::steady_clock::now();
    s.validate();
    const Eigen::Index C = static_cast<Eigen::Index>(counts_.size()), D = features_.cols();
    const std::int64_t N = features_.rows();
    if (start.weight.rows() != C || start.weight.cols() != D)
        throw UsageError("the starting classifier is " + std::to_string(start.weight.rows()) + " x " +
                         std::to_string(start.weight.cols()) + "; the features need " + std::to_string(C) + " x " +
                         std::to_string(D));
    if (start.bias.size() != 0 && start.bias.size() != C)
        throw UsageError("the starting bias has " + std::to_string(start.bias.size()) + " entries for " +
                         std::to_string(C) + " classes");

    Stage2Result result;
    result.class_weights = s.loss != Stage2Loss::CrossEntropy ? classBalancedWeights(counts_, s.cb_beta)
                                                              : std::vector<double>(static_cast<std::size_t>(C), 1.0);
    if (s.maxnorm) result.maxnorm_threshold = s.maxnorm_threshold ? *s.maxnorm_threshold
                                                                  : maxNormThreshold(start.weight, s.maxnorm_factor);
    const double threshold = result.maxnorm_threshold.value_or(0);
    const bool project_each_step = s.maxnorm && !s.maxnorm_per_epoch;

    RowMatrix W = s.from_zero ? RowMatrix::Zero(C, D) : RowMatrix(start.weight);
    Eigen::VectorXd b = (s.from_zero || start.bias.size() == 0) ? Eigen::VectorXd::Zero(C) : start.bias;
    const Eigen::Index B = static_cast<Eigen::Index>(std::min<std::int64_t>(s.batch_size, N));
    batch_x_.resize(B, D);
    batch_g_.resize(B, C);
    grad_w_.resize(C, D);
    buf_w_.setZero(C, D); // PyTorch's first step sets buf = g: the same as mu * 0 + g
    grad_b_.resize(C);
    buf_b_.setZero(C);
    sample_loss_.resize(B);
    const double* weights = result.class_weights.data();
    const double wd = s.weight_decay, mu = s.momentum;
    const std::int64_t batches = (N + B - 1) / B;
    const bool weight_sum = s.loss == Stage2Loss::ClassBalanced && s.cb_reduction == CbReduction::WeightSum;
    const bool balanced = s.loss != Stage2Loss::CrossEntropy;
    const bool bce = s.loss == Stage2Loss::ClassBalancedBce;

    // The two products of a step (logits and the weight gradient, 4 B C D
    // flops) are split by classes over the cores: each thread multiplies its
    // block of classifier rows with one-threaded BLAS, then updates those
    // rows. The softmax is split by batch rows. Small problems run on one
    // thread, where the fork would cost more than it saves. Each value is
    // computed by the same operations whatever the split.
    const int max_threads = std::max(1, omp_get_max_threads());
    const int T = static_cast<int>(std::clamp<std::int64_t>(
        std::min<std::int64_t>(max_threads, C / 8), 1, double(B) * double(C) * double(D) >= 2e5 ? max_threads : 1));
    std::vector<Eigen::Index> class_start(static_cast<std::size_t>(T) + 1);
    for (int t = 0; t <= T; ++t) class_start[static_cast<std::size_t>(t)] = C * t / T;
    std::vector<double> part_sq(static_cast<std::size_t>(T));
    std::vector<std::int64_t> part_correct(static_cast<std::size_t>(T));
    double sq_w = W.squaredNorm(); // ||W||^2 of the weights the next step starts from

    for (std::int64_t e = 0; e < s.epochs; ++e) {
        // Cosine annealing to 0 over the run, one value per epoch (the trainer's schedule).
        const double lr = s.lr * 0.5 * (1.0 + std::cos(M_PI * double(e) / double(s.epochs)));
        stage2Permutation(N, s.seed, e, order_);
        double loss_sum = 0;
        std::int64_t correct = 0;
        for (std::int64_t k = 0; k < batches; ++k) {
            const std::int64_t r0 = k * B;
            const Eigen::Index nb = static_cast<Eigen::Index>(std::min<std::int64_t>(B, N - r0));
            const std::int64_t* rows = order_.data() + r0;
            // Per-sample scale: w_y / B (batch), w_y / sum_i w_y (weight-sum), 1 / B (cross-entropy).
            double denominator = bce ? double(nb) * double(C) : double(nb);
            if (weight_sum) {
                denominator = 0;
                for (Eigen::Index i = 0; i < nb; ++i) denominator += weights[labels_[static_cast<std::size_t>(rows[i])]];
            }
            // One step on thread t of T; the barriers bind to the enclosing
            // parallel region (none when T is 1: then they do nothing).
            auto step = [&](int t) {
                part_correct[static_cast<std::size_t>(t)] = 0;
                const Eigen::Index i0 = nb * t / T, i1 = nb * (t + 1) / T;
                const Eigen::Index c0 = class_start[static_cast<std::size_t>(t)],
                                   nc = class_start[static_cast<std::size_t>(t) + 1] - c0;
                for (Eigen::Index i = i0; i < i1; ++i)
                    std::memcpy(batch_x_.row(i).data(), features_.row(rows[i]).data(),
                                sizeof(double) * static_cast<std::size_t>(D));
#pragma omp barrier
                auto X = batch_x_.topRows(nb);
                if (nc > 0) {
                    auto Z = batch_g_.block(0, c0, nb, nc);
                    Z.noalias() = X * W.middleRows(c0, nc).transpose();
                    Z.rowwise() += b.segment(c0, nc).transpose();
                }
#pragma omp barrier
                for (Eigen::Index i = i0; i < i1; ++i) {
                    const int y = labels_[static_cast<std::size_t>(rows[i])];
                    Eigen::Map<Eigen::ArrayXd> z(batch_g_.row(i).data(), C);
                    Eigen::Index arg = 0;
                    for (Eigen::Index c = 1; c < C; ++c)
                        if (z[c] > z[arg]) arg = c; // the first maximum, as argmax
                    if (arg == y) ++part_correct[static_cast<std::size_t>(t)];
                    const double m = z[arg], zy = z[y] - m;
                    z = (z - m).exp();
                    const double sum = z.sum();
                    const double scale = (balanced ? weights[y] : 1.0) / denominator;
                    if (bce) {
                        z /= sum;
                        sample_loss_[i] = bceSoftmaxStep(z, y, scale);
                        continue;
                    }
                    sample_loss_[i] = scale * (std::log(sum) - zy); // scale * (log-sum-exp - z_y), both shifted by m
                    z *= scale / sum;                             // scale * softmax
                    z[y] -= scale;                                // minus scale * one-hot
                }
#pragma omp barrier
                if (nc > 0) {
                    auto G = batch_g_.block(0, c0, nb, nc);
                    auto grad = grad_w_.middleRows(c0, nc);
                    grad.noalias() = G.transpose() * X;
                    double sq = 0;
                    for (Eigen::Index c = c0; c < c0 + nc; ++c) {
                        auto w = W.row(c);
                        auto v = buf_w_.row(c);
                        v = mu * v + grad_w_.row(c) + wd * w;
                        w -= lr * v;
                        double n2 = w.squaredNorm();
                        if (project_each_step && n2 > threshold * threshold) { // MaxNorm: back onto the threshold
                            w *= threshold / std::sqrt(n2);
                            n2 = w.squaredNorm();
                        }
                        sq += n2;
                    }
                    part_sq[static_cast<std::size_t>(t)] = sq;
                }
            };
            if (T == 1) {
                step(0);
            } else {
#pragma omp parallel num_threads(T)
                step(omp_get_thread_num());
            }
            for (auto c : part_correct) correct += c;
            double loss = 0;
            for (Eigen::Index i = 0; i < nb; ++i) loss += sample_loss_[i];
            loss += 0.5 * wd * (sq_w + (s.train_bias ? b.squaredNorm() : 0.0));
            if (!std::isfinite(loss))
                throw Stage2Diverged("stage 2 diverged in epoch " + std::to_string(e + 1) + " (loss " +
                                     std::to_string(loss) + "); try a smaller learning rate");
            loss_sum += loss * double(nb);
            if (s.train_bias) {
                grad_b_ = batch_g_.topRows(nb).colwise().sum().transpose();
                buf_b_ = mu * buf_b_ + grad_b_ + wd * b;
                b -= lr * buf_b_;
            }
            sq_w = 0;
            for (double x : part_sq) sq_w += x;
            if (progress && (k + 1) % 64 == 0 && !progress((double(e) + double(k + 1) / double(batches)) / double(s.epochs)))
                throw Cancelled();
        }
        if (s.maxnorm && s.maxnorm_per_epoch) {
            maxNormProject(W, threshold);
            sq_w = W.squaredNorm();
        }
        result.epochs.push_back({loss_sum / double(N), double(correct) / double(N), lr});
        if (progress && !progress(double(e + 1) / double(s.epochs))) throw Cancelled();
    }
    result.classifier.weight = W;
    result.classifier.bias = b;
    result.classifier.train_counts = counts_;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

// ---- Run files ---------------------------------------------------------------

const SplitData* Stage2Source::split(const std::string& name) const {
    for (const auto& s : splits)
        if (s.name == name) return &s;
    return nullptr;
}

Stage2Source loadStage2Source(const std::string& path, const std::optional<std::string>& snapshot_name) {
    const auto file = RunFile::open(path);
    const SnapshotInfo& snap = snapshot_name ? file->snapshot(*snapshot_name) : file->latestSnapshot();
    Stage2Source src;
    src.path = path;
    src.snapshot = snap;
    src.classes = file->classes();
    src.options = defaultOptionsFor(*file, std::nullopt, std::nullopt);
    src.run_config = file->config();
    src.classifier = {file->classifierWeight(snap), file->classifierBias(snap), file->classes().train_counts};
    const SplitInfo* train = snap.split("train");
    if (!train || train->num_samples == 0)
        file->fail(snapshotPath(snap), std::string(train ? "has an empty train split" : "has no train split") +
                                           ": stage 2 retrains the classifier on the train features");
    for (const SplitInfo& split : snap.splits) {
        src.splits.push_back(readSplitData(*file, snap, split));
        src.float32 = src.float32 && file->featuresAreFloat32(snap, split);
    }
    src.train_rows = train->num_samples;
    for (auto n : src.classes.train_counts) src.training_set_size += n;
    if (src.run_config) {
        const auto j = nlohmann::json::parse(*src.run_config, nullptr, false);
        if (j.is_object() && j.contains("train_feature_cap") && j["train_feature_cap"].is_number_integer())
            src.train_feature_cap = j["train_feature_cap"].get<std::int64_t>();
    }
    return src;
}

Stage2Settings stage2SettingsFor(const Stage2Source& source, bool* from_config) {
    TrainConfig c = recipeDefaults("wb");
    bool used = false;
    if (source.run_config) {
        try {
            c = TrainConfig::fromJson(*source.run_config, c);
            used = true;
        } catch (const UsageError&) { // not ltlab train's configuration (import, synth, an exporter)
        }
    }
    if (from_config) *from_config = used;
    Stage2Settings s;
    s.loss = Stage2Loss::ClassBalanced;
    s.cb_beta = c.cb_beta;
    s.cb_reduction = parseCbReduction(c.cb_reduction);
    s.weight_decay = c.stage2_weight_decay;
    s.maxnorm = c.maxnorm;
    s.maxnorm_factor = c.maxnorm_factor;
    s.maxnorm_per_epoch = c.maxnorm_per_epoch;
    s.epochs = c.stage2_epochs;
    s.lr = c.lr;
    s.momentum = c.momentum;
    s.batch_size = c.batch_size;
    s.seed = c.seed;
    s.train_bias = c.classifier_bias;
    return s;
}

SnapshotData stage2Snapshot(const Stage2Source& source, const Stage2Settings& settings, const Stage2Result& result,
                            const std::string& name) {
    SnapshotData snap;
    snap.name = name;
    if (source.snapshot.epoch) snap.epoch = *source.snapshot.epoch + settings.epochs;
    snap.stage = 2;
    char loss[96], label[256];
    if (settings.loss == Stage2Loss::ClassBalanced)
        std::snprintf(loss, sizeof loss, "class-balanced (beta %g, %s)", settings.cb_beta,
                      cbReductionName(settings.cb_reduction).c_str());
    else if (settings.loss == Stage2Loss::ClassBalancedBce)
        std::snprintf(loss, sizeof loss, "class-balanced BCE of the softmax (beta %g, the CVPR code)", settings.cb_beta);
    else
        std::snprintf(loss, sizeof loss, "cross-entropy");
    std::snprintf(label, sizeof label, "stage 2 from %s: %s, weight decay %g%s, %lld epochs, lr %g",
                  source.snapshot.name.c_str(), loss, settings.weight_decay,
                  !result.maxnorm_threshold ? "" : settings.maxnorm_per_epoch ? ", MaxNorm per epoch" : ", MaxNorm per step",
                  static_cast<long long>(settings.epochs), settings.lr);
    snap.label = label;
    snap.classifier_weight = result.classifier.weight;
    snap.classifier_bias = result.classifier.bias;
    snap.store_float32 = source.float32;
    snap.classifier_float32 = false; // computed in float64: kept so
    for (const SplitData& s : source.splits) snap.splits.push_back({s.name, s.features, s.labels, std::nullopt});
    nlohmann::json epochs = nlohmann::json::array();
    for (const auto& e : result.epochs) epochs.push_back({{"loss", e.loss}, {"accuracy", e.accuracy}, {"lr", e.lr}});
    nlohmann::json config{{"stage2", nlohmann::json::parse(settings.toJson())},
                          {"from_snapshot", source.snapshot.name},
                          {"maxnorm_threshold", result.maxnorm_threshold ? nlohmann::json(*result.maxnorm_threshold)
                                                                         : nlohmann::json()},
                          {"train_rows", source.train_rows},
                          {"training_set_size", source.training_set_size},
                          {"train_is_sample", source.trainIsSample()},
                          {"epochs", epochs}};
    snap.config_json = config.dump();
    return snap;
}

std::string defaultStage2SnapshotName(const Stage2Source& source, const std::vector<std::string>& taken) {
    const std::string base = source.snapshot.name + "_stage2";
    auto free = [&](const std::string& n) { return std::find(taken.begin(), taken.end(), n) == taken.end(); };
    if (free(base)) return base;
    for (int k = 2;; ++k)
        if (free(base + "_" + std::to_string(k))) return base + "_" + std::to_string(k);
}

void writeStage2Snapshot(const Stage2Source& source, const std::string& out_path, const SnapshotData& snapshot,
                         bool replace) {
    std::error_code ec;
    const bool same = std::filesystem::exists(out_path, ec) && std::filesystem::equivalent(out_path, source.path, ec);
    std::vector<std::string> names;
    {
        const auto file = RunFile::open(same ? out_path : source.path);
        for (const auto& s : file->snapshots()) names.push_back(s.name);
    }
    const bool exists = std::find(names.begin(), names.end(), snapshot.name) != names.end();
    if (exists && !replace)
        throw UsageError((same ? out_path : source.path) + " has a snapshot '" + snapshot.name +
                         "' already; choose another --name or pass --overwrite to replace it");
    auto change = [&](RunFileWriter& writer) {
        if (exists) writer.removeSnapshot(snapshot.name);
        writer.writeSnapshot(snapshot);
    };
    if (same)
        updateRunFile(out_path, change);
    else
        updateRunFileCopy(source.path, out_path, change);
}

} // namespace ltlab
