#pragma once
// Stage 2 of weight balancing without libtorch: a linear classifier
// retrained on frozen features, in float64 with Eigen and BLAS, fast enough
// for a slider (CIFAR-100-LT size, 10 epochs: well under a second on 2 cores).
//
// It computes what `ltlab train --recipe wb` computes in its stage 2
// (core/train/trainer.cpp), step for step: the same shuffling order
// (stage2Permutation), the same loss (cross-entropy or the class-balanced
// cross-entropy with effective-number weights normalised to sum to C, averaged
// over the batch or over the batch's weights), weight decay as the explicit
// term lambda/2 sum ||theta||^2 over the trained parameters, SGD with momentum
// as PyTorch's (buf = mu buf + g, theta -= lr buf), cosine annealing to 0 over
// the epochs (epoch e, from 0, at lr (1 + cos(pi e / E)) / 2), and MaxNorm
// after every optimizer step (or once per epoch) against a threshold fixed at
// the start. docs/stage2.md has the definitions and the measured agreement.

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ltlab/analysis.h"
#include "ltlab/run_writer.h"

namespace ltlab {

// CrossEntropy; ClassBalanced: the ICLR code's class-balanced softmax
// cross-entropy, w_{y_i} CE_i; ClassBalancedBce: the CVPR code's form, binary
// cross-entropy of the softmax outputs against the one-hot labels, each
// sample's C terms weighted by w_{y_i} and averaged over the B x C entries
// (PyTorch's binary_cross_entropy(softmax(z), onehot, weight), whose log is
// clamped at -100 and whose gradient divides by max(p (1 - p), 1e-12)).
enum class Stage2Loss { CrossEntropy, ClassBalanced, ClassBalancedBce };
// "ce", "cb", "cb-bce"; parseStage2Loss throws UsageError for anything else.
Stage2Loss parseStage2Loss(const std::string& name);
std::string stage2LossName(Stage2Loss loss);
// How the per-sample losses of a batch are averaged (class-balanced softmax
// cross-entropy only; the BCE form always averages over B x C):
// Batch: (1/B) sum_i w_{y_i} CE_i, the papers' code; WeightSum:
// sum_i w_{y_i} CE_i / sum_i w_{y_i}, PyTorch's cross_entropy(weight=w).
enum class CbReduction { Batch, WeightSum };

// "batch" / "weight-sum"; parseCbReduction throws UsageError for anything else.
CbReduction parseCbReduction(const std::string& name);
std::string cbReductionName(CbReduction reduction);

struct Stage2Settings {
    Stage2Loss loss = Stage2Loss::ClassBalanced;
    double cb_beta = 0.9999;
    CbReduction cb_reduction = CbReduction::Batch;
    double weight_decay = 0.1;        // lambda of lambda/2 (||W||^2 + ||b||^2), b only when trained
    bool maxnorm = true;
    // Threshold = min + factor (max - min) of the starting classifier's row
    // norms (the stage-1 norms), fixed for the whole run; the bias is never
    // constrained. With from_zero the norms are still those of `start`.
    double maxnorm_factor = 0.1;
    std::optional<double> maxnorm_threshold; // an absolute threshold instead of the factor
    bool maxnorm_per_epoch = false;   // the released code; per step (default) is what the CVPR authors meant
    std::int64_t epochs = 10;
    double lr = 0.01;                 // cosine annealing to 0 over the epochs, stepped per epoch
    double momentum = 0.9;
    std::int64_t batch_size = 64;
    std::uint64_t seed = 0;           // epoch e's order is stage2Permutation(N, seed, e)
    bool from_zero = false;           // start from W = 0, b = 0 instead of `start`
    bool train_bias = true;           // false: the bias stays as it starts (no decay on it)

    // UsageError naming the first value out of range.
    void validate() const;
    // The settings as a JSON object (the snapshot's `stage2` attribute).
    std::string toJson() const;
};

struct Stage2Epoch {
    double loss = 0;           // mean over the epoch's samples of the batch loss (as the trainer's train_loss)
    double accuracy = 0;       // of the batch predictions before each step (the trainer's train_accuracy)
    double lr = 0;
};

struct Stage2Result {
    ClassifierInput classifier;      // the retrained W and b, with the train counts
    std::vector<double> class_weights; // the loss's per-class weights (all 1 for cross-entropy)
    std::optional<double> maxnorm_threshold;
    std::vector<Stage2Epoch> epochs;
    double seconds = 0;
};

// Effective-number weights (1 - beta) / (1 - beta^n_c), normalised to sum to
// C (beta = 1: 1/n_c, normalised the same way). Classes with n_c = 0 get 0 and
// do not count in the normalisation's sum. UsageError when beta is outside [0, 1].
std::vector<double> classBalancedWeights(const std::vector<std::int64_t>& counts, double beta);

// min + factor (max - min) of the row norms of W.
double maxNormThreshold(const Eigen::MatrixXd& weight, double factor);
// Rows of W longer than `threshold` scaled back onto it (the others unchanged).
void maxNormProject(RowMatrix& weight, double threshold);

// The loss became NaN or infinite (too large a learning rate).
class Stage2Diverged : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A seeded permutation of 0..n-1 for epoch `epoch` (from 0) of a stage-2
// run: Fisher-Yates driven by SplitMix64, so that any language can reproduce
// it (docs/stage2.md). The trainer's stage 2 draws its order from here too.
void stage2Permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch, std::vector<std::int64_t>& out);
std::vector<std::int64_t> stage2Permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

