// Starts the Qt workbench, which lives in its own shared module
// (libltlab_ui.so) loaded only here: headless subcommands never load Qt,
// QCustomPlot or VTK, so `ltlab analyze` starts in milliseconds.

#include <dlfcn.h>

#include <iostream>

#include "commands.h"
#include "ltlab/error.h"
#include "ltlab/modules.h"

namespace ltlab::app {

int runWorkbench(int argc, char** argv) {
    try {
        void* module = loadModule("libltlab_ui.so");
        using Entry = int (*)(int, char**);
        auto entry = reinterpret_cast<Entry>(dlsym(module, "ltlab_ui_main"));
        if (!entry) throw UsageError("libltlab_ui.so has no ltlab_ui_main");
        return entry(argc, argv);
    } catch (const UsageError& e) {
        std::cerr << "ltlab: cannot start the workbench: " << e.what()
                  << "\nThe headless commands work without it (see ltlab --help).\n";
        return kExitUsage;
    }
}

} // namespace ltlab::app
