// What one epoch's transaction on a run file costs (copy, append, flush,
// rename: updateRunFile), as a function of the file's size.
// Usage: ltlab_commit_benchmark [DIR] (default: the current directory).

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "ltlab/run_writer.h"
#include "ltlab/synthetic.h"

int main(int argc, char** argv) {
    const std::filesystem::path dir = argc > 1 ? argv[1] : ".";
    const std::string path = (dir / "ltlab_commit_benchmark.h5").string();
    std::printf("%10s %12s %14s\n", "file MB", "commit ms", "copy GB/s");
    for (std::int64_t per_class : {200, 2000, 20000}) {
        ltlab::SynthConfig config;
        config.classes = 10;
        config.dim = 512;
        config.imbalance = 1;
        config.max_per_class = per_class; // 10 x per_class x 512 float32 features
        config.test_per_class = 10;
        config.history = false;
        ltlab::writeSyntheticRun(path, config);
        const double mb = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
        constexpr int repeats = 5;
        double best = 1e9;
        for (int r = 0; r < repeats; ++r) {
            const auto start = std::chrono::steady_clock::now();
            ltlab::updateRunFile(path, [&](ltlab::RunFileWriter& writer) {
                writer.appendHistory({{"train_loss", 1.0}, {"test_accuracy", 0.5}});
            });
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
        std::printf("%10.1f %12.1f %14.2f\n", mb, best * 1e3, mb / 1e3 / best);
    }
    std::filesystem::remove(path);
    return 0;
}
