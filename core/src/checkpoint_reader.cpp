// Checkpoint containers: PyTorch zip (libzip), legacy torch.save, safetensors.
// The format is told by the first bytes, never by the extension.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "checkpoint_pickle.h"
#include "ltlab/error.h"
#include "ltlab/input_file.h"

namespace ltlab::ckpt {

using detail::Arena;
using detail::PickleError;
using Kind = Value::Kind;

namespace {

constexpr std::uint64_t kMaxSafetensorsHeader = 100ull << 20; // the reference implementation's cap
constexpr unsigned char kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

// The whole file mapped read-only (legacy and safetensors files, and the magic bytes).
class MappedFile {
public:
    explicit MappedFile(const std::string& path) : path_(path) {
        requireRegularFile(path, "checkpoint"); // before the open: a FIFO would block it
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) throw InputError(path, "", std::string("cannot open: ") + std::strerror(errno));
        struct stat st {};
        if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) throw InputError(path, "", "not a regular file");
        size_ = static_cast<std::size_t>(st.st_size);
        if (size_ == 0) return;
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
        if (p == MAP_FAILED) throw InputError(path, "", std::string("cannot map: ") + std::strerror(errno));
        data_ = static_cast<const unsigned char*>(p);
    }
    ~MappedFile() {
        if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
        if (fd_ >= 0) ::close(fd_);
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    const unsigned char* data() const { return data_; }
    std::size_t size() const { return size_; }
    bool startsWith(const void* magic, std::size_t n) const { return size_ >= n && std::memcmp(data_, magic, n) == 0; }

private:
    std::string path_;
    int fd_ = -1;
    const unsigned char* data_ = nullptr;
    std::size_t size_ = 0;
};

std::string zipErrorText(int code) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    std::string s = zip_error_strerror(&e);
    zip_error_fini(&e);
    return s;
}

} // namespace

struct Checkpoint::Impl {
    std::string path;
    Format format = Format::TorchZip;
    std::string detail;
    Arena arena;
    const Value* root = nullptr;
    std::map<std::string, std::string> metadata;
    std::unique_ptr<MappedFile> file;
    zip_t* zip = nullptr;
    std::string prefix; // the zip archive's top folder, with its '/'
    mutable std::mutex zip_mutex;

    ~Impl() {
        if (zip) zip_discard(zip);
    }
    [[noreturn]] void fail(const std::string& object, const std::string& problem) const {
        throw InputError(path, object, problem);
    }

