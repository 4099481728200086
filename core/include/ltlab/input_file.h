#pragma once
// Checks made before a file is opened, so that a FIFO, a device or a folder
// given as input is refused at once (a FIFO would block the open, /dev/zero
// would be read until memory runs out) and an output in a missing folder is
// reported as such. Every failure is an InputError naming the file.

#include <cstdint>
#include <string>

namespace ltlab {

// The file's size; throws unless `path` is an existing regular file (links
// followed) of at most `max_bytes` bytes (0: any size). `what` names the
// role in the message ("run file", "config file").
std::uintmax_t requireRegularFile(const std::string& path, const std::string& what, std::uintmax_t max_bytes = 0);

// The whole file, after requireRegularFile(path, what, max_bytes).
std::string readSmallFile(const std::string& path, const std::string& what, std::uintmax_t max_bytes);

// Throws when the folder that would hold the output `path` does not exist or is not a folder.
void requireOutputFolder(const std::string& path);

// `text` with control characters (and DEL) escaped as \n, \t, \r, \e or \xHH,
// and backslashes doubled only when something was escaped, for text meant
// for a terminal. Valid UTF-8 passes through.
std::string escapeControl(const std::string& text);

} // namespace ltlab
