// Run files: written, read back, and refused with clear messages.

#include <gtest/gtest.h>

#include "test_support.h"
#include <hdf5.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "ltlab/analysis.h"
#include "ltlab/error.h"
#include "ltlab/run_file.h"
#include "ltlab/run_writer.h"
#include "ltlab/synthetic.h"
#include "ltlab/posthoc.h"
#include "ltlab/class_counts.h"
#include "ltlab/datasets.h"
#include "ltlab/image_lists.h"
#include "ltlab/input_file.h"
#include "ltlab/training.h"

#include <sys/stat.h>

using namespace ltlab;
namespace fs = std::filesystem;

namespace {

using ltlab::testing::TempDir;

ClassInfo threeClasses() {
    ClassInfo classes;
    classes.train_counts = {50, 10, 2};
    classes.names = {"cat", "dog", "axolotl"};
    classes.many_threshold = 30;
    classes.few_threshold = 5;
    return classes;
}

SnapshotData snapshot(const std::string& name, std::int64_t epoch, bool with_logits = false) {
    SnapshotData s;
    s.name = name;
    s.epoch = epoch;
    s.stage = 1;
    s.label = "stage one";
    s.classifier_weight = Eigen::MatrixXd::Random(3, 4);
    s.classifier_bias = Eigen::VectorXd::Random(3);
    s.store_float32 = false;
    SplitData test;
    test.name = "test";
    test.features = RowMatrix::Random(6, 4);
    test.labels = {0, 1, 2, 0, 1, 2};
    if (with_logits) test.logits = RowMatrix::Random(6, 3);
    s.splits.push_back(test);
    return s;
}

std::string errorOf(const std::string& path) {
    try {
        auto f = RunFile::open(path);
        return "";
    } catch (const InputError& e) {
        return e.what();
    }
}

void setIntAttribute(const std::string& path, const char* object, const char* name, long long value) {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t o = H5Oopen(f, object, H5P_DEFAULT);
    if (H5Aexists(o, name) > 0) H5Adelete(o, name);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(o, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_LLONG, &value);
    H5Aclose(attr);
    H5Sclose(space);
    H5Oclose(o);
    H5Fclose(f);
}

} // namespace

TEST(RunFile, RoundTripKeepsEveryObject) {
    TempDir dir;
    const std::string path = dir.file("run.h5");
    const SnapshotData late = snapshot("zz_final", 7, true), early = snapshot("epoch_0001", 1);
    {
        RunFileWriter writer(path, threeClasses(), std::string("{\"recipe\": \"ce\"}"));
        writer.writeSnapshot(late);
        writer.writeSnapshot(early);
        writer.appendHistory({{"epoch", 0}, {"train_loss", 2.5}});
        writer.appendHistory({{"epoch", 1}, {"train_loss", 1.5}, {"nc1", 0.25}});
    }
    const auto file = RunFile::open(path);
    EXPECT_EQ(file->classes().train_counts, (std::vector<std::int64_t>{50, 10, 2}));
    EXPECT_EQ(file->classes().names[2], "axolotl");
    EXPECT_EQ(file->classes().many_threshold, 30);
    EXPECT_EQ(file->classes().few_threshold, 5);
    EXPECT_EQ(*file->config(), "{\"recipe\": \"ce\"}");
    ASSERT_EQ(file->snapshots().size(), 2u);
    EXPECT_EQ(file->snapshots()[0].name, "epoch_0001"); // ordered by epoch, not by name
    EXPECT_EQ(file->latestSnapshot().name, "zz_final");
    const SnapshotInfo& s = file->snapshot("zz_final");
    EXPECT_EQ(s.stage, 1);
    EXPECT_EQ(s.label, "stage one");
    EXPECT_EQ(s.feature_dim, 4);
    ASSERT_NE(s.split("test"), nullptr);
    EXPECT_TRUE(s.split("test")->has_logits);
    EXPECT_EQ(&s.defaultSplit(), s.split("test"));
    EXPECT_TRUE(file->classifierWeight(s).isApprox(late.classifier_weight, 1e-15));
    EXPECT_TRUE(file->classifierBias(s).isApprox(*late.classifier_bias, 1e-15));
    RowMatrix rows(2, 4);
    file->readFeatureRows(s, *s.split("test"), 3, rows);
    EXPECT_TRUE(rows.isApprox(late.splits[0].features.middleRows(3, 2), 1e-15));
    EXPECT_EQ(file->labels(s, *s.split("test")), late.splits[0].labels);

    const auto history = file->history();
    ASSERT_TRUE(history);
    EXPECT_EQ(history->numEpochs(), 2);
    EXPECT_EQ(history->series.at("train_loss"), (std::vector<double>{2.5, 1.5}));
    EXPECT_TRUE(std::isnan(history->series.at("nc1")[0])); // a series that starts late is padded
    EXPECT_EQ(history->series.at("nc1")[1], 0.25);
}

