#pragma once
// ltlab's on-demand modules (the workbench, training) are shared libraries
// found next to the executable (build tree) or in ../lib/ltlab (installed).

#include <string>

namespace ltlab {

// dlopen()s the module; throws UsageError listing where it looked and why it failed.
// The handle stays open for the life of the process.
void* loadModule(const std::string& file_name);

} // namespace ltlab
