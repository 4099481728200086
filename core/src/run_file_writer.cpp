// Writing run files (shared/spec/run-format.md, version 1).

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "hdf5_util.h"
#include "ltlab/input_file.h"
#include "ltlab/layer_stats.h"
#include "ltlab/error.h"
#include "ltlab/run_writer.h"

namespace ltlab {

struct RunFileWriter::Handles {
    h5::Handle file;
    std::vector<std::string> history_names; // datasets in /history, all of the same length
};

namespace {

class DatasetWriter {
public:
    DatasetWriter(const std::string& path, hid_t file) : path_(path), file_(file) {}

    void check(herr_t status, const std::string& object) const {
        if (status < 0) throw InputError(path_, object, "cannot write: " + h5::lastLibraryError());
    }

    h5::Handle group(const std::string& object) const {
        h5::Handle g(H5Gcreate2(file_, object.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        if (!g) throw InputError(path_, object, "cannot create group: " + h5::lastLibraryError());
        return g;
    }

    // Writes a rank-1 or rank-2 dataset from memory of type mem_type. Large
    // datasets are chunked by rows so that readers can stream them.
    void write(const std::string& object, hid_t file_type, hid_t mem_type, std::vector<hsize_t> dims,
               const void* data) const {
        h5::Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
        h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
        hsize_t elements = 1;
        for (hsize_t d : dims) elements *= d;
        if (elements * H5Tget_size(file_type) > (1u << 20) && dims[0] > 0) {
            std::vector<hsize_t> chunk = dims;
            const hsize_t row_bytes = H5Tget_size(file_type) * (dims.size() > 1 ? dims[1] : 1);
            chunk[0] = std::clamp<hsize_t>((1u << 20) / std::max<hsize_t>(row_bytes, 1), 1, dims[0]);
            H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
        }
        h5::Handle ds(H5Dcreate2(file_, object.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
        if (!ds) throw InputError(path_, object, "cannot create dataset: " + h5::lastLibraryError());
        if (elements) check(H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), object);
    }

    void writeMatrix(const std::string& object, const RowMatrix& m, bool float32) const {
        write(object, float32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
              {static_cast<hsize_t>(m.rows()), static_cast<hsize_t>(m.cols())}, m.data());
    }

    void writeVector(const std::string& object, const Eigen::VectorXd& v, bool float32) const {
        write(object, float32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {static_cast<hsize_t>(v.size())},
              v.data());
    }

private:
    const std::string& path_;
    hid_t file_;
};

} // namespace

RunFileWriter::RunFileWriter(const std::string& path, const ClassInfo& classes,
                             const std::optional<std::string>& config_json)
    : path_(path), handles_(std::make_unique<Handles>()) {
    if (classes.numClasses() < 2) throw UsageError("a run needs at least 2 classes");
    h5::Lock lock(h5::hdf5Mutex());
    h5::silenceLibraryErrors();
    handles_->file = h5::Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, h5::unlockedFileAccess().get()));
    if (!handles_->file) {
        const std::string why = h5::lastLibraryError();
        requireOutputFolder(path); // names a missing folder
        throw InputError(path, "", "cannot create file" + (why.empty() ? std::string(" (no permission to write there?)")
                                                                          : ": " + why));
    }
    const hid_t root = handles_->file.get();
    h5::writeStringAttribute(root, "format", kRunFormatName);
    h5::writeIntAttribute(root, "format_version", kRunFormatVersion);
    if (config_json) h5::writeStringAttribute(root, "config", *config_json);

