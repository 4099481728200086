// Reading and validating run files (shared/spec/run-format.md, version 1).

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "hdf5_util.h"
#include "ltlab/error.h"
#include "ltlab/input_file.h"
#include "ltlab/run_file.h"

namespace ltlab {

namespace {

constexpr const char* kSplitNames[] = {"train", "val", "test"};

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
    return out;
}

std::string shapeText(const std::vector<hsize_t>& shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

} // namespace

struct RunFile::Handles {
    h5::Handle file;
};

const SplitInfo* SnapshotInfo::split(std::string_view split_name) const {
    for (const auto& s : splits)
        if (s.name == split_name) return &s;
    return nullptr;
}

const SplitInfo& SnapshotInfo::defaultSplit() const {
    for (const char* name : {"test", "val", "train"})
        if (const SplitInfo* s = split(name)) return *s;
    return splits.front(); // validation guarantees at least one split
}

std::int64_t History::numEpochs() const {
    return series.empty() ? 0 : static_cast<std::int64_t>(series.begin()->second.size());
}

std::string snapshotPath(const SnapshotInfo& snapshot) { return "/snapshots/" + snapshot.name; }

std::string splitDatasetPath(const SnapshotInfo& snapshot, const SplitInfo& split, std::string_view dataset) {
    return snapshotPath(snapshot) + "/" + split.name + "/" + std::string(dataset);
}

RunFile::RunFile(std::string path) : path_(std::move(path)), handles_(std::make_unique<Handles>()) {}

RunFile::~RunFile() {
    h5::Lock lock(h5::hdf5Mutex());
    handles_.reset();
}

void RunFile::fail(const std::string& object, const std::string& problem) const {
    throw InputError(path_, object, problem);
}

std::shared_ptr<const RunFile> RunFile::open(const std::string& path) {
    requireRegularFile(path, "run file"); // a FIFO would block HDF5's open, a device would be read

    h5::Lock lock(h5::hdf5Mutex());
    h5::silenceLibraryErrors();
    const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
    if (is_hdf5 <= 0) {
        const std::string why = h5::lastLibraryError();
        throw InputError(path, "", is_hdf5 == 0 ? "not an HDF5 file (no HDF5 signature)"
                                                : "cannot be read as HDF5" + (why.empty() ? "" : ": " + why));
    }
    // HDF5 1.10 reads a damaged global heap (variable-length strings) out of bounds.
    if (const std::string heap = h5::checkGlobalHeaps(path); !heap.empty()) throw InputError(path, "", heap);
    std::shared_ptr<RunFile> file(new RunFile(path));
    file->handles_->file = h5::Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, h5::unlockedFileAccess().get()));
    if (!file->handles_->file) {
        const std::string why = h5::lastLibraryError();
        throw InputError(path, "", "cannot open the HDF5 file (truncated or damaged?)" +
                                       (why.empty() ? std::string() : ": " + why));
    }
    file->validate();
    return file;
}

namespace {

// A tiny (chunked, unwritten) dataset may declare billions of rows: refuse
// to allocate more than the machine's memory for it instead of failing
// inside the allocator with a bare std::bad_alloc.
void requireMemory(const RunFile& file, const std::string& object, double count, double bytes_each, const char* what) {
    static const double physical = [] {
        const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
        return pages > 0 && page > 0 ? double(pages) * double(page) : 0.0;
    }();
    const double bytes = count * bytes_each;
    if (physical > 0 && bytes > physical) {
        char b[160];
        std::snprintf(b, sizeof b, "declares %.0f %s: reading them needs %.3g GB, more than this machine's %.3g GB of memory",
                      count, what, bytes / 1e9, physical / 1e9);
        file.fail(object, b);
    }
}


// Validation of one file's metadata; `fail` throws with the file's name.
class Validator {
public:
    Validator(const RunFile& file, hid_t root) : file_(file), root_(root) {}

