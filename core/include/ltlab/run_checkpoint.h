#pragma once
// Verified training checkpoints (RUN.h5.ckpt, docs/reliability.md). A
// checkpoint is a short text header followed by libtorch's archive:
//
//   LTLAB-CHECKPOINT 1\n
//   run_id <32 hex digits, or - for a run written before run ids>\n
//   epoch <finished epochs>\n
//   size <bytes of the archive>\n
//   sha256 <64 hex digits: SHA-256 of the archive>\n
//   \n
//   <the archive>
//
// and the run file's root attributes name the checkpoint it expects:
// `run_id` (made when the run is created), `checkpoint_epoch` and
// `checkpoint_sha256` (the checkpoint of its last finished epoch), and
// `checkpoint_previous_epoch` / `checkpoint_previous_sha256` (the one before:
// the epoch's record is committed before its checkpoint replaces the old one,
// so a kill between the two leaves the previous checkpoint, which resume
// accepts and trains that epoch again). Everything here is read and checked
// before libtorch parses a byte or anything is changed.
// No libtorch here: the app verifies before it touches the run (--resume
// --epochs N changes the run file before training starts).

#include <cstdint>
#include <optional>
#include <string>

namespace ltlab {

std::string sha256Hex(const std::string& bytes);
std::string newRunId(); // 32 random hex digits

// The header plus the archive, as written to RUN.h5.ckpt.
std::string checkpointEnvelope(const std::string& run_id, std::int64_t epoch, const std::string& archive);

struct RunCheckpointRecord { // the run file's root attributes, when present
    std::optional<std::string> run_id;
    std::optional<std::int64_t> epoch, previous_epoch;
    std::optional<std::string> sha256, previous_sha256;
};
RunCheckpointRecord readRunCheckpointRecord(const std::string& run_path);

struct VerifiedCheckpoint {
    bool exists = false;
    bool verified = false;           // checksum and identity checked; false: an old checkpoint or run (see warning)
    bool previous = false;           // it is the run's previous checkpoint (killed before the last one was in place)
    std::optional<std::int64_t> epoch;
    std::string run_id;              // the header's ("" when none)
    std::string sha256;              // of the archive
    std::string archive;             // what libtorch reads
    std::string warning;             // why it could not be verified, or ""
};
// Reads and checks `checkpoint_path` against the run file `run_path`: throws
// InputError naming the checkpoint and the problem when it is damaged
// (checksum, size, header) or not this run's (run id, epoch). A missing
// checkpoint gives exists == false.
VerifiedCheckpoint verifyRunCheckpoint(const std::string& run_path, const std::string& checkpoint_path);
// The checksum alone (a checkpoint this process verified or wrote before).
VerifiedCheckpoint readCheckpointFile(const std::string& checkpoint_path);

} // namespace ltlab
