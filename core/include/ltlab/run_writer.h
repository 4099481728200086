#pragma once
// Writing run files (format version 1). Used by `ltlab synth`, by training
// and by the tests; any framework can write the same layout with h5py.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ltlab/run_file.h"

namespace ltlab {

struct LayerRun; // ltlab/layer_stats.h

struct SplitData {
    std::string name;                   // train, val or test
    RowMatrix features;                 // N x D
    std::vector<std::int32_t> labels;   // N
    std::optional<RowMatrix> logits;    // N x C
};

// One split of a snapshot read whole into memory (features as float64, labels;
// stored logits are left out: they belong to the snapshot's classifier).
SplitData readSplitData(const RunFile& file, const SnapshotInfo& snapshot, const SplitInfo& split);

struct SnapshotData {
    std::string name;
    std::optional<std::int64_t> epoch;
    std::optional<std::int64_t> stage;
    std::string label;
    Eigen::MatrixXd classifier_weight;          // C x D
    std::optional<Eigen::VectorXd> classifier_bias;
    std::vector<SplitData> splits;
    bool store_float32 = true;                  // features/weights as float32 (what networks produce)
    std::optional<bool> classifier_float32;     // the classifier's storage when it differs (default: store_float32)
    std::optional<std::string> config_json;     // attribute `config`: how this snapshot was made (JSON; ltlab stage2)
};

class RunFileWriter {
public:
    // Creates (truncates) the file and writes the root attributes and /classes.
    RunFileWriter(const std::string& path, const ClassInfo& classes,
                  const std::optional<std::string>& config_json = std::nullopt);
    // Reopens an existing run file to append snapshots and history (training
    // does so on a copy, through updateRunFile below).
    explicit RunFileWriter(const std::string& path);
    ~RunFileWriter();
    RunFileWriter(const RunFileWriter&) = delete;
    RunFileWriter& operator=(const RunFileWriter&) = delete;

    void writeSnapshot(const SnapshotData& snapshot);
    // Replaces the root attribute `config` (import extends its list of sources).
    void setConfig(const std::string& config_json);
    // Sets (replaces) a root attribute: a string, or an int64 (the run id and
    // the checkpoint record of ltlab/run_checkpoint.h).
    void setRootAttribute(const std::string& name, const std::string& value);
    void setRootAttribute(const std::string& name, std::int64_t value);
    // Appends one epoch to /history: the datasets are chunked and unlimited,
    // created on first use; a series missing from an epoch gets NaN.
    void appendHistory(const std::vector<std::pair<std::string, double>>& values);
    // Undoing epochs (resuming from a checkpoint older than the file): keeps
    // the first `epochs` entries of every /history series, removes a snapshot.
    void truncateHistory(std::int64_t epochs);
    void removeSnapshot(const std::string& name);
    // Renames /snapshots/<from> to /snapshots/<to> (UsageError when from is
    // absent or to exists); its data and attributes are unchanged.
    void renameSnapshot(const std::string& from, const std::string& to);
    // Writes /layers/<run.name> (replacing a group of that name): the layer-wise
    // statistics of `ltlab layers` (docs/run-format.md).
    void writeLayerRun(const LayerRun& run);
    // Flushes and closes the file, throwing when HDF5 could not (a full disk):
    // the destructor closes too, but cannot report it.
    void close();

private:
    struct Handles;
    std::string path_;
    std::unique_ptr<Handles> handles_;
    std::int64_t history_length_ = 0;
};

// Writing run files as transactions. The changes go to a copy beside the file
// (partialPathFor(path)); the copy is flushed to disk and renamed over the
// file. A kill or a power cut at any moment therefore leaves either the
// previous complete file or the new one, never a damaged one (HDF5 1.10 updates
// its metadata in place, and SWMR cannot create groups); a process that has
// the file open keeps its consistent view until it reopens. The copy is a
// reflink where the file system has them and an in-kernel copy otherwise.
// If `fill` or `change` throws, the file is left as it was.
void createRunFile(const std::string& path, const ClassInfo& classes, const std::optional<std::string>& config_json,
                   const std::function<void(RunFileWriter&)>& fill);
void updateRunFile(const std::string& path, const std::function<void(RunFileWriter&)>& change);
// The same transaction into another file: `from` is copied to `to`'s partial
// path, changed there and renamed over `to` (created or replaced); `from` is
// left as it was.
void updateRunFileCopy(const std::string& from, const std::string& to,
                       const std::function<void(RunFileWriter&)>& change);
// Where an unfinished transaction on `path` writes (left behind only by a kill;
// the next transaction replaces it).
std::string partialPathFor(const std::string& path);
// Flushes `written` to disk and renames it over `path`, then flushes the
// folder: after a crash or power cut, `path` is the old or the new file.
void replaceFileDurably(const std::string& written, const std::string& path);

} // namespace ltlab
