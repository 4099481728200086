#pragma once
// Process-wide numerical runtime: thread counts and the BLAS in use.

#include <string>

namespace ltlab {

// Sets OpenBLAS/OpenMP to `threads` (0: all cores). Called once at start-up.
// Under an address-space limit (ulimit -v) it uses no more threads than fit
// (OpenBLAS would spin forever otherwise) and says so on stderr.
void initNumericRuntime(int threads = 0);
int numericThreads();
// "OpenBLAS 0.3.21 ... (OpenMP), 2 threads": what `ltlab --version` prints.
std::string blasDescription();
// Measured float64 GEMM rate (GFLOP/s) on n x n matrices, best of `repeats`.
double measureDgemmGflops(int n = 2048, int repeats = 3);
// The same for float32 (sgemm): the rate of the analysis's float32 tiles.
double measureSgemmGflops(int n = 2048, int repeats = 3);

} // namespace ltlab
