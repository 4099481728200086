// reserveHugePageHeap (ltlab/runtime.h): the main heap grows by what is asked,
// the grown range is advised for 2 MiB pages (smaps VmFlags "hg"), buffers up
// to 32 MiB then come from it, and other threads leave it alone.
// analysisWorkingSetBytes (ltlab/analysis.h) bounds what an analysis allocates.

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "ltlab/analysis.h"
#include "ltlab/runtime.h"

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// The VmFlags of the mapping that holds `address` (from /proc/self/smaps).
std::string vmFlagsAt(const void* address) {
    std::ifstream smaps("/proc/self/smaps");
    const auto at = reinterpret_cast<std::uintptr_t>(address);
    bool inside = false;
    for (std::string line; std::getline(smaps, line);) {
        std::uintptr_t lo = 0, hi = 0;
        char dash = 0;
        std::istringstream head(line);
        if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
            inside = lo <= at && at < hi;
            continue;
        }
        if (inside && line.rfind("VmFlags:", 0) == 0) return line.substr(8);
    }
    return "";
}

TEST(HugePageHeap, GrowsTheMainHeapAndAdvisesIt) {
    if (kSanitized) GTEST_SKIP() << "the sanitizers' allocator owns malloc";
    if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled"))
        GTEST_SKIP() << "a kernel without transparent huge pages";
    constexpr std::size_t kAsked = std::size_t{48} << 20;
    const std::size_t top = ltlab::reserveHugePageHeap(kAsked);
    ASSERT_GE(top, kAsked);
    // Asking again for less changes nothing: the free top is still there.
    EXPECT_GE(ltlab::reserveHugePageHeap(std::size_t{1} << 20), kAsked);

    // A 24 MiB buffer (above glibc's default mmap threshold) now comes from the
    // heap, inside the advised range.
    constexpr std::size_t kBuffer = std::size_t{24} << 20;
    auto* buffer = static_cast<char*>(std::malloc(kBuffer));
    ASSERT_NE(buffer, nullptr);
    auto* heap_end = static_cast<char*>(sbrk(0));
    EXPECT_LE(buffer + kBuffer, heap_end) << "the buffer was mapped on its own, not taken from the heap";
    EXPECT_NE(vmFlagsAt(buffer + kBuffer / 2).find(" hg"), std::string::npos)
        << "no MADV_HUGEPAGE on the heap: VmFlags" << vmFlagsAt(buffer + kBuffer / 2);
    std::memset(buffer, 1, kBuffer); // touched: resident, and still correct memory
    EXPECT_EQ(buffer[kBuffer - 1], 1);
    std::free(buffer);
}

TEST(HugePageHeap, OtherThreadsDoNothing) {
    std::size_t from_worker = 1;
    std::thread([&] { from_worker = ltlab::reserveHugePageHeap(std::size_t{8} << 20); }).join();
    EXPECT_EQ(from_worker, 0u);
}

TEST(AnalysisWorkingSet, CoversTheFeaturesAndTheAccumulators) {
    // CIFAR-100-LT size: the float32 features kept whole (22 MB), two 2 MB D x D
    // accumulators at least, well under 4x that.
    const double features = 10847.0 * 512 * 4, accumulators = 2.0 * 512 * 512 * 8;
    const auto cifar = static_cast<double>(ltlab::analysisWorkingSetBytes(10847, 512, 100));
    EXPECT_GE(cifar, features + accumulators);
    EXPECT_LE(cifar, 4 * (features + accumulators));
    // A split too large to keep is read in chunks: memory independent of N.
    EXPECT_EQ(ltlab::analysisWorkingSetBytes(10'000'000, 2048, 1000) -
                  ltlab::analysisWorkingSetBytes(5'000'000, 2048, 1000),
              static_cast<std::size_t>(16 * 5'000'000)); // the per-sample vectors only
    EXPECT_GT(ltlab::analysisWorkingSetBytes(1, 1, 1), 0u);
}

} // namespace
