// The statistics of one layer's batch (see layer_stats.h and
// docs/analysis.md, "Layer-wise analysis").
//
// Phases: pass 1 over blocks of whole channels (the transform, row norms,
// sums, the constant-dimension test, the channel-pooled features), pass 2
// (the N x N Gram of the unit rows for the cosines, the entries' variance,
// the sample-space FDR of the flattened maps), then the closed forms.

#include "ltlab/layer_stats.h"
#include "ltlab/fdr.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "linalg.h"
#include "ltlab/error.h"

namespace ltlab {

namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;

constexpr double kFdrConstantDimTolerance = 1e-3; // analysis.md: the engine's rule
constexpr double kStandardizeMinStd = 1e-5;        // the papers' code: near-constant features become 0

// ---- reading a block of columns ---------------------------------------------------------

// Columns [col0, col0 + out.cols()) of the batch as float64, column-major N x b
// (the same memory as a row-major b x N matrix: what addGramLower takes).
void loadBlock(const LayerBatch& b, Index col0, MatrixXd& out) {
    using Stride = Eigen::OuterStride<>;
    if (b.f32)
        out = Eigen::Map<const RowMatrixF, 0, Stride>(b.f32 + col0, b.rows, out.cols(), Stride(b.cols)).cast<double>();
    else
        out = Eigen::Map<const RowMatrix, 0, Stride>(b.f64 + col0, b.rows, out.cols(), Stride(b.cols));
}

// (h - mean) / (2 std + 1e-6) per column, unbiased std; std < 1e-5: the column is 0.
void standardizeColumns(MatrixXd& block) {
    const double n = double(block.rows());
    for (Index j = 0; j < block.cols(); ++j) {
        auto c = block.col(j);
        const double mean = c.mean();
        c.array() -= mean;
        const double sd = n > 1 ? std::sqrt(c.squaredNorm() / (n - 1)) : 0.0;
        if (sd < kStandardizeMinStd) c.setZero();
        else c /= 2 * sd + 1e-6;
    }
}

// Walks the batch in blocks of whole channels, transformed as asked.
class BlockReader {
public:
    BlockReader(const LayerBatch& b, const LayerStatsOptions& o) : b_(b), o_(o) {
        spatial_ = b.channels > 0 ? b.cols / b.channels : 1;
        const Index target = o.block_values > 0 ? o.block_values : (Index(1) << 20);
        const Index per_block = std::max<Index>(1, target / std::max<Index>(1, b.rows) / spatial_);
        width_ = per_block * spatial_;
    }
    Index spatial() const { return spatial_; }
    template <typename Fn> // fn(col0, block)
    void forEach(Fn&& fn) {
        for (Index col0 = 0; col0 < b_.cols; col0 += width_) {
            block_.resize(b_.rows, std::min(width_, Index(b_.cols) - col0));
            loadBlock(b_, col0, block_);
            if (o_.standardize) standardizeColumns(block_);
            fn(col0, block_);
        }
    }

private:
    const LayerBatch& b_;
    const LayerStatsOptions& o_;
    Index spatial_ = 1, width_ = 1;
    MatrixXd block_;
};

// ---- FDR in sample space ------------------------------------------------------------------

// S_W = Xw^T Xw and S_B = B^T B with Xw the within-class-centred rows (N x D)
// and B the K x D rows sqrt(n_k) (mu_k - mu). With Xw = U S V^T,
// S_W^+ = V S^-2 V^T and V = Xw^T U S^-1, so
//   tr(S_W^+ S_B) = || B V S^-1 ||_F^2 = || M^T U S^-2 ||_F^2 = sum_j ||M^T u_j||^2 / l_j^2,
// with M = Xw B^T (N x K) and (l_j, u_j) the eigenpairs of G = Xw Xw^T (N x N),
// l_j = s_j^2 the same non-zero eigenvalues as S_W, cut at 1e-8 l_max as the
// engine's pseudo-inverse. Both G and M are sums over blocks of columns.
class SampleSpaceFdr {
public:
    SampleSpaceFdr(const std::vector<std::int32_t>& labels, std::int64_t classes) : labels_(labels) {
        std::vector<std::int64_t> count(static_cast<std::size_t>(classes), 0);
        for (auto y : labels) ++count[static_cast<std::size_t>(y)];
        slot_.assign(static_cast<std::size_t>(classes), -1);
        for (std::int64_t c = 0; c < classes; ++c)
            if (count[static_cast<std::size_t>(c)] > 0) {
                slot_[static_cast<std::size_t>(c)] = static_cast<Index>(counts_.size());
                counts_.push_back(double(count[static_cast<std::size_t>(c)]));
            }
        const Index N = static_cast<Index>(labels.size()), K = static_cast<Index>(counts_.size());
        gram_ = MatrixXd::Zero(N, N);
        cross_ = MatrixXd::Zero(N, K);
    }

