#pragma once
// Shared by the libFuzzer harnesses: inputs become files in a private temp
// folder (the readers take paths), ltlab's own exceptions are the expected
// way to refuse input; anything else (a signal, a sanitizer report, another
// exception escaping) is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <unistd.h>

#include "ltlab/error.h"

namespace ltlab_fuzz {

inline const std::string& tempDir() {
    static const std::string dir = [] {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base && *base ? base : "/tmp") + "/ltlab_fuzz_XXXXXX";
        if (!mkdtemp(pattern.data())) std::abort();
        return pattern;
    }();
    return dir;
}

inline std::string writeFile(const std::string& name, const std::uint8_t* data, std::size_t size) {
    const std::string path = tempDir() + "/" + name;
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
    return path;
}

// Runs `body`; ltlab's refusals (InputError, UsageError and their base
// std::runtime_error) are fine, and so is bad_alloc only when the harness
// allows it (it should not happen: sizes are checked before allocating).
template <class F> void expectRefusalOrSuccess(F&& body) {
    try {
        body();
    } catch (const ltlab::InputError&) {
    } catch (const ltlab::UsageError&) {
    }
}

} // namespace ltlab_fuzz
