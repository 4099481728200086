#include "ltlab/analysis_report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ltlab/input_file.h"

namespace ltlab {

namespace {

using Json = nlohmann::ordered_json;

Json value(const Nullable& v) { return v ? Json(*v) : Json(nullptr); }

template <typename T>
Json array(const std::vector<T>& values) {
    Json out = Json::array();
    for (const auto& v : values) {
        if constexpr (std::is_same_v<T, Nullable>)
            out.push_back(value(v));
        else
            out.push_back(v);
    }
    return out;
}

Json sweepJson(const LogitAdjustmentSweep& sweep) {
    std::vector<Nullable> all, many, medium, few;
    for (const auto& a : sweep.accuracy) {
        all.push_back(a.all);
        many.push_back(a.many);
        medium.push_back(a.medium);
        few.push_back(a.few);
    }
    Json out;
    out["accuracy"] = array(all);
    out["accuracy_many"] = array(many);
    out["accuracy_medium"] = array(medium);
    out["accuracy_few"] = array(few);
    out["best_tau"] = value(sweep.best_tau);
    return out;
}

// A value that overflowed (weights near 1e300 square to inf) is flagged, never printed as inf or nan.
std::string fmt(const Nullable& v, const char* format = "%.6g") {
    if (!v) return "n/a";
    if (!std::isfinite(*v)) return "overflow";
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, format, *v);
    return buffer;
}

std::string percent(const Nullable& v) {
    return !v ? "n/a" : !std::isfinite(*v) ? "overflow" : fmt(*v * 100.0, "%.2f") + " %";
}

} // namespace

std::string analysisToJson(const Analysis& a, int indent) {
    Json j;
    j["snapshot"] = a.snapshot;
    j["split"] = a.split;
    j["epoch"] = a.epoch ? Json(*a.epoch) : Json(nullptr);
    j["num_classes"] = a.num_classes;
    j["feature_dim"] = a.feature_dim;
    j["num_samples"] = a.num_samples;
    j["nc1"] = value(a.nc1);
    j["nc2_equinorm_means"] = value(a.nc2_equinorm_means);
    j["nc2_equinorm_weights"] = value(a.nc2_equinorm_weights);
    j["nc2_equiangular_means"] = value(a.nc2_equiangular_means);
    j["nc2_equiangular_weights"] = value(a.nc2_equiangular_weights);
    j["nc2_maxangle_means"] = value(a.nc2_maxangle_means);
    j["nc2_maxangle_weights"] = value(a.nc2_maxangle_weights);
    j["nc3"] = value(a.nc3);
    j["nc4"] = value(a.nc4);
    j["fdr"] = value(a.fdr);
    j["trace_sw"] = value(a.trace_sw);
    j["trace_sb"] = value(a.trace_sb);
    j["cone_mean_cos"] = value(a.cone_mean_cos);
    j["cone_std_cos"] = value(a.cone_std_cos);
    j["cone_mean_cos_same_class"] = value(a.cone_mean_cos_same_class);
    j["cone_mean_cos_diff_class"] = value(a.cone_mean_cos_diff_class);
    j["class_means_mean_cos"] = value(a.class_means_mean_cos);
    j["accuracy"] = value(a.accuracy);
    j["sample_accuracy"] = value(a.sample_accuracy);
    j["accuracy_many"] = value(a.accuracy_many);
    j["accuracy_medium"] = value(a.accuracy_medium);
    j["accuracy_few"] = value(a.accuracy_few);
    j["implicit_la_tau"] = value(a.implicit_la_tau);
    const auto& pc = a.per_class;
    j["per_class"] = {{"train_count", array(pc.train_count)}, {"count", array(pc.count)},
                      {"weight_norm", array(pc.weight_norm)}, {"bias", array(pc.bias)},
                      {"feature_norm", array(pc.feature_norm)}, {"mean_norm", array(pc.mean_norm)},
                      {"accuracy", array(pc.accuracy)}};
    j["la_sweep"] = {{"tau", array(a.la_additive.tau)},
                     {"additive", sweepJson(a.la_additive)},
                     {"multiplicative", sweepJson(a.la_multiplicative)}};
    // Additions beyond the spec's keys.
    j["per_class"]["loss"] = array(pc.loss);
    j["many_threshold"] = a.many_threshold;
    j["few_threshold"] = a.few_threshold;
    j["fdr_dims_kept"] = a.fdr_dims_kept;
    // Names from files need not be UTF-8: invalid bytes become U+FFFD (JSON must be UTF-8).
    return j.dump(indent, ' ', false, decltype(j)::error_handler_t::replace) + "\n";
}

