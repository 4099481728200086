// Datasets as tensors for the training module (see data.h).

#include "data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "images.h"
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

std::string idxPath(const std::string& dir, const std::string& stem) {
    for (const char* suffix : {"", ".gz"})
        if (std::filesystem::exists(dir + "/" + stem + suffix)) return dir + "/" + stem + suffix;
    return dir + "/" + stem + ".gz"; // the reader reports it missing
}

// Shot-group thresholds: the CIFAR-100 convention scaled to the head class
// (500 -> 100 / 20; 5000 -> 1000 / 200 as for 10-class datasets).
void setShotThresholds(Data& data) {
    const std::int64_t head = data.train_counts.empty() ? 0 : *std::max_element(data.train_counts.begin(), data.train_counts.end());
    data.many_threshold = head >= 2500 ? 1000 : std::max<std::int64_t>(1, head / 5);
    data.few_threshold = head >= 2500 ? 200 : std::max<std::int64_t>(1, head / 25);
}

} // namespace

Data loadData(const TrainConfig& c) {
    Dataset full, test;
    const std::string& ds = c.dataset;
    const bool long_tailed = ds.size() > 3 && ds.compare(ds.size() - 3, 3, "-lt") == 0;
    const std::string base = long_tailed ? ds.substr(0, ds.size() - 3) : ds;
    Data data;
    if (base == "fashion-mnist") {
        const std::string dir = c.data_dir.empty() ? kFashionMnistDir : c.data_dir;
        full = readFashionMnist(true, dir);
        test = readFashionMnist(false, dir);
        data.mean = {0.2860f};
        data.std = {0.3530f};
    } else if (base == "idx") {
        if (c.data_dir.empty()) throw UsageError("dataset idx needs --data-dir with train-/t10k- IDX files");
        full = readIdx(idxPath(c.data_dir, "train-images-idx3-ubyte"), idxPath(c.data_dir, "train-labels-idx1-ubyte"), "idx");
        test = readIdx(idxPath(c.data_dir, "t10k-images-idx3-ubyte"), idxPath(c.data_dir, "t10k-labels-idx1-ubyte"), "idx");
    } else if (base == "cifar10" || base == "cifar100") {
        if (c.data_dir.empty()) throw UsageError("dataset " + ds + " needs --data-dir with the CIFAR binary files");
        const bool ten = base == "cifar10";
        full = ten ? readCifar10(c.data_dir, true) : readCifar100(c.data_dir, true);
        test = ten ? readCifar10(c.data_dir, false) : readCifar100(c.data_dir, false);
        data.mean = {0.4914f, 0.4822f, 0.4465f};
        data.std = ten ? std::vector<float>{0.2470f, 0.2435f, 0.2616f} : std::vector<float>{0.2023f, 0.1994f, 0.2010f};
        data.augment = c.augment;
    } else if (base == "gaussian") {
        // One mixture, split per class, so that train and test share the class means.
        const std::int64_t test_per_class = 100, C = 10;
        Dataset both = gaussianMixture(std::vector<std::int64_t>(C, c.gaussian_per_class + test_per_class), c.gaussian_dim,
                                       4.0, c.seed);
        std::vector<std::int64_t> train_idx, test_idx;
        std::vector<std::int64_t> seen(C, 0);
        for (std::int64_t i = 0; i < both.size(); ++i) {
            const auto y = static_cast<std::size_t>(both.labels[static_cast<std::size_t>(i)]);
            (seen[y]++ < test_per_class ? test_idx : train_idx).push_back(i);
        }
        full = both.subset(train_idx);
        test = both.subset(test_idx);
    } else {
        throw UsageError("unknown dataset '" + ds +
                         "' (known: fashion-mnist-lt, fashion-mnist, idx-lt, idx, cifar10-lt, cifar10, cifar100-lt, "
                         "cifar100, gaussian-lt, gaussian)");
    }
    data.name = ds;
    data.channels = full.channels;
    data.height = full.height;
    data.width = full.width;
    data.class_names = full.class_names;
    if (long_tailed) {
        LongTailedOptions lt;
        lt.imbalance = c.imbalance;
        lt.paper_variant = c.paper_split;
        lt.val_per_class = c.val_per_class;
        lt.seed = c.seed;
        const LongTailedData subset = makeLongTailed(full, lt);
        data.train = toSplit(subset.train);
        data.val = toSplit(subset.val);
        data.train_counts = subset.train_counts;
    } else {
        data.train = toSplit(full);
        data.train_counts = full.classCounts();
    }
    data.test = toSplit(test);
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

void loadFolders(Data& data, const std::string& dir) {
    bool split_folders = false;
    for (const char* name : {"train", "val", "test"}) {
        std::error_code ec;
        if (!fs::is_directory(fs::path(dir) / name, ec)) continue;
        const ImageList list = listImageFolder((fs::path(dir) / name).string());
        if (data.class_names.empty()) data.class_names = list.class_names;
        if (list.class_names != data.class_names)
            throw InputError((fs::path(dir) / name).string(), "", "has other class subfolders than the first split");
        *splitNamed(data, name) = fileSplit(list);
        split_folders = true;
    }
    if (split_folders) return;
    const ImageList list = listImageFolder(dir);
    data.class_names = list.class_names;
    data.test = fileSplit(list);
}

// "train=FILE", or the split told by the file name.
std::pair<std::string, std::string> listSplit(const std::string& item) {
    const auto eq = item.find('=');
    if (eq != std::string::npos) {
        const std::string split = item.substr(0, eq);
        if (split != "train" && split != "val" && split != "test")
            throw UsageError("split list '" + item + "': the split is train, val or test");
        return {split, item.substr(eq + 1)};
    }
    const std::string name = fs::path(item).filename().string();
    for (const char* split : {"train", "val", "test"})
        if (name.find(split) != std::string::npos) return {split, item};
    throw UsageError("cannot tell the split of the list '" + item + "' from its name; write train=, val= or test= before it");
}

void loadLists(Data& data, const std::string& items, const std::string& root, std::int64_t classes) {
    std::stringstream stream(items);
    std::string item;
    while (std::getline(stream, item, ',')) {
        if (item.empty()) continue;
        const auto [split, file] = listSplit(item);
        const ImageList list = readSplitList(file, root.empty() ? fs::path(file).parent_path().string() : root);
        for (std::size_t i = 0; i < list.labels.size(); ++i)
            if (list.labels[i] >= classes)
                throw InputError(file, "line with " + list.paths[i], "label " + std::to_string(list.labels[i]) +
                                                                          " is outside the classifier's " + std::to_string(classes) + " classes");
        *splitNamed(data, split) = fileSplit(list);
    }
    for (std::int64_t c = 0; c < classes; ++c) data.class_names.push_back(std::to_string(c));
}

} // namespace

Data loadImageData(const std::string& spec, const std::string& root, std::int64_t channels, std::int64_t classes,
                   const InputTransform& transform) {
    Data data;
    data.name = spec;
    if (spec.rfind("folder:", 0) == 0) loadFolders(data, spec.substr(7));
    else if (spec.rfind("list:", 0) == 0) loadLists(data, spec.substr(5), root, classes);
    else throw UsageError("image data is folder:DIR or list:FILE[,FILE...], got '" + spec + "'");
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
