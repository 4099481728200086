#include "ltlab/runtime.h"

#include "huge_pages.h"
#include "linalg.h"

#include <cblas.h>
#include <omp.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <fstream>
#include <iostream>
#include <thread>

#include <Eigen/Core>

extern "C" {
char* openblas_get_config(void);
char* openblas_get_corename(void);
int openblas_get_parallel(void);
int openblas_get_num_threads(void);
// DYNAMIC_ARCH builds (Debian's) export these; init picks the kernel again
// (OPENBLAS_CORETYPE first). Weak: an OpenBLAS built for one target has neither.
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
}

namespace ltlab {

namespace {

// Under an address-space limit (ulimit -v), OpenBLAS 0.3.21 spins forever in
// blas_memory_alloc when a thread's buffer cannot be mapped, and each thread
// also takes glibc a malloc arena and a stack. Measured here: about 130-200 MB
// of address space per thread beyond the process's own (160 MB is
// allowed, and 128 MB kept for the data). The most threads
// that fit, or `threads` where nothing limits it.
int threadsTheAddressSpaceAllows(int threads) {
    rlimit limit{};
    if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return threads;
    std::ifstream statm("/proc/self/statm");
    unsigned long long pages = 0;
    statm >> pages;
    const double used = static_cast<double>(pages) * static_cast<double>(sysconf(_SC_PAGESIZE));
    constexpr double kPerThread = 160.0 * (1 << 20), kReserve = 128.0 * (1 << 20);
    const double room = static_cast<double>(limit.rlim_cur) - used - kReserve;
    const int fit = std::max(1, static_cast<int>(room / kPerThread));
    return std::min(threads, fit);
}

// What the kernel choice did (for `ltlab info` and --version).
std::string& kernelNote() {
    static std::string note;
    return note;
}

// The kernel for a CPU that OpenBLAS 0.3.21 does not know: SkylakeX with
// AVX-512 (F, BW, DQ, VL), Haswell with AVX2 and FMA, else none.
const char* kernelForThisCpu() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return nullptr;
}

} // namespace

void selectBlasKernel() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (std::getenv("OPENBLAS_CORETYPE")) return; // the user's (or the machine's) choice stands
        const char* core = openblas_get_corename();
        if (!core || std::strcmp(core, "Prescott") != 0) return; // OpenBLAS knew the CPU
        const char* kernel = kernelForThisCpu();
        // A CPU for which Prescott is right, or an OpenBLAS without runtime dispatch.
        if (!kernel || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
        // Chosen the way OPENBLAS_CORETYPE chooses at load time, before any
        // BLAS call; the variable is set only for that moment, so children
        // and libraries read the environment as it was.
        setenv("OPENBLAS_CORETYPE", kernel, 1);
        gotoblas_dynamic_quit();
        gotoblas_dynamic_init();
        unsetenv("OPENBLAS_CORETYPE");
        kernelNote() = std::string("kernel ") + openblas_get_corename() +
                       " chosen by ltlab (OpenBLAS fell back to Prescott on this CPU; set OPENBLAS_CORETYPE to choose)";
    });
}

std::string blasKernelNote() { return kernelNote(); }

void initNumericRuntime(int threads) {
    selectBlasKernel();
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (const int fit = threadsTheAddressSpaceAllows(threads); fit < threads) {
        rlimit limit{};
        getrlimit(RLIMIT_AS, &limit);
        std::cerr << "ltlab: the address-space limit (ulimit -v, " << limit.rlim_cur / (1 << 20)
                  << " MiB) leaves room for " << fit << " numeric thread" << (fit == 1 ? "" : "s") << "; using "
                  << fit << " instead of " << threads << "\n";
        threads = fit;
    }
    // One pool for everything: OpenBLAS (OpenMP build) and our own loops share libgomp's threads.
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    Eigen::setNbThreads(1); // Eigen's own products hand the heavy ones to BLAS
}

std::size_t reserveHugePageHeap(std::size_t bytes) { return reserveHeap(bytes); }

int numericThreads() { return openblas_get_num_threads(); }

std::string blasDescription() {
    const int parallel = openblas_get_parallel();
    const char* kind = parallel == 2 ? "OpenMP" : parallel == 1 ? "pthreads" : "sequential";
    std::string text = std::string(openblas_get_config()) + " (" + kind + "), " + std::to_string(numericThreads()) + " threads";
    if (!kernelNote().empty()) text += "; " + kernelNote();
    return text;
}

namespace {

// Best of `repeats` timed calls after one warm-up call (which starts the threads).
template <typename Scalar, typename Gemm>
double measureGemmGflops(int n, int repeats, Gemm gemm) {
    using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    const Matrix a = Matrix::Random(n, n), b = Matrix::Random(n, n);
    Matrix c(n, n);
    double best = 1e300;
    for (int r = 0; r < repeats + 1; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        gemm(n, a.data(), b.data(), c.data());
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) best = std::min(best, s);
    }
    return 2.0 * n * static_cast<double>(n) * n / best / 1e9;
}

} // namespace

double measureDgemmGflops(int n, int repeats) {
    return measureGemmGflops<double>(n, repeats, [](int m, const double* a, const double* b, double* c) {
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0, a, m, b, m, 0.0, c, m);
    });
}

double measureSgemmGflops(int n, int repeats) {
    return measureGemmGflops<float>(n, repeats, [](int m, const float* a, const float* b, float* c) {
        // What the float32 tiles of a large analysis run on.
        linalg::multiplyByTransposed(a, b, c, m, m, m, linalg::float32ProductsFor(linalg::kOneDnnMinFlops).library);
    });
}

std::string float32GemmDescription() { return linalg::float32GemmName(); }

} // namespace ltlab
