#pragma once
// Reading run files: the HDF5 layout of shared/spec/run-format.md, version 1.
//
// RunFile::open validates everything that metadata can tell (attributes,
// object presence, ranks, shapes, dtypes) for the whole file at once. Values
// (labels in range, finite numbers) are checked when they are read, so that a
// 1 GB feature matrix is read once, in chunks, never to validate alone.
// All HDF5 calls in ltlab are serialised by one process-wide lock: Debian's
// serial HDF5 is not thread-safe, and the GUI reads on worker threads.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

namespace ltlab {

inline constexpr int kRunFormatVersion = 1;
inline constexpr const char* kRunFormatName = "ltlab-run";

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// A block of consecutive full rows of a RowMatrix (contiguous in memory).
using RowBlock = Eigen::Ref<RowMatrix>;
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowBlockF = Eigen::Ref<RowMatrixF>;

struct ClassInfo {
    std::vector<std::int64_t> train_counts; // n_c, length C
    std::vector<std::string> names;         // length C ("0".."C-1" when absent)
    std::optional<std::int64_t> many_threshold;
    std::optional<std::int64_t> few_threshold;

    std::int64_t numClasses() const { return static_cast<std::int64_t>(train_counts.size()); }
};

struct SplitInfo {
    std::string name; // "train", "val" or "test"
    std::int64_t num_samples = 0;
    bool has_logits = false;
};

struct SnapshotInfo {
    std::string name;
    std::optional<std::int64_t> epoch;
    std::optional<std::int64_t> stage;
    std::string label;
    std::optional<std::string> config; // the snapshot's `config` attribute (JSON), when present
    std::int64_t feature_dim = 0;
    bool has_bias = false;
    std::vector<SplitInfo> splits; // in the order train, val, test

    const SplitInfo* split(std::string_view split_name) const;
    // The split analysed when none is named: test if present, else val, else train.
    const SplitInfo& defaultSplit() const;
};

// Per-epoch series of /history, by dataset name; all of length numEpochs().
struct History {
    std::map<std::string, std::vector<double>> series;
    std::int64_t numEpochs() const;
};

class RunFile {
public:
    // Opens and validates the file's structure; throws InputError.
    static std::shared_ptr<const RunFile> open(const std::string& path);
    ~RunFile();
    RunFile(const RunFile&) = delete;
    RunFile& operator=(const RunFile&) = delete;

    const std::string& path() const { return path_; }
    const ClassInfo& classes() const { return classes_; }
    std::int64_t numClasses() const { return classes_.numClasses(); }
    const std::optional<std::string>& config() const { return config_; }

    // Ordered by epoch (snapshots without one first), then by name.
    const std::vector<SnapshotInfo>& snapshots() const { return snapshots_; }
    // Throws UsageError naming the snapshots that exist.
    const SnapshotInfo& snapshot(std::string_view name) const;
    // The last snapshot in order; throws InputError when the file has none.
    const SnapshotInfo& latestSnapshot() const;

    // Values are validated: finite, labels in [0, C).
    Eigen::MatrixXd classifierWeight(const SnapshotInfo& snapshot) const;   // C x D
    Eigen::VectorXd classifierBias(const SnapshotInfo& snapshot) const;     // C (zeros when absent)
    std::vector<std::int32_t> labels(const SnapshotInfo& snapshot, const SplitInfo& split) const;
    // Rows [row0, row0 + out.rows()) of <split>/features (out must be rows x D)
    // and of <split>/logits (rows x C), converted to float64. Non-finite
    // values are not checked here: the analysis counts them in its pass.
    void readFeatureRows(const SnapshotInfo& snapshot, const SplitInfo& split, std::int64_t row0,
                         RowBlock out) const;
    void readLogitRows(const SnapshotInfo& snapshot, const SplitInfo& split, std::int64_t row0, RowBlock out) const;
    // The same rows of <split>/features as float32 (float64 data is rounded).
    bool featuresAreFloat32(const SnapshotInfo& snapshot, const SplitInfo& split) const;
    void readFeatureRows(const SnapshotInfo& snapshot, const SplitInfo& split, std::int64_t row0,
                         RowBlockF out) const;

    std::optional<History> history() const;

    // "file: /object: problem" errors for callers that validate values they read.
    [[noreturn]] void fail(const std::string& object, const std::string& problem) const;

private:
    struct Handles;
    explicit RunFile(std::string path);
    void validate();
    void readRows(const std::string& object, std::int64_t row0, RowBlock out) const;
    void readRows(const std::string& object, std::int64_t row0, RowBlockF out) const;

    std::string path_;
    std::unique_ptr<Handles> handles_;
    ClassInfo classes_;
    std::optional<std::string> config_;
    std::vector<SnapshotInfo> snapshots_;
};

// "/snapshots/<name>" and "/snapshots/<name>/<split>/<dataset>".
std::string snapshotPath(const SnapshotInfo& snapshot);
std::string splitDatasetPath(const SnapshotInfo& snapshot, const SplitInfo& split, std::string_view dataset);

} // namespace ltlab
