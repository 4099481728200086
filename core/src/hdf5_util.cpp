#include "hdf5_util.h"

#include "ltlab/error.h"

#include <algorithm>
#include <cstring>
#include <sstream>

namespace ltlab::h5 {

std::recursive_mutex& hdf5Mutex() {
    static std::recursive_mutex mutex;
    return mutex;
}

void silenceLibraryErrors() {
    static std::once_flag once;
    std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::string lastLibraryError() {
    std::string innermost;
    H5Ewalk2(
        H5E_DEFAULT, H5E_WALK_UPWARD,
        [](unsigned n, const H5E_error2_t* err, void* data) -> herr_t {
            auto* out = static_cast<std::string*>(data);
            if (n == 0 && err->desc) *out = err->desc;
            return 0;
        },
        &innermost);
    H5Eclear2(H5E_DEFAULT);
    return innermost;
}

void Handle::reset() {
    if (id_ < 0) return;
    switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
    }
    id_ = H5I_INVALID_HID;
}

Handle unlockedFileAccess() {
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_file_locking(fapl.get(), false, true);
    return fapl;
}

bool linkExists(hid_t loc, const std::string& path) {
    // H5Lexists fails (rather than answering no) when an intermediate link is missing.
    std::string prefix;
    std::size_t start = path.front() == '/' ? 1 : 0;
    if (start) prefix = "/";
    while (start <= path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        prefix += path.substr(start, end - start);
        if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
        prefix += '/';
        start = end + 1;
    }
    return true;
}

static std::optional<H5O_type_t> objectType(hid_t loc, const std::string& path) {
    if (!linkExists(loc, path)) return std::nullopt;
    H5O_info_t info;
    if (H5Oget_info_by_name2(loc, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return std::nullopt;
    return info.type;
}

bool isGroup(hid_t loc, const std::string& path) { return objectType(loc, path) == H5O_TYPE_GROUP; }
bool isDataset(hid_t loc, const std::string& path) { return objectType(loc, path) == H5O_TYPE_DATASET; }

std::vector<std::string> memberNames(hid_t group) {
    std::vector<std::string> names;
    H5Literate(
        group, H5_INDEX_NAME, H5_ITER_INC, nullptr,
        [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
            static_cast<std::vector<std::string>*>(data)->emplace_back(name);
            return 0;
        },
        &names);
    std::sort(names.begin(), names.end());
    return names;
}

ValueKind kindOf(hid_t type) {
    switch (H5Tget_class(type)) {
    case H5T_INTEGER: return ValueKind::Integer;
    case H5T_FLOAT: return ValueKind::Float;
    case H5T_STRING: return ValueKind::String;
    default: return ValueKind::Other;
    }
}

std::string describeType(hid_t type) {
    const std::size_t bits = H5Tget_size(type) * 8;
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
        return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT: return "float" + std::to_string(bits);
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_OPAQUE: return "opaque";
    case H5T_REFERENCE: return "reference";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_BITFIELD: return "bitfield";
    default: return "unknown type";
    }
}

std::vector<hsize_t> shapeOf(hid_t dataset) {
    Handle space(H5Dget_space(dataset));
    if (!space) return {};
    const int rank = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    return dims;
}

namespace {
std::string fileName(hid_t object) {
    const ssize_t n = H5Fget_name(object, nullptr, 0);
    std::string name(static_cast<std::size_t>(std::max<ssize_t>(n, 0)), '\0');
    if (n > 0) H5Fget_name(object, name.data(), name.size() + 1);
    return name;
}
std::string objectName(hid_t object) {
    const ssize_t n = H5Iget_name(object, nullptr, 0);
    std::string name(static_cast<std::size_t>(std::max<ssize_t>(n, 0)), '\0');
    if (n > 0) H5Iget_name(object, name.data(), name.size() + 1);
    return name;
}
} // namespace

std::optional<AttributeValue> readAttribute(hid_t object, const std::string& name) {
    // H5Aexists decodes every attribute message of the object: their datatypes first.
    if (const std::string problem = checkObjectTypes(object, "."); !problem.empty())
        throw InputError(fileName(object), objectName(object), "cannot read attribute '" + name + "': " + problem);
    const htri_t exists = H5Aexists(object, name.c_str());
    if (exists < 0) // HDF5 could not read the object's header (a checksum, a message)
        throw InputError(fileName(object), objectName(object),
                         "cannot read attribute '" + name + "' (damaged object header: " + lastLibraryError() + ")");
    if (exists == 0) return std::nullopt;
    Handle attr(H5Aopen(object, name.c_str(), H5P_DEFAULT));
    if (!attr) return std::nullopt;
    Handle type(H5Aget_type(attr.get()));
    Handle space(H5Aget_space(attr.get()));
    AttributeValue value;
    value.kind = kindOf(type.get());
    const int rank = H5Sget_simple_extent_ndims(space.get());
    value.shape.resize(static_cast<std::size_t>(std::max(rank, 0)));
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), value.shape.data(), nullptr);
    hssize_t count = H5Sget_simple_extent_npoints(space.get());
    if (count != 1) return value; // arrays are reported by shape; callers want scalars
    if (value.kind == ValueKind::Integer) {
        long long v = 0;
        if (H5Aread(attr.get(), H5T_NATIVE_LLONG, &v) >= 0) value.integer = v;
    } else if (value.kind == ValueKind::String) {
        if (H5Tis_variable_str(type.get()) > 0) {
            if (const std::string problem = checkVlenAttribute(object, name, 1); !problem.empty())
                throw InputError(fileName(object), objectName(object), problem);
            Handle mem(H5Tcopy(H5T_C_S1));
            H5Tset_size(mem.get(), H5T_VARIABLE);
            H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
            char* str = nullptr;
            if (H5Aread(attr.get(), mem.get(), &str) >= 0 && str) {
                value.text = std::string(str);
                H5free_memory(str);
            }
        } else {
            const std::size_t size = H5Tget_size(type.get());
            std::string buffer(size, '\0');
            Handle mem(H5Tcopy(H5T_C_S1));
            H5Tset_size(mem.get(), size);
            H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
            H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
            if (H5Aread(attr.get(), mem.get(), buffer.data()) >= 0) {
                buffer.resize(std::min(buffer.size(), buffer.find('\0')));
                value.text = buffer;
            }
        }
    }
    return value;
}

void writeStringAttribute(hid_t object, const std::string& name, const std::string& value) {
    Handle type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    Handle space(H5Screate(H5S_SCALAR));
    Handle attr(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    const char* data = value.c_str();
    H5Awrite(attr.get(), type.get(), &data);
}

void writeIntAttribute(hid_t object, const std::string& name, std::int64_t value) {
    Handle space(H5Screate(H5S_SCALAR));
    Handle attr(H5Acreate2(object, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    long long v = value;
    H5Awrite(attr.get(), H5T_NATIVE_LLONG, &v);
}

} // namespace ltlab::h5
