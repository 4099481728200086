#pragma once
// Datasets for training: readers for MNIST-format IDX files (Fashion-MNIST is
// embedded from Debian's dataset-fashion-mnist) and CIFAR-10/100 binary
// files, a synthetic Gaussian mixture, and long-tailed subsets. No libtorch
// here: the training module turns these into tensors.

#include <cstdint>
#include <string>
#include <vector>

namespace ltlab {

struct Dataset {
    std::string name;
    std::int64_t channels = 1, height = 1, width = 1; // shape of one sample
    std::vector<std::string> class_names;
    std::vector<std::uint8_t> images; // N x channels x height x width, for image data
    std::vector<float> values;        // N x channels, for real-valued data (height = width = 1)
    std::vector<std::int32_t> labels;

    std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
    std::int64_t sampleSize() const { return channels * height * width; }
    std::int64_t numClasses() const { return static_cast<std::int64_t>(class_names.size()); }
    std::vector<std::int64_t> classCounts() const;
    Dataset subset(const std::vector<std::int64_t>& indices) const;
};

// MNIST-format IDX pair (images: magic 0x803, uint8 N x H x W; labels: 0x801);
// gzip-compressed or not. Throws InputError naming the file and the problem.
Dataset readIdx(const std::string& images_path, const std::string& labels_path, const std::string& name);
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
Dataset readFashionMnist(bool train, const std::string& dir = kFashionMnistDir);
// CIFAR-10: data_batch_1..5.bin / test_batch.bin (1 label byte + 3072 pixel bytes).
Dataset readCifar10(const std::string& dir, bool train);
// CIFAR-100: train.bin / test.bin (coarse byte, fine byte, 3072 pixel bytes); fine labels.
Dataset readCifar100(const std::string& dir, bool train);
// A Gaussian mixture: `dim`-d class means `separation` apart on average, unit noise.
Dataset gaussianMixture(const std::vector<std::int64_t>& per_class, std::int64_t dim, double separation,
                        std::uint64_t seed);

struct LongTailedOptions {
    double imbalance = 100.0;       // IF = n_max / n_min
    // Exponential profile with a seeded random choice of samples (n_max = the
    // smallest full class size), or the ICLR 2024 code's variant: the first
    // n_i = round((N/C - 20) IF^(-i/(C-1))) images of class i in file order
    // for training, the next 20 of each class as a balanced validation split.
    bool paper_variant = false;
    std::int64_t val_per_class = 0; // exponential profile: a balanced val split from the rest
    std::uint64_t seed = 0;
};

struct LongTailedData {
    Dataset train, val;
    std::vector<std::int64_t> train_counts;
};

LongTailedData makeLongTailed(const Dataset& full, const LongTailedOptions& options);

// Shot-group thresholds for a dataset's train counts, as ltlab records them:
// the CIFAR-100 convention (many > 100, few < 20 of a 500-image head) scaled
// to the head class; 1000 / 200 from a head of 2500 (10-class datasets).
struct ShotThresholds {
    std::int64_t many = 100, few = 20;
};
ShotThresholds shotThresholds(const std::vector<std::int64_t>& train_counts);

struct TrainConfig;
// The splits of a configured dataset as training and import build them, from
// c.dataset (fashion-mnist, idx, cifar10, cifar100, gaussian, each also with
// -lt), c.data_dir, c.seed and the long-tailed options. `val` is empty when
// the dataset has none (only -lt datasets do). Throws UsageError for an
// unknown name or a missing --data-dir, InputError for unreadable files.
struct DatasetSplits {
    std::string name;  // c.dataset
    std::string base;  // without -lt
    Dataset train, val, test;
    std::vector<std::int64_t> train_counts;
};
DatasetSplits loadDatasetSplits(const TrainConfig& c);

} // namespace ltlab
