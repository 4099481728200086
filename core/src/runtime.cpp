#include "ltlab/runtime.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <Eigen/Core>

extern "C" {
char* openblas_get_config(void);
int openblas_get_parallel(void);
int openblas_get_num_threads(void);
}

namespace ltlab {

void initNumericRuntime(int threads) {
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // One pool for everything: OpenBLAS (OpenMP build) and our own loops share libgomp's threads.
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    Eigen::setNbThreads(1); // Eigen's own products hand the heavy ones to BLAS
}

int numericThreads() { return openblas_get_num_threads(); }

std::string blasDescription() {
    const int parallel = openblas_get_parallel();
    const char* kind = parallel == 2 ? "OpenMP" : parallel == 1 ? "pthreads" : "sequential";
    return std::string(openblas_get_config()) + " (" + kind + "), " + std::to_string(numericThreads()) + " threads";
}

double measureDgemmGflops(int n, int repeats) {
    const Eigen::MatrixXd a = Eigen::MatrixXd::Random(n, n), b = Eigen::MatrixXd::Random(n, n);
    Eigen::MatrixXd c(n, n);
    double best = 1e300;
    for (int r = 0; r < repeats + 1; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a.data(), n, b.data(), n, 0.0, c.data(), n);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) best = std::min(best, s); // the first run warms up the threads
    }
    return 2.0 * n * static_cast<double>(n) * n / best / 1e9;
}

} // namespace ltlab
