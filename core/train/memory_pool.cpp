// A caching CPU allocator for libtorch, installed when the training module
// loads.
//
// Why: on this kind of machine a fresh page costs more than the arithmetic
// done on it. libtorch's default CPU allocator hands every tensor to glibc,
// which maps allocations above its mmap threshold (at most 32 MB) afresh and
// unmaps them on free; an eval-mode forward pass at batch 1024 therefore
// faulted in ~100 MB of activations per batch, and page faults plus munmap
// took 36% of a training run's cycles (issue 13). Here blocks of 256 KiB and
// more are kept on a free list by size class when freed and handed out again,
// so the pages are touched once per run, not once per batch.
//
// Bounds: at most kMaxCachedBytes are held free (beyond that a freed block
// goes back to the system), size classes waste at most 1/8 of a block, and
// only the training process loads this module (the workbench trains in a
// child process), so the cache never lives in the window.

#include <c10/core/CPUAllocator.h>

#include <malloc.h>
#include <sys/sysinfo.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace ltlab::train {

namespace {

constexpr std::size_t kAlignment = 64;              // c10's own alignment (AVX-512 loads)
constexpr std::size_t kHeader = kAlignment;         // holds the block's size class; keeps data aligned
constexpr std::size_t kCachedFrom = 256 * 1024;     // smaller blocks: glibc's arenas serve them well

// Sizes rounded up to one of 8 classes per power of two (at most 12.5% waste).
std::size_t sizeClass(std::size_t n) {
    if (n < kCachedFrom) return 0; // not cached
    const int top = 63 - __builtin_clzll(n);
    const std::size_t step = std::size_t(1) << (top - 3);
    return (n + step - 1) & ~(step - 1);
}

std::size_t maxCachedBytes() {
    struct sysinfo info {};
    const std::size_t ram = sysinfo(&info) == 0 ? std::size_t(info.totalram) * info.mem_unit : (std::size_t(8) << 30);
    return std::min<std::size_t>(ram / 8, std::size_t(4) << 30);
}

class CachingCpuAllocator final : public c10::Allocator {
public:
    CachingCpuAllocator() : max_cached_(maxCachedBytes()) {}

    c10::DataPtr allocate(std::size_t n) const override {
        void* data = acquire(n);
        return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
    }
    c10::DeleterFnPtr raw_deleter() const override { return &release; }

private:
    void* acquire(std::size_t n) const {
        const std::size_t cls = sizeClass(n);
        if (cls != 0) {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = free_.find(cls);
            if (it != free_.end() && !it->second.empty()) {
                void* data = it->second.back();
                it->second.pop_back();
                cached_ -= cls;
                return data;
            }
        }
        void* base = nullptr;
        const std::size_t bytes = (cls != 0 ? cls : std::max<std::size_t>(n, 1)) + kHeader;
        if (posix_memalign(&base, kAlignment, bytes) != 0) throw std::bad_alloc();
        std::memcpy(base, &cls, sizeof cls);
        return static_cast<char*>(base) + kHeader;
    }

    static void release(void* data) {
        if (!data) return;
        void* base = static_cast<char*>(data) - kHeader;
        std::size_t cls = 0;
        std::memcpy(&cls, base, sizeof cls);
        if (cls != 0 && instance().keep(data, cls)) return;
        std::free(base);
    }

    bool keep(void* data, std::size_t cls) const {
        std::lock_guard<std::mutex> lock(mutex_);
        if (cached_ + cls > max_cached_) return false;
        free_[cls].push_back(data);
        cached_ += cls;
        return true;
    }

    static const CachingCpuAllocator& instance();

    const std::size_t max_cached_;
    mutable std::mutex mutex_;
    mutable std::unordered_map<std::size_t, std::vector<void*>> free_;
    mutable std::size_t cached_ = 0;
};

// Never destroyed: tensors may be freed during exit, after static destructors.
CachingCpuAllocator& theAllocator() {
    static auto* allocator = new CachingCpuAllocator();
    return *allocator;
}
const CachingCpuAllocator& CachingCpuAllocator::instance() { return theAllocator(); }

} // namespace

// Installed once, when the module is loaded (priority 1 beats c10's default).
// glibc keeps what Eigen and oneDNN free below its top too, instead of
// trimming and faulting it in again on the next batch.
__attribute__((constructor)) static void installCachingAllocator() {
    if (std::getenv("LTLAB_NO_MEMORY_POOL")) return; // for measuring the difference
    c10::SetCPUAllocator(&theAllocator(), 1);
    mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
}

} // namespace ltlab::train