std::string contentsOf(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(RunFileTransaction, CommitsAllOrNothingAndOpenReadersKeepTheirView) {
    TempDir dir;
    const std::string path = dir.file("run.h5");
    createRunFile(path, threeClasses(), std::nullopt, [](RunFileWriter& w) {
        w.writeSnapshot(snapshot("epoch_0001", 1));
        w.appendHistory({{"epoch", 1}, {"train_loss", 2.0}});
    });
    EXPECT_FALSE(fs::exists(partialPathFor(path)));
    const auto before = RunFile::open(path); // a reader holding the file open, like the GUI

    // A change that fails half-way leaves the file byte for byte as it was.
    const std::string bytes = contentsOf(path);
    EXPECT_THROW(updateRunFile(path,
                               [](RunFileWriter& w) {
                                   w.appendHistory({{"epoch", 2}, {"train_loss", 1.0}});
                                   w.writeSnapshot(snapshot("epoch_0001", 2)); // duplicate name: throws
                               }),
                 UsageError);
    EXPECT_EQ(contentsOf(path), bytes);
    EXPECT_FALSE(fs::exists(partialPathFor(path)));

    updateRunFile(path, [](RunFileWriter& w) {
        w.appendHistory({{"epoch", 2}, {"train_loss", 1.0}});
        w.writeSnapshot(snapshot("epoch_0002", 2));
    });
    EXPECT_EQ(before->history()->numEpochs(), 1);
    EXPECT_EQ(before->snapshots().size(), 1u);
    const auto after = RunFile::open(path);
    EXPECT_EQ(after->history()->series.at("train_loss"), (std::vector<double>{2.0, 1.0}));
    EXPECT_EQ(after->snapshots().size(), 2u);

    // Undoing an epoch (resume from an older checkpoint).
    updateRunFile(path, [](RunFileWriter& w) {
        w.truncateHistory(1);
        w.removeSnapshot("epoch_0002");
    });
    const auto undone = RunFile::open(path);
    EXPECT_EQ(undone->history()->series.at("train_loss"), (std::vector<double>{2.0}));
    EXPECT_EQ(undone->snapshots().size(), 1u);
    EXPECT_THROW(updateRunFile(dir.file("missing.h5"), [](RunFileWriter&) {}), InputError);
}

TEST(RunFile, AnalysisOfAFileEqualsAnalysisOfTheSameDataInMemory) {
    TempDir dir;
    const std::string path = dir.file("run.h5");
    const SnapshotData s = snapshot("e", 3);
    {
        RunFileWriter writer(path, threeClasses());
        writer.writeSnapshot(s);
    }
    const auto file = RunFile::open(path);
    const SnapshotInfo& info = file->latestSnapshot();
    const AnalysisOptions options = defaultOptionsFor(*file, std::nullopt, std::nullopt);
    EXPECT_EQ(options.many_threshold, 30);
    const Analysis from_file = analyzeSnapshot(file, info, *info.split("test"), options);
    const Analysis in_memory = analyze(MemorySource(s.splits[0].features, s.splits[0].labels),
                                       {s.classifier_weight, *s.classifier_bias, {50, 10, 2}}, options);
    EXPECT_EQ(from_file.snapshot, "e");
    EXPECT_EQ(from_file.epoch, 3);
    EXPECT_DOUBLE_EQ(*from_file.nc1, *in_memory.nc1);
    EXPECT_DOUBLE_EQ(*from_file.cone_std_cos, *in_memory.cone_std_cos);
    EXPECT_EQ(from_file.per_class.accuracy, in_memory.per_class.accuracy);
}

TEST(RunFile, RefusesOtherFormatVersions) {
    TempDir dir;
    const std::string path = dir.file("v2.h5");
    { RunFileWriter writer(path, threeClasses()); writer.writeSnapshot(snapshot("e", 1)); }
    setIntAttribute(path, "/", "format_version", 2);
    const std::string error = errorOf(path);
    EXPECT_NE(error.find("v2.h5"), std::string::npos) << error;
    EXPECT_NE(error.find("unsupported format_version 2"), std::string::npos) << error;
}

TEST(RunFile, RefusesNonHdf5AndTruncatedFiles) {
    TempDir dir;
    const std::string text = dir.file("notes.h5");
    std::ofstream(text) << "not a run file\n";
    EXPECT_NE(errorOf(text).find("not an HDF5 file"), std::string::npos) << errorOf(text);

    const std::string path = dir.file("cut.h5");
    {
        RunFileWriter writer(path, threeClasses());
        SnapshotData s = snapshot("e", 1);
        s.splits[0].features = RowMatrix::Random(20000, 4); // big enough to be cut through
        s.splits[0].labels.assign(20000, 1);
        writer.writeSnapshot(s);
    }
    fs::resize_file(path, fs::file_size(path) / 2);
    std::string error;
    try {
        auto f = RunFile::open(path);
        const SnapshotInfo& s = f->latestSnapshot();
        RowMatrix all(s.split("test")->num_samples, 4);
        f->readFeatureRows(s, *s.split("test"), 0, all);
    } catch (const InputError& e) {
        error = e.what();
    }
    EXPECT_NE(error.find("cut.h5"), std::string::npos) << error;
    EXPECT_NE(error.find("truncated"), std::string::npos) << error;
}

TEST(RunFile, NamesTheSnapshotsThatExistWhenOneIsMissing) {
    TempDir dir;
    const std::string path = dir.file("run.h5");
    { RunFileWriter writer(path, threeClasses()); writer.writeSnapshot(snapshot("epoch_0004", 4)); }
    const auto file = RunFile::open(path);
    try {
        file->snapshot("epoch_0009");
        FAIL();
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("epoch_0009"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("available: epoch_0004"), std::string::npos);
    }
}

TEST(RunFile, LabelsOutOfRangeAreCountedWithTheFirstOne) {
    TempDir dir;
    const std::string path = dir.file("labels.h5");
    {
        RunFileWriter writer(path, threeClasses());
        SnapshotData s = snapshot("e", 1);
        s.splits[0].labels = {0, 1, 3, 0, -1, 2};
        writer.writeSnapshot(s);
    }
    const auto file = RunFile::open(path);
    const SnapshotInfo& s = file->latestSnapshot();
    try {
        file->labels(s, *s.split("test"));
        FAIL();
    } catch (const InputError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("/snapshots/e/test/labels"), std::string::npos) << m;
        EXPECT_NE(m.find("2 labels outside [0, 3)"), std::string::npos) << m;
        EXPECT_NE(m.find("index 2: 3"), std::string::npos) << m;
    }
}