std::string analysisToText(const Analysis& a, const ClassInfo& classes) {
    std::ostringstream out;
    int many = 0, medium = 0, few = 0;
    for (auto g : a.per_class.group) (g == ShotGroup::Many ? many : g == ShotGroup::Few ? few : medium)++;
    // Names come from the file: control characters (newlines, terminal escapes) are shown escaped.
    out << "Snapshot " << escapeControl(a.snapshot) << (a.epoch ? " (epoch " + std::to_string(*a.epoch) + ")" : std::string())
        << ", split " << escapeControl(a.split) << ": " << a.num_samples << " samples, " << a.num_classes << " classes, "
        << a.feature_dim << "-d features\n";
    // A train split that holds fewer rows than the training set is a sample
    // (ltlab train's train_feature_cap): its numbers are of that sample.
    std::int64_t training_set = 0;
    for (auto n : classes.train_counts) training_set += n;
    if (a.split == "train" && a.num_samples > 0 && a.num_samples < training_set)
        out << "  (a sample of the " << training_set << " training images: the train numbers below are of these "
            << a.num_samples << ")\n";
    out << "Shot groups: " << many << " many (n > " << a.many_threshold << "), " << medium << " medium, " << few
        << " few (n < " << a.few_threshold << ")\n\n";
    out << "Accuracy\n"
        << "  balanced        " << percent(a.accuracy) << "\n"
        << "  per sample      " << percent(a.sample_accuracy) << "\n"
        << "  many / medium / few  " << percent(a.accuracy_many) << " / " << percent(a.accuracy_medium) << " / "
        << percent(a.accuracy_few) << "\n\n";
    out << "Neural collapse\n"
        << "  NC1 tr(Sw Sb+)/K          " << fmt(a.nc1) << "\n"
        << "  NC2 equinorm   means/W    " << fmt(a.nc2_equinorm_means) << " / " << fmt(a.nc2_equinorm_weights) << "\n"
        << "  NC2 equiangular means/W   " << fmt(a.nc2_equiangular_means) << " / " << fmt(a.nc2_equiangular_weights)
        << "\n"
        << "  NC2 max-angle  means/W    " << fmt(a.nc2_maxangle_means) << " / " << fmt(a.nc2_maxangle_weights) << "\n"
        << "  NC3 self-duality          " << fmt(a.nc3) << "\n"
        << "  NC4 NCC mismatch          " << fmt(a.nc4) << "\n\n";
    out << "Fisher's discriminant ratio\n"
        << "  FDR tr(Sw^-1 Sb)  " << fmt(a.fdr) << "   (" << a.fdr_dims_kept << " of " << a.feature_dim
        << " dimensions non-constant)\n"
        << "  tr Sw / tr Sb     " << fmt(a.trace_sw) << " / " << fmt(a.trace_sb) << "\n\n";
    out << "Cone effect (cosine over all sample pairs)\n"
        << "  mean +- std        " << fmt(a.cone_mean_cos) << " +- " << fmt(a.cone_std_cos) << "\n"
        << "  same / diff class  " << fmt(a.cone_mean_cos_same_class) << " / " << fmt(a.cone_mean_cos_diff_class)
        << "\n"
        << "  class means        " << fmt(a.class_means_mean_cos) << "\n\n";
    out << "Logit adjustment\n"
        << "  implicit tau (slope of log||w|| on -log pi)  " << fmt(a.implicit_la_tau) << "\n";
    auto sweep_line = [&](const char* name, const LogitAdjustmentSweep& s) {
        Nullable best;
        for (std::size_t k = 0; k < s.tau.size(); ++k)
            if (s.best_tau && s.tau[k] == *s.best_tau) best = s.accuracy[k].all;
        out << "  " << name << " best tau " << fmt(s.best_tau, "%.1f") << ": balanced accuracy " << percent(best)
            << " (tau 0: " << percent(s.accuracy.empty() ? Nullable() : s.accuracy[0].all) << ")\n";
    };
    sweep_line("additive      ", a.la_additive);
    sweep_line("multiplicative", a.la_multiplicative);
    out << "\nPer class\n";
    char line[256];
    std::snprintf(line, sizeof line, "  %-16s %8s %7s %9s %9s %9s %9s\n", "class", "train n", "n", "||w||", "bias",
                  "||h||", "accuracy");
    out << line;
    const auto& pc = a.per_class;
    for (std::size_t c = 0; c < pc.train_count.size(); ++c) {
        const std::string name = escapeControl(c < classes.names.size() ? classes.names[c] : std::to_string(c));
        std::snprintf(line, sizeof line, "  %-16.16s %8lld %7lld %9s %9s %9s %9s\n", name.c_str(),
                      static_cast<long long>(pc.train_count[c]), static_cast<long long>(pc.count[c]),
                      fmt(pc.weight_norm[c], "%.4g").c_str(), fmt(pc.bias[c], "%.4g").c_str(),
                      fmt(pc.feature_norm[c], "%.4g").c_str(), percent(pc.accuracy[c]).c_str());
        out << line;
    }
    return out.str();
}

std::vector<std::pair<std::string, double>> epochMetrics(const Analysis& train, const Analysis& evaluated) {
    std::vector<std::pair<std::string, double>> out;
    auto put = [&out](const char* name, const Nullable& v) {
        if (v) out.emplace_back(name, *v);
    };
    put("nc1", train.nc1);
    put("nc2_equinorm_means", train.nc2_equinorm_means);
    put("nc2_equinorm_weights", train.nc2_equinorm_weights);
    put("nc2_equiangular_means", train.nc2_equiangular_means);
    put("nc2_equiangular_weights", train.nc2_equiangular_weights);
    put("nc3", train.nc3);
    put("nc4", train.nc4);
    put("fdr", train.fdr);
    put("trace_sw", train.trace_sw);
    put("trace_sb", train.trace_sb);
    put("cone_mean_cos", train.cone_mean_cos);
    put("cone_std_cos", train.cone_std_cos);
    put("cone_mean_cos_same_class", train.cone_mean_cos_same_class);
    put("cone_mean_cos_diff_class", train.cone_mean_cos_diff_class);
    put("class_means_mean_cos", train.class_means_mean_cos);
    put("implicit_la_tau", train.implicit_la_tau);
    put("accuracy_many", evaluated.accuracy_many);
    put("accuracy_medium", evaluated.accuracy_medium);
    put("accuracy_few", evaluated.accuracy_few);
    return out;
}

} // namespace ltlab