    // Columns of the batch; those with keep[j] false are constant (dropped).
    void add(const MatrixXd& block, const std::vector<char>& keep, Index col0) {
        const Index N = block.rows(), K = static_cast<Index>(counts_.size());
        if (K < 2) return;
        MatrixXd centred = MatrixXd::Zero(N, block.cols());
        MatrixXd between = MatrixXd::Zero(block.cols(), K); // B^T
        VectorXd sums(K);
        for (Index j = 0; j < block.cols(); ++j) {
            if (!keep[static_cast<std::size_t>(col0 + j)]) continue;
            ++kept_;
            sums.setZero();
            for (Index i = 0; i < N; ++i) sums[slot(i)] += block(i, j);
            const double mu = sums.sum() / double(N);
            for (Index k = 0; k < K; ++k) {
                const double mean_k = sums[k] / counts_[static_cast<std::size_t>(k)];
                between(j, k) = std::sqrt(counts_[static_cast<std::size_t>(k)]) * (mean_k - mu);
                sums[k] = mean_k;
            }
            for (Index i = 0; i < N; ++i) centred(i, j) = block(i, j) - sums[slot(i)];
        }
        trace_sw_ += centred.squaredNorm();
        trace_sb_ += between.squaredNorm();
        linalg::addGramLower(gram_, centred.data(), centred.cols(), N); // G += Xw Xw^T
        cross_.noalias() += centred * between;                           // M += Xw B^T
    }

    FdrValues finish() {
        FdrValues out;
        if (counts_.size() < 2 || kept_ == 0) return out;
        out.trace_sw = trace_sw_;
        out.trace_sb = trace_sb_;
        linalg::symmetrizeFromLower(gram_);
        const linalg::SymmetricEigen eig = linalg::symmetricEigen(gram_);
        const double largest = eig.values.size() ? eig.values.maxCoeff() : 0.0;
        double fdr = 0;
        if (largest > 0)
            for (Index j = 0; j < eig.values.size(); ++j) {
                const double l = eig.values[j];
                if (l > linalg::kPinvRelativeCutoff * largest)
                    fdr += (cross_.transpose() * eig.vectors.col(j)).squaredNorm() / (l * l);
            }
        out.fdr = fdr;
        return out;
    }

private:
    Index slot(Index i) const { return slot_[static_cast<std::size_t>(labels_[static_cast<std::size_t>(i)])]; }

