// Dataset readers and long-tailed subsets.

#include <gtest/gtest.h>

#include "test_support.h"
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "ltlab/datasets.h"
#include "ltlab/error.h"
#include "ltlab/importing.h"
#include <unistd.h>

using namespace ltlab;
namespace fs = std::filesystem;

namespace {

using ltlab::testing::TempDir;

void put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

void writeFile(const std::string& path, const std::vector<std::uint8_t>& bytes, bool gzip) {
    if (gzip) {
        gzFile f = gzopen(path.c_str(), "wb");
        gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
        gzclose(f);
    } else {
        std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
}

// n images of h x w whose pixels encode (image index + pixel index), labels i % classes.
void writeIdx(const std::string& images, const std::string& labels, int n, int h, int w, int classes, bool gzip) {
    std::vector<std::uint8_t> img, lab;
    put32(img, 0x803);
    put32(img, n);
    put32(img, h);
    put32(img, w);
    for (int i = 0; i < n; ++i)
        for (int p = 0; p < h * w; ++p) img.push_back(static_cast<std::uint8_t>(i + p));
    put32(lab, 0x801);
    put32(lab, n);
    for (int i = 0; i < n; ++i) lab.push_back(static_cast<std::uint8_t>(i % classes));
    writeFile(images, img, gzip);
    writeFile(labels, lab, gzip);
}

std::string errorOf(const std::function<void()>& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST(Idx, ReadsGzippedAndPlainFiles) {
    TempDir dir;
    for (bool gzip : {true, false}) {
        const auto images = dir.file(gzip ? "i.gz" : "i"), labels = dir.file(gzip ? "l.gz" : "l");
        writeIdx(images, labels, 7, 3, 2, 4, gzip);
        const Dataset d = readIdx(images, labels, "tiny");
        EXPECT_EQ(d.size(), 7);
        EXPECT_EQ(d.height, 3);
        EXPECT_EQ(d.width, 2);
        EXPECT_EQ(d.numClasses(), 4);
        EXPECT_EQ(d.labels[5], 1);
        EXPECT_EQ(d.images[5 * 6 + 4], 9); // image 5, pixel 4
    }
}

TEST(Idx, TruncatedAndWrongFilesAreNamed) {
    TempDir dir;
    writeIdx(dir.file("i"), dir.file("l"), 5, 4, 4, 2, false);
    fs::resize_file(dir.file("i"), fs::file_size(dir.file("i")) - 3);
    EXPECT_NE(errorOf([&] { readIdx(dir.file("i"), dir.file("l"), "x"); }).find(dir.file("i") + ": truncated"),
              std::string::npos);
    EXPECT_NE(errorOf([&] { readIdx(dir.file("l"), dir.file("l"), "x"); }).find("not an IDX image file"),
              std::string::npos);
    EXPECT_NE(errorOf([&] { readIdx(dir.file("missing"), dir.file("l"), "x"); }).find("no such file"),
              std::string::npos);
    writeIdx(dir.file("i2"), dir.file("l2"), 5, 4, 4, 2, false);
    writeIdx(dir.file("i3"), dir.file("l3"), 6, 4, 4, 2, false);
    EXPECT_NE(errorOf([&] { readIdx(dir.file("i2"), dir.file("l3"), "x"); }).find("6 labels for 5 images"),
              std::string::npos);
}

TEST(Cifar, ReadsRecordsAndRefusesBrokenFiles) {
    TempDir dir;
    std::vector<std::uint8_t> bytes;
    for (int r = 0; r < 3; ++r) {
        bytes.push_back(static_cast<std::uint8_t>(r + 7)); // coarse
        bytes.push_back(static_cast<std::uint8_t>(r * 40)); // fine
        for (int p = 0; p < 3072; ++p) bytes.push_back(static_cast<std::uint8_t>(p / 1024 + r));
    }
    writeFile(dir.file("train.bin"), bytes, false);
    const Dataset d = readCifar100(dir.path.string(), true);
    EXPECT_EQ(d.size(), 3);
    EXPECT_EQ(d.channels, 3);
    EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 40, 80}));
    EXPECT_EQ(d.images[1 * 3072 + 2048], 3); // record 1, blue plane
    bytes.resize(bytes.size() - 10);
    writeFile(dir.file("train.bin"), bytes, false);
    EXPECT_NE(errorOf([&] { readCifar100(dir.path.string(), true); }).find("not a multiple of the 3074-byte record"),
              std::string::npos);
    EXPECT_NE(errorOf([&] { readCifar10(dir.path.string(), false); }).find("test_batch.bin: no such file"),
              std::string::npos);
}

