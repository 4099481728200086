#pragma once
// Datasets as tensors for the training module: the splits of a configured
// dataset (long-tailed subsets included), image folders and split lists
// (decoded per batch), normalisation, the evaluation transform and
// augmentation. Internal to the training module; shared by training,
// evaluation and import.

#include <torch/torch.h>

#include <string>
#include <vector>

#include "ltlab/analysis.h"
#include "ltlab/datasets.h"
#include "ltlab/training.h"

namespace ltlab::train {

struct Split {
    torch::Tensor x;                  // N x C x H x W in [0, 1] (images) or N x D; undefined for files
    torch::Tensor y;                  // int64
    std::vector<std::int32_t> labels;
    std::vector<std::string> files;   // image files, decoded per batch (then x is undefined)
    std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};

// How evaluation shapes images: the shorter side resized to `resize`
// (antialiased bilinear, as torchvision's Resize on tensors; skipped when it
// already has that length), then the centre `crop` x `crop`. 0: as stored.
struct InputTransform {
    std::int64_t resize = 0, crop = 0;
};

struct Data {
    std::string name;
    Split train, val, test;
    std::vector<std::int64_t> train_counts;
    std::vector<std::string> class_names;
    std::int64_t channels = 1, height = 1, width = 1;
    std::vector<float> mean, std;     // per channel; empty: no normalisation
    bool augment = false;             // random crop 32 (padding 4) + horizontal flip
    InputTransform eval_transform;    // evaluation only; training's datasets keep their size
    std::int64_t many_threshold = 100, few_threshold = 20;
    std::int64_t classes() const { return static_cast<std::int64_t>(class_names.size()); }
};

Split toSplit(const Dataset& d);
// The configured dataset (c.dataset, c.data_dir, the long-tailed options).
Data loadData(const TrainConfig& c);
// Image folders and split lists, for evaluation: `spec` is folder:DIR
// (DIR/train, DIR/val, DIR/test when present, else DIR is the test split; one
// subfolder per class) or list:[SPLIT=]FILE[,...] (ImageNet-LT style lists,
// paths relative to `root`, default each list's folder; the split from
// SPLIT= or the file name). Images are decoded with `channels` channels and
// shaped by `transform` per batch; `classes` sizes the label range of lists.
Data loadImageData(const std::string& spec, const std::string& root, std::int64_t channels, std::int64_t classes,
                   const InputTransform& transform);
// (x - mean) / std per channel, when the dataset has them.
torch::Tensor normalize(const Data& data, torch::Tensor x);
// Rows rows[begin, begin + count) of a split as the network sees them in
// eval mode: decoded (files), resized and cropped (eval_transform), normalised.
torch::Tensor evalBatch(const Data& data, const Split& split, const std::vector<std::int64_t>& rows, std::int64_t begin,
                        std::int64_t count);
// Random crop 32 from the image padded by 4 and a horizontal flip (p 1/2), per sample.
torch::Tensor augment(torch::Tensor x);
// A 2-d tensor as a float64 row-major matrix on the CPU.
RowMatrix toRowMatrix(const torch::Tensor& t);

} // namespace ltlab::train
