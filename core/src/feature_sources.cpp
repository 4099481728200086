#include "ltlab/analysis.h"
#include "ltlab/error.h"

namespace ltlab {

RunFileSource::RunFileSource(std::shared_ptr<const RunFile> file, const SnapshotInfo& snapshot, const SplitInfo& split)
    : file_(std::move(file)), snapshot_(snapshot), split_(split), labels_(file_->labels(snapshot_, split_)),
      float32_(file_->featuresAreFloat32(snapshot_, split_)) {}

void RunFileSource::readFeatures(std::int64_t row0, RowBlock out) const {
    file_->readFeatureRows(snapshot_, split_, row0, out);
}

void RunFileSource::readLogits(std::int64_t row0, RowBlock out) const {
    file_->readLogitRows(snapshot_, split_, row0, out);
}

void RunFileSource::readFeatures(std::int64_t row0, RowBlockF out) const {
    file_->readFeatureRows(snapshot_, split_, row0, out);
}

void RunFileSource::fail(const std::string& what, const std::string& problem) const {
    file_->fail(splitDatasetPath(snapshot_, split_, what), problem);
}

MemorySource::MemorySource(RowMatrix features, std::vector<std::int32_t> labels, std::optional<RowMatrix> logits)
    : features_(std::move(features)), labels_(std::move(labels)), logits_(std::move(logits)) {
    if (static_cast<Eigen::Index>(labels_.size()) != features_.rows())
        throw UsageError("features and labels differ in length");
    if (logits_ && logits_->rows() != features_.rows()) throw UsageError("features and logits differ in length");
}

void MemorySource::readFeatures(std::int64_t row0, RowBlock out) const {
    out = features_.middleRows(row0, out.rows());
}

void MemorySource::readLogits(std::int64_t row0, RowBlock out) const {
    out = logits_->middleRows(row0, out.rows());
}

void MemorySource::readFeatures(std::int64_t row0, RowBlockF out) const {
    out = features_.middleRows(row0, out.rows()).cast<float>();
}

void MemorySource::fail(const std::string& what, const std::string& problem) const {
    throw InputError("<memory>", what, problem);
}

} // namespace ltlab