    DatasetWriter out(path_, root);
    h5::Handle group = out.group("/classes");
    out.write("/classes/train_counts", H5T_STD_I64LE, H5T_NATIVE_INT64, {classes.train_counts.size()},
              classes.train_counts.data());
    if (!classes.names.empty()) {
        if (classes.names.size() != classes.train_counts.size())
            throw UsageError("class names and train counts differ in length");
        std::vector<const char*> names;
        for (const auto& n : classes.names) names.push_back(n.c_str());
        h5::Handle type(H5Tcopy(H5T_C_S1));
        H5Tset_size(type.get(), H5T_VARIABLE);
        H5Tset_cset(type.get(), H5T_CSET_UTF8);
        out.write("/classes/names", type.get(), type.get(), {names.size()}, names.data());
    }
    if (classes.many_threshold) h5::writeIntAttribute(group.get(), "many_threshold", *classes.many_threshold);
    if (classes.few_threshold) h5::writeIntAttribute(group.get(), "few_threshold", *classes.few_threshold);
    out.group("/snapshots");
}

RunFileWriter::RunFileWriter(const std::string& path) : path_(path), handles_(std::make_unique<Handles>()) {
    h5::Lock lock(h5::hdf5Mutex());
    h5::silenceLibraryErrors();
    handles_->file = h5::Handle(H5Fopen(path.c_str(), H5F_ACC_RDWR, h5::unlockedFileAccess().get()));
    if (!handles_->file) throw InputError(path, "", "cannot open for appending: " + h5::lastLibraryError());
    const hid_t root = handles_->file.get();
    if (h5::isGroup(root, "/history")) {
        h5::Handle group(H5Gopen2(root, "/history", H5P_DEFAULT));
        handles_->history_names = h5::memberNames(group.get());
        for (const auto& name : handles_->history_names) {
            h5::Handle ds(H5Dopen2(root, ("/history/" + name).c_str(), H5P_DEFAULT));
            const auto shape = h5::shapeOf(ds.get());
            history_length_ = shape.empty() ? 0 : static_cast<std::int64_t>(shape[0]);
        }
    }
}

RunFileWriter::~RunFileWriter() {
    h5::Lock lock(h5::hdf5Mutex());
    handles_.reset();
}

void RunFileWriter::writeSnapshot(const SnapshotData& snapshot) {
    h5::Lock lock(h5::hdf5Mutex());
    const hid_t root = handles_->file.get();
    DatasetWriter out(path_, root);
    const std::string spath = "/snapshots/" + snapshot.name;
    if (snapshot.name.empty() || snapshot.name.find('/') != std::string::npos || h5::linkExists(root, spath))
        throw UsageError("invalid or duplicate snapshot name '" + snapshot.name + "'");
    h5::Handle group = out.group(spath);
    if (snapshot.epoch) h5::writeIntAttribute(group.get(), "epoch", *snapshot.epoch);
    if (snapshot.stage) h5::writeIntAttribute(group.get(), "stage", *snapshot.stage);
    if (!snapshot.label.empty()) h5::writeStringAttribute(group.get(), "label", snapshot.label);
    if (snapshot.config_json) h5::writeStringAttribute(group.get(), "config", *snapshot.config_json);
    const bool f32 = snapshot.store_float32, classifier_f32 = snapshot.classifier_float32.value_or(f32);
    out.writeMatrix(spath + "/classifier_weight", snapshot.classifier_weight, classifier_f32);
    if (snapshot.classifier_bias) out.writeVector(spath + "/classifier_bias", *snapshot.classifier_bias, classifier_f32);
    for (const SplitData& split : snapshot.splits) {
        const std::string gpath = spath + "/" + split.name;
        out.group(gpath);
        out.writeMatrix(gpath + "/features", split.features, f32);
        out.write(gpath + "/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {split.labels.size()}, split.labels.data());
        if (split.logits) out.writeMatrix(gpath + "/logits", *split.logits, f32);
    }
}

void RunFileWriter::writeLayerRun(const LayerRun& run) {
    h5::Lock lock(h5::hdf5Mutex());
    const hid_t root = handles_->file.get();
    DatasetWriter out(path_, root);
    if (run.name.empty() || run.name.find('/') != std::string::npos || run.name == "." || run.name == "..")
        throw UsageError("invalid layer-results name '" + run.name + "'");
    if (!h5::linkExists(root, "/layers")) out.group("/layers");
    const std::string gpath = "/layers/" + run.name;
    if (h5::linkExists(root, gpath) && H5Ldelete(root, gpath.c_str(), H5P_DEFAULT) < 0)
        throw InputError(path_, gpath, "cannot replace: " + h5::lastLibraryError());
    h5::Handle group = out.group(gpath);
    for (const auto& [key, value] : {std::pair<const char*, const std::string&>{"inputs", run.inputs}, {"weights", run.weights},
                                     {"source", run.source}, {"architecture", run.architecture}})
        h5::writeStringAttribute(group.get(), key, value);
    h5::writeIntAttribute(group.get(), "seed", static_cast<std::int64_t>(run.seed));
    h5::writeIntAttribute(group.get(), "samples", run.samples);
    h5::writeIntAttribute(group.get(), "blocks", run.blocks);
    h5::writeIntAttribute(group.get(), "standardize", run.standardize);
    h5::writeIntAttribute(group.get(), "flat_fdr", run.flat_fdr);
    const hsize_t L = run.layers.size();
    std::vector<const char*> names;
    std::vector<std::int64_t> dimension, channels, samples, bn_layers;
    for (const LayerStats& s : run.layers) {
        names.push_back(s.name.c_str());
        dimension.push_back(s.dimension);
        channels.push_back(s.channels);
        samples.push_back(s.samples);
        bn_layers.push_back(s.bn_layers);
    }
    h5::Handle text(H5Tcopy(H5T_C_S1));
    H5Tset_size(text.get(), H5T_VARIABLE);
    H5Tset_cset(text.get(), H5T_CSET_UTF8);
    out.write(gpath + "/name", text.get(), text.get(), {L}, names.data());
    for (const auto& [key, values] : {std::pair<const char*, const std::vector<std::int64_t>&>{"dimension", dimension},
                                      {"channels", channels}, {"samples", samples}, {"bn_layers", bn_layers}})
        out.write(gpath + "/" + key, H5T_STD_I64LE, H5T_NATIVE_INT64, {L}, values.data());
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (const auto& [key, member] : layerStatisticFields()) {
        std::vector<double> values;
        for (const LayerStats& s : run.layers) values.push_back((s.*member).value_or(nan));
        out.write(gpath + "/" + key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {L}, values.data());
    }
}

void RunFileWriter::setConfig(const std::string& config_json) {
    h5::Lock lock(h5::hdf5Mutex());
    const hid_t root = handles_->file.get();
    if (H5Aexists(root, "config") > 0 && H5Adelete(root, "config") < 0)
        throw InputError(path_, "/", "cannot replace the attribute 'config': " + h5::lastLibraryError());
    h5::writeStringAttribute(root, "config", config_json);
}

void RunFileWriter::setRootAttribute(const std::string& name, const std::string& value) {
    h5::Lock lock(h5::hdf5Mutex());
    const hid_t root = handles_->file.get();
    if (H5Aexists(root, name.c_str()) > 0 && H5Adelete(root, name.c_str()) < 0)
        throw InputError(path_, "/", "cannot replace the attribute '" + name + "': " + h5::lastLibraryError());
    h5::writeStringAttribute(root, name, value);
}

void RunFileWriter::setRootAttribute(const std::string& name, std::int64_t value) {
    h5::Lock lock(h5::hdf5Mutex());
    const hid_t root = handles_->file.get();
    if (H5Aexists(root, name.c_str()) > 0 && H5Adelete(root, name.c_str()) < 0)
        throw InputError(path_, "/", "cannot replace the attribute '" + name + "': " + h5::lastLibraryError());
    h5::writeIntAttribute(root, name, value);
}

void RunFileWriter::appendHistory(const std::vector<std::pair<std::string, double>>& values) {
    h5::Lock lock(h5::hdf5Mutex());
    const hid_t root = handles_->file.get();
    DatasetWriter out(path_, root);
    if (!h5::linkExists(root, "/history")) out.group("/history");
    auto& names = handles_->history_names;
    const hsize_t old_length = static_cast<hsize_t>(history_length_);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (const auto& [name, value] : values) {
        if (std::find(names.begin(), names.end(), name) != names.end()) continue;
        // A series that starts late is padded with NaN for the epochs before it.
        const std::string path = "/history/" + name;
        const hsize_t dims[1] = {old_length}, max_dims[1] = {H5S_UNLIMITED}, chunk[1] = {256};
        h5::Handle space(H5Screate_simple(1, dims, max_dims));
        h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
        H5Pset_chunk(dcpl.get(), 1, chunk);
        const bool integer = name == "epoch";
        h5::Handle ds(H5Dcreate2(root, path.c_str(), integer ? H5T_STD_I64LE : H5T_IEEE_F64LE, space.get(), H5P_DEFAULT,
                                 dcpl.get(), H5P_DEFAULT));
        if (!ds) throw InputError(path_, path, "cannot create dataset: " + h5::lastLibraryError());
        if (old_length) {
            std::vector<double> fill(old_length, integer ? -1.0 : nan);
            out.check(H5Dwrite(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, fill.data()), path);
        }
        names.push_back(name);
    }
    for (const std::string& name : names) {
        const std::string path = "/history/" + name;
        double value = name == "epoch" ? static_cast<double>(old_length) : nan;
        for (const auto& [n, v] : values)
            if (n == name) value = v;
        h5::Handle ds(H5Dopen2(root, path.c_str(), H5P_DEFAULT));
        const hsize_t new_dims[1] = {old_length + 1};
        out.check(H5Dset_extent(ds.get(), new_dims), path);
        h5::Handle file_space(H5Dget_space(ds.get()));
        const hsize_t start[1] = {old_length}, count[1] = {1};
        H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
        h5::Handle mem_space(H5Screate_simple(1, count, nullptr));
        out.check(H5Dwrite(ds.get(), H5T_NATIVE_DOUBLE, mem_space.get(), file_space.get(), H5P_DEFAULT, &value), path);
    }
    ++history_length_;
}

void RunFileWriter::truncateHistory(std::int64_t epochs) {
    h5::Lock lock(h5::hdf5Mutex());
    if (epochs < 0 || epochs > history_length_)
        throw UsageError("cannot keep " + std::to_string(epochs) + " of " + std::to_string(history_length_) + " epochs");
    const hid_t root = handles_->file.get();
    DatasetWriter out(path_, root);
    for (const std::string& name : handles_->history_names) {
        const std::string path = "/history/" + name;
        h5::Handle ds(H5Dopen2(root, path.c_str(), H5P_DEFAULT));
        const hsize_t dims[1] = {static_cast<hsize_t>(epochs)};
        out.check(H5Dset_extent(ds.get(), dims), path);
    }
    history_length_ = epochs;
}

void RunFileWriter::removeSnapshot(const std::string& name) {
    h5::Lock lock(h5::hdf5Mutex());
    const hid_t root = handles_->file.get();
    const std::string path = "/snapshots/" + name;
    if (name.empty() || name.find('/') != std::string::npos || !h5::linkExists(root, path))
        throw UsageError("no snapshot '" + name + "' to remove");
    if (H5Ldelete(root, path.c_str(), H5P_DEFAULT) < 0)
        throw InputError(path_, path, "cannot remove: " + h5::lastLibraryError());
}

void RunFileWriter::renameSnapshot(const std::string& from, const std::string& to) {
    h5::Lock lock(h5::hdf5Mutex());
    const hid_t root = handles_->file.get();
    const std::string a = "/snapshots/" + from, b = "/snapshots/" + to;
    if (from.empty() || from.find('/') != std::string::npos || !h5::linkExists(root, a))
        throw UsageError("no snapshot '" + from + "' to rename");
    if (to.empty() || to.find('/') != std::string::npos || h5::linkExists(root, b))
        throw UsageError("cannot rename snapshot '" + from + "' to '" + to + "': that name is taken or invalid");
    if (H5Lmove(root, a.c_str(), root, b.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
        throw InputError(path_, a, "cannot rename: " + h5::lastLibraryError());
}

void RunFileWriter::close() {
    h5::Lock lock(h5::hdf5Mutex());
    if (!handles_ || !handles_->file) return;
    const hid_t file = handles_->file.release();
    const herr_t flushed = H5Fflush(file, H5F_SCOPE_GLOBAL);
    const herr_t closed = H5Fclose(file);
    if (flushed < 0 || closed < 0) throw InputError(path_, "", "cannot finish writing: " + h5::lastLibraryError());
}

SplitData readSplitData(const RunFile& file, const SnapshotInfo& snapshot, const SplitInfo& split) {
    SplitData data;
    data.name = split.name;
    data.labels = file.labels(snapshot, split);
    data.features.resize(split.num_samples, snapshot.feature_dim);
    file.readFeatureRows(snapshot, split, 0, data.features);
    return data;
}

} // namespace ltlab