// Holds the train features once, in float64, and retrains classifiers on
// them as often as asked. run() reuses its buffers from batch to batch and
// from run to run; one run at a time per object (run it on one worker thread).
class Stage2Trainer {
public:
    // Reads every row of `train` (a snapshot's train split, or memory).
    Stage2Trainer(const FeatureSource& train, std::vector<std::int64_t> train_counts);
    Stage2Trainer(RowMatrix features, std::vector<std::int32_t> labels, std::vector<std::int64_t> train_counts);

    std::int64_t numSamples() const { return features_.rows(); }
    std::int64_t featureDim() const { return features_.cols(); }
    std::int64_t numClasses() const { return static_cast<std::int64_t>(counts_.size()); }
    const RowMatrix& features() const { return features_; }
    const std::vector<std::int32_t>& labels() const { return labels_; }

    // Retrains from `start` (its weight and bias; the train counts come from
    // the constructor). `progress` gets the fraction done after every
    // epoch and every 64 batches; returning false cancels (throws Cancelled).
    // Throws UsageError for bad settings or a classifier of the wrong shape,
    // Stage2Diverged when the loss is no longer finite. Problems of at least
    // 2e5 multiply-adds a step use the calling thread's OpenMP thread count
    // (omp_get_max_threads(); 1 keeps it on this thread), smaller ones one
    // thread; results agree to rounding whatever the count.
    Stage2Result run(const ClassifierInput& start, const Stage2Settings& settings,
                     const std::function<bool(double)>& progress = {});

private:
    RowMatrix features_;
    std::vector<std::int32_t> labels_;
    std::vector<std::int64_t> counts_;
    // Reused buffers: the batch's rows, logits/gradients, the permutation.
    RowMatrix batch_x_, batch_g_;
    RowMatrix grad_w_, buf_w_;
    Eigen::VectorXd grad_b_, buf_b_, sample_loss_;
    std::vector<std::int64_t> order_;
};

// ---- Run files: a snapshot in, a snapshot out ----------------------------------

// Everything of one snapshot that stage 2 reads and keeps: the classifier and
// every split in memory (features as float64, labels; stored logits are
// dropped, since they belong to the old classifier).
struct Stage2Source {
    std::string path;
    SnapshotInfo snapshot;
    ClassInfo classes;
    AnalysisOptions options;                 // the run's shot thresholds
    ClassifierInput classifier;              // the snapshot's W, b and /classes/train_counts
    std::vector<SplitData> splits;           // train, val, test as present
    bool float32 = true;                     // every split's features stored as float32
    std::optional<std::string> run_config;   // the root attribute `config`
    // The train split's rows against the training set's size (sum of the
    // counts): fewer means the snapshot holds a sample (ltlab train's
    // train_feature_cap, 500 per class by default), and stage 2 runs on it.
    std::int64_t train_rows = 0, training_set_size = 0;
    std::optional<std::int64_t> train_feature_cap; // from the run's config, when ltlab train wrote it

    const SplitData* split(const std::string& name) const;
    bool trainIsSample() const { return train_rows < training_set_size; }
};

// Reads `snapshot` (default: the latest) of the run file; InputError when it
// has no train split or an empty one.
Stage2Source loadStage2Source(const std::string& path, const std::optional<std::string>& snapshot);

// The settings ltlab train used for its stage 2 when the run's config is a
// training configuration (stage2_weight_decay, cb_beta, cb_reduction, maxnorm,
// maxnorm_factor, maxnorm_per_epoch, stage2_epochs, lr, momentum, batch_size,
// seed), else the wb recipe's defaults; `from_config` says which.
Stage2Settings stage2SettingsFor(const Stage2Source& source, bool* from_config = nullptr);

// The result as a snapshot: the new classifier (float64), the source's splits,
// stage 2, epoch = the source's + the epochs, and attribute `config` holding
// {"stage2": settings, "from_snapshot", "maxnorm_threshold", "train_rows",
// "training_set_size", "train_is_sample", "epochs": [{loss, accuracy, lr}]}.
SnapshotData stage2Snapshot(const Stage2Source& source, const Stage2Settings& settings, const Stage2Result& result,
                            const std::string& name);
// "<source>_stage2", or "<source>_stage2_<k>" with the first free k.
std::string defaultStage2SnapshotName(const Stage2Source& source, const std::vector<std::string>& taken);

// Writes `snapshot` atomically into `out_path`: appended to the run file when
// out_path is source.path, else into a copy of source.path (created or
// replaced). A snapshot of the same name is an error unless `replace`.
void writeStage2Snapshot(const Stage2Source& source, const std::string& out_path, const SnapshotData& snapshot,
                         bool replace);

} // namespace ltlab
