#include "ltlab/implicit_la.h"

#include <algorithm>
#include <cmath>

namespace ltlab {

ImplicitLogitAdjustment implicitLogitAdjustment(const std::vector<double>& weight_norms,
                                                const std::vector<std::int64_t>& train_counts) {
    ImplicitLogitAdjustment out;
    double total = 0;
    for (auto n : train_counts) total += static_cast<double>(n);
    std::vector<double> x, y;
    for (std::size_t c = 0; c < std::min(weight_norms.size(), train_counts.size()); ++c)
        if (weight_norms[c] > 0 && train_counts[c] > 0) {
            x.push_back(-std::log(static_cast<double>(train_counts[c]) / total));
            y.push_back(std::log(weight_norms[c]));
        }
    if (x.size() < 2 || *std::max_element(x.begin(), x.end()) <= *std::min_element(x.begin(), x.end())) return out;
    double xm = 0, ym = 0;
    for (std::size_t i = 0; i < x.size(); ++i) xm += x[i], ym += y[i];
    xm /= static_cast<double>(x.size());
    ym /= static_cast<double>(y.size());
    double sxy = 0, sxx = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        sxy += (x[i] - xm) * (y[i] - ym);
        sxx += (x[i] - xm) * (x[i] - xm);
    }
    out.tau = sxy / sxx;
    out.intercept = ym - *out.tau * xm;
    return out;
}

} // namespace ltlab
