#pragma once
// Histograms of the pairwise cosine similarity of features, same class and
// different class: the picture of the cone effect. Exact over all pairs when
// the split has at most `max_rows` samples; otherwise over all pairs of a
// seeded uniform sample of `max_rows` samples (then `exact` is false). The
// mean cosines themselves are exact in every case: see Analysis.

#include <cstdint>
#include <vector>

#include "ltlab/analysis.h"

namespace ltlab {

struct ConeHistograms {
    int bins = 0;                          // over [-1, 1]
    std::vector<double> same_class;        // pair counts per bin
    std::vector<double> diff_class;
    std::int64_t rows_used = 0;            // samples whose pairs were counted
    bool exact = true;
    double binCentre(int i) const { return -1.0 + (i + 0.5) * 2.0 / bins; }
    // The bin of a cosine (clamped to [-1, 1]; 1 goes in the last bin).
    static int binOf(double cosine, int bins) {
        const double c = cosine < -1.0 ? -1.0 : cosine > 1.0 ? 1.0 : cosine;
        const int b = static_cast<int>((c + 1.0) * 0.5 * bins);
        return b < bins - 1 ? b : bins - 1;
    }
};

ConeHistograms coneHistograms(const FeatureSource& source, int bins = 80, std::int64_t max_rows = 3000,
                              std::uint64_t seed = 0);

} // namespace ltlab
