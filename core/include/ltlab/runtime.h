#pragma once
// Process-wide numerical runtime: thread counts and the BLAS in use.

#include <cstddef>
#include <string>

namespace ltlab {

// OpenBLAS 0.3.21 (Debian 12) does not know recent CPUs (Sapphire and Emerald
// Rapids, family 6 models 143 and 207) and falls back to its Prescott (SSE3)
// kernel, 5x slower there than its SkylakeX kernel (docs/performance.md). When
// OPENBLAS_CORETYPE is unset and OpenBLAS chose Prescott on a CPU with AVX-512
// (or AVX2 + FMA), this picks SkylakeX (Haswell) instead, as OPENBLAS_CORETYPE
// would. Once per process, before any BLAS call; initNumericRuntime calls it.
void selectBlasKernel();
// What selectBlasKernel did, empty when it changed nothing.
std::string blasKernelNote();
// Sets OpenBLAS/OpenMP to `threads` (0: all cores). Called once at start-up.
// Under an address-space limit (ulimit -v) it uses no more threads than fit
// (OpenBLAS would spin forever otherwise) and says so on stderr.
void initNumericRuntime(int threads = 0);
int numericThreads();
// "OpenBLAS 0.3.21 ... (OpenMP), 2 threads": what `ltlab --version` prints.
std::string blasDescription();
// For a headless command about to allocate large buffers once (`ltlab analyze`:
// the features, the tiles, the D x D accumulators): the main heap grows now by
// up to `bytes`, advised for 2 MiB transparent huge pages, buffers up to 32 MiB
// come from it and what is freed stays in it. A fresh 4 KiB page costs a fault
// of about 10 us in the virtual machines measured (a 2 MiB buffer 5.2 ms, in a
// huge page 0.19 ms; docs/performance.md). Address space, not memory: pages are
// resident once touched. The main thread only (a no-op on others, in sanitized
// builds and off glibc); under ulimit -v at most a quarter of what is left.
// Returns the bytes left free at the heap's top (0: nothing done). The
// workbench does not call it: its analyses run on worker threads, and glibc
// keeps their buffers for the next.
std::size_t reserveHugePageHeap(std::size_t bytes);
// Measured float64 GEMM rate (GFLOP/s) on n x n matrices, best of `repeats`.
double measureDgemmGflops(int n = 2048, int repeats = 3);
// The same for float32, through the library the analysis's float32 tiles use.
double measureSgemmGflops(int n = 2048, int repeats = 3);
// That library: "oneDNN 2.6.3" (its own CPU dispatch), or "OpenBLAS (why)".
std::string float32GemmDescription();

} // namespace ltlab
