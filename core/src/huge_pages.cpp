#include "huge_pages.h"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <mutex>

namespace ltlab {

namespace {

constexpr std::uintptr_t kHugePage = std::uintptr_t{1} << 21;

// glibc's defaults and limits (mallopt(3)): the largest mmap threshold it
// accepts on 64-bit systems, and the top pad it starts with.
constexpr std::size_t kLargestMmapThreshold = std::size_t{32} << 20;
constexpr std::size_t kDefaultTopPad = std::size_t{128} << 10;

// Under an address-space limit (ulimit -v) the reservation takes at most a
// quarter of what is left, so that the threads' buffers and the data still fit.
std::size_t addressSpaceAllows(std::size_t bytes) {
    rlimit limit{};
    if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return bytes;
    std::ifstream statm("/proc/self/statm");
    unsigned long long pages = 0;
    statm >> pages; // the address space in use, in pages
    const auto used = static_cast<std::size_t>(pages) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const auto cap = static_cast<std::size_t>(limit.rlim_cur);
    return used >= cap ? 0 : std::min(bytes, (cap - used) / 4);
}

} // namespace

void preferHugePages(void* data, std::size_t bytes) {
    const auto begin = reinterpret_cast<std::uintptr_t>(data);
    const std::uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1), last = (begin + bytes) & ~(kHugePage - 1);
    if (data == nullptr || last <= first) return;
#ifdef MADV_HUGEPAGE
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE); // a hint: its failure changes nothing
#endif
}

std::size_t reserveHeap(std::size_t bytes) {
#if defined(__GLIBC__) && defined(MADV_HUGEPAGE) && !defined(LTLAB_SANITIZED_BUILD) && !defined(__SANITIZE_ADDRESS__)
    // Only the main thread allocates from the heap that brk grows (glibc's main
    // arena); other threads have arenas of their own.
    if (gettid() != getpid()) return 0;
    static std::mutex mutex;
    const std::lock_guard<std::mutex> lock(mutex);
    bytes = addressSpaceAllows(bytes);
    // Buffers up to 32 MiB come from the heap (not from mappings of their own,
    // unmapped on free), and what is freed stays there for the next.
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(kLargestMmapThreshold));
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    const std::size_t top = mallinfo2().keepcost; // the free space at the heap's top
    if (top < bytes && top + (std::size_t{1} << 20) < kLargestMmapThreshold) {
        // A block larger than the top makes the heap grow by it and the pad at
        // once; freed, it joins the top. (A free block elsewhere may serve it
        // instead: then one twice as large.) The block's header lands just past
        // the old end: only a 2 MiB page or two there stay in 4 KiB pages.
        mallopt(M_TOP_PAD, static_cast<int>(std::min<std::size_t>(bytes - top, 1u << 30)));
        void* probes[4] = {};
        const void* end_before = sbrk(0);
        for (std::size_t i = 0, size = top + (std::size_t{64} << 10); i < 4 && sbrk(0) == end_before; ++i, size *= 2)
            probes[i] = std::malloc(size);
        for (void* probe : probes) std::free(probe);
        mallopt(M_TOP_PAD, static_cast<int>(kDefaultTopPad));
    }
    const struct mallinfo2 after = mallinfo2();
    const std::size_t free_top = after.keepcost;
    auto* end = static_cast<char*>(sbrk(0));
    // The top ends at the break unless brk failed (ulimit -v) and glibc went on
    // in mappings of its own: then its size exceeds what brk gave the arena, or
    // may, and nothing is advised.
    if (end == reinterpret_cast<char*>(-1) || free_top == 0 || free_top > after.arena) return 0;
    preferHugePages(end - free_top, free_top);
    return free_top;
#else
    (void)bytes;
    return 0;
#endif
}

} // namespace ltlab
