#pragma once
// Class-mean geometry in 3D for the workbench. The present classes' means are
// centred (on their mean) and projected on three axes: the top three
// principal directions of the centred means (PCA), or the normalised
// classifier rows of three chosen classes (then a point's coordinate k is its
// component along w_k / ||w_k||; the axes are in general not orthogonal). The
// classifier rows are projected on the same axes and scaled to the means'
// average norm; the ideal simplex ETF is aligned to the centred means by
// orthogonal Procrustes in the full feature space, then projected too.
// Optionally a sample cloud: a seeded uniform sample of at most N feature
// rows per class (never "the first N"), projected on the same axes.

#include <array>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "ltlab/analysis.h"

namespace ltlab {

enum class GeometryAxes { Pca, ClassifierRows };

struct GeometryOptions {
    GeometryAxes axes = GeometryAxes::Pca;
    std::array<int, 3> axis_classes{0, 1, 2}; // ClassifierRows: the classes whose rows are the axes
    std::int64_t samples_per_class = 0;       // sample cloud size per class (0: none)
    std::uint64_t seed = 0;                   // of the sample
};

struct ClassGeometry3D {
    std::vector<int> classes;                // the present classes, in this order
    std::vector<Eigen::Vector3d> means;      // centred class means
    std::vector<Eigen::Vector3d> weights;    // classifier rows (scaled)
    std::vector<Eigen::Vector3d> etf;        // aligned simplex-ETF vertices
    double explained = 0;                    // fraction of the means' variance in the axes' span
    double procrustes_residual = 0;          // ||E R - M||_F / ||M||_F in the full space
    GeometryOptions options;                 // how it was made
    Eigen::RowVectorXd centre;               // 1 x D: subtracted before projecting
    Eigen::MatrixXd axes;                    // D x 3: coordinates = (h - centre) * axes
    // The sample cloud (empty without one): points and their classes.
    std::vector<Eigen::Vector3d> samples;
    std::vector<int> sample_classes;
};

// Throws UsageError for axis classes that are out of range or repeated.
ClassGeometry3D projectClassGeometry(const Analysis& analysis, const GeometryOptions& options = {});

// Adds g.options.samples_per_class rows per class of `source` (the split the
// analysis used), drawn uniformly with g.options.seed, in one streamed pass.
void addSampleCloud(ClassGeometry3D& g, const FeatureSource& source);

} // namespace ltlab