    const std::vector<std::int32_t>& labels_;
    std::vector<Index> slot_;
    std::vector<double> counts_;
    MatrixXd gram_, cross_;
    double trace_sw_ = 0, trace_sb_ = 0;
    std::int64_t kept_ = 0;
};

// analysis.md's rule: column j is constant when max_i |X_ij - X_0j| <= 1e-3 |mean of all entries|.
std::vector<char> keptColumns(const std::vector<double>& max_dev, double entry_sum, double entries) {
    const double threshold = kFdrConstantDimTolerance * std::abs(entry_sum / entries);
    std::vector<char> keep(max_dev.size());
    for (std::size_t j = 0; j < max_dev.size(); ++j) keep[j] = max_dev[j] > threshold;
    return keep;
}

void addMaxDeviation(const MatrixXd& block, Index col0, std::vector<double>& max_dev) {
    for (Index j = 0; j < block.cols(); ++j)
        max_dev[static_cast<std::size_t>(col0 + j)] = (block.col(j).array() - block(0, j)).abs().maxCoeff();
}

// The engine's FDR definition, computed alone (ltlab/fdr.h: the same steps as
// analyze(), agreeing to rounding), without the rest of the analysis.
FdrValues engineFdr(const RowMatrix& X, const std::vector<std::int32_t>& labels, std::int64_t classes) {
    const FisherRatio f = fisherDiscriminantRatio(X, labels, classes);
    return {f.fdr, f.trace_sw, f.trace_sb};
}

// ---- the two passes -------------------------------------------------------------------------

struct Pass1 {
    VectorXd row_sq, row_l1;
    double entry_sum = 0, relu_entry_sum = 0;
    std::vector<double> max_dev, relu_max_dev; // flat FDR only
    RowMatrix pooled, relu_pooled;             // N x channels
    RowMatrix flat, relu_flat;                 // flat FDR with D <= N: the whole (small) matrix
};

Pass1 firstPass(BlockReader& reader, const LayerBatch& b, const LayerStatsOptions& o) {
    const Index N = b.rows, D = b.cols, S = reader.spatial(), Cn = D / S;
    const bool labelled = b.labels != nullptr, flat = labelled && o.flat_fdr, small = flat && D <= N;
    Pass1 p;
    p.row_sq = VectorXd::Zero(N);
    p.row_l1 = VectorXd::Zero(N);
    if (labelled) p.pooled = RowMatrix::Zero(N, Cn), p.relu_pooled = RowMatrix::Zero(N, Cn);
    if (flat) p.max_dev.assign(static_cast<std::size_t>(D), 0.0), p.relu_max_dev.assign(static_cast<std::size_t>(D), 0.0);
    if (small) p.flat.resize(N, D), p.relu_flat.resize(N, D);
    MatrixXd relu;
    reader.forEach([&](Index col0, const MatrixXd& x) {
        p.row_sq += x.rowwise().squaredNorm();
        p.row_l1 += x.cwiseAbs().rowwise().sum();
        p.entry_sum += x.sum();
        if (!labelled) return;
        relu = x.cwiseMax(0.0);
        for (Index c = 0; c < x.cols() / S; ++c) {
            p.pooled.col(col0 / S + c) = x.middleCols(c * S, S).rowwise().mean();
            p.relu_pooled.col(col0 / S + c) = relu.middleCols(c * S, S).rowwise().mean();
        }
        if (!flat) return;
        p.relu_entry_sum += relu.sum();
        addMaxDeviation(x, col0, p.max_dev);
        addMaxDeviation(relu, col0, p.relu_max_dev);
        if (small) p.flat.middleCols(col0, x.cols()) = x, p.relu_flat.middleCols(col0, x.cols()) = relu;
    });
    return p;
}

struct Pass2 {
    MatrixXd cos_gram;      // N x N, lower triangle, of the unit rows
    double centred_sq = 0;  // sum of (h - mean)^2 over entries
    FdrValues flat, relu_flat;
};

Pass2 secondPass(BlockReader& reader, const LayerBatch& b, const LayerStatsOptions& o, const Pass1& p) {
    const Index N = b.rows, D = b.cols;
    const double entries = double(N) * double(D), mean = p.entry_sum / entries;
    const bool sample_space = b.labels && o.flat_fdr && D > N;
    Pass2 q;
    q.cos_gram = MatrixXd::Zero(N, N);
    VectorXd inv_norm(N);
    for (Index i = 0; i < N; ++i) inv_norm[i] = p.row_sq[i] > 0 ? 1.0 / std::sqrt(p.row_sq[i]) : 0.0;
    std::optional<SampleSpaceFdr> flat, relu_flat;
    std::vector<char> keep, relu_keep;
    if (sample_space) {
        flat.emplace(*b.labels, b.classes);
        relu_flat.emplace(*b.labels, b.classes);
        keep = keptColumns(p.max_dev, p.entry_sum, entries);
        relu_keep = keptColumns(p.relu_max_dev, p.relu_entry_sum, entries);
    }
    MatrixXd unit;
    reader.forEach([&](Index col0, const MatrixXd& x) {
        q.centred_sq += (x.array() - mean).square().sum();
        unit = inv_norm.asDiagonal() * x;
        linalg::addGramLower(q.cos_gram, unit.data(), unit.cols(), N);
        if (!sample_space) return;
        flat->add(x, keep, col0);
        relu_flat->add(x.cwiseMax(0.0), relu_keep, col0);
    });
    if (sample_space) q.flat = flat->finish(), q.relu_flat = relu_flat->finish();
    return q;
}

// ---- closed forms -----------------------------------------------------------------------------

struct MeanStd {
    double sum = 0, sq = 0, n = 0;
    void add(double v) { sum += v, sq += v * v, n += 1; }
    Nullable mean() const { return n > 0 ? Nullable(sum / n) : std::nullopt; }
    Nullable std() const {
        if (n <= 0) return std::nullopt;
        const double m = sum / n;
        return std::sqrt(std::max(0.0, sq / n - m * m));
    }
};

// Pairs i < j of rows with nonzero norm: all, same class, different class.
void cosineStats(const MatrixXd& G, const VectorXd& row_sq, const std::vector<std::int32_t>* labels, LayerStats& s) {
    MeanStd all, same, diff;
    const Index N = G.rows();
    for (Index j = 0; j < N; ++j) {
        if (!(row_sq[j] > 0)) continue;
        for (Index i = j + 1; i < N; ++i) {
            if (!(row_sq[i] > 0)) continue;
            const double c = G(i, j);
            all.add(c);
            if (labels) ((*labels)[static_cast<std::size_t>(i)] == (*labels)[static_cast<std::size_t>(j)] ? same : diff).add(c);
        }
    }
    s.cone_mean_cos = all.mean();
    s.cone_std_cos = all.std();
    if (!labels) return;
    s.cone_mean_cos_same_class = same.mean();
    s.cone_std_cos_same_class = same.std();
    s.cone_mean_cos_diff_class = diff.mean();
    s.cone_std_cos_diff_class = diff.std();
}

// (sqrt(D) - ||h||_1 / ||h||_2) / (sqrt(D) - 1) per nonzero row (|h| has the same norms).
void hoyerStats(const VectorXd& row_sq, const VectorXd& row_l1, Index D, LayerStats& s) {
    if (D < 2) return;
    const double root = std::sqrt(double(D));
    std::vector<double> h;
    for (Index i = 0; i < row_sq.size(); ++i)
        if (row_sq[i] > 0) h.push_back((root - row_l1[i] / std::sqrt(row_sq[i])) / (root - 1));
    if (h.empty()) return;
    double sum = 0;
    for (double v : h) sum += v;
    const double mean = sum / double(h.size());
    s.hoyer_sparsity = mean;
    if (h.size() > 1) {
        double sq = 0;
        for (double v : h) sq += (v - mean) * (v - mean);
        s.hoyer_sparsity_var = sq / double(h.size() - 1);
    }
}

void validate(const std::string& name, const LayerBatch& b) {
    if ((b.f32 == nullptr) == (b.f64 == nullptr)) throw UsageError("layer " + name + ": give float32 or float64 data");
    if (b.rows < 1 || b.cols < 1) throw UsageError("layer " + name + ": an empty batch");
    if (b.channels < 0 || (b.channels > 0 && b.cols % b.channels != 0))
        throw UsageError("layer " + name + ": dimension " + std::to_string(b.cols) + " is no multiple of " +
                         std::to_string(b.channels) + " channels");
    if (b.labels) {
        if (static_cast<std::int64_t>(b.labels->size()) != b.rows) throw UsageError("layer " + name + ": labels and rows differ");
        for (auto y : *b.labels)
            if (y < 0 || y >= b.classes) throw UsageError("layer " + name + ": label " + std::to_string(y) + " outside [0, classes)");
    }
}

Nullable ratio(const Nullable& a, const Nullable& b) {
    return a && b && *b > 0 ? Nullable(*a / *b) : std::nullopt;
}

} // namespace

