// Verified checkpoints: the envelope, SHA-256 and the run file's record of
// the checkpoint it expects (ltlab/run_checkpoint.h, docs/reliability.md).

#include "ltlab/run_checkpoint.h"

#include <array>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

#include "ltlab/error.h"
#include "ltlab/input_file.h"
#include "hdf5_util.h"

namespace ltlab {

namespace {

const char* const kMagic = "LTLAB-CHECKPOINT 1\n";

// FIPS 180-4 SHA-256 (core has no crypto library; this is the whole of it).
class Sha256 {
public:
    void update(const unsigned char* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            block_[fill_++] = p[i];
            if (fill_ == 64) {
                compress();
                fill_ = 0;
            }
        }
        bits_ += std::uint64_t(n) * 8;
    }
    std::string hex() {
        const std::uint64_t bits = bits_;
        const unsigned char one = 0x80, zero = 0;
        update(&one, 1);
        while (fill_ != 56) update(&zero, 1);
        for (int i = 7; i >= 0; --i) {
            const unsigned char b = static_cast<unsigned char>(bits >> (8 * i));
            update(&b, 1);
        }
        static const char* digits = "0123456789abcdef";
        std::string out;
        for (std::uint32_t v : h_)
            for (int i = 7; i >= 0; --i) out += digits[(v >> (4 * i)) & 15];
        return out;
    }

private:
    static std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
    void compress() {
        static const std::uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
            0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
            0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
            0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
            0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
            0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
        std::uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = std::uint32_t(block_[4 * i]) << 24 | std::uint32_t(block_[4 * i + 1]) << 16 |
                   std::uint32_t(block_[4 * i + 2]) << 8 | std::uint32_t(block_[4 * i + 3]);
        for (int i = 16; i < 64; ++i) {
            const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
        for (int i = 0; i < 64; ++i) {
            const std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        h_[0] += a; h_[1] += b; h_[2] += c; h_[3] += d; h_[4] += e; h_[5] += f; h_[6] += g; h_[7] += h;
    }

    std::array<std::uint32_t, 8> h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char block_[64];
    std::size_t fill_ = 0;
    std::uint64_t bits_ = 0;
};

bool isHex(const std::string& s, std::size_t n) {
    return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string shortSha(const std::string& s) { return s.substr(0, 12); }

} // namespace

std::string sha256Hex(const std::string& bytes) {
    Sha256 h;
    h.update(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    return h.hex();
}

std::string newRunId() {
    std::random_device device;
    std::string id;
    static const char* digits = "0123456789abcdef";
    for (int i = 0; i < 32; ++i) id += digits[device() & 15];
    return id;
}

std::string checkpointEnvelope(const std::string& run_id, std::int64_t epoch, const std::string& archive) {
    std::ostringstream out;
    out << kMagic << "run_id " << (run_id.empty() ? "-" : run_id) << "\nepoch " << epoch << "\nsize " << archive.size()
        << "\nsha256 " << sha256Hex(archive) << "\n\n";
    return out.str() + archive;
}

RunCheckpointRecord readRunCheckpointRecord(const std::string& run_path) {
    h5::Lock lock(h5::hdf5Mutex());
    h5::silenceLibraryErrors();
    const h5::Handle file(H5Fopen(run_path.c_str(), H5F_ACC_RDONLY, h5::unlockedFileAccess().get()));
    if (!file) throw InputError(run_path, "", "cannot open the run file: " + h5::lastLibraryError());
    RunCheckpointRecord r;
    auto text = [&](const char* name) -> std::optional<std::string> {
        const auto a = h5::readAttribute(file.get(), name);
        if (!a) return std::nullopt;
        if (!a->text) throw InputError(run_path, std::string("/") , std::string("attribute '") + name + "' is not a string");
        return a->text;
    };
    auto integer = [&](const char* name) -> std::optional<std::int64_t> {
        const auto a = h5::readAttribute(file.get(), name);
        if (!a) return std::nullopt;
        if (!a->integer) throw InputError(run_path, "/", std::string("attribute '") + name + "' is not an integer");
        return a->integer;
    };
    r.run_id = text("run_id");
    r.sha256 = text("checkpoint_sha256");
    r.previous_sha256 = text("checkpoint_previous_sha256");
    r.epoch = integer("checkpoint_epoch");
    r.previous_epoch = integer("checkpoint_previous_epoch");
    return r;
}

VerifiedCheckpoint readCheckpointFile(const std::string& path) {
    VerifiedCheckpoint v;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return v;
    v.exists = true;
    const std::uintmax_t size_now = requireRegularFile(path, "checkpoint"); // a FIFO would block
    std::string bytes = readSmallFile(path, "checkpoint", size_now + 4096);  // it allocates its bound
    const std::size_t magic = std::strlen(kMagic);
    if (bytes.compare(0, magic, kMagic) != 0) {
        if (bytes.compare(0, 16, "LTLAB-CHECKPOINT") == 0)
            throw InputError(path, "", "a checkpoint of a newer format than this ltlab reads");
        v.archive = std::move(bytes); // written before checkpoints carried a checksum
        v.warning = "has no checksum (written by an ltlab before verified checkpoints): it cannot be verified";
        return v;
    }
    const std::size_t end = bytes.find("\n\n", magic);
    if (end == std::string::npos || end > 4096)
        throw InputError(path, "", "damaged: its header does not end (" + std::to_string(bytes.size()) + " bytes)");
    std::istringstream header(bytes.substr(magic, end + 1 - magic));
    std::string key, value, run_id, sha;
    std::optional<std::int64_t> epoch;
    std::optional<std::uint64_t> size;
    while (header >> key >> value) {
        try {
            if (key == "run_id") run_id = value;
            else if (key == "epoch") epoch = std::stoll(value);
            else if (key == "size") size = std::stoull(value);
            else if (key == "sha256") sha = value;
        } catch (const std::exception&) {
            throw InputError(path, "", "damaged: header field '" + key + "' is '" + value + "'");
        }
    }
    if (!epoch || *epoch < 0 || !size || !isHex(sha, 64) || (run_id != "-" && !isHex(run_id, 32)))
        throw InputError(path, "", "damaged: its header lacks or garbles run_id, epoch, size or sha256");
    v.archive = bytes.substr(end + 2);
    if (v.archive.size() != *size)
        throw InputError(path, "", "damaged: its archive has " + std::to_string(v.archive.size()) + " bytes, its header says " +
                                       std::to_string(*size) + " (truncated or extended)");
    v.sha256 = sha256Hex(v.archive);
    if (v.sha256 != sha)
        throw InputError(path, "", "damaged: the SHA-256 of its archive is " + shortSha(v.sha256) + "..., its header says " +
                                       shortSha(sha) + "... (the file changed after ltlab wrote it)");
    v.epoch = epoch;
    v.verified = true; // checksum; the identity is checked against the run below
    if (run_id != "-") v.run_id = run_id;
    return v;
}

VerifiedCheckpoint verifyRunCheckpoint(const std::string& run_path, const std::string& path) {
    const RunCheckpointRecord expected = readRunCheckpointRecord(run_path);
    VerifiedCheckpoint v = readCheckpointFile(path);
    if (!v.exists) return v;
    const bool had_header = v.verified;
    const std::string& ckpt_run = v.run_id;
    if (!expected.run_id) { // a run file written before run ids: the checksum alone
        if (!had_header) v.warning = "has no checksum (written by an ltlab before verified checkpoints): it cannot be verified";
        else v.warning = "cannot be checked against " + run_path + ", which predates run ids: only its checksum was verified";
        v.verified = false;
        return v;
    }
    if (!had_header)
        throw InputError(path, "", "damaged or not this run's: it has no ltlab checkpoint header, but " + run_path +
                                       " (run " + *expected.run_id + ") expects a verified checkpoint");
    if (ckpt_run != *expected.run_id)
        throw InputError(path, "", "belongs to another run (run id " + (ckpt_run.empty() ? std::string("none") : ckpt_run) +
                                       "; " + run_path + " is run " + *expected.run_id + "): refusing to resume from it");
    if (expected.epoch && expected.sha256 && *v.epoch == *expected.epoch && v.sha256 == *expected.sha256) return v;
    if (expected.previous_epoch && expected.previous_sha256 && *v.epoch == *expected.previous_epoch &&
        v.sha256 == *expected.previous_sha256) {
        v.previous = true;
        return v;
    }
    throw InputError(path, "", "is the checkpoint of epoch " + std::to_string(*v.epoch) + " (sha256 " + shortSha(v.sha256) +
                                   "...), but " + run_path + " expects epoch " +
                                   (expected.epoch ? std::to_string(*expected.epoch) : std::string("?")) + " (sha256 " +
                                   shortSha(expected.sha256.value_or("?")) + "...): not the run's current checkpoint");
}

} // namespace ltlab
