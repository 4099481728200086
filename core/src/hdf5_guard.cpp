// The guard of variable-length data (hdf5_util.h): HDF5 1.10 trusts the
// global heap collections that hold variable-length strings and the stored
// references into them; one damaged byte makes it read out of bounds or loop
// forever. These read the structures from the file's bytes and check them
// before HDF5 does (docs/reliability.md, "Refused input").
#include "hdf5_util.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>

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

// The stored variable-length references raw[0..count) (length 4, collection
// address, object index 4) point at existing objects of their length in sound
// collections; the problem or "".
std::string checkReferences(std::ifstream& in, std::uint64_t file_size, std::uint64_t userblock,
                            const unsigned char* raw, std::uint64_t count, std::size_t sizeof_offsets,
                            std::size_t sizeof_lengths) {
    const std::uint64_t element = 4 + sizeof_offsets + 4;
    std::map<std::uint64_t, std::map<std::uint64_t, std::uint64_t>> collections;
    for (std::uint64_t i = 0; i < count; ++i) {
        const unsigned char* e = raw + i * element;
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

} // namespace

namespace {

// A datatype message's class, checked before HDF5 decodes it: HDF5 1.10
// copies compound and enum member names out of the header with strdup, with
// no bound (a damaged name reads past the header's buffer). ltlab reads
// numbers and strings, so only those classes (and variable-length and array
// types of them) pass. Returns the problem or "".
std::string typeProblem(const unsigned char* d, std::uint64_t size, int depth) {
    if (size < 8) return "a truncated datatype message";
    if (depth > 8) return "datatypes nested too deeply";
    const unsigned cls = d[0] & 0x0F, version = d[0] >> 4;
    // The properties HDF5 reads after the 8-byte header, unchecked against the message's size.
    auto needs = [size](std::uint64_t properties) {
        return 8 + properties <= size ? std::string() : std::string("a truncated datatype message");
    };
    switch (cls) {
    case 0: return needs(4);  // fixed-point: bit offset, precision
    case 1: return needs(12); // floating point: offsets, sizes, exponent bias
    case 2: return needs(2);  // time: precision
    case 3: return "";        // string: none
    case 4: return needs(4);  // bitfield: offset, precision
    case 5: return needs(d[1]); // opaque: its tag
    case 7: return "";        // reference: none
    case 9: // variable-length: its base type follows the 8-byte header
        return typeProblem(d + 8, size - 8, depth + 1);
    case 10: { // array: rank, dimensions (and, in version 2, permutations), then the base type
        if (size < 9) return "a truncated array datatype";
        const std::uint64_t rank = d[8];
        const std::uint64_t base = version == 2 ? 8 + 4 + 8 * rank : 8 + 1 + 4 * rank;
        if (base >= size) return "a truncated array datatype";
        return typeProblem(d + base, size - base, depth + 1);
    }
    case 6:
        return "a compound datatype (ltlab reads numbers and strings only)";
    case 8:
        return "an enumerated datatype (ltlab reads numbers and strings only)";
    default:
        return "an unknown datatype class " + std::to_string(cls);
    }
}

// A dataspace message (version 1: 8-byte header, version 2: 4), its
// dimensions and maximum dimensions inside the message: HDF5 1.10 reads them
// without checking the message's size (found by fuzzing, in H5Aexists).
std::string dataspaceProblem(const unsigned char* d, std::uint64_t size, std::size_t sizeof_lengths) {
    if (size < 4) return "a truncated dataspace message";
    const unsigned version = d[0], rank = d[1], flags = d[2];
    if (version != 1 && version != 2) return ""; // HDF5 refuses the version itself
    if (rank > 32) return "a dataspace of rank " + std::to_string(rank);
    const std::uint64_t header = version == 1 ? 8 : 4;
    const std::uint64_t dims = std::uint64_t{rank} * sizeof_lengths * ((flags & 1) ? 2 : 1);
    return header + dims <= size ? "" : "a truncated dataspace message";
}

// Where the stored data of attribute `name` begins in the file, found by
// walking the object header at `header` (version 1, or version 2 "OHDR", with
// their continuation blocks) the way HDF5 does, bounds-checked. nullopt where
// the attribute is not found inline (dense storage, a shared datatype):
// then only the collection scan guards it.
struct HeaderWalk {
    std::ifstream& in;
    std::uint64_t file_size, userblock;
    std::size_t sizeof_offsets, sizeof_lengths;
    const std::string& name;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> blocks; // (address, length) still to walk
    std::optional<std::pair<std::uint64_t, std::uint64_t>> found; // (address, length) of the data
    bool check_types = false;     // also check every datatype (the object's and its attributes')
    std::string type_problem;     // the first one found

    static constexpr std::uint16_t kDataspace = 0x01, kDatatype = 0x03, kContinuation = 0x10, kAttribute = 0x0C;

    // One header message: a continuation adds a block; the attribute sets `found`.
    void message(std::uint16_t type, unsigned flags, const unsigned char* data, std::uint64_t size, std::uint64_t at) {
        if (check_types && type == kDatatype && type_problem.empty())
            type_problem = (flags & 0x02) ? "a shared (committed) datatype" : typeProblem(data, size, 0);
        if (check_types && type == kDataspace && type_problem.empty() && !(flags & 0x02))
            type_problem = dataspaceProblem(data, size, sizeof_lengths);
        if (flags & 0x02) return; // shared: the message itself is stored elsewhere
        if (type == kContinuation && size >= sizeof_offsets + sizeof_lengths) {
            if (blocks.size() < 64)
                blocks.emplace_back(littleEndian(data, sizeof_offsets), littleEndian(data + sizeof_offsets, sizeof_lengths));
        } else if (type == kAttribute && size >= 8) {
            if (check_types && type_problem.empty()) attributeType(data, size);
            if (!name.empty()) attribute(data, size, at);
        }
    }

    // The datatype of an attribute message (HDF5 decodes every attribute of an
    // object to find one by name).
    void attributeType(const unsigned char* d, std::uint64_t size) {
        const unsigned version = d[0], flags = d[1];
        if (version < 1 || version > 3) return; // HDF5 refuses the message itself
        const std::uint64_t name_size = littleEndian(d + 2, 2), type_size = littleEndian(d + 4, 2),
                            space_size = littleEndian(d + 6, 2);
        auto pad = [version](std::uint64_t n) { return version == 1 ? (n + 7) & ~std::uint64_t{7} : n; };
        const std::uint64_t name_at = version == 3 ? 9 : 8, type_at = name_at + pad(name_size),
                            space_at = type_at + pad(type_size);
        if (name_size == 0 || type_at > size || type_size > size - type_at || space_at > size ||
            space_size > size - space_at) {
            type_problem = "a truncated attribute message";
            return;
        }
        if (d[name_at + name_size - 1] != 0) { // HDF5 copies the name with strdup
            type_problem = "an attribute whose name is not terminated";
            return;
        }
        if (version >= 2 && (flags & 1)) {
            type_problem = "an attribute with a shared (committed) datatype";
            return;
        }
        if (const std::string p = typeProblem(d + type_at, type_size, 0); !p.empty()) {
            type_problem = "an attribute with " + p;
            return;
        }
        if (!(version >= 2 && (flags & 2)))
            if (const std::string p = dataspaceProblem(d + space_at, space_size, sizeof_lengths); !p.empty())
                type_problem = "an attribute with " + p;
    }

    void attribute(const unsigned char* d, std::uint64_t size, std::uint64_t at) {
        const unsigned version = d[0], flags = d[1];
        if (version < 1 || version > 3) return;
        const std::uint64_t name_size = littleEndian(d + 2, 2), type_size = littleEndian(d + 4, 2),
                            space_size = littleEndian(d + 6, 2);
        auto pad = [version](std::uint64_t n) { return version == 1 ? (n + 7) & ~std::uint64_t{7} : n; };
        const std::uint64_t name_at = version == 3 ? 9 : 8, type_at = name_at + pad(name_size);
        const std::uint64_t data_at = type_at + pad(type_size) + pad(space_size);
        if (name_size == 0 || data_at > size) return;
        if (name_size - 1 != name.size() || std::memcmp(d + name_at, name.data(), name.size()) != 0) return;
        const bool shared_type = version >= 2 && (flags & 1);
        if (shared_type || type_size < 1 || (d[type_at] & 0x0F) != 9) return; // not an inline variable-length type
        found.emplace(at + data_at, size - data_at);
    }

    // The messages of one block (chunk 0 or a continuation block).
    void block(std::uint64_t addr, std::uint64_t length, bool first) {
        if (addr >= file_size || length > file_size - addr || length > (std::uint64_t{1} << 24)) return;
        const auto bytes = readBytes(in, addr, length);
        if (bytes.size() < 4) return;
        const unsigned char* b = bytes.data();
        if (std::memcmp(b, "OHDR", 4) == 0 && first) return version2(b, length, addr);
        if (std::memcmp(b, "OCHK", 4) == 0) return messages2(b, 4, length >= 4 ? length - 4 : 0, addr, v2_order_);
        if (first) { // version 1: 16-byte prefix, then chunk 0
            if (length < 16 || b[0] != 1) return;
            const std::uint64_t chunk = littleEndian(b + 8, 4);
            return blocks.emplace_back(addr - userblock + 16, chunk), void(); // addresses in `blocks` exclude the user block
        }
        for (std::uint64_t p = 0; p + 8 <= length;) { // version-1 messages
            const std::uint64_t type = littleEndian(b + p, 2), size = littleEndian(b + p + 2, 2);
            if (size > length - p - 8) return;
            message(static_cast<std::uint16_t>(type), b[p + 4], b + p + 8, size, addr + p + 8);
            p += 8 + size;
        }
    }

    // A version-2 header: its prefix, then chunk 0 (read again when it is
    // longer than the first read).
    void version2(const unsigned char* b, std::uint64_t length, std::uint64_t addr) {
        if (length < 7 || b[4] != 2) return;
        const unsigned flags = b[5];
        std::uint64_t p = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
        const std::size_t width = std::size_t{1} << (flags & 3);
        if (p + width > length) return;
        const std::uint64_t chunk = littleEndian(b + p, width);
        p += width;
        v2_order_ = (flags & 0x04) != 0;
        if (chunk > (std::uint64_t{1} << 24) || addr >= file_size || p + chunk > file_size - addr) return;
        if (p + chunk <= length) return messages2(b, p, p + chunk, addr, v2_order_);
        const auto whole = readBytes(in, addr, p + chunk);
        if (whole.size() == p + chunk) messages2(whole.data(), p, p + chunk, addr, v2_order_);
    }

    void messages2(const unsigned char* b, std::uint64_t p, std::uint64_t end, std::uint64_t addr, bool order) {
        const std::uint64_t head = order ? 6 : 4;
        while (p + head <= end) {
            const std::uint64_t type = b[p], size = littleEndian(b + p + 1, 2);
            if (size > end - p - head) return;
            message(static_cast<std::uint16_t>(type), b[p + 3], b + p + head, size, addr + p + head);
            p += head + size;
        }
    }

    bool v2_order_ = false;

    std::optional<std::pair<std::uint64_t, std::uint64_t>> run(std::uint64_t header) {
        block(userblock + header, std::min<std::uint64_t>(512, file_size - std::min(file_size, userblock + header)), true);
        for (std::size_t i = 0; i < blocks.size() && (!found || check_types); ++i)
            block(userblock + blocks[i].first, blocks[i].second, false);
        return found;
    }
};

} // namespace

namespace {

// The file's bytes behind an open object, and its offset and length sizes.
struct FileBytes {
    std::ifstream in;
    std::uint64_t file_size = 0;
    hsize_t userblock = 0;
    std::size_t sizeof_offsets = 8, sizeof_lengths = 8;

    bool open(hid_t object) {
        Handle file(H5Iget_file_id(object));
        if (!file) return false;
        Handle fcpl(H5Fget_create_plist(file.get()));
        if (!fcpl || H5Pget_sizes(fcpl.get(), &sizeof_offsets, &sizeof_lengths) < 0) return false;
        H5Pget_userblock(fcpl.get(), &userblock);
        if (sizeof_offsets > 8 || sizeof_lengths > 8 || sizeof_lengths < 2) return false;
        const ssize_t path_size = H5Fget_name(object, nullptr, 0);
        if (path_size <= 0) return false;
        std::string path(static_cast<std::size_t>(path_size), '\0');
        H5Fget_name(object, path.data(), path.size() + 1);
        in.open(path, std::ios::binary);
        if (!in) return false;
        in.seekg(0, std::ios::end);
        file_size = static_cast<std::uint64_t>(in.tellg());
        return true;
    }
};

} // namespace

std::string checkObjectTypes(hid_t loc, const std::string& path) {
    H5O_info_t info;
    if (H5Oget_info_by_name2(loc, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return ""; // the open that follows reports it
    }
    FileBytes f;
    if (!f.open(loc)) return "";
    const std::string no_name;
    HeaderWalk walk{f.in, f.file_size, f.userblock, f.sizeof_offsets, f.sizeof_lengths, no_name, {}, {}};
    walk.check_types = true;
    walk.run(info.addr);
    return walk.type_problem.empty() ? "" : walk.type_problem + " in its object header";
}

std::string checkVlenAttribute(hid_t object, const std::string& name, std::uint64_t count) {
    H5O_info_t info;
    if (H5Oget_info2(object, &info, H5O_INFO_BASIC) < 0) return "";
    FileBytes f;
    if (!f.open(object)) return "";
    std::ifstream& in = f.in;
    const std::uint64_t file_size = f.file_size, userblock = f.userblock;
    const std::size_t sizeof_offsets = f.sizeof_offsets, sizeof_lengths = f.sizeof_lengths;
    HeaderWalk walk{in, file_size, userblock, sizeof_offsets, sizeof_lengths, name, {}, {}};
    const auto data = walk.run(info.addr);
    const std::uint64_t element = 4 + sizeof_offsets + 4;
    if (!data) return "";
    if (count > data->second / element) return "attribute '" + name + "' holds fewer references than it declares";
    const auto raw = readBytes(in, data->first, count * element);
    if (raw.size() != count * element) return "";
    const std::string problem = checkReferences(in, file_size, userblock, raw.data(), count, sizeof_offsets, sizeof_lengths);
    return problem.empty() ? "" : "attribute '" + name + "': " + problem;
}

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

    return checkReferences(in, file_size, userblock, raw.data(), count, sizeof_offsets, sizeof_lengths);
}


} // namespace ltlab::h5
