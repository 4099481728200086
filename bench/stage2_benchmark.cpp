// Seconds for 10 epochs of core's stage 2 (ltlab/stage2.h) at the issue's
// two sizes, with the wb recipe's settings (class-balanced loss, batch 64,
// MaxNorm after every step): CIFAR-100-LT (C 100, D 512, N 10,847; goal
// < 0.5 s on 2 cores) and Fashion-MNIST-LT with ltlab's CNN (C 10, D 64,
// N 14,841; goal < 0.1 s). Features are synthetic (non-negative, long-tailed
// class sizes as the datasets'); the cost does not depend on their values.
// Usage: ltlab_stage2_benchmark [REPEATS] (default 5); prints the best and the median.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "ltlab/runtime.h"
#include "ltlab/stage2.h"

namespace {

struct Size {
    const char* name;
    int classes, dim;
    double head, imbalance; // n_c = head * imbalance^(-c / (C - 1)), rounded or truncated as the dataset is
    bool round;
};

void bench(const Size& size, int repeats) {
    std::vector<std::int64_t> counts;
    std::int64_t n = 0;
    for (int c = 0; c < size.classes; ++c) {
        const double nc = size.head * std::pow(size.imbalance, -double(c) / (size.classes - 1));
        counts.push_back(size.round ? std::llround(nc) : static_cast<std::int64_t>(nc));
        n += counts.back();
    }
    std::mt19937_64 rng(1);
    std::normal_distribution<double> normal;
    ltlab::RowMatrix means(size.classes, size.dim), H(n, size.dim);
    for (Eigen::Index i = 0; i < means.size(); ++i) means.data()[i] = normal(rng);
    std::vector<std::int32_t> labels;
    for (int c = 0; c < size.classes; ++c)
        for (std::int64_t k = 0; k < counts[c]; ++k) labels.push_back(c);
    for (std::int64_t i = 0; i < n; ++i)
        for (int d = 0; d < size.dim; ++d) H(i, d) = std::max(0.0, means(labels[i], d) + normal(rng));
    ltlab::ClassifierInput start{Eigen::MatrixXd(size.classes, size.dim), Eigen::VectorXd::Zero(size.classes), counts};
    for (Eigen::Index i = 0; i < start.weight.size(); ++i) start.weight.data()[i] = 0.05 * normal(rng);
    ltlab::Stage2Trainer trainer(H, labels, counts);
    ltlab::Stage2Settings s; // the wb recipe's stage 2: 10 epochs, batch 64, cb (batch), MaxNorm per step
    std::vector<double> seconds;
    trainer.run(start, s); // warm-up: buffers, BLAS threads
    for (int r = 0; r < repeats; ++r) seconds.push_back(trainer.run(start, s).seconds);
    std::sort(seconds.begin(), seconds.end());
    std::printf("%-18s C %3d  D %3d  N %6lld  10 epochs: best %.3f s, median %.3f s (%.1f us a step)\n", size.name,
                size.classes, size.dim, static_cast<long long>(n), seconds.front(), seconds[seconds.size() / 2],
                1e6 * seconds.front() / (10.0 * double((n + 63) / 64)));
}

} // namespace

int main(int argc, char** argv) {
    const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
    ltlab::initNumericRuntime(0);
    std::printf("%s\n", ltlab::blasDescription().c_str());
    bench({"CIFAR-100-LT", 100, 512, 500, 100, false}, repeats);    // int(500 * 0.01^(i/99)): 10,847
    bench({"Fashion-MNIST-LT", 10, 64, 5980, 100, true}, repeats);  // ltlab's: 5980 ... 60, 14,841
    return 0;
}
