// /layers/<name> of a run file: reading what `ltlab layers --out` stored
// (writing is RunFileWriter::writeLayerRun, in a transaction). Layout in
// docs/run-format.md.

#include <dlfcn.h>

#include <cmath>

#include "hdf5_util.h"
#include "ltlab/error.h"
#include "ltlab/input_file.h"
#include "ltlab/layer_stats.h"
#include "ltlab/layers.h"
#include "ltlab/modules.h"
#include "ltlab/run_writer.h"

namespace ltlab {

namespace {

class LayerGroupReader {
public:
    LayerGroupReader(const std::string& path, hid_t file, std::string group) : path_(path), file_(file), group_(std::move(group)) {}

    [[noreturn]] void fail(const std::string& object, const std::string& problem) const { throw InputError(path_, object, problem); }

    h5::Handle dataset(const std::string& key, hsize_t& length) const {
        const std::string object = group_ + "/" + key;
        if (!h5::isDataset(file_, object)) fail(object, "missing (every layer-results group has it)");
        if (const std::string problem = h5::checkObjectTypes(file_, object); !problem.empty()) fail(object, problem);
        h5::Handle ds(H5Dopen2(file_, object.c_str(), H5P_DEFAULT));
        const auto shape = h5::shapeOf(ds.get());
        if (shape.size() != 1) fail(object, "must be 1-D (one value per layer)");
        length = shape[0];
        return ds;
    }

    std::vector<double> numbers(const std::string& key, hsize_t layers) const {
        hsize_t n = 0;
        h5::Handle ds = dataset(key, n);
        if (n != layers) fail(group_ + "/" + key, "has " + std::to_string(n) + " values for " + std::to_string(layers) + " layers");
        std::vector<double> out(n);
        if (n && H5Dread(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
            fail(group_ + "/" + key, "cannot read: " + h5::lastLibraryError());
        return out;
    }

    std::vector<std::string> names(hsize_t& layers) const {
        h5::Handle ds = dataset("name", layers);
        h5::Handle type(H5Dget_type(ds.get()));
        if (H5Tis_variable_str(type.get()) <= 0) fail(group_ + "/name", "must be variable-length strings");
        if (const std::string heap = h5::checkVlenReferences(ds.get(), path_); !heap.empty()) fail(group_ + "/name", heap);
        std::vector<char*> ptrs(layers, nullptr);
        h5::Handle mem(H5Tcopy(H5T_C_S1));
        H5Tset_size(mem.get(), H5T_VARIABLE);
        H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
        if (layers && H5Dread(ds.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
            fail(group_ + "/name", "cannot read: " + h5::lastLibraryError());
        std::vector<std::string> out;
        for (char* p : ptrs) out.emplace_back(p ? p : "");
        h5::Handle space(H5Dget_space(ds.get()));
        if (layers) H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
        return out;
    }

    std::string text(hid_t group, const char* key) const {
        const auto v = h5::readAttribute(group, key);
        return v && v->text ? *v->text : std::string();
    }
    std::int64_t integer(hid_t group, const char* key) const {
        const auto v = h5::readAttribute(group, key);
        return v && v->integer ? *v->integer : 0;
    }

    LayerRun read(const std::string& name) const {
        h5::Handle group(H5Gopen2(file_, group_.c_str(), H5P_DEFAULT));
        LayerRun run;
        run.name = name;
        run.inputs = text(group.get(), "inputs");
        run.weights = text(group.get(), "weights");
        run.source = text(group.get(), "source");
        run.architecture = text(group.get(), "architecture");
        run.seed = static_cast<std::uint64_t>(integer(group.get(), "seed"));
        run.samples = integer(group.get(), "samples");
        run.blocks = integer(group.get(), "blocks") != 0;
        run.standardize = integer(group.get(), "standardize") != 0;
        run.flat_fdr = integer(group.get(), "flat_fdr") != 0;
        hsize_t L = 0;
        const auto layer_names = names(L);
        run.layers.resize(L);
        for (hsize_t l = 0; l < L; ++l) run.layers[l].name = layer_names[l];
        const std::pair<const char*, std::int64_t LayerStats::*> counts[] = {
            {"dimension", &LayerStats::dimension}, {"channels", &LayerStats::channels},
            {"samples", &LayerStats::samples}, {"bn_layers", &LayerStats::bn_layers}};
        for (const auto& [key, member] : counts) {
            const auto values = numbers(key, L);
            for (hsize_t l = 0; l < L; ++l) run.layers[l].*member = static_cast<std::int64_t>(values[l]);
        }
        for (const auto& [key, member] : layerStatisticFields()) {
            if (!h5::isDataset(file_, group_ + "/" + key)) continue; // a statistic added later: null
            const auto values = numbers(key, L);
            for (hsize_t l = 0; l < L; ++l)
                if (std::isfinite(values[l])) run.layers[l].*member = values[l];
        }
        return run;
    }

private:
    const std::string& path_;
    hid_t file_;
    std::string group_;
};

} // namespace

std::vector<LayerRun> readLayerResults(const std::string& path) {
    requireRegularFile(path, "run file");
    h5::Lock lock(h5::hdf5Mutex());
    h5::silenceLibraryErrors();
    h5::Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, h5::unlockedFileAccess().get()));
    if (!file) throw InputError(path, "", "not a readable HDF5 file: " + h5::lastLibraryError());
    std::vector<LayerRun> out;
    if (!h5::linkExists(file.get(), "/layers")) return out;
    if (!h5::isGroup(file.get(), "/layers")) throw InputError(path, "/layers", "must be a group");
    h5::Handle group(H5Gopen2(file.get(), "/layers", H5P_DEFAULT));
    for (const std::string& name : h5::memberNames(group.get())) {
        const std::string object = "/layers/" + name;
        if (!h5::isGroup(file.get(), object)) throw InputError(path, object, "must be a group (one set of layer statistics)");
        out.push_back(LayerGroupReader(path, file.get(), object).read(name));
    }
    return out;
}

void writeLayerResults(const std::string& path, const LayerRun& run) {
    updateRunFile(path, [&](RunFileWriter& writer) { writer.writeLayerRun(run); });
}

std::unique_ptr<LayerAnalyzer> loadLayerAnalyzer() {
    void* module = loadModule("libltlab_train.so");
    using Factory = LayerAnalyzer* (*)();
    auto factory = reinterpret_cast<Factory>(dlsym(module, "ltlab_create_layer_analyzer"));
    if (!factory) throw UsageError("libltlab_train.so has no ltlab_create_layer_analyzer");
    return std::unique_ptr<LayerAnalyzer>(factory());
}

} // namespace ltlab
