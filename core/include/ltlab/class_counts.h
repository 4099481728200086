#pragma once
// Per-class training counts from a file (`--counts` of inspect and import).

#include <cstdint>
#include <string>
#include <vector>

namespace ltlab {

// A JSON list or {"train_counts": [...]}, a run file, or text; at least 2
// counts, none negative. Throws InputError naming the file.
std::vector<std::int64_t> readCounts(const std::string& path);

} // namespace ltlab
