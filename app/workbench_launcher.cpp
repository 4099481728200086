// Starts the Qt workbench, which lives in its own shared module
// (libltlab_ui.so) loaded only here: headless subcommands never load Qt,
// QCustomPlot or VTK, so `ltlab analyze` starts in milliseconds.

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "commands.h"

namespace ltlab::app {

namespace {

std::filesystem::path executableDir() {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::filesystem::current_path() : exe.parent_path();
}

} // namespace

int runWorkbench(int argc, char** argv) {
    const std::filesystem::path dir = executableDir();
    const std::filesystem::path candidates[] = {
        dir / "libltlab_ui.so",                        // build tree
        dir / LTLAB_MODULE_RELDIR / "libltlab_ui.so",  // installed
    };
    std::string errors;
    for (const auto& path : candidates) {
        if (!std::filesystem::exists(path)) continue;
        void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!module) {
            errors += std::string("\n  ") + dlerror();
            continue;
        }
        using Entry = int (*)(int, char**);
        auto entry = reinterpret_cast<Entry>(dlsym(module, "ltlab_ui_main"));
        if (!entry) {
            errors += "\n  " + path.string() + ": no ltlab_ui_main";
            continue;
        }
        return entry(argc, argv);
    }
    std::cerr << "ltlab: cannot start the workbench: module libltlab_ui.so "
              << (errors.empty() ? "not found next to the executable or in " LTLAB_MODULE_RELDIR : "failed to load:")
              << errors << "\nThe headless subcommands work without it (see ltlab --help).\n";
    return kExitUsage;
}

} // namespace ltlab::app
