#include "ltlab/datasets.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>

#include "ltlab/error.h"
#include "ltlab/input_file.h"
#include "ltlab/synthetic.h"
#include "ltlab/training.h"

namespace ltlab {

std::vector<std::int64_t> Dataset::classCounts() const {
    std::vector<std::int64_t> counts(class_names.size(), 0);
    for (auto y : labels) ++counts[static_cast<std::size_t>(y)];
    return counts;
}

Dataset Dataset::subset(const std::vector<std::int64_t>& indices) const {
    Dataset out;
    out.name = name;
    out.channels = channels;
    out.height = height;
    out.width = width;
    out.class_names = class_names;
    const auto n = static_cast<std::size_t>(sampleSize());
    if (!images.empty()) out.images.reserve(indices.size() * n);
    if (!values.empty()) out.values.reserve(indices.size() * n);
    for (auto i : indices) {
        const auto at = static_cast<std::size_t>(i);
        if (!images.empty()) out.images.insert(out.images.end(), images.begin() + at * n, images.begin() + (at + 1) * n);
        if (!values.empty()) out.values.insert(out.values.end(), values.begin() + at * n, values.begin() + (at + 1) * n);
        out.labels.push_back(labels[at]);
    }
    return out;
}

namespace {

// Whole file through zlib, which reads gzip and plain files alike.
std::vector<std::uint8_t> readMaybeGzipped(const std::string& path) {
    requireRegularFile(path, "dataset file"); // a FIFO would block gzopen, a device never end
    gzFile file = gzopen(path.c_str(), "rb");
    if (!file) throw InputError(path, "", "cannot open");
    std::vector<std::uint8_t> data;
    std::uint8_t buffer[1 << 16];
    int n;
    while ((n = gzread(file, buffer, sizeof buffer)) > 0) data.insert(data.end(), buffer, buffer + n);
    int err = 0;
    const char* message = gzerror(file, &err);
    const bool failed = n < 0 || (err != Z_OK && err != Z_STREAM_END);
    const std::string why = failed ? message : "";
    gzclose(file);
    if (failed) throw InputError(path, "", "corrupt or truncated gzip data: " + why);
    return data;
}

std::uint32_t bigEndian32(const std::vector<std::uint8_t>& d, std::size_t at) {
    return (std::uint32_t{d[at]} << 24) | (std::uint32_t{d[at + 1]} << 16) | (std::uint32_t{d[at + 2]} << 8) | d[at + 3];
}

std::vector<std::string> numberedNames(std::int64_t classes) {
    std::vector<std::string> names;
    for (std::int64_t c = 0; c < classes; ++c) names.push_back(std::to_string(c));
    return names;
}

} // namespace

Dataset readIdx(const std::string& images_path, const std::string& labels_path, const std::string& name) {
    const auto images = readMaybeGzipped(images_path);
    const auto labels = readMaybeGzipped(labels_path);
    if (images.size() < 16 || bigEndian32(images, 0) != 0x803)
        throw InputError(images_path, "", "not an IDX image file (expected magic 0x00000803, uint8, 3 dimensions)");
    if (labels.size() < 8 || bigEndian32(labels, 0) != 0x801)
        throw InputError(labels_path, "", "not an IDX label file (expected magic 0x00000801, uint8, 1 dimension)");
    const std::uint64_t n = bigEndian32(images, 4), h = bigEndian32(images, 8), w = bigEndian32(images, 12);
    const std::uint64_t n_labels = bigEndian32(labels, 4);
    if (h * w != 0 && n > (std::numeric_limits<std::uint64_t>::max() - 16) / (h * w)) // 16 + n h w would wrap
        throw InputError(images_path, "", "header says " + std::to_string(n) + " images of " + std::to_string(h) + "x" +
                                              std::to_string(w) + ": more than 2^64 bytes");
    if (images.size() != 16 + n * h * w)
        throw InputError(images_path, "", "truncated or oversized: header says " + std::to_string(n) + " images of " +
                                              std::to_string(h) + "x" + std::to_string(w) + " (" +
                                              std::to_string(16 + n * h * w) + " bytes), file has " +
                                              std::to_string(images.size()));
    if (labels.size() != 8 + n_labels)
        throw InputError(labels_path, "", "truncated or oversized: header says " + std::to_string(n_labels) +
                                              " labels, file has " + std::to_string(labels.size() - 8) + " bytes of labels");
    if (n_labels != n)
        throw InputError(labels_path, "", std::to_string(n_labels) + " labels for " + std::to_string(n) + " images in " +
                                              images_path);
    Dataset d;
    d.name = name;
    d.height = static_cast<std::int64_t>(h);
    d.width = static_cast<std::int64_t>(w);
    d.images.assign(images.begin() + 16, images.end());
    std::int32_t max_label = 0;
    for (std::size_t i = 0; i < n; ++i) {
        d.labels.push_back(labels[8 + i]);
        max_label = std::max<std::int32_t>(max_label, labels[8 + i]);
    }
    d.class_names = numberedNames(max_label + 1);
    return d;
}

Dataset readFashionMnist(bool train, const std::string& dir) {
    const std::string prefix = dir + (train ? "/train" : "/t10k");
    Dataset d = readIdx(prefix + "-images-idx3-ubyte.gz", prefix + "-labels-idx1-ubyte.gz", "fashion-mnist");
    if (d.numClasses() != 10)
        throw InputError(prefix + "-labels-idx1-ubyte.gz", "", "expected 10 classes, found " + std::to_string(d.numClasses()));
    d.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return d;
}

namespace {

Dataset readCifarRecords(const std::vector<std::string>& paths, std::size_t label_bytes, std::size_t label_index,
                         std::int64_t classes, const std::string& name) {
    constexpr std::size_t kPixels = 3 * 32 * 32;
    const std::size_t record = label_bytes + kPixels;
    Dataset d;
    d.name = name;
    d.channels = 3;
    d.height = d.width = 32;
    d.class_names = numberedNames(classes);
    for (const auto& path : paths) {
        const auto bytes = readMaybeGzipped(path);
        if (bytes.empty() || bytes.size() % record != 0)
            throw InputError(path, "", "size " + std::to_string(bytes.size()) + " is not a multiple of the " +
                                           std::to_string(record) + "-byte record of " + name +
                                           " (truncated, or not a " + name + " binary file)");
        for (std::size_t at = 0; at < bytes.size(); at += record) {
            const std::int32_t label = bytes[at + label_index];
            if (label >= classes)
                throw InputError(path, "", "record " + std::to_string(at / record) + " has label " +
                                               std::to_string(label) + " outside [0, " + std::to_string(classes) + ")");
            d.labels.push_back(label);
            d.images.insert(d.images.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at + label_bytes),
                            bytes.begin() + static_cast<std::ptrdiff_t>(at + record));
        }
    }
    return d;
}

} // namespace

