// Class counts from a file: JSON (a list, or {"train_counts": [...]}), an
// HDF5 run file (its /classes/train_counts), or text (integers separated by
// spaces, commas, semicolons or newlines).

#include "ltlab/class_counts.h"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ltlab/error.h"
#include "ltlab/input_file.h"
#include "ltlab/run_file.h"

namespace ltlab {

namespace {

constexpr std::uintmax_t kMaxCountsBytes = 256ull << 20; // text and JSON lists (run files: any size)

std::vector<std::int64_t> countsFromJson(const std::string& path) {
    std::ifstream in(path);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) throw InputError(path, "", "not valid JSON");
    const nlohmann::json* list = &j;
    for (const char* key : {"train_counts", "counts"})
        if (j.is_object() && j.contains(key)) list = &j[key];
    if (!list->is_array()) throw InputError(path, "", "expected a list of counts or {\"train_counts\": [...]}");
    std::vector<std::int64_t> out;
    for (const auto& v : *list) {
        if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
            throw InputError(path, "", "count " + std::to_string(out.size()) + " is not a non-negative integer: " + v.dump());
        out.push_back(v.get<std::int64_t>());
    }
    return out;
}

std::vector<std::int64_t> countsFromText(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw InputError(path, "", "cannot open");
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::string text = buffer.str();
    for (char& c : text)
        if (c == ',' || c == ';') c = ' ';
    std::istringstream words(text);
    std::vector<std::int64_t> out;
    for (std::string w; words >> w;) {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(w.c_str(), &end, 10);
        if (errno == ERANGE) throw InputError(path, "", "count '" + w + "' does not fit in 64 bits");
        if (*end != '\0' || v < 0) throw InputError(path, "", "'" + w + "' is not a non-negative integer count");
        out.push_back(v);
    }
    return out;
}

} // namespace

std::vector<std::int64_t> readCounts(const std::string& path) {
    requireRegularFile(path, "counts file"); // before opening: a FIFO would block
    std::ifstream probe(path, std::ios::binary);
    char magic[8] = {};
    probe.read(magic, 8);
    if (std::string(magic, 8) == "\x89HDF\r\n\x1a\n") return RunFile::open(path)->classes().train_counts;
    requireRegularFile(path, "counts file", kMaxCountsBytes); // text and JSON are read whole
    const auto ext = std::filesystem::path(path).extension().string();
    std::vector<std::int64_t> counts = ext == ".json" ? countsFromJson(path) : countsFromText(path);
    if (counts.size() < 2) throw InputError(path, "", "needs at least 2 class counts, found " + std::to_string(counts.size()));
    std::int64_t total = 0;
    for (std::size_t c = 0; c < counts.size(); ++c)
        if (__builtin_add_overflow(total, counts[c], &total))
            throw InputError(path, "", "the counts add up to more than 2^63 - 1 (overflow at class " + std::to_string(c) + ")");
    if (total == 0) throw InputError(path, "", "all counts are zero: the class prior is undefined");
    return counts;
}

} // namespace ltlab
