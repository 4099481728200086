#pragma once
// Thin RAII layer over the HDF5 C API, internal to ltlab_core.
// Every function here must be called with hdf5Lock() held.

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ltlab::h5 {

// One lock for all HDF5 calls in the process (the serial library is not thread-safe).
std::recursive_mutex& hdf5Mutex();
using Lock = std::lock_guard<std::recursive_mutex>;

// Turns off HDF5's automatic error printing; we report errors ourselves.
void silenceLibraryErrors();
// The innermost message on HDF5's error stack (e.g. "truncated file: eof = ..."), or "".
std::string lastLibraryError();

class Handle {
public:
    Handle() = default;
    explicit Handle(hid_t id) : id_(id) {}
    ~Handle() { reset(); }
    Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
    Handle& operator=(Handle&& other) noexcept {
        if (this != &other) {
            reset();
            id_ = std::exchange(other.id_, H5I_INVALID_HID);
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    hid_t get() const { return id_; }
    bool valid() const { return id_ >= 0; }
    explicit operator bool() const { return valid(); }
    void reset();
    hid_t release() { return std::exchange(id_, H5I_INVALID_HID); } // the caller closes it

private:
    hid_t id_ = H5I_INVALID_HID;
};

// File access without HDF5's file locks. The trainer opens, appends and
// closes the run once per epoch while the workbench (or any reader) keeps it
// open between epochs; with locks one of them would be refused. Readers
// reopen the file to see new epochs.
Handle unlockedFileAccess();

// HDF5 1.10 trusts the global heap that holds variable-length data (strings):
// one damaged byte there makes it read out of bounds or loop forever. These
// check that structure from the file's bytes before HDF5 touches it, and
// return the problem ("" when sound).
// checkGlobalHeaps: every collection ("GCOL") in the first `window` bytes of
// the file (where HDF5 puts the small metadata-area heaps of attributes and
// names) parses exactly as HDF5 will parse it.
std::string checkGlobalHeaps(const std::string& path, std::uint64_t window = 1 << 20);
// checkVlenReferences: the dataset's stored references (contiguous or
// unfiltered chunked layout) point at existing objects of the stated length
// in sound collections.
std::string checkVlenReferences(hid_t dataset, const std::string& path);
// checkVlenAttribute: the `count` references stored in attribute `name` of
// `object` (found in the object's header, versions 1 and 2) point at existing
// objects of the stated length in sound collections ("" also where the
// attribute is not stored inline, e.g. in dense storage).
std::string checkVlenAttribute(hid_t object, const std::string& name, std::uint64_t count);
// checkObjectTypes: the datatypes in the object header of `path` (from `loc`),
// its own and its attributes', are of the classes ltlab reads (numbers,
// strings, their variable-length and array forms), stored inline. HDF5 1.10
// decodes compound and enum member names with an unbounded strdup (found by
// fuzzing: a read past the header's buffer when H5Dopen or H5Aexists decodes
// a damaged one), so such a header is refused before HDF5 decodes it.
std::string checkObjectTypes(hid_t loc, const std::string& path);

bool linkExists(hid_t loc, const std::string& path);   // every component checked
bool isGroup(hid_t loc, const std::string& path);
bool isDataset(hid_t loc, const std::string& path);
std::vector<std::string> memberNames(hid_t group);     // in name order

enum class ValueKind { Integer, Float, String, Other };
ValueKind kindOf(hid_t type);
std::string describeType(hid_t type);                  // "float32", "int64", "string", "compound", ...
std::vector<hsize_t> shapeOf(hid_t dataset);

struct AttributeValue {
    ValueKind kind = ValueKind::Other;
    std::vector<hsize_t> shape;
    std::optional<std::int64_t> integer;
    std::optional<std::string> text;
};
std::optional<AttributeValue> readAttribute(hid_t object, const std::string& name);

void writeStringAttribute(hid_t object, const std::string& name, const std::string& value);
void writeIntAttribute(hid_t object, const std::string& name, std::int64_t value);

} // namespace ltlab::h5