    h5::Handle openDataset(const std::string& path) const {
        if (const std::string problem = h5::checkObjectTypes(root_, path); !problem.empty()) file_.fail(path, problem);
        h5::Handle ds(H5Dopen2(root_, path.c_str(), H5P_DEFAULT));
        if (!ds) file_.fail(path, "cannot open dataset: " + h5::lastLibraryError());
        return ds;
    }

    // Opens a required (or present optional) dataset and checks its kind and rank.
    h5::Handle dataset(const std::string& path, h5::ValueKind kind, std::size_t rank, std::vector<hsize_t>& shape,
                       bool float_32_or_64 = false) const {
        if (!h5::linkExists(root_, path)) file_.fail(path, "missing (required)");
        if (!h5::isDataset(root_, path)) file_.fail(path, "is not a dataset");
        h5::Handle ds = openDataset(path);
        h5::Handle type(H5Dget_type(ds.get()));
        const h5::ValueKind actual = h5::kindOf(type.get());
        const std::string type_name = h5::describeType(type.get());
        if (kind == h5::ValueKind::Float &&
            (actual != h5::ValueKind::Float || (float_32_or_64 && H5Tget_size(type.get()) != 4 &&
                                                H5Tget_size(type.get()) != 8)))
            file_.fail(path, "unsupported dtype " + type_name + " (expected float32 or float64)");
        if (kind == h5::ValueKind::Integer && actual != h5::ValueKind::Integer)
            file_.fail(path, "unsupported dtype " + type_name + " (expected an integer type)");
        if (kind == h5::ValueKind::String && actual != h5::ValueKind::String)
            file_.fail(path, "unsupported dtype " + type_name + " (expected strings)");
        shape = h5::shapeOf(ds.get());
        if (shape.size() != rank)
            file_.fail(path, "has rank " + std::to_string(shape.size()) + " (shape " + shapeText(shape) +
                                 "), expected rank " + std::to_string(rank));
        return ds;
    }

    std::optional<std::int64_t> intAttribute(hid_t object, const std::string& object_path,
                                             const std::string& name) const {
        auto value = h5::readAttribute(object, name);
        if (!value) return std::nullopt;
        if (value->kind != h5::ValueKind::Integer || !value->integer)
            file_.fail(object_path, "attribute '" + name + "' must be a scalar integer");
        return value->integer;
    }

    std::optional<std::string> stringAttribute(hid_t object, const std::string& object_path,
                                               const std::string& name) const {
        auto value = h5::readAttribute(object, name);
        if (!value) return std::nullopt;
        if (value->kind != h5::ValueKind::String || !value->text)
            file_.fail(object_path, "attribute '" + name + "' must be a scalar string");
        return value->text;
    }

