#pragma once
// Datasets as tensors for the training module: the splits of a configured
// dataset (long-tailed subsets included), normalisation and augmentation.
// Internal to the training module; shared by training and evaluation.

#include <torch/torch.h>

#include <string>
#include <vector>

#include "ltlab/analysis.h"
#include "ltlab/datasets.h"
#include "ltlab/training.h"

namespace ltlab::train {

struct Split {
    torch::Tensor x;                  // N x C x H x W in [0, 1] (images) or N x D
    torch::Tensor y;                  // int64
    std::vector<std::int32_t> labels;
    std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};

struct Data {
    std::string name;
    Split train, val, test;
    std::vector<std::int64_t> train_counts;
    std::vector<std::string> class_names;
    std::int64_t channels = 1, height = 1, width = 1;
    std::vector<float> mean, std;     // per channel; empty: no normalisation
    bool augment = false;             // random crop 32 (padding 4) + horizontal flip
    std::int64_t many_threshold = 100, few_threshold = 20;
    std::int64_t classes() const { return static_cast<std::int64_t>(class_names.size()); }
};

Split toSplit(const Dataset& d);
// The configured dataset (c.dataset, c.data_dir, the long-tailed options).
Data loadData(const TrainConfig& c);
// (x - mean) / std per channel, when the dataset has them.
torch::Tensor normalize(const Data& data, torch::Tensor x);
// Random crop 32 from the image padded by 4 and a horizontal flip (p 1/2), per sample.
torch::Tensor augment(torch::Tensor x);
// A 2-d tensor as a float64 row-major matrix on the CPU.
RowMatrix toRowMatrix(const torch::Tensor& t);

} // namespace ltlab::train
