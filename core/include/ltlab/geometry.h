#pragma once
// Class-mean geometry in 3D for the workbench: the centred class means
// projected on their top three principal directions (PCA of the means), the
// classifier rows projected on the same directions and scaled to the means'
// average norm, and the ideal simplex ETF aligned to the centred means by
// orthogonal Procrustes (in the full feature space), then projected too.

#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "ltlab/analysis.h"

namespace ltlab {

struct ClassGeometry3D {
    std::vector<int> classes;                // the present classes, in this order
    std::vector<Eigen::Vector3d> means;      // centred class means
    std::vector<Eigen::Vector3d> weights;    // classifier rows (scaled)
    std::vector<Eigen::Vector3d> etf;        // aligned simplex-ETF vertices
    double explained = 0;                    // fraction of the means' variance in the 3 directions
    double procrustes_residual = 0;          // ||E R - M||_F / ||M||_F in the full space
};

ClassGeometry3D projectClassGeometry(const Analysis& analysis);

} // namespace ltlab
