#pragma once
// The analysis engine: every quantity of shared/spec/analysis.md for one
// snapshot and one split, in float64.
//
// The features are streamed in row chunks, twice: pass 1 accumulates what
// needs no class means (counts, class sums, the normalised-feature Gram
// matrix for the cone statistics, predictions, the logit-adjustment sweep);
// pass 2 needs the final class means (the centred within-class scatter and
// the nearest-class-mean predictions of NC4). Memory is O(C D + D^2 + chunk),
// independent of N.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ltlab/run_file.h"

namespace ltlab {

using Nullable = std::optional<double>; // null in JSON: not computable (never NaN)

// Where the samples of one split come from: a run file, or memory.
class FeatureSource {
public:
    virtual ~FeatureSource() = default;
    virtual std::int64_t numSamples() const = 0;
    virtual std::int64_t featureDim() const = 0;
    virtual bool hasLogits() const = 0;
    virtual const std::vector<std::int32_t>& labels() const = 0;
    // Fill rows [row0, row0 + out.rows()) of the features (N x D) or stored logits (N x C).
    virtual void readFeatures(std::int64_t row0, RowBlock out) const = 0;
    virtual void readLogits(std::int64_t row0, RowBlock out) const = 0;
    // The features as float32, and whether that is how they are stored (then exact).
    virtual void readFeatures(std::int64_t row0, RowBlockF out) const = 0;
    virtual bool featuresAreFloat32() const = 0;
    // Names the data in error messages ("run.h5: /snapshots/e1/test/features").
    virtual void fail(const std::string& what, const std::string& problem) const = 0;
};

class RunFileSource : public FeatureSource {
public:
    RunFileSource(std::shared_ptr<const RunFile> file, const SnapshotInfo& snapshot, const SplitInfo& split);
    std::int64_t numSamples() const override { return split_.num_samples; }
    std::int64_t featureDim() const override { return snapshot_.feature_dim; }
    bool hasLogits() const override { return split_.has_logits; }
    const std::vector<std::int32_t>& labels() const override { return labels_; }
    void readFeatures(std::int64_t row0, RowBlock out) const override;
    void readLogits(std::int64_t row0, RowBlock out) const override;
    void readFeatures(std::int64_t row0, RowBlockF out) const override;
    bool featuresAreFloat32() const override { return float32_; }
    void fail(const std::string& what, const std::string& problem) const override;

private:
    std::shared_ptr<const RunFile> file_;
    SnapshotInfo snapshot_;
    SplitInfo split_;
    std::vector<std::int32_t> labels_;
    bool float32_;
};

class MemorySource : public FeatureSource {
public:
    MemorySource(RowMatrix features, std::vector<std::int32_t> labels,
                 std::optional<RowMatrix> logits = std::nullopt);
    std::int64_t numSamples() const override { return features_.rows(); }
    std::int64_t featureDim() const override { return features_.cols(); }
    bool hasLogits() const override { return logits_.has_value(); }
    const std::vector<std::int32_t>& labels() const override { return labels_; }
    void readFeatures(std::int64_t row0, RowBlock out) const override;
    void readLogits(std::int64_t row0, RowBlock out) const override;
    void readFeatures(std::int64_t row0, RowBlockF out) const override;
    bool featuresAreFloat32() const override { return false; }
    void fail(const std::string& what, const std::string& problem) const override;

private:
    RowMatrix features_;
    std::vector<std::int32_t> labels_;
    std::optional<RowMatrix> logits_;
};

struct ClassifierInput {
    Eigen::MatrixXd weight;                   // C x D
    Eigen::VectorXd bias;                     // C
    std::vector<std::int64_t> train_counts;   // C
};

struct AnalysisOptions {
    std::int64_t many_threshold = 100;
    std::int64_t few_threshold = 20;
    // Rows per chunk; 0 picks about 8 MB (float64) or 16 MB (float32) of features per buffer.
    std::int64_t chunk_rows = 0;
    // The BLAS products (cone Gram, logits, within-class scatter, nearest class
    // mean) in float64, or as float32 tiles accumulated in float64 (about twice
    // as fast; the bound is in docs/analysis.md). Auto: float32 for features
    // stored as float32 when the products exceed 1 GFLOP, else float64; the
    // environment variable LTLAB_ANALYSIS_PRECISION (float32, float64) overrides Auto.
    enum class Precision { Auto, Float64, Float32 } precision = Precision::Auto;
    // Called with the fraction done; return false to cancel (throws Cancelled).
    std::function<bool(double)> progress;
};

// Thresholds: explicit options win, then the run file's /classes attributes, then 100 and 20.
AnalysisOptions defaultOptionsFor(const RunFile& file, std::optional<std::int64_t> many_threshold,
                                  std::optional<std::int64_t> few_threshold);

struct ShotAccuracy {
    Nullable all, many, medium, few;
};

struct LogitAdjustmentSweep {
    std::vector<double> tau;                  // 0.0, 0.1, ..., 3.0
    std::vector<ShotAccuracy> accuracy;       // one per tau
    Nullable best_tau;                        // first tau of maximal balanced accuracy
    // per_class_accuracy[k][c]: class c's accuracy at tau[k] (null when absent).
    std::vector<std::vector<Nullable>> per_class_accuracy;
};

enum class ShotGroup { Many, Medium, Few };

struct Analysis {
    std::string snapshot;
    std::string split;
    std::optional<std::int64_t> epoch;
    std::int64_t num_classes = 0;
    std::int64_t feature_dim = 0;
    std::int64_t num_samples = 0;
    std::int64_t many_threshold = 100;
    std::int64_t few_threshold = 20;