    // ---- zip ------------------------------------------------------------------
    void openZip() {
        int code = 0;
        zip = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
        if (!zip) fail("", "not a readable zip archive (" + zipErrorText(code) + "; truncated or damaged?)");
        findArchivePrefix();
        if (isTorchScript()) {
            format = Format::TorchScript;
            detail = "TorchScript archive '" + prefix + "'";
        }
        if (const auto order = recordIfPresent("byteorder"); order && *order != "little")
            fail(prefix + "byteorder", "big-endian checkpoints are not supported");
        std::vector<unsigned char> pkl = readRecord(prefix + "data.pkl", file->size());
        runPickle(pkl.data(), pkl.size(), prefix + "data.pkl");
        checkZipStorages();
    }
    void findArchivePrefix() {
        const zip_int64_t n = zip_get_num_entries(zip, 0);
        for (zip_int64_t i = 0; i < n; ++i) {
            const std::string name = zip_get_name(zip, static_cast<zip_uint64_t>(i), 0);
            const auto slash = name.find('/');
            if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0) {
                prefix = name.substr(0, slash + 1);
                return;
            }
        }
        fail("", "a zip archive without data.pkl: not a PyTorch checkpoint");
    }
    bool isTorchScript() const {
        if (zip_name_locate(zip, (prefix + "constants.pkl").c_str(), 0) >= 0) return true;
        const zip_int64_t n = zip_get_num_entries(zip, 0);
        for (zip_int64_t i = 0; i < n; ++i)
            if (std::string(zip_get_name(zip, static_cast<zip_uint64_t>(i), 0)).rfind(prefix + "code/", 0) == 0) return true;
        return false;
    }
    std::optional<zip_stat_t> statRecord(const std::string& name) const {
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat(zip, name.c_str(), 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) return std::nullopt;
        return st;
    }
    std::optional<std::string> recordIfPresent(const std::string& name) {
        if (!statRecord(prefix + name)) return std::nullopt;
        const auto bytes = readRecord(prefix + name, 64);
        return std::string(bytes.begin(), bytes.end());
    }
    // The first `limit` bytes at most, read in chunks: a declared size is never trusted for an allocation.
    std::vector<unsigned char> readRecord(const std::string& name, std::uint64_t limit) const {
        const auto st = statRecord(name);
        if (!st) fail(name, "missing from the zip archive");
        zip_file_t* f = zip_fopen(zip, name.c_str(), 0);
        if (!f) fail(name, std::string("cannot read: ") + zip_strerror(zip));
        const std::uint64_t want = std::min<std::uint64_t>(st->size, limit);
        std::vector<unsigned char> out;
        out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(want, 64ull << 20)));
        unsigned char chunk[1 << 16];
        while (out.size() < want) {
            const zip_int64_t got = zip_fread(f, chunk, std::min<std::uint64_t>(sizeof chunk, want - out.size()));
            if (got <= 0) {
                const std::string why = got < 0 ? zip_file_strerror(f) : "unexpected end of data";
                zip_fclose(f);
                fail(name, "cannot read: " + why);
            }
            out.insert(out.end(), chunk, chunk + got);
        }
        zip_fclose(f);
        return out;
    }
    void checkZipStorages() const {
        for (const auto& s : arena.storages) {
            const std::string name = prefix + "data/" + s->key;
            const auto st = statRecord(name);
            if (!st) fail(name, "missing from the zip archive (storage of a tensor)");
            if (s->dtype == DType::Unsupported) continue;
            const std::uint64_t need = static_cast<std::uint64_t>(s->numel) * itemSize(s->dtype);
            if (st->size < need)
                fail(name, "holds " + std::to_string(st->size) + " bytes; its " + s->type_name + " of " +
                               std::to_string(s->numel) + " elements needs " + std::to_string(need));
        }
    }

    // ---- legacy torch.save --------------------------------------------------------
    void openLegacy() {
        format = Format::TorchLegacy;
        const unsigned char* d = file->data();
        const std::size_t n = file->size();
        std::size_t pos = 0;
        auto next = [&](const char* what) {
            try {
                auto r = detail::unpickle(d, n, pos, arena);
                pos = r.end;
                return r;
            } catch (const PickleError& e) {
                fail(what, e.what());
            }
        };
        next("magic number");
        const auto version = next("protocol version");
        if (version.root->kind != Kind::Int || version.root->integer != 1001)
            fail("protocol version", "legacy torch.save protocol " + describe(*version.root) + " (expected 1001)");
        const auto sys_info = next("sys_info");
        if (const Value* le = sys_info.root->get("little_endian"); le && le->kind == Kind::Bool && !le->boolean)
            fail("sys_info", "big-endian checkpoints are not supported");
        const auto object = next("object");
        root = object.root;
        detail = "legacy torch.save, pickle protocol " + std::to_string(object.protocol);
        const auto keys = next("storage keys");
        locateLegacyStorages(*keys.root, pos);
    }
    void locateLegacyStorages(const Value& keys, std::size_t pos) {
        if (keys.kind != Kind::List) fail("storage keys", "not a list");
        for (const Value* k : keys.items) {
            const std::string key = k->kind == Kind::String ? k->text : k->kind == Kind::Int ? std::to_string(k->integer) : "";
            const auto it = arena.storage_by_key.find(key);
            if (it == arena.storage_by_key.end()) fail("storage " + key, "listed but used by no tensor");
            Storage& s = *it->second;
            const std::size_t item = storageItemSize(s);
            if (file->size() - pos < 8) fail("storage " + key, "truncated file (storage header missing)");
            std::int64_t numel;
            std::memcpy(&numel, file->data() + pos, 8);
            if (numel != s.numel)
                fail("storage " + key, "holds " + std::to_string(numel) + " elements; the pickle says " + std::to_string(s.numel));
            s.file_offset = pos + 8;
            const std::uint64_t bytes = static_cast<std::uint64_t>(numel) * item;
            if (numel < 0 || (item && bytes / item != static_cast<std::uint64_t>(numel)) || bytes > file->size() - s.file_offset)
                fail("storage " + key, "truncated file (" + std::to_string(numel) + " elements do not fit)");
            pos = static_cast<std::size_t>(s.file_offset + bytes);
        }
    }
    std::size_t storageItemSize(const Storage& s) const {
        if (s.dtype != DType::Unsupported) return itemSize(s.dtype);
        static const std::map<std::string, std::size_t> others = {
            {"ComplexFloatStorage", 8}, {"ComplexDoubleStorage", 16}, {"ComplexHalfStorage", 4},
            {"QInt8Storage", 1}, {"QUInt8Storage", 1}, {"QInt32Storage", 4}, {"QUInt4x2Storage", 1}, {"QUInt2x4Storage", 1}};
        const auto it = others.find(s.type_name);
        if (it == others.end()) fail("storage " + s.key, "storage type " + s.type_name + " of unknown element size");
        return it->second;
    }

    // ---- safetensors ----------------------------------------------------------
    void openSafetensors(std::uint64_t header_size) {
        format = Format::Safetensors;
        detail = "safetensors, header " + std::to_string(header_size) + " bytes";
        nlohmann::ordered_json header;
        try {
            header = nlohmann::ordered_json::parse(file->data() + 8, file->data() + 8 + header_size);
        } catch (const nlohmann::json::exception& e) {
            fail("header", std::string("invalid JSON: ") + e.what());
        }
        if (!header.is_object()) fail("header", "not a JSON object");
        const std::uint64_t data_begin = 8 + header_size, data_size = file->size() - data_begin;
        std::vector<Span> spans;
        Value* dict = arena.make(Kind::Dict);
        for (const auto& [name, entry] : header.items()) {
            if (name == "__metadata__") {
                readSafetensorsMetadata(entry);
                continue;
            }
            spans.push_back(safetensorsTensor(name, entry, data_begin, data_size, *dict));
        }
        std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
        for (std::size_t i = 1; i < spans.size(); ++i)
            if (spans[i].begin < spans[i - 1].end)
                fail(spans[i].name, "data_offsets overlap those of '" + spans[i - 1].name + "'");
        std::stable_sort(dict->entries.begin(), dict->entries.end(), [](const auto& a, const auto& b) {
            return a.second->tensor->storage->file_offset < b.second->tensor->storage->file_offset;
        });
        root = dict;
    }
    void readSafetensorsMetadata(const nlohmann::ordered_json& entry) {
        if (!entry.is_object()) fail("__metadata__", "not an object");
        for (const auto& [k, v] : entry.items()) {
            if (!v.is_string()) fail("__metadata__." + k, "not a string");
            metadata[k] = v.get<std::string>();
        }
    }
    struct Span {
        std::uint64_t begin, end;
        std::string name;
    };
    Span safetensorsTensor(const std::string& name, const nlohmann::ordered_json& e, std::uint64_t data_begin,
                           std::uint64_t data_size, Value& dict) {
        if (!e.is_object() || !e.contains("dtype") || !e["dtype"].is_string() || !e.contains("shape") ||
            !e["shape"].is_array() || !e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2)
            fail(name, "needs a string dtype, an array shape and two data_offsets");
        const DType dtype = safetensorsDType(name, e["dtype"].get<std::string>());
        auto t = std::make_unique<TensorRef>();
        std::int64_t numel = 1;
        for (const auto& d : e["shape"]) {
            if (!d.is_number_unsigned()) fail(name, "shape holds a value that is not a non-negative integer");
            const auto v = d.get<std::uint64_t>();
            if (v > (1ull << 62) || __builtin_mul_overflow(numel, static_cast<std::int64_t>(v), &numel)) fail(name, "shape too large");
            t->shape.push_back(static_cast<std::int64_t>(v));
        }
        for (const auto& o : e["data_offsets"])
            if (!o.is_number_unsigned()) fail(name, "data_offsets are not non-negative integers");
        const auto begin = e["data_offsets"][0].get<std::uint64_t>(), end = e["data_offsets"][1].get<std::uint64_t>();
        if (begin > end || end > data_size)
            fail(name, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] outside the " +
                           std::to_string(data_size) + " data bytes");
        std::uint64_t need;
        if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel), itemSize(dtype), &need) || need != end - begin)
            fail(name, "data_offsets span " + std::to_string(end - begin) + " bytes; " + std::to_string(numel) + " " +
                           e["dtype"].get<std::string>() + " elements need " + std::to_string(numel * static_cast<std::int64_t>(itemSize(dtype))));
        Storage* s = arena.storage(name, dtype, e["dtype"].get<std::string>(), numel, "cpu");
        s->file_offset = data_begin + begin;
        t->storage = s;
        t->stride.assign(t->shape.size(), 1);
        for (std::size_t i = t->shape.size(); i-- > 1;) t->stride[i - 1] = t->stride[i] * std::max<std::int64_t>(t->shape[i], 1);
        arena.tensors.push_back(std::move(t));
        Value* key = arena.make(Kind::String);
        key->text = name;
        Value* v = arena.make(Kind::Tensor);
        v->tensor = arena.tensors.back().get();
        dict.entries.emplace_back(key, v);
        return Span{begin, end, name};
    }
    DType safetensorsDType(const std::string& name, const std::string& code) const {
        static const std::map<std::string, DType> types = {
            {"F64", DType::F64}, {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"I64", DType::I64},
            {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},   {"U8", DType::U8},     {"BOOL", DType::Bool}};
        const auto it = types.find(code);
        if (it == types.end())
            fail(name, "dtype " + code + " is not supported (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
        return it->second;
    }

    // ---- common -----------------------------------------------------------------
    void runPickle(const unsigned char* d, std::size_t n, const std::string& object) {
        try {
            const auto r = detail::unpickle(d, n, 0, arena);
            root = r.root;
            if (format == Format::TorchZip) detail = "zip archive '" + prefix + "', pickle protocol " + std::to_string(r.protocol);
        } catch (const PickleError& e) {
            fail(object, e.what());
        }
    }
    // The storage's first `bytes` bytes (a pointer into the mapping, or into `buffer`).
    const unsigned char* storageBytes(const Storage& s, std::uint64_t bytes, std::vector<unsigned char>& buffer) const {
        if (format == Format::TorchLegacy || format == Format::Safetensors) return file->data() + s.file_offset;
        std::lock_guard<std::mutex> lock(zip_mutex);
        buffer = readRecord(prefix + "data/" + s.key, bytes);
        if (buffer.size() < bytes) fail(prefix + "data/" + s.key, "shorter than its storage");
        return buffer.data();
    }
};

