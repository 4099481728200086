// Transactions on run files: copy, change the copy, flush, rename.

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "ltlab/input_file.h"
#include "ltlab/error.h"
#include "ltlab/run_writer.h"

namespace ltlab {

namespace {

class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_;
};

std::string systemError(const std::string& what) { return what + ": " + std::strerror(errno); }

// Copies `from` to `to` (created or truncated): a reflink when the file system
// shares extents (btrfs, XFS), else copy_file_range, else read/write.
void copyFileContents(const std::string& from, const std::string& to) {
    FileDescriptor in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) throw InputError(from, "", systemError("cannot open for copying"));
    struct stat st {};
    if (::fstat(in.get(), &st) != 0) throw InputError(from, "", systemError("cannot stat"));
    FileDescriptor out(::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777));
    if (!out) throw InputError(to, "", systemError("cannot create"));
    if (::ioctl(out.get(), FICLONE, in.get()) == 0) return;
    off_t left = st.st_size;
    bool kernel_copy = true;
    std::vector<char> buffer;
    while (left > 0) {
        ssize_t n = -1;
        if (kernel_copy) {
            n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, static_cast<std::size_t>(left), 0);
            if (n < 0 && (errno == ENOSYS || errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
                kernel_copy = false; // e.g. an old kernel or a network file system
                continue;
            }
        } else {
            buffer.resize(1 << 20);
            n = ::read(in.get(), buffer.data(), buffer.size());
            if (n > 0) {
                for (ssize_t done = 0; done < n;) {
                    const ssize_t w = ::write(out.get(), buffer.data() + done, static_cast<std::size_t>(n - done));
                    if (w < 0 && errno == EINTR) continue;
                    if (w <= 0) throw InputError(to, "", systemError("cannot write the copy"));
                    done += w;
                }
            }
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw InputError(to, "", systemError("cannot copy " + from));
        if (n == 0) throw InputError(from, "", "file shrank while it was being copied");
        left -= n;
    }
}

void syncFile(const std::string& path) {
    FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ::fsync(fd.get()) != 0) throw InputError(path, "", systemError("cannot flush to disk"));
}

void syncDirectoryOf(const std::string& path) {
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
    FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd) ::fsync(fd.get()); // best effort: some file systems refuse fsync on directories
}

// Runs `write(partial)`, then makes the partial file durable and renames it
// over `path`; on failure removes the partial file and rethrows.
template <class Write>
void commitAtomically(const std::string& path, const std::string* copy_from, Write&& write) {
    requireOutputFolder(path); // else HDF5 fails with no reason to give
    const std::string partial = partialPathFor(path);
    try {
        if (copy_from) copyFileContents(*copy_from, partial);
        write(partial);
        replaceFileDurably(partial, path);
    } catch (...) {
        std::error_code ignored;
        std::filesystem::remove(partial, ignored);
        throw;
    }
}

} // namespace

std::string partialPathFor(const std::string& path) { return path + ".partial"; }

void replaceFileDurably(const std::string& written, const std::string& path) {
    syncFile(written);
    if (::rename(written.c_str(), path.c_str()) != 0) throw InputError(path, "", systemError("cannot replace"));
    syncDirectoryOf(path);
}

void createRunFile(const std::string& path, const ClassInfo& classes, const std::optional<std::string>& config_json,
                   const std::function<void(RunFileWriter&)>& fill) {
    commitAtomically(path, nullptr, [&](const std::string& partial) {
        RunFileWriter writer(partial, classes, config_json);
        if (fill) fill(writer);
        writer.close();
    });
}

void updateRunFile(const std::string& path, const std::function<void(RunFileWriter&)>& change) {
    if (!std::filesystem::is_regular_file(path)) throw InputError(path, "", "no run file to update");
    commitAtomically(path, &path, [&](const std::string& partial) {
        RunFileWriter writer(partial);
        change(writer);
        writer.close();
    });
}

void updateRunFileCopy(const std::string& from, const std::string& to,
                       const std::function<void(RunFileWriter&)>& change) {
    if (!std::filesystem::is_regular_file(from)) throw InputError(from, "", "no run file to copy");
    commitAtomically(to, &from, [&](const std::string& partial) {
        RunFileWriter writer(partial);
        change(writer);
        writer.close();
    });
}

} // namespace ltlab