TEST(Synthetic, LongTailedProfiles) {
    EXPECT_EQ(longTailedCounts(10, 5000, 100),
              (std::vector<std::int64_t>{5000, 2997, 1797, 1077, 646, 387, 232, 139, 83, 50}));
    // The ICLR code's CIFAR-10-LT at IF 100 (paper-notes.md).
    EXPECT_EQ(longTailedCounts(10, 4980, 100),
              (std::vector<std::int64_t>{4980, 2985, 1790, 1073, 643, 386, 231, 139, 83, 50}));
    const auto cifar = longTailedCountsWithTotal(100, 10847, 100);
    std::int64_t total = 0;
    for (auto n : cifar) total += n;
    EXPECT_EQ(total, 10847);
    EXPECT_GT(cifar.front(), 90 * cifar.back());
}

TEST(Synthetic, SameSeedSameFileAndCollapseGrowsOverEpochs) {
    TempDir dir;
    SynthConfig cfg;
    cfg.classes = 5;
    cfg.dim = 8;
    cfg.snapshots = 3;
    cfg.seed = 42;
    writeSyntheticRun(dir.file("a.h5"), cfg);
    const auto file = RunFile::open(dir.file("a.h5"));
    ASSERT_EQ(file->snapshots().size(), 3u);
    const auto history = file->history();
    ASSERT_TRUE(history);
    const auto& nc1 = history->series.at("nc1");
    ASSERT_EQ(nc1.size(), 3u);
    EXPECT_GT(nc1[0], nc1[2]); // less within-class spread, stronger collapse
    const Analysis last = analyzeSnapshot(file, file->latestSnapshot(), *file->latestSnapshot().split("train"),
                                          defaultOptionsFor(*file, std::nullopt, std::nullopt));
    EXPECT_LT(*last.implicit_la_tau, 0.0); // head classes have the larger weight norms
}