Dataset readCifar10(const std::string& dir, bool train) {
    std::vector<std::string> paths;
    if (train)
        for (int i = 1; i <= 5; ++i) paths.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
    else
        paths.push_back(dir + "/test_batch.bin");
    Dataset d = readCifarRecords(paths, 1, 0, 10, "cifar10");
    d.class_names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
    return d;
}

Dataset readCifar100(const std::string& dir, bool train) {
    return readCifarRecords({dir + (train ? "/train.bin" : "/test.bin")}, 2, 1, 100, "cifar100");
}

Dataset gaussianMixture(const std::vector<std::int64_t>& per_class, std::int64_t dim, double separation,
                        std::uint64_t seed) {
    if (dim < 1 || per_class.size() < 2) throw UsageError("a Gaussian mixture needs dim >= 1 and at least 2 classes");
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    const auto C = per_class.size();
    std::vector<double> means(C * static_cast<std::size_t>(dim));
    for (auto& m : means) m = normal(rng) * separation / std::sqrt(2.0 * static_cast<double>(dim));
    Dataset d;
    d.name = "gaussian";
    d.channels = dim;
    d.class_names = numberedNames(static_cast<std::int64_t>(C));
    for (std::size_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < per_class[c]; ++i) {
            for (std::int64_t j = 0; j < dim; ++j)
                d.values.push_back(static_cast<float>(means[c * static_cast<std::size_t>(dim) + static_cast<std::size_t>(j)] +
                                                      normal(rng)));
            d.labels.push_back(static_cast<std::int32_t>(c));
        }
    return d;
}