namespace {

void gather(const unsigned char* src, std::size_t item, const TensorRef& t, std::size_t dim, std::int64_t offset,
            unsigned char*& out) {
    if (dim == t.shape.size()) {
        std::memcpy(out, src + static_cast<std::size_t>(offset) * item, item);
        out += item;
        return;
    }
    if (dim + 1 == t.shape.size() && t.stride[dim] == 1) { // a contiguous row
        const std::size_t n = static_cast<std::size_t>(t.shape[dim]) * item;
        std::memcpy(out, src + static_cast<std::size_t>(offset) * item, n);
        out += n;
        return;
    }
    for (std::int64_t i = 0; i < t.shape[dim]; ++i) gather(src, item, t, dim + 1, offset + i * t.stride[dim], out);
}

} // namespace

FileKind sniffFile(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return FileKind::Unreadable;
    if (!S_ISREG(st.st_mode)) return FileKind::Other; // a folder or a FIFO is never opened (a FIFO would block)
    std::ifstream in(path, std::ios::binary);
    if (!in) return FileKind::Unreadable;
    unsigned char head[16] = {};
    in.read(reinterpret_cast<char*>(head), sizeof head);
    const auto n = static_cast<std::size_t>(in.gcount());
    const auto starts = [&](const void* magic, std::size_t k) { return n >= k && std::memcmp(head, magic, k) == 0; };
    if (starts("\x89HDF\r\n\x1a\n", 8)) return FileKind::RunFile;
    if (starts("PK\x03\x04", 4) || starts("PK\x05\x06", 4) || starts(kLegacyMagic, sizeof kLegacyMagic))
        return FileKind::Checkpoint;
    if (n > 9 && head[8] == '{') return FileKind::Checkpoint; // safetensors: a length, then the JSON header
    return FileKind::Other;
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& path) {
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->file = std::make_unique<MappedFile>(path);
    const MappedFile& f = *impl->file;
    std::uint64_t header = 0;
    if (f.size() >= 8) std::memcpy(&header, f.data(), 8);
    try {
        if (f.startsWith("PK\x03\x04", 4) || f.startsWith("PK\x05\x06", 4)) {
            impl->openZip();
        } else if (f.startsWith(kLegacyMagic, sizeof kLegacyMagic)) {
            impl->openLegacy();
        } else if (f.size() > 9 && f.data()[8] == '{') {
            if (header > f.size() - 8)
                impl->fail("header", "declares " + std::to_string(header) + " header bytes; the file has " +
                                         std::to_string(f.size()) + " (truncated?)");
            if (header > kMaxSafetensorsHeader) impl->fail("header", "larger than 100 MB");
            impl->openSafetensors(header);
        } else {
            const bool hdf5 = f.startsWith("\x89HDF\r\n\x1a\n", 8);
            impl->fail("", hdf5 ? "an HDF5 file, not a checkpoint (run files open with ltlab analyze or the workbench)"
                                : "not a checkpoint: expected a PyTorch zip (torch.save), a legacy torch.save file or safetensors");
        }
    } catch (const PickleError& e) {
        impl->fail("", e.what());
    }
    return std::unique_ptr<Checkpoint>(new Checkpoint(std::move(impl)));
}

