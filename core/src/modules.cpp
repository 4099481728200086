#include "ltlab/modules.h"

#include <dlfcn.h>

#include <filesystem>

#include "ltlab/error.h"

namespace ltlab {

void* loadModule(const std::string& file_name) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    const fs::path dir = ec ? fs::current_path() : exe.parent_path();
    const fs::path candidates[] = {dir / file_name, dir / LTLAB_MODULE_RELDIR / file_name};
    std::string tried;
    for (const fs::path& path : candidates) {
        if (!fs::exists(path, ec)) {
            tried += "\n  " + path.lexically_normal().string() + ": not found";
            continue;
        }
        if (void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
        tried += std::string("\n  ") + dlerror();
    }
    throw UsageError("cannot load the module " + file_name + ":" + tried);
}

} // namespace ltlab