LongTailedData makeLongTailed(const Dataset& full, const LongTailedOptions& options) {
    if (!(options.imbalance >= 1)) throw UsageError("the imbalance factor must be at least 1");
    const std::int64_t C = full.numClasses();
    std::vector<std::vector<std::int64_t>> by_class(static_cast<std::size_t>(C));
    for (std::int64_t i = 0; i < full.size(); ++i) by_class[static_cast<std::size_t>(full.labels[static_cast<std::size_t>(i)])].push_back(i);
    std::int64_t smallest = full.size();
    for (const auto& members : by_class) smallest = std::min<std::int64_t>(smallest, static_cast<std::int64_t>(members.size()));
    const std::int64_t val = options.paper_variant ? 20 : options.val_per_class;
    const std::int64_t n_max = options.paper_variant ? full.size() / C - 20 : smallest - val;
    if (n_max < 1) throw UsageError(full.name + ": too few samples per class for a validation split of " + std::to_string(val));
    LongTailedData out;
    out.train_counts = longTailedCounts(C, n_max, options.imbalance);
    std::mt19937_64 rng(options.seed);
    std::vector<std::int64_t> train_indices, val_indices;
    for (std::int64_t c = 0; c < C; ++c) {
        auto members = by_class[static_cast<std::size_t>(c)];
        if (!options.paper_variant) std::shuffle(members.begin(), members.end(), rng);
        const auto n = out.train_counts[static_cast<std::size_t>(c)];
        if (static_cast<std::int64_t>(members.size()) < n + val)
            throw UsageError(full.name + ": class " + std::to_string(c) + " has " + std::to_string(members.size()) +
                             " samples, fewer than the " + std::to_string(n + val) + " needed");
        train_indices.insert(train_indices.end(), members.begin(), members.begin() + n);
        val_indices.insert(val_indices.end(), members.begin() + n, members.begin() + n + val);
    }
    out.train = full.subset(train_indices);
    out.val = full.subset(val_indices);
    out.train.name = full.name + "-lt";
    out.val.name = full.name + "-lt-val";
    return out;
}

namespace {

std::string idxPath(const std::string& dir, const std::string& stem) {
    for (const char* suffix : {"", ".gz"})
        if (std::filesystem::exists(dir + "/" + stem + suffix)) return dir + "/" + stem + suffix;
    return dir + "/" + stem + ".gz"; // the reader reports it missing
}

} // namespace

ShotThresholds shotThresholds(const std::vector<std::int64_t>& train_counts) {
    const std::int64_t head = train_counts.empty() ? 0 : *std::max_element(train_counts.begin(), train_counts.end());
    ShotThresholds t;
    t.many = head >= 2500 ? 1000 : std::max<std::int64_t>(1, head / 5);
    t.few = head >= 2500 ? 200 : std::max<std::int64_t>(1, head / 25);
    return t;
}

DatasetSplits loadDatasetSplits(const TrainConfig& c) {
    Dataset full, test;
    const std::string& ds = c.dataset;
    const bool long_tailed = ds.size() > 3 && ds.compare(ds.size() - 3, 3, "-lt") == 0;
    const std::string base = long_tailed ? ds.substr(0, ds.size() - 3) : ds;
    if (base == "fashion-mnist") {
        const std::string dir = c.data_dir.empty() ? kFashionMnistDir : c.data_dir;
        full = readFashionMnist(true, dir);
        test = readFashionMnist(false, dir);
    } else if (base == "idx") {
        if (c.data_dir.empty()) throw UsageError("dataset idx needs --data-dir with train-/t10k- IDX files");
        full = readIdx(idxPath(c.data_dir, "train-images-idx3-ubyte"), idxPath(c.data_dir, "train-labels-idx1-ubyte"), "idx");
        test = readIdx(idxPath(c.data_dir, "t10k-images-idx3-ubyte"), idxPath(c.data_dir, "t10k-labels-idx1-ubyte"), "idx");
    } else if (base == "cifar10" || base == "cifar100") {
        if (c.data_dir.empty()) throw UsageError("dataset " + ds + " needs --data-dir with the CIFAR binary files");
        const bool ten = base == "cifar10";
        full = ten ? readCifar10(c.data_dir, true) : readCifar100(c.data_dir, true);
        test = ten ? readCifar10(c.data_dir, false) : readCifar100(c.data_dir, false);
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
    DatasetSplits out;
    out.name = ds;
    out.base = base;
    if (long_tailed) {
        LongTailedOptions lt;
        lt.imbalance = c.imbalance;
        lt.paper_variant = c.paper_split;
        lt.val_per_class = c.val_per_class;
        lt.seed = c.seed;
        LongTailedData subset = makeLongTailed(full, lt);
        out.train = std::move(subset.train);
        out.val = std::move(subset.val);
        out.train_counts = std::move(subset.train_counts);
    } else {
        out.train_counts = full.classCounts();
        out.train = std::move(full);
    }
    out.test = std::move(test);
    return out;
}

} // namespace ltlab
