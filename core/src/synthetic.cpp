// Synthetic long-tailed runs for demos, tests and benchmarks.
//
// Geometry: class means blend a random configuration into a simplex ETF as
// the epochs pass, on top of a common offset (the cone the features sit in);
// within-class noise shrinks by `collapse`; classifier rows point along the
// centred means with norms that shrink from head to tail as plain
// cross-entropy training makes them, so implicit_la_tau comes out negative.

#include "ltlab/synthetic.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <Eigen/Dense>

#include "ltlab/analysis.h"
#include "ltlab/error.h"
#include "ltlab/run_writer.h"

namespace ltlab {

std::vector<std::int64_t> longTailedCounts(std::int64_t classes, std::int64_t max_per_class, double imbalance) {
    std::vector<std::int64_t> counts(static_cast<std::size_t>(classes));
    for (std::int64_t i = 0; i < classes; ++i) {
        const double exponent = classes > 1 ? -static_cast<double>(i) / static_cast<double>(classes - 1) : 0.0;
        counts[static_cast<std::size_t>(i)] =
            std::max<std::int64_t>(1, std::llround(static_cast<double>(max_per_class) * std::pow(imbalance, exponent)));
    }
    return counts;
}

std::vector<std::int64_t> longTailedCountsWithTotal(std::int64_t classes, std::int64_t total, double imbalance) {
    if (total < classes) throw UsageError("the train total must be at least the number of classes");
    std::vector<double> share(static_cast<std::size_t>(classes));
    for (std::int64_t i = 0; i < classes; ++i)
        share[static_cast<std::size_t>(i)] = std::pow(imbalance, -static_cast<double>(i) / static_cast<double>(classes - 1));
    const double sum = std::accumulate(share.begin(), share.end(), 0.0);
    std::vector<std::int64_t> counts(share.size());
    std::vector<std::pair<double, std::size_t>> remainders;
    std::int64_t assigned = 0;
    for (std::size_t i = 0; i < share.size(); ++i) {
        const double exact = static_cast<double>(total) * share[i] / sum;
        counts[i] = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::floor(exact)));
        assigned += counts[i];
        remainders.emplace_back(exact - std::floor(exact), i);
    }
    // Largest remainders get the samples still to give; the head gives back any excess.
    std::stable_sort(remainders.begin(), remainders.end(), [](auto& a, auto& b) { return a.first > b.first; });
    for (std::size_t k = 0; assigned < total; ++k, ++assigned) ++counts[remainders[k % remainders.size()].second];
    for (std::size_t i = 0; assigned > total; i = (i + 1) % counts.size())
        if (counts[i] > 1) --counts[i], --assigned;
    return counts;
}

namespace {

class Generator {
public:
    explicit Generator(std::uint64_t seed) : rng_(seed) {}
    double normal() { return normal_(rng_); }
    Eigen::MatrixXd normal(Eigen::Index rows, Eigen::Index cols) {
        Eigen::MatrixXd m(rows, cols);
        for (Eigen::Index j = 0; j < cols; ++j)
            for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = normal();
        return m;
    }

private:
    std::mt19937_64 rng_;
    std::normal_distribution<double> normal_;
};

// Rows: C vertices of a simplex ETF in R^D (random orientation), or random unit vectors when D < C - 1.
Eigen::MatrixXd simplexEtf(Eigen::Index C, Eigen::Index D, Generator& gen) {
    if (D < C) {
        Eigen::MatrixXd rows = gen.normal(C, D);
        rows.rowwise().normalize();
        return rows;
    }
    const Eigen::HouseholderQR<Eigen::MatrixXd> qr(gen.normal(D, C));
    const Eigen::MatrixXd U = qr.householderQ() * Eigen::MatrixXd::Identity(D, C); // D x C, orthonormal columns
    const Eigen::MatrixXd centring =
        Eigen::MatrixXd::Identity(C, C) - Eigen::MatrixXd::Constant(C, C, 1.0 / static_cast<double>(C));
    return std::sqrt(static_cast<double>(C) / static_cast<double>(C - 1)) * (U * centring).transpose();
}

} // namespace

