#pragma once
// Fisher's discriminant ratio of features held in memory, alone: the
// engine's definition (shared/spec/analysis.md, docs/analysis.md) without the
// rest of the analysis, for the places that need FDR many times a second
// (the cone laboratory's layers, the layer-wise analysis).
//
// The same steps as analyze(): dimensions whose every value lies within
// 1e-3 |mean of all entries| of the first sample's are dropped; S_W =
// sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T and S_B = sum_c n_c (mu_c - mu)
// (mu_c - mu)^T on the dimensions kept; FDR = tr(S_W^+ S_B) with the
// pseudo-inverse's cutoff 1e-8 of the largest eigenvalue. It agrees with
// analyze(...).fdr to rounding (tests/core/test_analysis_closed_form.cpp).

#include <cstdint>
#include <optional>
#include <vector>

#include "ltlab/run_file.h"

namespace ltlab {

struct FisherRatio {
    std::optional<double> fdr, trace_sw, trace_sb; // null with fewer than two classes present
    std::int64_t dims_kept = 0;
};

// H: N x D; labels in [0, classes). Throws UsageError for mismatched sizes or labels out of range.
FisherRatio fisherDiscriminantRatio(const RowMatrix& H, const std::vector<std::int32_t>& labels, std::int64_t classes);

} // namespace ltlab