TEST(LongTailed, ExponentialProfileWithSeedAndBalancedValidation) {
    const Dataset full = gaussianMixture(std::vector<std::int64_t>(5, 300), 4, 3.0, 1);
    LongTailedOptions options;
    options.imbalance = 10;
    options.val_per_class = 20;
    options.seed = 5;
    const LongTailedData lt = makeLongTailed(full, options);
    EXPECT_EQ(lt.train_counts, (std::vector<std::int64_t>{280, 157, 89, 50, 28})); // round(280 * 10^(-i/4))
    EXPECT_EQ(lt.train.classCounts(), lt.train_counts);
    EXPECT_EQ(lt.val.classCounts(), (std::vector<std::int64_t>(5, 20)));
    EXPECT_EQ(makeLongTailed(full, options).train.values, lt.train.values); // same seed, same subset
    options.seed = 6;
    EXPECT_NE(makeLongTailed(full, options).train.values, lt.train.values);
}

TEST(LongTailed, PaperCifarVariantTakesFileOrderAndTheNextTwenty) {
    // 10 classes x 120 samples; N/C - 20 = 100 -> 100, ..., 1 at IF 100.
    std::vector<std::int64_t> per_class(10, 120);
    const Dataset full = gaussianMixture(per_class, 2, 1.0, 3);
    LongTailedOptions options;
    options.paper_variant = true;
    const LongTailedData lt = makeLongTailed(full, options);
    EXPECT_EQ(lt.train_counts.front(), 100);
    EXPECT_EQ(lt.train_counts.back(), 1);
    // Class 0 in file order: the first 100 samples train, the next 20 validate.
    EXPECT_EQ(std::vector<float>(lt.train.values.begin(), lt.train.values.begin() + 2),
              std::vector<float>(full.values.begin(), full.values.begin() + 2));
    EXPECT_EQ(std::vector<float>(lt.val.values.begin(), lt.val.values.begin() + 2),
              std::vector<float>(full.values.begin() + 200, full.values.begin() + 202));
}

TEST(FashionMnist, EmbeddedDatasetFromDebian) {
    if (!fs::exists(kFashionMnistDir)) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    const Dataset test = readFashionMnist(false);
    EXPECT_EQ(test.size(), 10000);
    EXPECT_EQ(test.height, 28);
    EXPECT_EQ(test.numClasses(), 10);
    EXPECT_EQ(test.classCounts(), (std::vector<std::int64_t>(10, 1000)));
    const LongTailedData lt = makeLongTailed(readFashionMnist(true), {100.0, false, 20, 0});
    EXPECT_EQ(lt.train_counts.front(), 5980);
    EXPECT_EQ(lt.train_counts.back(), 60);
}

TEST(ImportClasses, ComeFromTheTrainFolderOrTheCountsAndAreCheckedAgainstTheClassifier) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("ltlab_import_classes_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    for (const char* f : {"train/cat/1.png", "train/cat/2.JPG", "train/cat/notes.txt", "train/dog/1.jpeg", "test/cat/9.png", "test/dog/8.png"}) {
        fs::create_directories((dir / f).parent_path());
        std::ofstream((dir / f).string()) << "x";
    }
    ltlab::ImportConfig c;
    c.data.dataset = "folder:" + dir.string();
    auto classes = ltlab::importClasses(c, 2);
    ASSERT_TRUE(classes.has_value());
    EXPECT_EQ(classes->train_counts, (std::vector<std::int64_t>{2, 1}));
    EXPECT_EQ(classes->names, (std::vector<std::string>{"cat", "dog"}));
    EXPECT_THROW(ltlab::importClasses(c, 3), ltlab::UsageError);
    c.counts = std::vector<std::int64_t>{7, 3};
    EXPECT_EQ(ltlab::importClasses(c, 2)->train_counts, (std::vector<std::int64_t>{7, 3}));
    // A folder that is only a test split has no counts of its own.
    c.counts.reset();
    c.data.dataset = "folder:" + (dir / "test").string();
    EXPECT_FALSE(ltlab::importClasses(c, 2).has_value());
    fs::remove_all(dir);
}

TEST(ImportClasses, OfALongTailedDatasetAreTheTrainingSplitsCounts) {
    ltlab::ImportConfig c;
    c.data.dataset = "gaussian-lt";
    c.data.gaussian_per_class = 100;
    c.data.imbalance = 10;
    const auto classes = ltlab::importClasses(c, 10);
    ASSERT_TRUE(classes.has_value());
    EXPECT_EQ(classes->train_counts, ltlab::loadDatasetSplits(c.data).train_counts);
    // 20 images per class go to the balanced val split: n_max = 80, n_min = 80 / 10.
    EXPECT_EQ(classes->train_counts.front(), 80);
    EXPECT_EQ(classes->train_counts.back(), 8);
}