void writeSyntheticRun(const std::string& path, const SynthConfig& cfg) {
    if (cfg.classes < 2) throw UsageError("--classes must be at least 2");
    if (cfg.dim < 1) throw UsageError("--dim must be at least 1");
    if (!(cfg.imbalance >= 1.0)) throw UsageError("--imbalance must be at least 1");
    if (cfg.max_per_class < 1) throw UsageError("--max-per-class must be at least 1");
    if (cfg.test_per_class < 0 || cfg.val_per_class < 0) throw UsageError("split sizes must not be negative");
    if (cfg.snapshots < 1) throw UsageError("--snapshots must be at least 1");
    if (!(cfg.noise >= 0) || !(cfg.collapse >= 0 && cfg.collapse <= 1)) throw UsageError("bad --noise or --collapse");
    const Eigen::Index C = cfg.classes, D = cfg.dim;
    Generator gen(cfg.seed);

    ClassInfo classes;
    classes.train_counts = cfg.train_total > 0 ? longTailedCountsWithTotal(C, cfg.train_total, cfg.imbalance)
                                               : longTailedCounts(C, cfg.max_per_class, cfg.imbalance);
    for (Eigen::Index c = 0; c < C; ++c) classes.names.push_back("class_" + std::to_string(c));
    // The CIFAR conventions scale with the head class: 500 -> 100 / 20, 5000 -> 1000 / 200.
    const std::int64_t head = *std::max_element(classes.train_counts.begin(), classes.train_counts.end());
    classes.many_threshold = std::max<std::int64_t>(1, head / 5);
    classes.few_threshold = std::max<std::int64_t>(1, head / 25);
    const double total = static_cast<double>(std::accumulate(classes.train_counts.begin(), classes.train_counts.end(), std::int64_t{0}));

    const Eigen::MatrixXd etf = simplexEtf(C, D, gen) * 4.0;
    Eigen::MatrixXd random_means = gen.normal(C, D) * (4.0 / std::sqrt(static_cast<double>(D)));
    Eigen::RowVectorXd cone_offset = gen.normal(1, D);
    cone_offset *= 3.0 / cone_offset.norm();
    const Eigen::MatrixXd classifier_noise = gen.normal(C, D) * (0.05 / std::sqrt(static_cast<double>(D)));

    // ||w_c|| = (n_c / n_max)^alpha with (1/IF)^alpha = norm_tail_ratio.
    const double alpha = cfg.imbalance > 1 ? std::log(cfg.norm_tail_ratio) / std::log(1.0 / cfg.imbalance) : 0.0;
    const double n_max = static_cast<double>(*std::max_element(classes.train_counts.begin(), classes.train_counts.end()));

    std::string config = "{\"generator\": \"ltlab synth\", \"classes\": " + std::to_string(C) +
                         ", \"dim\": " + std::to_string(D) + ", \"imbalance\": " + std::to_string(cfg.imbalance) +
                         ", \"seed\": " + std::to_string(cfg.seed) + ", \"noise\": " + std::to_string(cfg.noise) + "}";
    createRunFile(path, classes, config, [&](RunFileWriter& writer) {
    for (std::int64_t e = 0; e < cfg.snapshots; ++e) {
        const double t = cfg.snapshots > 1 ? static_cast<double>(e) / static_cast<double>(cfg.snapshots - 1) : 1.0;
        const double blend = 0.3 + 0.7 * t; // how far the means have moved onto the ETF
        const double sigma = 1.5 * cfg.noise * (1.0 - cfg.collapse * t); // per dimension
        Eigen::MatrixXd means = (1.0 - blend) * random_means + blend * etf;
        means.rowwise() += cone_offset;
        const Eigen::RowVectorXd mean_of_means = means.colwise().mean();

        SnapshotData snap;
        snap.name = "epoch_" + std::string(4 - std::min<std::size_t>(4, std::to_string(e + 1).size()), '0') +
                    std::to_string(e + 1);
        snap.epoch = e + 1;
        snap.label = "synthetic";
        snap.store_float32 = !cfg.float64;
        snap.classifier_weight.resize(C, D);
        Eigen::VectorXd bias(C);
        for (Eigen::Index c = 0; c < C; ++c) {
            const double n = static_cast<double>(classes.train_counts[static_cast<std::size_t>(c)]);
            Eigen::RowVectorXd direction = means.row(c) - mean_of_means;
            direction /= std::max(direction.norm(), 1e-12);
            snap.classifier_weight.row(c) = std::pow(n / n_max, alpha) * (direction + classifier_noise.row(c));
            bias[c] = 0.1 * std::log(n / total);
        }
        snap.classifier_bias = bias;

        auto make_split = [&](const std::string& name, auto per_class) {
            SplitData split;
            split.name = name;
            std::int64_t rows = 0;
            for (Eigen::Index c = 0; c < C; ++c) rows += per_class(c);
            split.features.resize(rows, D);
            split.labels.reserve(static_cast<std::size_t>(rows));
            Eigen::Index r = 0;
            for (Eigen::Index c = 0; c < C; ++c)
                for (std::int64_t i = 0; i < per_class(c); ++i, ++r) {
                    for (Eigen::Index d = 0; d < D; ++d) split.features(r, d) = means(c, d) + sigma * gen.normal();
                    split.labels.push_back(static_cast<std::int32_t>(c));
                }
            if (cfg.store_logits) {
                RowMatrix logits = split.features * snap.classifier_weight.transpose();
                logits.rowwise() += bias.transpose();
                split.logits = std::move(logits);
            }
            return split;
        };
        snap.splits.push_back(make_split("train", [&](Eigen::Index c) {
            const std::int64_t n = classes.train_counts[static_cast<std::size_t>(c)];
            return cfg.stored_train_cap >= 0 ? std::min(n, cfg.stored_train_cap) : n;
        }));
        if (cfg.val_per_class > 0) snap.splits.push_back(make_split("val", [&](Eigen::Index) { return cfg.val_per_class; }));
        if (cfg.test_per_class > 0)
            snap.splits.push_back(make_split("test", [&](Eigen::Index) { return cfg.test_per_class; }));
        writer.writeSnapshot(snap);

        if (cfg.history) {
            // The per-epoch metrics the training loop also records, computed by the same engine.
            AnalysisOptions options;
            options.many_threshold = classes.many_threshold.value_or(100);
            options.few_threshold = classes.few_threshold.value_or(20);
            const ClassifierInput classifier{snap.classifier_weight, bias, classes.train_counts};
            const SplitData& evaluated = snap.splits.back();
            const Analysis a = analyze(MemorySource(evaluated.features, evaluated.labels), classifier, options);
            const Analysis train = analyze(MemorySource(snap.splits.front().features, snap.splits.front().labels),
                                           classifier, options);
            std::vector<std::pair<std::string, double>> row{{"epoch", static_cast<double>(e + 1)},
                                                            {"train_accuracy", train.accuracy.value_or(NAN)},
                                                            {"test_accuracy", a.accuracy.value_or(NAN)}};
            const auto metrics = epochMetrics(train, a);
            row.insert(row.end(), metrics.begin(), metrics.end());
            writer.appendHistory(row);
        }
    }
    });
}

} // namespace ltlab
