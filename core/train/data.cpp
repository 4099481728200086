// Datasets as tensors for the training module (see data.h).

#include "data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "images.h"
#include "ltlab/image_lists.h"
#include "ltlab/error.h"

namespace ltlab::train {

Split toSplit(const Dataset& d) {
    Split s;
    s.labels = d.labels;
    const std::int64_t n = d.size();
    if (!d.images.empty()) {
        s.x = torch::from_blob(const_cast<std::uint8_t*>(d.images.data()), {n, d.channels, d.height, d.width}, torch::kUInt8)
                  .to(torch::kFloat32)
                  .div_(255.0);
    } else {
        s.x = torch::from_blob(const_cast<float*>(d.values.data()), {n, d.sampleSize()}, torch::kFloat32).clone();
    }
    std::vector<std::int64_t> y(d.labels.begin(), d.labels.end());
    s.y = torch::tensor(y, torch::kInt64);
    return s;
}

namespace {

void setShotThresholds(Data& data) {
    const ShotThresholds t = shotThresholds(data.train_counts);
    data.many_threshold = t.many;
    data.few_threshold = t.few;
}

} // namespace

Data loadData(const TrainConfig& c) {
    DatasetSplits splits = loadDatasetSplits(c);
    Data data;
    const std::string base = splits.base;
    if (base == "fashion-mnist") {
        data.mean = {0.2860f};
        data.std = {0.3530f};
    } else if (base == "cifar10" || base == "cifar100") {
        data.mean = {0.4914f, 0.4822f, 0.4465f};
        data.std = base == "cifar10" ? std::vector<float>{0.2470f, 0.2435f, 0.2616f}
                                     : std::vector<float>{0.2023f, 0.1994f, 0.2010f};
        data.augment = c.augment;
    }
    data.name = splits.name;
    data.channels = splits.train.channels;
    data.height = splits.train.height;
    data.width = splits.train.width;
    data.class_names = splits.train.class_names;
    data.train = toSplit(splits.train);
    if (splits.base != splits.name) data.val = toSplit(splits.val); // -lt: its balanced val split, maybe empty
    data.test = toSplit(splits.test);
    data.train_counts = std::move(splits.train_counts);
    setShotThresholds(data);
    return data;
}

torch::Tensor normalize(const Data& data, torch::Tensor x) {
    if (data.mean.empty()) return x;
    const auto shape = std::vector<std::int64_t>{1, static_cast<std::int64_t>(data.mean.size()), 1, 1};
    const torch::Tensor mean = torch::tensor(data.mean).view(shape), std = torch::tensor(data.std).view(shape);
    return (x - mean) / std;
}

// Zero padding, as torchvision pads the picture.
torch::Tensor augment(torch::Tensor x) {
    const std::int64_t B = x.size(0), H = x.size(2), W = x.size(3);
    const torch::Tensor padded = torch::constant_pad_nd(x, {4, 4, 4, 4}, 0.0);
    const torch::Tensor offsets = torch::randint(0, 9, {B, 2}, torch::kInt64);
    const torch::Tensor flips = torch::randint(0, 2, {B}, torch::kInt64);
    const auto off = offsets.accessor<std::int64_t, 2>();
    const auto flip = flips.accessor<std::int64_t, 1>();
    torch::Tensor out = torch::empty_like(x);
    for (std::int64_t i = 0; i < B; ++i) {
        torch::Tensor crop = padded[i].narrow(1, off[i][0], H).narrow(2, off[i][1], W);
        out[i].copy_(flip[i] ? crop.flip({2}) : crop);
    }
    return out;
}

// ---- image folders and split lists ---------------------------------------------------

namespace {

namespace fs = std::filesystem;

Split fileSplit(const ImageList& list) {
    Split s;
    s.files = list.paths;
    s.labels = list.labels;
    s.y = torch::tensor(std::vector<std::int64_t>(list.labels.begin(), list.labels.end()), torch::kInt64);
    return s;
}

Split* splitNamed(Data& data, const std::string& name) {
    if (name == "train") return &data.train;
    if (name == "val") return &data.val;
    if (name == "test") return &data.test;
    return nullptr;
}

} // namespace

Data loadImageData(const std::string& spec, const std::string& root, std::int64_t channels, std::int64_t classes,
                   const InputTransform& transform) {
    Data data;
    data.name = spec;
    const ImageSplits lists = listImageData(spec, root, classes);
    data.class_names = lists.class_names;
    for (const auto& [name, list] : lists.splits) *splitNamed(data, name) = fileSplit(list);
    data.channels = channels;
    data.height = data.width = transform.crop;
    data.eval_transform = transform;
    if (data.train.size() > 0) {
        data.train_counts.assign(data.class_names.size(), 0);
        for (auto y : data.train.labels) ++data.train_counts[static_cast<std::size_t>(y)];
    }
    setShotThresholds(data);
    return data;
}

// ---- evaluation batches ---------------------------------------------------------------

namespace {

// torchvision's Resize(size) and CenterCrop(crop) on an N x C x H x W float tensor.
torch::Tensor shape(torch::Tensor x, const InputTransform& t, const std::string& what) {
    const std::int64_t H = x.size(2), W = x.size(3);
    if (t.resize > 0 && std::min(H, W) != t.resize) {
        const std::int64_t h = H <= W ? t.resize : t.resize * H / W, w = W <= H ? t.resize : t.resize * W / H;
        namespace F = torch::nn::functional;
        x = F::interpolate(x, F::InterpolateFuncOptions()
                                  .size(std::vector<std::int64_t>{h, w})
                                  .mode(torch::kBilinear)
                                  .align_corners(false)
                                  .antialias(true));
    }
    if (t.crop <= 0) return x;
    const std::int64_t h = x.size(2), w = x.size(3);
    if (h < t.crop || w < t.crop)
        throw InputError(what, "", std::to_string(h) + "x" + std::to_string(w) + " is smaller than the crop " + std::to_string(t.crop));
    const auto top = static_cast<std::int64_t>(std::nearbyint((h - t.crop) / 2.0)); // Python's round: half to even
    const auto left = static_cast<std::int64_t>(std::nearbyint((w - t.crop) / 2.0));
    return x.narrow(2, top, t.crop).narrow(3, left, t.crop);
}

torch::Tensor decodeRows(const Data& data, const Split& split, const std::vector<std::int64_t>& rows, std::int64_t begin,
                         std::int64_t count) {
    torch::Tensor out = torch::empty({count, data.channels, data.height, data.width});
    at::parallel_for(0, count, 1, [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t i = first; i < last; ++i) {
            const std::string& path = split.files[static_cast<std::size_t>(rows[static_cast<std::size_t>(begin + i)])];
            Image image = decodeImage(path, static_cast<int>(data.channels));
            const torch::Tensor x = torch::from_blob(image.pixels.data(), {1, image.height, image.width, image.channels}, torch::kUInt8)
                                        .permute({0, 3, 1, 2})
                                        .to(torch::kFloat32)
                                        .div_(255.0);
            const torch::Tensor shaped = shape(x, data.eval_transform, path);
            if (shaped.size(2) != data.height || shaped.size(3) != data.width)
                throw InputError(path, "", "is " + std::to_string(shaped.size(2)) + "x" + std::to_string(shaped.size(3)) +
                                               " after the transform; the others are " + std::to_string(data.height) + "x" +
                                               std::to_string(data.width));
            out[i].copy_(shaped[0]);
        }
    });
    return out;
}

} // namespace

torch::Tensor evalBatch(const Data& data, const Split& split, const std::vector<std::int64_t>& rows, std::int64_t begin,
                        std::int64_t count) {
    torch::Tensor x;
    if (!split.files.empty()) {
        x = decodeRows(data, split, rows, begin, count);
    } else {
        const bool all = static_cast<std::int64_t>(rows.size()) == split.size();
        const torch::Tensor index = torch::from_blob(const_cast<std::int64_t*>(rows.data()) + begin, {count}, torch::kInt64);
        x = all ? split.x.narrow(0, begin, count) : split.x.index_select(0, index);
        if (x.dim() == 4) x = shape(x, data.eval_transform, data.name); // one size: the whole batch at once
    }
    return normalize(data, x);
}

RowMatrix toRowMatrix(const torch::Tensor& t) {
    const torch::Tensor d = t.to(torch::kCPU, torch::kFloat64).contiguous();
    return Eigen::Map<const RowMatrix>(d.data_ptr<double>(), d.size(0), d.size(1));
}

} // namespace ltlab::train