LayerStats computeLayerStats(const std::string& name, const LayerBatch& b, const LayerStatsOptions& o) {
    validate(name, b);
    LayerStats s;
    s.name = name;
    s.dimension = b.cols;
    s.channels = b.channels > 0 ? b.channels : b.cols;
    s.samples = b.rows;
    BlockReader reader(b, o);
    const Pass1 p = firstPass(reader, b, o);
    const Pass2 q = secondPass(reader, b, o, p);
    const double entries = double(b.rows) * double(b.cols);
    s.feature_mean = p.entry_sum / entries;
    if (entries > 1) s.feature_var = q.centred_sq / (entries - 1);
    cosineStats(q.cos_gram, p.row_sq, b.labels, s);
    hoyerStats(p.row_sq, p.row_l1, b.cols, s);
    if (!b.labels) return s; // label-free: no FDR, no traces, no same/different split
    const FdrValues pooled = engineFdr(p.pooled, *b.labels, b.classes);
    s.fdr = pooled.fdr;
    s.trace_sw = pooled.trace_sw;
    s.trace_sb = pooled.trace_sb;
    s.trace_ratio = ratio(pooled.trace_sb, pooled.trace_sw);
    s.relu_fdr = engineFdr(p.relu_pooled, *b.labels, b.classes).fdr;
    if (o.flat_fdr) {
        const bool small = b.cols <= b.rows;
        const FdrValues flat = small ? engineFdr(p.flat, *b.labels, b.classes) : q.flat;
        s.flat_fdr = flat.fdr;
        s.flat_trace_sw = flat.trace_sw;
        s.flat_trace_sb = flat.trace_sb;
        s.flat_relu_fdr = small ? engineFdr(p.relu_flat, *b.labels, b.classes).fdr : q.relu_flat.fdr;
    }
    return s;
}

