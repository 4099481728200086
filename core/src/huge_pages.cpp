#include "huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace ltlab {

void preferHugePages(void* data, std::size_t bytes) {
    constexpr std::uintptr_t kHugePage = std::uintptr_t{1} << 21;
    const auto begin = reinterpret_cast<std::uintptr_t>(data);
    const std::uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1), last = (begin + bytes) & ~(kHugePage - 1);
    if (data == nullptr || last <= first) return;
#ifdef MADV_HUGEPAGE
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE); // a hint: its failure changes nothing
#endif
}

} // namespace ltlab
