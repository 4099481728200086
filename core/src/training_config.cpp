// Training configuration, recipes and the loader of the libtorch module.

#include <dlfcn.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "ltlab/error.h"
#include "ltlab/importing.h"
#include "ltlab/modules.h"
#include "ltlab/training.h"

namespace ltlab {

namespace {

using Json = nlohmann::json;

// Every key, bound to its field once, for both directions.
template <typename Visitor>
void visitFields(TrainConfig& c, Visitor&& v) {
    v("recipe", c.recipe);
    v("dataset", c.dataset);
    v("data_dir", c.data_dir);
    v("imbalance", c.imbalance);
    v("paper_split", c.paper_split);
    v("val_per_class", c.val_per_class);
    v("gaussian_dim", c.gaussian_dim);
    v("gaussian_per_class", c.gaussian_per_class);
    v("augment", c.augment);
    v("model", c.model);
    v("classifier_bias", c.classifier_bias);
    v("epochs", c.epochs);
    v("stage2_epochs", c.stage2_epochs);
    v("batch_size", c.batch_size);
    v("lr", c.lr);
    v("momentum", c.momentum);
    v("weight_decay", c.weight_decay);
    v("stage2_weight_decay", c.stage2_weight_decay);
    v("feature_reg", c.feature_reg);
    v("cb_beta", c.cb_beta);
    v("cb_reduction", c.cb_reduction);
    v("maxnorm", c.maxnorm);
    v("maxnorm_factor", c.maxnorm_factor);
    v("maxnorm_per_epoch", c.maxnorm_per_epoch);
    v("tau", c.tau);
    v("la_mode", c.la_mode);
    v("seed", c.seed);
    v("threads", c.threads);
    v("device", c.device);
    v("snapshot_every", c.snapshot_every);
    v("train_feature_cap", c.train_feature_cap);
}

template <typename T>
void readValue(const Json& j, const std::string& key, T& field) {
    try {
        if constexpr (std::is_same_v<T, std::optional<double>>) {
            field = j.is_null() ? std::nullopt : std::optional<double>(j.get<double>());
        } else if constexpr (std::is_same_v<T, std::string>) {
            if (!j.is_string()) throw UsageError("");
            field = j.get<std::string>();
        } else if constexpr (std::is_same_v<T, bool>) {
            if (!j.is_boolean()) throw UsageError("");
            field = j.get<bool>();
        } else if constexpr (std::is_integral_v<T>) {
            if (!j.is_number_integer() && !j.is_number_unsigned()) throw UsageError("");
            field = j.get<T>();
        } else {
            if (!j.is_number()) throw UsageError("");
            field = j.get<T>();
        }
    } catch (const std::exception&) {
        throw UsageError("config key '" + key + "' has the wrong type (" + j.dump() + ")");
    }
}

} // namespace

TrainConfig TrainConfig::fromJson(const std::string& text, const TrainConfig& defaults) {
    Json j;
    try {
        j = Json::parse(text);
    } catch (const Json::parse_error& e) {
        throw UsageError(std::string("config is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw UsageError("config must be a JSON object");
    TrainConfig config = defaults;
    std::vector<std::string> known;
    visitFields(config, [&](const char* key, auto& field) {
        known.push_back(key);
        if (j.contains(key)) readValue(j.at(key), key, field);
    });
    for (const auto& item : j.items())
        if (std::find(known.begin(), known.end(), item.key()) == known.end())
            throw UsageError("unknown config key '" + item.key() + "'");
    if (config.cb_reduction != "batch" && config.cb_reduction != "weight-sum")
        throw UsageError("config key 'cb_reduction' must be batch (the papers' mean over the batch) or weight-sum "
                         "(divided by the batch's sum of class weights), got '" + config.cb_reduction + "'");
    return config;
}

std::string TrainConfig::toJson() const {
    Json j = Json::object();
    TrainConfig copy = *this;
    visitFields(copy, [&](const char* key, auto& field) {
        if constexpr (std::is_same_v<std::decay_t<decltype(field)>, std::optional<double>>)
            j[key] = field ? Json(*field) : Json(nullptr);
        else
            j[key] = field;
    });
    return j.dump();
}

const std::vector<RecipeInfo>& recipes() {
    static const std::vector<RecipeInfo> list{
        {"ce", "cross-entropy, no weight decay", {"epochs", "lr", "batch_size"}},
        {"ce-wd",
         "cross-entropy + weight decay as the explicit term lambda/2 sum ||theta||^2 over all trained parameters",
         {"epochs", "weight_decay=5e-3"}},
        {"wb",
         "weight balancing: stage 1 = ce-wd; stage 2 retrains the classifier on frozen features with the "
         "class-balanced loss (effective number, beta), weight decay and MaxNorm",
         {"epochs", "weight_decay=5e-3", "stage2_epochs=10", "stage2_weight_decay=0.1", "cb_beta=0.9999",
          "cb_reduction=batch", "maxnorm=true", "maxnorm_factor=0.1", "maxnorm_per_epoch=false"}},
        {"wd-fr-etf",
         "one stage: cross-entropy + weight decay + feature regularisation with a fixed simplex-ETF classifier, then "
         "post-hoc multiplicative logit adjustment (tau chosen on val)",
         {"epochs", "weight_decay=5e-3", "feature_reg=1e-2", "la_mode=multiplicative", "tau=(val)"}},
        {"la",
         "post-hoc logit adjustment of a finished run (--from RUN.h5): additive z - tau log pi or multiplicative "
         "z / pi^tau, tau chosen on the run's val split or given; no training",
         {"la_mode=additive", "tau=(val)"}},
    };
    return list;
}

TrainConfig recipeDefaults(const std::string& recipe) {
    TrainConfig c;
    c.recipe = recipe;
    if (recipe == "ce") {
        c.weight_decay = 0.0;
    } else if (recipe == "ce-wd" || recipe == "wb") {
        c.weight_decay = 5e-3;
    } else if (recipe == "la") {
        c.la_mode = "additive";
    } else if (recipe == "wd-fr-etf") {
        c.weight_decay = 5e-3;
        c.feature_reg = 1e-2;
    } else {
        std::string names;
        for (const auto& r : recipes()) names += (names.empty() ? "" : ", ") + r.name;
        throw UsageError("unknown recipe '" + recipe + "' (known: " + names + ")");
    }
    return c;
}

std::unique_ptr<Trainer> loadTrainer() {
    void* module = loadModule("libltlab_train.so");
    using Factory = Trainer* (*)();
    auto factory = reinterpret_cast<Factory>(dlsym(module, "ltlab_create_trainer"));
    if (!factory) throw UsageError("libltlab_train.so has no ltlab_create_trainer");
    return std::unique_ptr<Trainer>(factory());
}

std::unique_ptr<Importer> loadImporter() {
    void* module = loadModule("libltlab_train.so");
    using Factory = Importer* (*)();
    auto factory = reinterpret_cast<Factory>(dlsym(module, "ltlab_create_importer"));
    if (!factory) throw UsageError("libltlab_train.so has no ltlab_create_importer");
    return std::unique_ptr<Importer>(factory());
}

} // namespace ltlab