void setBatchNormStats(LayerStats& s, const std::vector<Eigen::VectorXd>& gammas, const std::vector<Eigen::VectorXd>& betas) {
    s.bn_layers = static_cast<std::int64_t>(gammas.size());
    MeanStd g, b;
    for (const auto& v : gammas)
        for (Index i = 0; i < v.size(); ++i) g.add(v[i]);
    for (const auto& v : betas)
        for (Index i = 0; i < v.size(); ++i) b.add(v[i]);
    s.bn_gamma_mean = g.mean();
    s.bn_gamma_std = g.std();
    s.bn_beta_mean = b.mean();
    s.bn_beta_std = b.std();
}

FdrValues sampleSpaceFdr(const RowMatrix& X, const std::vector<std::int32_t>& labels, std::int64_t classes) {
    LayerBatch b;
    b.f64 = X.data();
    b.rows = X.rows();
    b.cols = X.cols();
    b.labels = &labels;
    b.classes = classes;
    validate("sampleSpaceFdr", b);
    std::vector<double> max_dev(static_cast<std::size_t>(X.cols()));
    MatrixXd all = X; // column-major N x D
    addMaxDeviation(all, 0, max_dev);
    SampleSpaceFdr fdr(labels, classes);
    fdr.add(all, keptColumns(max_dev, X.sum(), double(X.size())), 0);
    return fdr.finish();
}

const std::vector<std::pair<const char*, Nullable LayerStats::*>>& layerStatisticFields() {
    using S = LayerStats;
    static const std::vector<std::pair<const char*, Nullable LayerStats::*>> fields{
        {"cone_mean_cos", &S::cone_mean_cos},
        {"cone_std_cos", &S::cone_std_cos},
        {"cone_mean_cos_same_class", &S::cone_mean_cos_same_class},
        {"cone_std_cos_same_class", &S::cone_std_cos_same_class},
        {"cone_mean_cos_diff_class", &S::cone_mean_cos_diff_class},
        {"cone_std_cos_diff_class", &S::cone_std_cos_diff_class},
        {"fdr", &S::fdr},
        {"relu_fdr", &S::relu_fdr},
        {"trace_sw", &S::trace_sw},
        {"trace_sb", &S::trace_sb},
        {"trace_ratio", &S::trace_ratio},
        {"flat_fdr", &S::flat_fdr},
        {"flat_relu_fdr", &S::flat_relu_fdr},
        {"flat_trace_sw", &S::flat_trace_sw},
        {"flat_trace_sb", &S::flat_trace_sb},
        {"feature_mean", &S::feature_mean},
        {"feature_var", &S::feature_var},
        {"hoyer_sparsity", &S::hoyer_sparsity},
        {"hoyer_sparsity_var", &S::hoyer_sparsity_var},
        {"bn_gamma_mean", &S::bn_gamma_mean},
        {"bn_gamma_std", &S::bn_gamma_std},
        {"bn_beta_mean", &S::bn_beta_mean},
        {"bn_beta_std", &S::bn_beta_std},
    };
    return fields;
}

std::string defaultLayerRunName(const LayerRun& run) {
    return run.inputs + "_" + run.weights + (run.blocks ? "_blocks" : "") + (run.standardize ? "_std" : "");
}

} // namespace ltlab