    std::vector<std::string> readStrings(hid_t ds, const std::string& path, std::size_t count) const {
        h5::Handle type(H5Dget_type(ds));
        std::vector<std::string> out;
        out.reserve(count);
        if (H5Tis_variable_str(type.get()) > 0) {
            if (const std::string heap = h5::checkVlenReferences(ds, file_.path()); !heap.empty()) file_.fail(path, heap);
            std::vector<char*> ptrs(count, nullptr);
            h5::Handle mem(H5Tcopy(H5T_C_S1));
            H5Tset_size(mem.get(), H5T_VARIABLE);
            H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
            if (count && H5Dread(ds, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
                file_.fail(path, "cannot read strings: " + h5::lastLibraryError());
            for (char* p : ptrs) out.emplace_back(p ? p : "");
            h5::Handle space(H5Dget_space(ds));
            if (count) H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
        } else {
            const std::size_t size = H5Tget_size(type.get());
            std::vector<char> buffer(size * count + 1, '\0');
            h5::Handle mem(H5Tcopy(H5T_C_S1));
            H5Tset_size(mem.get(), size);
            H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
            H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
            if (count && H5Dread(ds, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0)
                file_.fail(path, "cannot read strings: " + h5::lastLibraryError());
            for (std::size_t i = 0; i < count; ++i) {
                std::string s(buffer.data() + i * size, size);
                out.push_back(s.substr(0, s.find('\0')));
            }
        }
        return out;
    }

    std::vector<std::int64_t> readIntegers(hid_t ds, const std::string& path, std::size_t count) const {
        requireMemory(file_, path, double(count), 2 * sizeof(std::int64_t), "values");
        std::vector<std::int64_t> values(count);
        static_assert(sizeof(long long) == sizeof(std::int64_t));
        if (count && H5Dread(ds, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0)
            file_.fail(path, "cannot read: " + h5::lastLibraryError());
        return values;
    }

private:
    const RunFile& file_;
    hid_t root_;
};

} // namespace

void RunFile::validate() {
    const hid_t root = handles_->file.get();
    Validator check(*this, root);

    // Root attributes.
    auto format = h5::readAttribute(root, "format");
    if (!format) fail("/", "missing attribute 'format' (expected \"ltlab-run\"): not an ltlab run file");
    if (format->kind != h5::ValueKind::String || format->text != kRunFormatName)
        fail("/", "attribute 'format' is " + (format->text ? "\"" + *format->text + "\"" : std::string("not a string")) +
                      ", expected \"ltlab-run\"");
    auto version = h5::readAttribute(root, "format_version");
    if (!version) fail("/", "missing attribute 'format_version'");
    if (version->kind != h5::ValueKind::Integer || !version->integer)
        fail("/", "attribute 'format_version' must be a scalar integer");
    if (*version->integer != kRunFormatVersion)
        fail("/", "unsupported format_version " + std::to_string(*version->integer) + " (this ltlab reads version " +
                      std::to_string(kRunFormatVersion) + ")");
    config_ = check.stringAttribute(root, "/", "config");

    // /classes
    if (!h5::isGroup(root, "/classes")) fail("/classes", h5::linkExists(root, "/classes") ? "is not a group" : "missing (required)");
    std::vector<hsize_t> shape;
    {
        const std::string path = "/classes/train_counts";
        h5::Handle ds = check.dataset(path, h5::ValueKind::Integer, 1, shape);
        if (shape[0] < 2) fail(path, "has " + std::to_string(shape[0]) + " classes; at least 2 are required");
        classes_.train_counts = check.readIntegers(ds.get(), path, shape[0]);
        const auto negative = std::count_if(classes_.train_counts.begin(), classes_.train_counts.end(),
                                            [](std::int64_t n) { return n < 0; });
        if (negative) {
            const auto first = std::find_if(classes_.train_counts.begin(), classes_.train_counts.end(),
                                            [](std::int64_t n) { return n < 0; });
            fail(path, std::to_string(negative) + " negative counts (first at class " +
                           std::to_string(first - classes_.train_counts.begin()) + ": " + std::to_string(*first) + ")");
        }
        std::int64_t total = 0;
        for (std::size_t c = 0; c < classes_.train_counts.size(); ++c)
            if (__builtin_add_overflow(total, classes_.train_counts[c], &total))
                fail(path, "the counts add up to more than 2^63 - 1 (overflow at class " + std::to_string(c) +
                               "): not the training counts of a real run");
        if (total <= 0) fail(path, "all counts are zero: the class prior is undefined");
    }
    const auto C = static_cast<hsize_t>(classes_.numClasses());
    if (h5::linkExists(root, "/classes/names")) {
        const std::string path = "/classes/names";
        h5::Handle ds = check.dataset(path, h5::ValueKind::String, 1, shape);
        if (shape[0] != C)
            fail(path, "has " + std::to_string(shape[0]) + " names but train_counts has " + std::to_string(C) + " classes");
        classes_.names = check.readStrings(ds.get(), path, C);
    } else {
        for (hsize_t c = 0; c < C; ++c) classes_.names.push_back(std::to_string(c));
    }
    {
        h5::Handle group(H5Gopen2(root, "/classes", H5P_DEFAULT));
        classes_.many_threshold = check.intAttribute(group.get(), "/classes", "many_threshold");
        classes_.few_threshold = check.intAttribute(group.get(), "/classes", "few_threshold");
        // many-shot is n > many, few-shot n < few: many < few would put classes in both groups.
        if (classes_.many_threshold && classes_.few_threshold && *classes_.many_threshold < *classes_.few_threshold)
            fail("/classes", "attribute many_threshold (" + std::to_string(*classes_.many_threshold) +
                                 ") is below few_threshold (" + std::to_string(*classes_.few_threshold) +
                                 "): shot groups need many_threshold >= few_threshold");
    }

    // /snapshots
    if (h5::linkExists(root, "/snapshots")) {
        if (!h5::isGroup(root, "/snapshots")) fail("/snapshots", "is not a group");
        h5::Handle group(H5Gopen2(root, "/snapshots", H5P_DEFAULT));
        for (const std::string& name : h5::memberNames(group.get())) {
            SnapshotInfo snap;
            snap.name = name;
            const std::string spath = snapshotPath(snap);
            if (!h5::isGroup(root, spath)) fail(spath, "is not a group (each snapshot is a group)");
            h5::Handle sgroup(H5Gopen2(root, spath.c_str(), H5P_DEFAULT));
            snap.epoch = check.intAttribute(sgroup.get(), spath, "epoch");
            snap.stage = check.intAttribute(sgroup.get(), spath, "stage");
            if (snap.stage && *snap.stage != 1 && *snap.stage != 2)
                fail(spath, "attribute 'stage' is " + std::to_string(*snap.stage) + " (expected 1 or 2)");
            snap.label = check.stringAttribute(sgroup.get(), spath, "label").value_or("");
            snap.config = check.stringAttribute(sgroup.get(), spath, "config");

            const std::string wpath = spath + "/classifier_weight";
            check.dataset(wpath, h5::ValueKind::Float, 2, shape, true);
            if (shape[0] != C)
                fail(wpath, "has " + std::to_string(shape[0]) + " rows but /classes/train_counts has " +
                                std::to_string(C) + " classes (shape " + shapeText(shape) + ")");
            if (shape[1] < 1) fail(wpath, "has feature dimension 0");
            snap.feature_dim = static_cast<std::int64_t>(shape[1]);
            const auto D = shape[1];
            const std::string bpath = spath + "/classifier_bias";
            snap.has_bias = h5::linkExists(root, bpath);
            if (snap.has_bias) {
                check.dataset(bpath, h5::ValueKind::Float, 1, shape, true);
                if (shape[0] != C)
                    fail(bpath, "has length " + std::to_string(shape[0]) + ", expected C = " + std::to_string(C));
            }
            for (const char* split_name : kSplitNames) {
                const std::string gpath = spath + "/" + split_name;
                if (!h5::linkExists(root, gpath)) continue;
                if (!h5::isGroup(root, gpath)) fail(gpath, "is not a group");
                SplitInfo split;
                split.name = split_name;
                const std::string fpath = gpath + "/features";
                check.dataset(fpath, h5::ValueKind::Float, 2, shape, true);
                if (shape[1] != D)
                    fail(fpath, "has feature dimension " + std::to_string(shape[1]) + " but classifier_weight has D = " +
                                    std::to_string(D) + " (shape " + shapeText(shape) + ")");
                const hsize_t N = shape[0];
                split.num_samples = static_cast<std::int64_t>(N);
                const std::string lpath = gpath + "/labels";
                check.dataset(lpath, h5::ValueKind::Integer, 1, shape);
                if (shape[0] != N)
                    fail(lpath, "has " + std::to_string(shape[0]) + " labels but features has N = " + std::to_string(N) +
                                    " rows");
                const std::string zpath = gpath + "/logits";
                split.has_logits = h5::linkExists(root, zpath);
                if (split.has_logits) {
                    check.dataset(zpath, h5::ValueKind::Float, 2, shape, true);
                    if (shape[0] != N || shape[1] != C)
                        fail(zpath, "has shape " + shapeText(shape) + ", expected [N, C] = [" + std::to_string(N) +
                                        ", " + std::to_string(C) + "]");
                }
                snap.splits.push_back(split);
            }
            if (snap.splits.empty()) fail(spath, "has no split (train, val or test)");
            snapshots_.push_back(std::move(snap));
        }
        std::stable_sort(snapshots_.begin(), snapshots_.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
            // Snapshots without an epoch come first; then by epoch, then by name.
            const std::int64_t ea = a.epoch.value_or(INT64_MIN), eb = b.epoch.value_or(INT64_MIN);
            if (a.epoch.has_value() != b.epoch.has_value()) return !a.epoch.has_value();
            return ea != eb ? ea < eb : a.name < b.name;
        });
    }

    // /history: equal-length 1-D numeric datasets.
    if (h5::linkExists(root, "/history")) {
        if (!h5::isGroup(root, "/history")) fail("/history", "is not a group");
        h5::Handle group(H5Gopen2(root, "/history", H5P_DEFAULT));
        std::optional<hsize_t> length;
        std::string first;
        for (const std::string& name : h5::memberNames(group.get())) {
            const std::string hpath = "/history/" + name;
            if (!h5::isDataset(root, hpath)) fail(hpath, "is not a dataset");
            h5::Handle ds = check.openDataset(hpath);
            h5::Handle type(H5Dget_type(ds.get()));
            const auto kind = h5::kindOf(type.get());
            if (kind != h5::ValueKind::Float && kind != h5::ValueKind::Integer)
                fail(hpath, "unsupported dtype " + h5::describeType(type.get()) + " (expected numbers)");
            shape = h5::shapeOf(ds.get());
            if (shape.size() != 1) fail(hpath, "has rank " + std::to_string(shape.size()) + ", expected 1");
            if (length && *length != shape[0])
                fail(hpath, "has " + std::to_string(shape[0]) + " entries but /history/" + first + " has " +
                                std::to_string(*length));
            if (!length) {
                length = shape[0];
                first = name;
            }
        }
    }
}

const SnapshotInfo& RunFile::snapshot(std::string_view name) const {
    for (const auto& s : snapshots_)
        if (s.name == name) return s;
    std::vector<std::string> names;
    for (const auto& s : snapshots_) names.push_back(s.name);
    throw InputError(path_, "/snapshots",
                     "no snapshot named '" + std::string(name) + "'" +
                         (names.empty() ? " (the file has no snapshots)" : " (available: " + join(names) + ")"));
}

const SnapshotInfo& RunFile::latestSnapshot() const {
    if (snapshots_.empty()) fail("/snapshots", "the file has no snapshots to analyse");
    return snapshots_.back();
}

namespace {

template <typename Derived>
void checkFinite(const RunFile& file, const std::string& object, const Eigen::DenseBase<Derived>& values) {
    std::int64_t bad = 0, first_row = -1, first_col = -1;
    for (Eigen::Index r = 0; r < values.rows(); ++r)
        for (Eigen::Index c = 0; c < values.cols(); ++c)
            if (!std::isfinite(values(r, c))) {
                if (bad++ == 0) {
                    first_row = r;
                    first_col = c;
                }
            }
    if (bad) {
        std::string where = values.cols() == 1 ? "index " + std::to_string(first_row)
                                               : "row " + std::to_string(first_row) + ", column " + std::to_string(first_col);
        file.fail(object, std::to_string(bad) + " non-finite values (NaN or Inf; first at " + where + ")");
    }
}

} // namespace

Eigen::MatrixXd RunFile::classifierWeight(const SnapshotInfo& snapshot) const {
    requireMemory(*this, snapshotPath(snapshot) + "/classifier_weight", double(numClasses()) * double(snapshot.feature_dim),
                  2 * sizeof(double), "values");
    RowMatrix weight(numClasses(), snapshot.feature_dim);
    const std::string path = snapshotPath(snapshot) + "/classifier_weight";
    readRows(path, 0, weight);
    checkFinite(*this, path, weight);
    return weight;
}

Eigen::VectorXd RunFile::classifierBias(const SnapshotInfo& snapshot) const {
    Eigen::VectorXd bias = Eigen::VectorXd::Zero(numClasses());
    if (!snapshot.has_bias) return bias;
    const std::string path = snapshotPath(snapshot) + "/classifier_bias";
    h5::Lock lock(h5::hdf5Mutex());
    h5::Handle ds(H5Dopen2(handles_->file.get(), path.c_str(), H5P_DEFAULT));
    if (!ds || H5Dread(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, bias.data()) < 0)
        fail(path, "cannot read: " + h5::lastLibraryError());
    checkFinite(*this, path, bias);
    return bias;
}

std::vector<std::int32_t> RunFile::labels(const SnapshotInfo& snapshot, const SplitInfo& split) const {
    const std::string path = splitDatasetPath(snapshot, split, "labels");
    requireMemory(*this, path, double(split.num_samples), sizeof(long long) + sizeof(std::int32_t), "labels");
    std::vector<long long> raw(static_cast<std::size_t>(split.num_samples));
    {
        h5::Lock lock(h5::hdf5Mutex());
        h5::Handle ds(H5Dopen2(handles_->file.get(), path.c_str(), H5P_DEFAULT));
        if (!ds || (!raw.empty() && H5Dread(ds.get(), H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0))
            fail(path, "cannot read: " + h5::lastLibraryError());
    }
    const long long C = numClasses();
    std::int64_t bad = 0, first = -1;
    std::vector<std::int32_t> labels(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] < 0 || raw[i] >= C) {
            if (bad++ == 0) first = static_cast<std::int64_t>(i);
        }
        labels[i] = static_cast<std::int32_t>(raw[i]);
    }
    if (bad)
        fail(path, std::to_string(bad) + " labels outside [0, " + std::to_string(C) + ") (first at index " +
                       std::to_string(first) + ": " + std::to_string(raw[static_cast<std::size_t>(first)]) + ")");
    return labels;
}

namespace {

// Rows [row0, row0 + rows) of a 2-d dataset, read as `mem_type` into `dest`.
// No chunk cache: each block of rows is read once, in order, so caching the
// chunks would only copy them twice. `stored_float32` says how it is stored.
template <typename Fail>
void readHyperslab(hid_t file, const std::string& path, std::int64_t row0, hsize_t rows, hsize_t cols,
                   bool* stored_float32, hid_t mem_type, void* dest, const Fail& fail) {
    h5::Handle dapl(H5Pcreate(H5P_DATASET_ACCESS));
    H5Pset_chunk_cache(dapl.get(), 0, 0, 1.0);
    h5::Handle ds(H5Dopen2(file, path.c_str(), dapl.get()));
    if (!ds) fail(path, "cannot open: " + h5::lastLibraryError());
    if (stored_float32) {
        h5::Handle type(H5Dget_type(ds.get()));
        *stored_float32 = H5Tget_class(type.get()) == H5T_FLOAT && H5Tget_size(type.get()) == 4;
        if (*stored_float32) return; // the caller reads it as float32
    }
    if (rows * cols == 0) return;
    h5::Handle file_space(H5Dget_space(ds.get()));
    const hsize_t start[2] = {static_cast<hsize_t>(row0), 0};
    const hsize_t count[2] = {rows, cols};
    h5::Handle mem_space(H5Screate_simple(2, count, nullptr));
    if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
        H5Dread(ds.get(), mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, dest) < 0)
        fail(path, "cannot read rows " + std::to_string(row0) + ".." + std::to_string(row0 + std::int64_t(rows) - 1) +
                       " (truncated or damaged file?): " + h5::lastLibraryError());
}

} // namespace

void RunFile::readRows(const std::string& path, std::int64_t row0, RowBlock out) const {
    if (out.size() && out.outerStride() != out.cols()) throw std::logic_error("readRows needs contiguous rows");
    h5::Lock lock(h5::hdf5Mutex());
    auto failure = [this](const std::string& object, const std::string& problem) { fail(object, problem); };
    const auto rows = static_cast<hsize_t>(out.rows()), cols = static_cast<hsize_t>(out.cols());
    // float32 is read as stored and widened by Eigen (vectorised); HDF5's own
    // float -> double conversion runs at a fraction of memory speed.
    bool single = false;
    readHyperslab(handles_->file.get(), path, row0, rows, cols, &single, H5T_NATIVE_DOUBLE, out.data(), failure);
    if (!single || out.size() == 0) return;
    thread_local std::vector<float> buffer;
    buffer.resize(static_cast<std::size_t>(out.size()));
    readHyperslab(handles_->file.get(), path, row0, rows, cols, nullptr, H5T_NATIVE_FLOAT, buffer.data(), failure);
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> stored(
        buffer.data(), out.rows(), out.cols());
#pragma omp parallel for schedule(static)
    for (Eigen::Index r = 0; r < out.rows(); ++r) out.row(r) = stored.row(r).cast<double>();
}

void RunFile::readRows(const std::string& path, std::int64_t row0, RowBlockF out) const {
    if (out.size() && out.outerStride() != out.cols()) throw std::logic_error("readRows needs contiguous rows");
    h5::Lock lock(h5::hdf5Mutex());
    readHyperslab(handles_->file.get(), path, row0, static_cast<hsize_t>(out.rows()), static_cast<hsize_t>(out.cols()),
                  nullptr, H5T_NATIVE_FLOAT, out.data(),
                  [this](const std::string& object, const std::string& problem) { fail(object, problem); });
}

bool RunFile::featuresAreFloat32(const SnapshotInfo& snapshot, const SplitInfo& split) const {
    const std::string path = splitDatasetPath(snapshot, split, "features");
    h5::Lock lock(h5::hdf5Mutex());
    h5::Handle ds(H5Dopen2(handles_->file.get(), path.c_str(), H5P_DEFAULT));
    if (!ds) fail(path, "cannot open: " + h5::lastLibraryError());
    h5::Handle type(H5Dget_type(ds.get()));
    return H5Tget_class(type.get()) == H5T_FLOAT && H5Tget_size(type.get()) == 4;
}

void RunFile::readFeatureRows(const SnapshotInfo& snapshot, const SplitInfo& split, std::int64_t row0,
                              RowBlockF out) const {
    readRows(splitDatasetPath(snapshot, split, "features"), row0, out);
}

void RunFile::readFeatureRows(const SnapshotInfo& snapshot, const SplitInfo& split, std::int64_t row0,
                              RowBlock out) const {
    readRows(splitDatasetPath(snapshot, split, "features"), row0, out);
}

void RunFile::readLogitRows(const SnapshotInfo& snapshot, const SplitInfo& split, std::int64_t row0,
                            RowBlock out) const {
    readRows(splitDatasetPath(snapshot, split, "logits"), row0, out);
}

std::optional<History> RunFile::history() const {
    h5::Lock lock(h5::hdf5Mutex());
    const hid_t root = handles_->file.get();
    if (!h5::linkExists(root, "/history")) return std::nullopt;
    History history;
    h5::Handle group(H5Gopen2(root, "/history", H5P_DEFAULT));
    for (const std::string& name : h5::memberNames(group.get())) {
        const std::string path = "/history/" + name;
        h5::Handle ds(H5Dopen2(root, path.c_str(), H5P_DEFAULT));
        const auto shape = h5::shapeOf(ds.get());
        std::vector<double> values(shape.empty() ? 0 : shape[0]);
        if (!values.empty() && H5Dread(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0)
            fail(path, "cannot read: " + h5::lastLibraryError());
        history.series.emplace(name, std::move(values));
    }
    return history;
}

} // namespace ltlab
