// The numbers behind the papers' figure set (figure_data.h, docs/analysis.md "Figure set").

#include "ltlab/figure_data.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "ltlab/error.h"

namespace ltlab {

namespace {

using Eigen::Index;

ClassMatrix emptyMatrix(std::int64_t rows, std::int64_t cols) {
    ClassMatrix m;
    m.rows = rows;
    m.cols = cols;
    m.values.assign(static_cast<std::size_t>(rows * cols), std::nullopt);
    return m;
}

Nullable finite(double v) { return std::isfinite(v) ? Nullable(v) : std::nullopt; }

// A number under `key` of a JSON object text, if it is one.
std::optional<double> jsonNumber(const std::optional<std::string>& text, const char* key) {
    if (!text) return std::nullopt;
    const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return std::nullopt;
    return j[key].get<double>();
}

} // namespace

ClassMatrix classHeatmap(const Analysis& a, ClassHeatmap kind) {
    const std::int64_t C = a.num_classes;
    ClassMatrix m = emptyMatrix(C, C);
    const RowMatrix& W = a.classifier_weight;
    const auto& pc = a.per_class;
    auto has_units = [&](Index c) {
        return static_cast<std::size_t>(c) < a.unit_count.size() && a.unit_count[static_cast<std::size_t>(c)] > 0;
    };
    for (Index r = 0; r < C; ++r)
        for (Index c = 0; c < C; ++c) {
            Nullable& out = m.values[static_cast<std::size_t>(r * C + c)];
            const double wr = pc.weight_norm[static_cast<std::size_t>(r)], wc = pc.weight_norm[static_cast<std::size_t>(c)];
            switch (kind) {
            case ClassHeatmap::FeatureCosine:
                if (has_units(r) && has_units(c)) out = finite(a.unit_class_means.row(r).dot(a.unit_class_means.row(c)));
                break;
            case ClassHeatmap::FeatureWeightCosine:
                if (has_units(r) && wc > 0) out = finite(a.unit_class_means.row(r).dot(W.row(c)) / wc);
                break;
            case ClassHeatmap::FeatureWeightNorm:
                if (const Nullable& h = pc.feature_norm[static_cast<std::size_t>(r)]) out = finite(*h * wc);
                break;
            case ClassHeatmap::WeightCosine:
                if (wr > 0 && wc > 0) out = finite(W.row(r).dot(W.row(c)) / (wr * wc));
                break;
            }
        }
    return m;
}

GroupedConfusion groupedConfusion(const Analysis& a) {
    GroupedConfusion g;
    const auto C = static_cast<std::size_t>(a.num_classes);
    const auto& group = a.per_class.group;
    for (std::size_t c = 0; c < C; ++c) ++g.classes[static_cast<std::size_t>(group[c])];
    if (a.confusion.size() != C * C) return g;
    for (std::size_t t = 0; t < C; ++t)
        for (std::size_t p = 0; p < C; ++p)
            g.count[static_cast<std::size_t>(group[t])][static_cast<std::size_t>(group[p])] += a.confusion[t * C + p];
    for (std::size_t i = 0; i < 3; ++i) {
        std::int64_t total = 0;
        for (std::size_t j = 0; j < 3; ++j) total += g.count[i][j];
        if (total > 0)
            for (std::size_t j = 0; j < 3; ++j) g.fraction[i][j] = static_cast<double>(g.count[i][j]) / static_cast<double>(total);
    }
    return g;
}

std::optional<WeightDecayChoice> recordedWeightDecay(const RunFile& file, const SnapshotInfo& snapshot) {
    if (const auto v = jsonNumber(snapshot.config, "weight_decay"))
        return WeightDecayChoice{*v, "snapshot " + snapshot.name + " config weight_decay"};
    const bool stage2 = snapshot.stage && *snapshot.stage == 2;
    if (stage2)
        if (const auto v = jsonNumber(file.config(), "stage2_weight_decay"))
            return WeightDecayChoice{*v, "run config stage2_weight_decay (stage 2)"};
    if (const auto v = jsonNumber(file.config(), "weight_decay"))
        return WeightDecayChoice{*v, stage2 ? "run config weight_decay" : "run config weight_decay (stage 1)"};
    return std::nullopt;
}

LossComposition lossComposition(const Analysis& a, double lambda) {
    LossComposition out;
    out.lambda = lambda;
    out.loss = a.per_class.loss;
    const auto C = static_cast<std::size_t>(a.num_classes);
    out.penalty.resize(C);
    for (std::size_t c = 0; c < C; ++c) {
        const double w = a.per_class.weight_norm[c], b = a.per_class.bias[c];
        out.penalty[c] = lambda / 2 * (w * w + b * b);
    }
    return out;
}

WeightNormEvolution weightNormEvolution(const RunFile& file, const std::optional<History>& history) {
    WeightNormEvolution out;
    const Index C = file.numClasses();
    if (history && history->numEpochs() > 0) {
        std::vector<const std::vector<double>*> series;
        for (Index c = 0; c < C; ++c) {
            const auto it = history->series.find("weight_norm_" + std::to_string(c));
            if (it == history->series.end()) break;
            series.push_back(&it->second);
        }
        if (static_cast<Index>(series.size()) == C) {
            const Index E = history->numEpochs();
            const auto epoch = history->series.find("epoch");
            out.source = "history";
            out.norms.resize(E, C);
            for (Index e = 0; e < E; ++e) {
                std::optional<std::int64_t> number;
                if (epoch != history->series.end() && std::isfinite(epoch->second[static_cast<std::size_t>(e)]))
                    number = static_cast<std::int64_t>(epoch->second[static_cast<std::size_t>(e)]);
                out.epochs.push_back(number);
                out.stages.push_back(std::nullopt);
                out.row_labels.push_back(number ? "epoch " + std::to_string(*number) : "row " + std::to_string(e));
                for (Index c = 0; c < C; ++c) out.norms(e, c) = (*series[static_cast<std::size_t>(c)])[static_cast<std::size_t>(e)];
            }
            return out;
        }
    }
    out.source = "snapshots";
    const auto& snapshots = file.snapshots();
    out.norms.resize(static_cast<Index>(snapshots.size()), C);
    for (std::size_t s = 0; s < snapshots.size(); ++s) {
        const Eigen::MatrixXd W = file.classifierWeight(snapshots[s]);
        for (Index c = 0; c < C; ++c) out.norms(static_cast<Index>(s), c) = W.row(c).stableNorm();
        out.row_labels.push_back(snapshots[s].name);
        out.epochs.push_back(snapshots[s].epoch);
        out.stages.push_back(snapshots[s].stage);
    }
    return out;
}

void requireComparableBaseline(const RunFile& run, const RunFile& baseline) {
    if (baseline.numClasses() != run.numClasses())
        throw InputError(baseline.path(), "/classes/train_counts",
                         "the baseline has " + std::to_string(baseline.numClasses()) + " classes but " + run.path() +
                             " has " + std::to_string(run.numClasses()) + ": per-class accuracies cannot be compared");
}

} // namespace ltlab
