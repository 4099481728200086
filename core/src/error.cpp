#include "ltlab/error.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ltlab/input_file.h"

namespace ltlab {

static std::string compose(const std::string& file, const std::string& object, const std::string& problem) {
    std::string message = file;
    if (!object.empty()) message += ": " + object;
    return message + ": " + problem;
}

InputError::InputError(std::string file, std::string object, const std::string& problem)
    : std::runtime_error(compose(file, object, problem)), file_(std::move(file)), object_(std::move(object)) {}

static std::string megabytes(std::uintmax_t bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3g MB", static_cast<double>(bytes) / 1e6);
    return b;
}

std::uintmax_t requireRegularFile(const std::string& path, const std::string& what, std::uintmax_t max_bytes) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int err = errno;
        throw InputError(path, "", err == ENOENT ? std::string("no such file") : std::string("cannot read: ") + std::strerror(err));
    }
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : nullptr;
    if (!S_ISREG(st.st_mode))
        throw InputError(path, "", std::string("is ") + (kind ? kind : "not a regular file") + ", not a " + what +
                                       " (only regular files are read)");
    const auto size = static_cast<std::uintmax_t>(st.st_size);
    if (max_bytes && size > max_bytes)
        throw InputError(path, "", "is " + megabytes(size) + "; a " + what + " may have at most " + megabytes(max_bytes));
    return size;
}

std::string readSmallFile(const std::string& path, const std::string& what, std::uintmax_t max_bytes) {
    requireRegularFile(path, what, max_bytes);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path, "", "cannot read the " + what + ": " + std::strerror(errno));
    std::string text;
    text.resize(static_cast<std::size_t>(max_bytes) + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes) // grew since the stat
        throw InputError(path, "", "a " + what + " may have at most " + megabytes(max_bytes));
    return text;
}

void requireOutputFolder(const std::string& path) {
    namespace fs = std::filesystem;
    fs::path folder = fs::path(path).parent_path();
    if (folder.empty()) return; // the working directory
    std::error_code ec;
    const auto status = fs::status(folder, ec);
    if (!fs::exists(status))
        throw InputError(path, "", "cannot create the file: the folder " + folder.string() + " does not exist");
    if (!fs::is_directory(status))
        throw InputError(path, "", "cannot create the file: " + folder.string() + " is not a folder");
}

std::string escapeControl(const std::string& text) {
    // C0 controls, DEL, and the C1 controls U+0080..U+009F in UTF-8 (C2 80..C2 9F; U+009B is a CSI).
    const auto c1 = [&](std::size_t i) {
        return static_cast<unsigned char>(text[i]) == 0xc2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 && static_cast<unsigned char>(text[i + 1]) <= 0x9f;
    };
    bool needed = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f || c1(i)) needed = true;
    }
    if (!needed) return text;
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c1(i)) {
            char b[12];
            std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned char>(text[++i]));
            out += b;
            continue;
        }
        switch (c) {
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        case 0x1b: out += "\\e"; break;
        case '\\': out += "\\\\"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char b[8];
                std::snprintf(b, sizeof b, "\\x%02x", c);
                out += b;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out;
}

} // namespace ltlab
