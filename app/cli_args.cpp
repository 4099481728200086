#include "cli_args.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "ltlab/error.h"

namespace ltlab::cli {

long long maxThreads() {
    const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    return 4 * std::max(1L, cores);
}

Args::Args(std::vector<OptionSpec> specs, std::vector<std::string> argv) : specs_(std::move(specs)) {
    bool only_positional = false;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        if (only_positional || arg.size() < 2 || arg.rfind("--", 0) != 0) {
            if (!only_positional && arg.size() > 1 && arg[0] == '-' && arg != "-")
                throw UsageError("unknown option '" + arg + "' (see --help)");
            positional_.push_back(arg);
            continue;
        }
        if (arg == "--") {
            only_positional = true;
            continue;
        }
        std::string name = arg.substr(2);
        std::optional<std::string> inline_value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            inline_value = name.substr(eq + 1);
            name.resize(eq);
        }
        auto spec = std::find_if(specs_.begin(), specs_.end(), [&](const OptionSpec& s) { return s.name == name; });
        if (spec == specs_.end()) throw UsageError("unknown option '--" + name + "' (see --help)");
        if (spec->value_name.empty()) {
            if (inline_value) throw UsageError("option '--" + name + "' takes no value");
            values_[name] = "";
        } else if (inline_value) {
            values_[name] = *inline_value;
        } else {
            if (i + 1 >= argv.size()) throw UsageError("option '--" + name + "' needs a value (" + spec->value_name + ")");
            values_[name] = argv[++i];
        }
    }
}

std::optional<std::string> Args::value(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? std::nullopt : std::optional<std::string>(it->second);
}

std::optional<long long> Args::integer(const std::string& name, long long min_value) const {
    auto text = value(name);
    if (!text) return std::nullopt;
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(text->c_str(), &end, 10);
    if (text->empty() || *end != '\0' || errno == ERANGE)
        throw UsageError("--" + name + " expects an integer, got '" + *text + "'");
    if (v < min_value)
        throw UsageError("--" + name + " must be at least " + std::to_string(min_value) + ", got " + *text);
    if (name == "threads" && v > maxThreads()) // thousands of threads never finish starting
        throw UsageError("--threads must be at most " + std::to_string(maxThreads()) + " (4 x the " +
                         std::to_string(maxThreads() / 4) + " cores; 0: all cores), got " + *text);
    return v;
}

std::optional<double> Args::number(const std::string& name) const {
    auto text = value(name);
    if (!text) return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(text->c_str(), &end);
    if (text->empty() || *end != '\0' || !std::isfinite(v))
        throw UsageError("--" + name + " expects a number, got '" + *text + "'");
    return v;
}

std::string Args::choice(const std::string& name, const std::vector<std::string>& allowed,
                         const std::string& fallback) const {
    auto text = value(name);
    if (!text) return fallback;
    if (std::find(allowed.begin(), allowed.end(), *text) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        throw UsageError("--" + name + " must be one of " + list + ", got '" + *text + "'");
    }
    return *text;
}

std::string Args::optionsHelp() const {
    std::string out = "Options:\n";
    for (const auto& s : specs_) {
        std::string left = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
        if (left.size() < 28) left.resize(28, ' ');
        else left += "\n" + std::string(28, ' ');
        // The help wrapped at word boundaries to 100 columns, continued under itself.
        std::string line;
        std::size_t start = 0;
        bool first = true;
        while (start < s.help.size()) {
            std::size_t end = s.help.find(' ', start);
            if (end == std::string::npos) end = s.help.size();
            const std::string word = s.help.substr(start, end - start);
            if (!line.empty() && 28 + line.size() + 1 + word.size() > 100) {
                out += (first ? left : std::string(28, ' ')) + line + "\n";
                first = false;
                line.clear();
            }
            line += (line.empty() ? "" : " ") + word;
            start = end + 1;
        }
        out += (first ? left : std::string(28, ' ')) + line + "\n";
    }
    return out;
}

} // namespace ltlab::cli