TEST(Posthoc, LogitAdjustedRunMatchesTheSweepAtTheChosenTau) {
    TempDir dir;
    SynthConfig cfg;
    cfg.classes = 6;
    cfg.dim = 12;
    cfg.noise = 1.5;
    cfg.val_per_class = 40;
    cfg.history = false;
    cfg.seed = 9;
    writeSyntheticRun(dir.file("run.h5"), cfg);
    for (auto mode : {LogitAdjustmentMode::Additive, LogitAdjustmentMode::Multiplicative}) {
        const PosthocResult r = logitAdjustRun(dir.file("run.h5"), dir.file("la.h5"), std::nullopt, std::nullopt, mode);
        EXPECT_TRUE(r.tau_from_val);
        EXPECT_EQ(r.before.split, "test");
        const LogitAdjustmentSweep& sweep =
            mode == LogitAdjustmentMode::Additive ? r.before.la_additive : r.before.la_multiplicative;
        const auto k = static_cast<std::size_t>(std::lround(r.tau * 10));
        // Adjusting the classifier by tau gives the sweep's accuracy at tau, per class.
        for (std::size_t c = 0; c < 6; ++c)
            EXPECT_NEAR(*r.after.per_class.accuracy[c], *sweep.per_class_accuracy[k][c], 1e-12) << "class " << c;
        if (mode == LogitAdjustmentMode::Multiplicative)
            EXPECT_NEAR(*r.after.implicit_la_tau, *r.before.implicit_la_tau + r.tau, 1e-6); // float32 weights
        const auto out = RunFile::open(dir.file("la.h5"));
        EXPECT_EQ(out->latestSnapshot().name, "epoch_0001_la");
    }
}