Checkpoint::Checkpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Checkpoint::~Checkpoint() = default;
const std::string& Checkpoint::path() const { return impl_->path; }
Format Checkpoint::format() const { return impl_->format; }
std::string Checkpoint::formatDetail() const { return impl_->detail; }
const Value& Checkpoint::root() const { return *impl_->root; }
const std::map<std::string, std::string>& Checkpoint::metadata() const { return impl_->metadata; }
std::size_t Checkpoint::numStorages() const { return impl_->arena.storages.size(); }

DenseTensor Checkpoint::read(const TensorRef& t) const {
    const Storage& s = *t.storage;
    if (s.dtype == DType::Unsupported) impl_->fail("storage " + s.key, "dtype " + s.type_name + " is not supported");
    DenseTensor out;
    out.dtype = s.dtype;
    out.shape = t.shape;
    const std::size_t item = itemSize(s.dtype);
    const auto n = static_cast<std::size_t>(t.numel());
    out.bytes.resize(n * item);
    if (n == 0) return out;
    std::int64_t last = t.offset; // checked against the storage size when unpickled
    for (std::size_t i = 0; i < t.shape.size(); ++i) last += (t.shape[i] - 1) * t.stride[i];
    std::vector<unsigned char> buffer;
    const unsigned char* src = impl_->storageBytes(s, static_cast<std::uint64_t>(last + 1) * item, buffer);
    unsigned char* dst = out.bytes.data();
    gather(src, item, t, 0, t.offset, dst);
    return out;
}

} // namespace ltlab::ckpt
