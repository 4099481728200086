#include "ltlab/cone.h"

#include <algorithm>
#include <numeric>
#include <random>

#include <Eigen/Dense>

namespace ltlab {

ConeHistograms coneHistograms(const FeatureSource& source, int bins, std::int64_t max_rows, std::uint64_t seed) {
    ConeHistograms h;
    h.bins = bins;
    h.same_class.assign(static_cast<std::size_t>(bins), 0.0);
    h.diff_class.assign(static_cast<std::size_t>(bins), 0.0);
    const std::int64_t N = source.numSamples(), D = source.featureDim();
    std::vector<std::int64_t> rows(static_cast<std::size_t>(N));
    std::iota(rows.begin(), rows.end(), 0);
    if (N > max_rows) {
        std::mt19937_64 rng(seed);
        std::shuffle(rows.begin(), rows.end(), rng);
        rows.resize(static_cast<std::size_t>(max_rows));
        std::sort(rows.begin(), rows.end());
        h.exact = false;
    }
    // The chosen rows, normalised (zero rows are left out, as in the cone statistics).
    RowMatrix U(static_cast<Eigen::Index>(rows.size()), D);
    std::vector<std::int32_t> labels;
    const std::int64_t chunk = std::max<std::int64_t>(1, (1 << 20) / std::max<std::int64_t>(D, 1));
    RowMatrix buffer(chunk, D);
    Eigen::Index kept = 0;
    std::size_t next = 0;
    for (std::int64_t row0 = 0; row0 < N && next < rows.size(); row0 += chunk) {
        const std::int64_t R = std::min(chunk, N - row0);
        if (rows[next] >= row0 + R) continue; // nothing chosen in this block
        auto block = buffer.topRows(R);
        source.readFeatures(row0, block);
        for (; next < rows.size() && rows[next] < row0 + R; ++next) {
            const auto r = block.row(rows[next] - row0);
            const double norm = r.norm();
            if (!(norm > 0) || !r.allFinite()) continue;
            U.row(kept++) = r / norm;
            labels.push_back(source.labels()[static_cast<std::size_t>(rows[next])]);
        }
    }
    h.rows_used = kept;
    // Cosines block by block (never the whole kept x kept matrix).
    const Eigen::Index block_rows = 512;
    for (Eigen::Index i0 = 0; i0 < kept; i0 += block_rows) {
        const Eigen::Index bi = std::min(block_rows, kept - i0);
        const Eigen::MatrixXd cos = U.middleRows(i0, bi) * U.topRows(kept).transpose();
        for (Eigen::Index i = 0; i < bi; ++i)
            for (Eigen::Index j = i0 + i + 1; j < kept; ++j) {
                const int bin = ConeHistograms::binOf(cos(i, j), bins);
                (labels[static_cast<std::size_t>(i0 + i)] == labels[static_cast<std::size_t>(j)] ? h.same_class
                                                                                                 : h.diff_class)[static_cast<std::size_t>(bin)] += 1;
            }
    }
    return h;
}

} // namespace ltlab
