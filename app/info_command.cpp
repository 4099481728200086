// `ltlab info`: version, the BLAS really in use, threads; optionally the
// machine's measured float64 and float32 matrix-multiply rates (the benchmark's yardsticks).

#include <iostream>
#include <string>

#include "cli_args.h"
#include "commands.h"
#include "ltlab/runtime.h"
#include "ltlab_version.h"

namespace ltlab::app {

int runInfo(const std::vector<std::string>& argv) {
    return guarded("info", [&] {
        const cli::Args args({{"measure-dgemm", "", "measure the float64 GEMM rate (2048^3, best of 3)"},
                              {"measure-sgemm", "", "measure the float32 GEMM rate of the analysis's float32 products (2048^3, best of 3)"},
                              {"threads", "N", "threads for the numerics (default: all cores)"},
                              {"help", "", "show this help"}},
                             argv);
        if (args.flag("help")) {
            std::cout << "Usage: ltlab info [--measure-dgemm] [--measure-sgemm]\n\n" << args.optionsHelp();
            return kExitOk;
        }
        initNumericRuntime(static_cast<int>(args.integer("threads", 1).value_or(0)));
        const std::string float32_products = float32GemmDescription(); // may refuse LTLAB_FLOAT32_GEMM
        std::cout << "ltlab " << LTLAB_VERSION << "\n"
                  << "BLAS: " << blasDescription() << "\n"
                  << "float32 products: " << float32_products << "\n";
        if (args.flag("measure-dgemm")) std::cout << "dgemm_gflops: " << measureDgemmGflops() << "\n";
        if (args.flag("measure-sgemm")) std::cout << "sgemm_gflops: " << measureSgemmGflops() << "\n";
        return kExitOk;
    });
}

} // namespace ltlab::app
