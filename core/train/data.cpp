// Datasets as tensors for the training module (see data.h).

#include "data.h"

#include <algorithm>
#include <filesystem>

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
    // Shot-group thresholds: the CIFAR-100 convention scaled to the head class
    // (500 -> 100 / 20; 5000 -> 1000 / 200 as for 10-class datasets).
    const std::int64_t head = *std::max_element(data.train_counts.begin(), data.train_counts.end());
    data.many_threshold = head >= 2500 ? 1000 : std::max<std::int64_t>(1, head / 5);
    data.few_threshold = head >= 2500 ? 200 : std::max<std::int64_t>(1, head / 25);
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

RowMatrix toRowMatrix(const torch::Tensor& t) {
    const torch::Tensor d = t.to(torch::kCPU, torch::kFloat64).contiguous();
    return Eigen::Map<const RowMatrix>(d.data_ptr<double>(), d.size(0), d.size(1));
}

} // namespace ltlab::train
