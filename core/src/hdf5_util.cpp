#include "hdf5_util.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace ltlab::h5 {

namespace {

std::uint64_t littleEndian(const unsigned char* p, std::size_t bytes) {
    std::uint64_t v = 0;
    for (std::size_t i = bytes; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

std::vector<unsigned char> readBytes(std::ifstream& in, std::uint64_t at, std::uint64_t size) {
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    in.clear();
    in.seekg(static_cast<std::streamoff>(at));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
    if (!in || static_cast<std::uint64_t>(in.gcount()) != size) bytes.clear();
    return bytes;
}

// One global heap collection, parsed the way H5HG__cache_heap_deserialize
// (1.10) walks it, with the bounds checks it lacks. Object sizes by index
// (objects[0] unused). Returns the problem or "".
std::string parseCollection(const unsigned char* c, std::uint64_t size, std::size_t sizeof_lengths,
                            std::map<std::uint64_t, std::uint64_t>* objects) {
    const std::uint64_t header = 8 + sizeof_lengths, object_header = 8 + sizeof_lengths;
    if (size < header) return "collection smaller than its header";
    std::uint64_t p = header;
    while (p < size) {
        if (p + object_header > size) break; // a tail too small for a header is free space, as HDF5 reads it
        const std::uint64_t index = littleEndian(c + p, 2);
        const std::uint64_t object_size = littleEndian(c + p + 8, sizeof_lengths);
        std::uint64_t need;
        if (index > 0) {
            if (object_size > size) return "object " + std::to_string(index) + " is larger than its collection";
            need = object_header + ((object_size + 7) & ~std::uint64_t{7});
            if (objects) (*objects)[index] = object_size;
        } else {
            need = object_size; // free space: its size includes its header
            if (need < object_header && p + need != size) return "free space of size " + std::to_string(need);
        }
        if (need == 0) return "object of size 0";
        if (need > size - p) return "object " + std::to_string(index) + " runs past the end of its collection";
        p += need;
    }
    return "";
}

std::string collectionAt(std::ifstream& in, std::uint64_t file_size, std::uint64_t at, std::size_t sizeof_lengths,
                         std::map<std::uint64_t, std::uint64_t>* objects) {
    const std::uint64_t header = 8 + sizeof_lengths;
    if (at >= file_size || file_size - at < header) return "collection outside the file";
    const auto head = readBytes(in, at, header);
    if (head.empty() || std::memcmp(head.data(), "GCOL", 4) != 0 || head[4] != 1)
        return "no collection signature";
    const std::uint64_t size = littleEndian(head.data() + 8, sizeof_lengths);
    if (size < header || size > file_size - at) return "collection size " + std::to_string(size) + " beyond the file";
    if (size > (std::uint64_t{1} << 30)) return "collection size " + std::to_string(size) + " implausible";
    const auto bytes = readBytes(in, at, size);
    if (bytes.empty()) return "collection unreadable";
    return parseCollection(bytes.data(), size, sizeof_lengths, objects);
}

std::string where(std::uint64_t at, const std::string& problem) {
    return "damaged variable-length data (global heap collection at byte " + std::to_string(at) + ": " + problem + ")";
}

} // namespace

std::string checkGlobalHeaps(const std::string& path, std::uint64_t window) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "";
    in.seekg(0, std::ios::end);
    const auto file_size = static_cast<std::uint64_t>(in.tellg());
    const auto bytes = readBytes(in, 0, std::min(file_size, window));
    for (std::size_t at = 0; at + 16 <= bytes.size(); ++at) {
        const void* hit = std::memchr(bytes.data() + at, 'G', bytes.size() - at);
        if (!hit) break;
        at = static_cast<std::size_t>(static_cast<const unsigned char*>(hit) - bytes.data());
        if (at + 16 > bytes.size()) break;
        // "GCOL", version 1, three reserved zero bytes: a collection header (the
        // files ltlab and h5py write use 8-byte lengths)
        if (std::memcmp(bytes.data() + at, "GCOL\1\0\0\0", 8) != 0) continue;
        const std::string problem = collectionAt(in, file_size, at, 8, nullptr);
        if (!problem.empty()) return where(at, problem);
    }
    return "";
}

std::string checkVlenReferences(hid_t dataset, const std::string& path) {
    Handle file(H5Iget_file_id(dataset));
    Handle fcpl(H5Fget_create_plist(file.get()));
    Handle dcpl(H5Dget_create_plist(dataset));
    Handle space(H5Dget_space(dataset));
    if (!file || !fcpl || !dcpl || !space) return "";
    std::size_t sizeof_offsets = 8, sizeof_lengths = 8;
    hsize_t userblock = 0;
    H5Pget_sizes(fcpl.get(), &sizeof_offsets, &sizeof_lengths);
    H5Pget_userblock(fcpl.get(), &userblock);
    if (sizeof_offsets > 8 || sizeof_lengths > 8 || sizeof_lengths < 2) return "";
    const hssize_t points = H5Sget_simple_extent_npoints(space.get());
    if (points <= 0) return "";
    const std::uint64_t count = static_cast<std::uint64_t>(points), element = 4 + sizeof_offsets + 4;
    std::ifstream in(path, std::ios::binary);
    if (!in) return "";
    in.seekg(0, std::ios::end);
    const auto file_size = static_cast<std::uint64_t>(in.tellg());
    if (count > file_size / element + 1) return "";  // more references than the file can hold: HDF5 refuses the read

    std::vector<unsigned char> raw;
    const H5D_layout_t layout = H5Pget_layout(dcpl.get());
    if (layout == H5D_CONTIGUOUS) {
        const haddr_t offset = H5Dget_offset(dataset);
        if (offset == HADDR_UNDEF) return ""; // never written: fill values, no heap
        raw = readBytes(in, userblock + offset, count * element);
        if (raw.empty()) return "";           // HDF5 reports the truncation itself
    } else if (layout == H5D_CHUNKED && H5Pget_nfilters(dcpl.get()) == 0 && H5Sget_simple_extent_ndims(space.get()) == 1) {
        hsize_t chunk = 0;
        if (H5Pget_chunk(dcpl.get(), 1, &chunk) != 1 || chunk == 0) return "";
        raw.assign(static_cast<std::size_t>(count * element), 0);
        std::vector<unsigned char> buffer(static_cast<std::size_t>(chunk * element));
        for (hsize_t first = 0; first < count; first += chunk) {
            hsize_t offset[1] = {first};
            hsize_t bytes = 0;
            std::uint32_t mask = 0;
            if (H5Dget_chunk_storage_size(dataset, offset, &bytes) < 0 || bytes != chunk * element) {
                H5Eclear2(H5E_DEFAULT);
                continue; // unallocated chunk: fill values
            }
            if (H5Dread_chunk(dataset, H5P_DEFAULT, offset, &mask, buffer.data()) < 0) {
                H5Eclear2(H5E_DEFAULT);
                continue;
            }
            const std::uint64_t n = std::min<std::uint64_t>(chunk, count - first);
            std::memcpy(raw.data() + first * element, buffer.data(), static_cast<std::size_t>(n * element));
        }
    } else {
        return ""; // compact or filtered: the metadata-area scan (checkGlobalHeaps) is what guards it
    }

    std::map<std::uint64_t, std::map<std::uint64_t, std::uint64_t>> collections;
    for (std::uint64_t i = 0; i < count; ++i) {
        const unsigned char* e = raw.data() + i * element;
        const std::uint64_t length = littleEndian(e, 4);
        const std::uint64_t address = littleEndian(e + 4, sizeof_offsets);
        const std::uint64_t index = littleEndian(e + 4 + sizeof_offsets, 4);
        if (length == 0) continue; // empty or null: HDF5 reads nothing
        auto found = collections.find(address);
        if (found == collections.end()) {
            std::map<std::uint64_t, std::uint64_t> objects;
            const std::string problem = collectionAt(in, file_size, userblock + address, sizeof_lengths, &objects);
            if (!problem.empty()) return where(address, "element " + std::to_string(i) + ": " + problem);
            found = collections.emplace(address, std::move(objects)).first;
        }
        const auto object = found->second.find(index);
        if (index == 0 || object == found->second.end())
            return where(address, "element " + std::to_string(i) + " refers to missing object " + std::to_string(index));
        if (object->second != length)
            return where(address, "element " + std::to_string(i) + " has length " + std::to_string(length) +
                                      " but its object holds " + std::to_string(object->second) + " bytes");
    }
    return "";
}

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

std::optional<AttributeValue> readAttribute(hid_t object, const std::string& name) {
    if (H5Aexists(object, name.c_str()) <= 0) return std::nullopt;
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