    Nullable nc1;
    Nullable nc2_equinorm_means, nc2_equinorm_weights;
    Nullable nc2_equiangular_means, nc2_equiangular_weights;
    Nullable nc2_maxangle_means, nc2_maxangle_weights;
    Nullable nc3, nc4;
    Nullable fdr, trace_sw, trace_sb;
    std::int64_t fdr_dims_kept = 0;
    Nullable cone_mean_cos, cone_std_cos, cone_mean_cos_same_class, cone_mean_cos_diff_class;
    Nullable class_means_mean_cos;
    Nullable accuracy, sample_accuracy, accuracy_many, accuracy_medium, accuracy_few;
    Nullable implicit_la_tau;
    Nullable implicit_la_intercept; // of the same least-squares line (for drawing it)

    struct PerClass {
        std::vector<std::int64_t> train_count, count;
        std::vector<double> weight_norm, bias;
        std::vector<Nullable> feature_norm, mean_norm, accuracy;
        // Mean cross-entropy -log softmax(z_i)_c over the class's samples, from
        // the same logits as the predictions (an addition to the spec's JSON).
        std::vector<Nullable> loss;
        std::vector<ShotGroup> group;
    } per_class;

    LogitAdjustmentSweep la_additive, la_multiplicative;

    // confusion[true * C + predicted]: sample counts (not in the spec's JSON).
    std::vector<std::int64_t> confusion;
    // The class means mu_c (C x D; zero rows for absent classes) and the
    // classifier, for the geometry views (not in the spec's JSON).
    RowMatrix class_means;
    RowMatrix classifier_weight;
    // class_mean_cosine[c * C + c']: cos(mu_c, mu_c') (uncentred), null where a class is absent.
    std::vector<Nullable> class_mean_cosine;
    // The mean unit feature of each class, (1/m_c) sum u_i over its m_c samples
    // with ||h_i|| > 0 (C x D; zero rows where m_c = 0), and m_c: the
    // sample-pair and feature-weight cosine heatmaps (figure_data.h).
    RowMatrix unit_class_means;
    std::vector<std::int64_t> unit_count;

    // Work done, for benchmarks: BLAS floating-point operations and seconds.
    double blas_flops = 0;
    double seconds = 0;
    bool float32_products = false;      // which precision ran
    std::string float32_library;        // what ran the float32 products ("" for float64)
    std::int64_t rows_recomputed = 0;   // rows whose float32 logits left a decision open, refined
    std::int64_t logits_recomputed = 0; // logits of those rows computed again in float64
    std::vector<std::pair<std::string, double>> phase_seconds; // pass 1, pass 2, metrics
};

Analysis analyze(const FeatureSource& source, const ClassifierInput& classifier, const AnalysisOptions& options);

// What the classifier alone tells, before any feature is computed (an
// imported checkpoint whose evaluation is still running): the analysis of an
// empty split. Per-class weight norms and biases, shot groups and implicit
// tau are set; everything that needs samples is null (per-class counts 0).
Analysis analyzeWeights(const ClassifierInput& classifier, const AnalysisOptions& options);

// An upper bound of the memory analyze() allocates for a split of N samples,
// D features and C classes, in bytes (the features' buffer, the tiles, the
// D x D accumulators, the class statistics): what `ltlab analyze` reserves in
// 2 MiB pages before it starts (reserveHugePageHeap, ltlab/runtime.h).
std::size_t analysisWorkingSetBytes(std::int64_t N, std::int64_t D, std::int64_t C);

// Reads the snapshot's classifier and split and analyses them.
Analysis analyzeSnapshot(const std::shared_ptr<const RunFile>& file, const SnapshotInfo& snapshot,
                         const SplitInfo& split, const AnalysisOptions& options);

// The per-epoch metrics /history records, by series name: the geometry of the
// train split (NC1-NC4, FDR, cone, implicit tau) and the shot-group accuracies
// of the evaluated split. Null values are left out (the history stores NaN).
// One list for training and `ltlab synth`, so that their series agree.
std::vector<std::pair<std::string, double>> epochMetrics(const Analysis& train, const Analysis& evaluated);

// The 31 values of the logit-adjustment sweep: k / 10 for k = 0..30.
std::vector<double> laSweepTaus();

} // namespace ltlab
