#pragma once
// A small command-line parser for ltlab's subcommands: --name VALUE,
// --name=VALUE and flags; every mistake is a UsageError naming the option
// (the command that catches it names itself: app::guarded).

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ltlab::cli {

struct OptionSpec {
    std::string name;        // without the leading dashes
    std::string value_name;  // empty for a flag
    std::string help;
};

// The most threads --threads accepts (every command): 4 x the online cores.
long long maxThreads();

class Args {
public:
    Args(std::vector<OptionSpec> specs, std::vector<std::string> argv);

    bool flag(const std::string& name) const { return values_.count(name) > 0; }
    std::optional<std::string> value(const std::string& name) const;
    std::optional<long long> integer(const std::string& name, long long min_value) const;
    std::optional<double> number(const std::string& name) const;
    // One of `allowed`, or the default.
    std::string choice(const std::string& name, const std::vector<std::string>& allowed, const std::string& fallback) const;
    const std::vector<std::string>& positional() const { return positional_; }

    std::string optionsHelp() const;

private:
    std::vector<OptionSpec> specs_;
    std::map<std::string, std::string> values_;
    std::vector<std::string> positional_;
};

} // namespace ltlab::cli
