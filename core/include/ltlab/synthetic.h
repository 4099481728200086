#pragma once
// Synthetic long-tailed runs: class means, within-class noise and a
// classifier whose geometry moves towards neural collapse over "epochs".
// For demos, tests and benchmarks; deterministic for a given seed.

#include <cstdint>
#include <string>
#include <vector>

namespace ltlab {

struct SynthConfig {
    std::int64_t classes = 10;
    std::int64_t dim = 64;
    double imbalance = 100.0;             // n_max / n_min
    std::int64_t max_per_class = 500;     // n_max (train count of class 0)
    std::int64_t train_total = 0;         // >0: scale the profile to exactly this many train samples
    std::int64_t test_per_class = 100;    // balanced test split
    std::int64_t val_per_class = 0;       // balanced val split (0: none)
    std::int64_t stored_train_cap = -1;   // features stored per train class (-1: all)
    std::int64_t snapshots = 1;           // epochs written; collapse grows with the epoch
    double noise = 1.0;                   // within-class spread at the first snapshot
    double collapse = 0.7;                // fraction of the noise gone by the last snapshot
    double norm_tail_ratio = 0.5;         // ||w_tail|| / ||w_head|| (plain CE: tails shrink)
    bool store_logits = false;
    bool float64 = false;
    bool history = true;                  // analyse each snapshot and write /history
    std::uint64_t seed = 0;
};

// Exponential profile n_i = round(n_max * IF^(-i/(C-1))), at least 1.
std::vector<std::int64_t> longTailedCounts(std::int64_t classes, std::int64_t max_per_class, double imbalance);
// The same profile scaled to sum to exactly `total` (largest remainders), at least 1 each.
std::vector<std::int64_t> longTailedCountsWithTotal(std::int64_t classes, std::int64_t total, double imbalance);

// Writes the run file; throws InputError/UsageError.
void writeSyntheticRun(const std::string& path, const SynthConfig& config);

} // namespace ltlab