// Issue 12: input checks made before a file is opened, and the text report's escaping.
namespace {

template <typename Error, typename F>
std::string messageOf(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace

TEST(Hardening, OnlyRegularFilesAreRead) {
    TempDir dir;
    const std::string fifo = dir.file("pipe.h5");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_NE(messageOf<InputError>([&] { RunFile::open(fifo); }).find(fifo + ": is a FIFO"), std::string::npos);
    EXPECT_NE(messageOf<InputError>([&] { readCounts(fifo); }).find("FIFO"), std::string::npos);
    EXPECT_NE(messageOf<InputError>([&] { RunFile::open(dir.path.string()); }).find("is a directory"), std::string::npos);
    EXPECT_NE(messageOf<InputError>([&] { requireRegularFile("/dev/zero", "config file"); }).find("character device"),
              std::string::npos);
    const std::string big = dir.file("big.json");
    std::ofstream(big).close();
    fs::resize_file(big, 2000);
    EXPECT_EQ(requireRegularFile(big, "config file", 2000), 2000u);
    EXPECT_NE(messageOf<InputError>([&] { readSmallFile(big, "config file", 1000); }).find("at most"), std::string::npos);
    EXPECT_NE(messageOf<InputError>([&] { requireOutputFolder(dir.file("missing/out.h5")); }).find("does not exist"),
              std::string::npos);
    EXPECT_NO_THROW(requireOutputFolder(dir.file("out.h5")));
    EXPECT_NO_THROW(requireOutputFolder("relative.h5"));
}

TEST(Hardening, CountSumsDoNotOverflow) {
    TempDir dir;
    const std::string text = dir.file("counts.txt");
    std::ofstream(text) << "4611686018427387904 4611686018427387904 1\n";
    EXPECT_NE(messageOf<InputError>([&] { readCounts(text); }).find("2^63 - 1"), std::string::npos);
    std::ofstream(text) << "99999999999999999999 1\n";
    EXPECT_NE(messageOf<InputError>([&] { readCounts(text); }).find("64 bits"), std::string::npos);
    std::ofstream(text) << "0 0 0\n";
    EXPECT_NE(messageOf<InputError>([&] { readCounts(text); }).find("all counts are zero"), std::string::npos);
}

TEST(Hardening, TrainConfigRanges) {
    const TrainConfig defaults = recipeDefaults("wb");
    EXPECT_NO_THROW(TrainConfig::fromJson("{}", defaults));
    const std::pair<const char*, const char*> cases[] = {
        {R"({"weight_decay": -1})", "--weight-decay"}, {R"({"stage2_epochs": -1})", "--stage2-epochs"},
        {R"({"val_per_class": -5})", "--val-per-class"}, {R"({"lr": 1e300})", "--lr"},
        {R"({"lr": 0})", "--lr"},                      {R"({"momentum": -1})", "[0, 1)"},
        {R"({"momentum": 1})", "[0, 1)"},               {R"({"tau": 1e308})", "--tau"},
        {R"({"threads": -1})", "--threads"},       {R"({"cb_beta": 2})", "--cb-beta"},
        {R"({"lr": "fast"})", "--lr"},
    };
    for (const auto& [json, expected] : cases)
        EXPECT_NE(messageOf<UsageError>([&] { TrainConfig::fromJson(json, defaults); }).find(expected), std::string::npos)
            << json;
}

TEST(Hardening, ControlCharactersEscaped) {
    EXPECT_EQ(escapeControl("plain name"), "plain name");
    EXPECT_EQ(escapeControl("a\\b"), "a\\b"); // nothing to escape: left as it is
    EXPECT_EQ(escapeControl("new\nline\t\x1b[31m"), "new\\nline\\t\\e[31m");
    EXPECT_EQ(escapeControl(std::string("nul\0x\x7f", 6)), "nul\\x00x\\x7f");
    EXPECT_EQ(escapeControl("csi\xc2\x9b" "2J caf\xc3\xa9"), "csi\\u009b2J caf\xc3\xa9");
}

TEST(Hardening, DatasetFilesRegularOnly) {
    TempDir dir;
    const std::string fifo = dir.file("train-images-idx3-ubyte");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_NE(messageOf<InputError>([&] { readIdx(fifo, dir.file("labels"), "x"); }).find(fifo + ": is a FIFO"),
              std::string::npos);
    EXPECT_NE(messageOf<InputError>([&] { readSplitList(fifo, dir.path.string()); }).find("FIFO"), std::string::npos);
}

TEST(Hardening, TrainConfigIntegersDoNotWrap) {
    const TrainConfig defaults = recipeDefaults("ce");
    EXPECT_NE(messageOf<UsageError>([&] { TrainConfig::fromJson(R"({"threads": 4294967297})", defaults); })
                  .find("(--threads) must be an integer in"),
              std::string::npos);
    EXPECT_NE(messageOf<UsageError>([&] { TrainConfig::fromJson(R"({"seed": -1})", defaults); }).find("--seed"),
              std::string::npos);
    EXPECT_EQ(TrainConfig::fromJson(R"({"seed": 18446744073709551615})", defaults).seed, 18446744073709551615ull);
    EXPECT_NE(messageOf<UsageError>([&] { TrainConfig::fromJson(R"({"epochs": "ten"})", defaults); })
                  .find("wrong type: expected an integer"),
              std::string::npos);
}
