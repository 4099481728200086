#pragma once
// Writing run files (format version 1). Used by `ltlab synth`, by training
// and by the tests; any framework can write the same layout with h5py.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ltlab/run_file.h"

namespace ltlab {

struct SplitData {
    std::string name;                   // train, val or test
    RowMatrix features;                 // N x D
    std::vector<std::int32_t> labels;   // N
    std::optional<RowMatrix> logits;    // N x C
};

struct SnapshotData {
    std::string name;
    std::optional<std::int64_t> epoch;
    std::optional<std::int64_t> stage;
    std::string label;
    Eigen::MatrixXd classifier_weight;          // C x D
    std::optional<Eigen::VectorXd> classifier_bias;
    std::vector<SplitData> splits;
    bool store_float32 = true;                  // features/weights as float32 (what networks produce)
};

class RunFileWriter {
public:
    // Creates (truncates) the file and writes the root attributes and /classes.
    RunFileWriter(const std::string& path, const ClassInfo& classes,
                  const std::optional<std::string>& config_json = std::nullopt);
    // Reopens an existing run file to append snapshots and history. Training
    // opens, appends and closes once per epoch, so that between epochs the
    // file is complete and any process can read it.
    explicit RunFileWriter(const std::string& path);
    ~RunFileWriter();
    RunFileWriter(const RunFileWriter&) = delete;
    RunFileWriter& operator=(const RunFileWriter&) = delete;

    void writeSnapshot(const SnapshotData& snapshot);
    // Appends one epoch to /history: the datasets are chunked and unlimited,
    // created on first use; a series missing from an epoch gets NaN.
    void appendHistory(const std::vector<std::pair<std::string, double>>& values);

private:
    struct Handles;
    std::string path_;
    std::unique_ptr<Handles> handles_;
    std::int64_t history_length_ = 0;
};

} // namespace ltlab
