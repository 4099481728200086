// The analysis engine: two streamed passes over one split's features, then
// the metrics of shared/spec/analysis.md from the accumulated statistics.

#include "ltlab/analysis.h"
#include "ltlab/implicit_la.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <functional>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include <Eigen/Dense>
#include <omp.h>

#include "huge_pages.h"
#include "linalg.h"
#include "logit_adjustment.h"
#include "row_kernels.h"
#include "ltlab/error.h"

namespace ltlab {

namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;

constexpr double kFdrConstantDimTolerance = 1e-3;

// Counts non-finite entries of a chunk and remembers where the first one is.
// Whether n contiguous values are all finite: an exponent of all ones is NaN or
// Inf. Integer tests, so that the loop vectorises, on all threads (Eigen's
// allFinite() walked the row-major chunks column by column, one value at a time).
template <typename Scalar>
bool allFinite(const Scalar* values, Index n) {
    using Bits = std::conditional_t<sizeof(Scalar) == 4, std::uint32_t, std::uint64_t>;
    constexpr Bits exponent = static_cast<Bits>(sizeof(Scalar) == 4 ? 0x7f800000ull : 0x7ff0000000000000ull);
    unsigned bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad)
    for (Index i = 0; i < n; ++i) {
        Bits bits;
        std::memcpy(&bits, values + i, sizeof bits);
        bad |= static_cast<unsigned>((bits & exponent) == exponent);
    }
    return bad == 0;
}

struct FiniteCheck {
    std::int64_t bad = 0, first_row = -1, first_col = -1;

    // m: rows of a row-major matrix (contiguous).
    template <typename Block>
    void scan(const Block& m, std::int64_t row0) {
        if (allFinite(m.data(), m.size())) return;
        for (Index r = 0; r < m.rows(); ++r)
            for (Index c = 0; c < m.cols(); ++c)
                if (!std::isfinite(m(r, c)) && bad++ == 0) {
                    first_row = row0 + r;
                    first_col = c;
                }
    }
    void report(const FeatureSource& source, const char* what) const {
        if (bad)
            source.fail(what, std::to_string(bad) + " non-finite values (NaN or Inf; first at row " +
                                  std::to_string(first_row) + ", column " + std::to_string(first_col) + ")");
    }
};

template <typename Values>
std::pair<double, double> meanAndStd(const Values& v) { // population std (ddof 0)
    const double n = static_cast<double>(v.size());
    double mean = 0;
    for (double x : v) mean += x;
    mean /= n;
    double var = 0;
    for (double x : v) var += (x - mean) * (x - mean);
    return {mean, std::sqrt(var / n)};
}

// Equiangularity statistics of the rows of X (K x D): std of pairwise cosines
// and mean |cos + 1/(K-1)|. Null when a row is zero.
struct AngleStats {
    Nullable equiangular, maxangle, mean_cos;
};
// cos(x_i, x_j) between the rows of X; NaN where a row is zero.
MatrixXd cosineMatrix(const RowMatrix& X) {
    const VectorXd norms = X.rowwise().norm();
    MatrixXd cos = X * X.transpose();
    for (Index j = 0; j < X.rows(); ++j) // column-major: i walks memory
        for (Index i = 0; i < X.rows(); ++i)
            cos(i, j) = norms[i] > 0 && norms[j] > 0 ? cos(i, j) / (norms[i] * norms[j]) : std::nan("");
    return cos;
}

// The statistics of the off-diagonal cosines (none when a row was zero).
AngleStats cosineStats(const MatrixXd& cos) {
    const Index K = cos.rows();
    AngleStats out;
    if (K < 2 || cos.diagonal().array().isNaN().any()) return out;
    std::vector<double> cosines;
    cosines.reserve(static_cast<std::size_t>(K * (K - 1) / 2));
    for (Index i = 0; i < K; ++i)
        for (Index j = i + 1; j < K; ++j) cosines.push_back(cos(i, j));
    const auto [mean, std] = meanAndStd(cosines);
    double maxangle = 0;
    for (double c : cosines) maxangle += std::abs(c + 1.0 / static_cast<double>(K - 1));
    out.equiangular = std;
    out.maxangle = maxangle / static_cast<double>(cosines.size());
    out.mean_cos = mean;
    return out;
}

AngleStats pairwiseCosineStats(const RowMatrix& X) { return cosineStats(cosineMatrix(X)); }

// X divided by a power of two (exact) when its entries are so large that
// their squares overflow (weights near 1e300): the scale-invariant NC2 and
// NC3 statistics then stay finite and equal to their exact values.
// X itself when it needs no scaling (no copy), else the scaled copy in `scaled`.
const RowMatrix& tamed(const RowMatrix& X, RowMatrix& scaled) {
    const double largest = X.size() ? X.cwiseAbs().maxCoeff() : 0.0;
    if (!std::isfinite(largest) || !(largest > 0x1p500)) return X;
    int exponent = 0;
    std::frexp(largest, &exponent);
    scaled = X * std::ldexp(1.0, -exponent);
    return scaled;
}

Nullable ratio(double numerator, double denominator) {
    return denominator != 0 && std::isfinite(numerator / denominator) ? Nullable(numerator / denominator) : std::nullopt;
}

// ---- Precision and chunking ---------------------------------------------------

constexpr double kUnitRoundoff32 = 0x1p-24;
// A split whose features take at most this much is read once and kept for pass 2.
constexpr double kKeepAllBytes = 64.0 * (1 << 20);

template <typename T>
using RowMatrixT = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Worst-case error of a float32 dot product x . y of length D whose inputs were
// rounded to float32 once (the features are exact when stored as float32):
// (D + 2) u sum |x_d y_d| for the products and sums, u |x . y| for the result,
// and sum |x_d y_d| <= ||x|| ||y||; the 1% covers the second-order terms.
double float32DotBound(Index D) { return 1.01 * static_cast<double>(D + 4) * kUnitRoundoff32; }

bool useFloat32(const FeatureSource& source, const AnalysisOptions& options, Index N, Index D, Index C) {
    AnalysisOptions::Precision precision = options.precision;
    if (precision == AnalysisOptions::Precision::Auto)
        if (const char* env = std::getenv("LTLAB_ANALYSIS_PRECISION"); env && *env) {
            const std::string value = env;
            if (value != "float32" && value != "float64" && value != "auto")
                throw UsageError("LTLAB_ANALYSIS_PRECISION must be float32, float64 or auto, not '" + value + "'");
            precision = value == "float32"   ? AnalysisOptions::Precision::Float32
                        : value == "float64" ? AnalysisOptions::Precision::Float64
                                             : precision;
        }
    if (precision == AnalysisOptions::Precision::Auto)
        return source.featuresAreFloat32() && 2.0 * N * D * static_cast<double>(D + C) >= 1e9;
    return precision == AnalysisOptions::Precision::Float32;
}

bool keptWhole(Index N, Index D, std::size_t value_bytes) {
    return static_cast<double>(N) * static_cast<double>(D) * static_cast<double>(value_bytes) <= kKeepAllBytes;
}

// Rows per chunk: about 1M (float64) or 4M (float32) values per buffer. A split
// kept whole in float32 (FeatureChunks) is read once anyway, and what its chunks
// cost is the first touch of the work buffers (rows, products, logits): 1024
// rows then (CIFAR-100-LT size: 0.155-0.159 s of analysis against 0.18-0.19 s
// in chunks of 8192 rows, 7,500 page faults against 9,800).
Index chunkRows(const AnalysisOptions& options, bool float32, Index N, Index D, Index C) {
    const Index per_buffer = float32 ? Index{1} << 22 : Index{1} << 20;
    const Index widest = std::max<Index>(std::max(D, C), 1);
    const Index rows = options.chunk_rows > 0                     ? options.chunk_rows
                       : float32 && keptWhole(N, D, sizeof(float)) ? Index{1024}
                                                                   : std::clamp<Index>(per_buffer / widest, 64, 1 << 14);
    return std::min<Index>(std::max<Index>(N, 1), rows);
}

// The features in chunks of rows, read into one buffer allocated once (fresh pages
// cost more here than the arithmetic on them). A small split is kept whole, so
// that pass 2 does not read the file again.
template <typename T>
class FeatureChunks {
public:
    FeatureChunks(const FeatureSource& source, Index N, Index D, Index chunk)
        : source_(source), keep_all_(keptWhole(N, D, sizeof(T))),
          buffer_(keep_all_ ? N : chunk, D) {
        preferHugePages(buffer_.data(), static_cast<std::size_t>(buffer_.size()) * sizeof(T));
    }
    typename RowMatrixT<T>::RowsBlockXpr rows(Index row0, Index R, bool second_pass) {
        auto block = keep_all_ ? buffer_.middleRows(row0, R) : buffer_.topRows(R);
        if (!(keep_all_ && second_pass)) source_.readFeatures(row0, block);
        return block;
    }
    void release() { buffer_.resize(0, 0); }

private:
    const FeatureSource& source_;
    bool keep_all_;
    RowMatrixT<T> buffer_;
};

// The buffers both passes work in, allocated once (in 2 MiB pages where they
// are large): a chunk of transformed rows (pass 1: shifted unit rows; pass 2:
// centred rows), its T products with the classifier (pass 1) or the centred
// means (pass 2), the float64 logits, the float32 Gram tile and row norms.
template <typename T>
struct Tiles {
    Tiles(Index chunk, Index D, Index C)
        : rows(chunk, D), products(chunk, C), logits(chunk, C),
          gram(std::is_same_v<T, float> ? D : 0, std::is_same_v<T, float> ? D : 0), norms(chunk) {
        preferHugePages(rows.data(), static_cast<std::size_t>(rows.size()) * sizeof(T));
        preferHugePages(products.data(), static_cast<std::size_t>(products.size()) * sizeof(T));
        preferHugePages(logits.data(), static_cast<std::size_t>(logits.size()) * sizeof(double));
    }
    RowMatrixT<T> rows, products;
    RowMatrix logits;
    Eigen::MatrixXf gram;
    VectorXd norms;
};

void addGram(MatrixXd& G, Eigen::MatrixXf& tile, const RowMatrixT<float>::RowsBlockXpr& X,
             linalg::Float32Library library) {
    linalg::addGramLower(G, tile, X.data(), X.rows(), X.cols(), library);
}
void addGram(MatrixXd& G, Eigen::MatrixXf&, const RowMatrixT<double>::RowsBlockXpr& X, linalg::Float32Library) {
    linalg::addGramLower(G, X.data(), X.rows(), X.cols());
}

void multiply(const float* A, const float* B, float* out, Index rows, Index M, Index D,
              linalg::Float32Library library) {
    linalg::multiplyByTransposed(A, B, out, rows, M, D, library);
}
void multiply(const double* A, const double* B, double* out, Index rows, Index M, Index D, linalg::Float32Library) {
    linalg::multiplyByTransposed(A, B, out, rows, M, D);
}

// ---- Per-row decisions ----------------------------------------------------------

// Index of the largest entry (ties go to the lowest index) and its lead over the rest.
inline std::pair<Index, double> argmaxWithLead(const double* v, Index n) {
    Index best = 0;
    double second = -std::numeric_limits<double>::infinity();
    for (Index c = 1; c < n; ++c) {
        if (v[c] > v[best]) {
            second = v[best];
            best = c;
        } else {
            second = std::max(second, v[c]);
        }
    }
    return {best, v[best] - second};
}

// Nearest present class mean of h = mu_y + c (c: the float64 centred row) from
// scores s_k = c . m_k with m_k = mu_k - mu_bar:
// ||h - mu_k||^2 = const + ||m_k||^2 - 2 (s_k + m_y . m_k). Candidates closer than
// the scores' error bound (plus float64 rounding) are settled with direct distances.
struct NearestMeanData {
    const RowMatrix& present_means;
    VectorXd sq_norms;        // ||m_k||^2
    MatrixXd gram;            // m_j . m_k
    double max_norm = 0;      // max_k ||m_k||
    double score_bound = 0;   // error of s_k per ||c|| ||m_k|| (0 for float64 products)
};

template <typename H, typename Scores>
Index nearestMean(const H& h, double c_norm, Index y, const Scores& scores, const NearestMeanData& m) {
    const Index K = m.sq_norms.size();
    Index best = 0;
    double best_d = std::numeric_limits<double>::infinity(), second_d = best_d;
    for (Index k = 0; k < K; ++k) {
        const double d = m.sq_norms[k] - 2 * (static_cast<double>(scores[k]) + m.gram(y, k));
        if (d < best_d) {
            second_d = best_d;
            best_d = d;
            best = k;
        } else if (d < second_d) {
            second_d = d;
        }
    }
    const double scale = (c_norm + std::sqrt(m.sq_norms[y])) * (c_norm + std::sqrt(m.sq_norms[y])) + m.sq_norms[best];
    const double tolerance = 4 * m.score_bound * c_norm * m.max_norm + 1e-10 * scale;
    if (K < 2 || second_d - best_d > tolerance) return best;
    best_d = std::numeric_limits<double>::infinity();
    for (Index k = 0; k < K; ++k) {
        const double d = (h.template cast<double>() - m.present_means.row(k)).squaredNorm();
        if (d < best_d) { // ties go to the lowest class id
            best_d = d;
            best = k;
        }
    }
    return best;
}

// ---- Pass 1: everything that needs no class means ---------------------------------

struct PassOneSums {
    std::vector<std::int64_t> count, nonzero, correct;
    std::vector<double> norm_sum, unit_sq_sum;
    RowMatrix class_sum, unit_class_sum;
    // Lower triangle of sum_i (u_i - s)(u_i - s)^T over the non-zero rows, made
    // U^T U by finishUnitGram: the shift s (a mean unit vector of the first chunk)
    // keeps float32 tiles accurate for features inside a narrow cone.
    MatrixXd unit_gram;
    Eigen::RowVectorXd shift, shift_sum;
    double unit_quartic_sum = 0;
    Eigen::RowVectorXd max_dev_from_first, first_row;
    std::vector<std::int32_t> prediction;
    std::vector<std::int64_t> confusion;
    std::vector<double> loss_sum; // per class: sum of the samples' cross-entropy
    std::int64_t recomputed = 0, logits_recomputed = 0; // rows refined, logits computed again in float64
};

struct PassContext {
    const FeatureSource& source;
    const ClassifierInput& classifier;
    const std::vector<std::int32_t>& labels;
    Index N, D, C, chunk;
    linalg::Float32Library library; // for the float32 products
};

// Row norms and squared norms of the unit rows, in float64.
template <typename Block>
void rowNorms(const Block& H, VectorXd& norms, VectorXd& unit_sq) {
#pragma omp parallel for schedule(static)
    for (Index i = 0; i < H.rows(); ++i) {
        const auto* h = H.data() + i * H.outerStride();
        const double n = std::sqrt(kernels::squaredNorm(h, H.cols()));
        norms[i] = n;
        // Times the reciprocal (within an ulp of the quotient; a division per entry cost more than the rest).
        unit_sq[i] = n > 0 ? kernels::scaledSquaredNorm(h, H.cols(), 1.0 / n) : 0.0;
    }
}

template <typename Block>
Eigen::RowVectorXd meanUnitRow(const Block& H, const VectorXd& norms) {
    Eigen::RowVectorXd s = Eigen::RowVectorXd::Zero(H.cols());
    double n = 0;
    for (Index i = 0; i < H.rows(); ++i)
        if (norms[i] > 0) {
            s += H.row(i).template cast<double>() / norms[i];
            ++n;
        }
    return n > 0 ? Eigen::RowVectorXd(s / n) : s;
}

// Class sums, unit class sums, the largest deviation from the first row, and the
// shifted unit rows V (as T) for the Gram tile. Threads take disjoint column
// ranges, so no two write the same entry.
template <typename T, typename Block, typename VBlock>
void accumulateColumns(const Block& H, VBlock& V, const VectorXd& norms, const std::int32_t* labels, PassOneSums& s) {
    const Index R = H.rows(), D = H.cols();
#pragma omp parallel
    {
        const Index parts = omp_get_num_threads(), part = omp_get_thread_num();
        const Index d0 = D * part / parts, width = D * (part + 1) / parts - d0;
        for (Index i = 0; i < R && width > 0; ++i) {
            const Index y = labels[i];
            // A zero row (inverse norm 0) is left out of the cone statistics: its V row is zero.
            kernels::accumulateRow(H.data() + i * H.outerStride() + d0, width, norms[i] > 0 ? 1.0 / norms[i] : 0.0,
                                   s.class_sum.row(y).data() + d0, s.unit_class_sum.row(y).data() + d0,
                                   s.max_dev_from_first.data() + d0, s.first_row.data() + d0, s.shift.data() + d0,
                                   s.shift_sum.data() + d0, V.data() + i * V.outerStride() + d0);
        }
    }
}

void countRows(const VectorXd& norms, const VectorXd& unit_sq, const std::int32_t* labels, Index R, PassOneSums& s) {
    for (Index i = 0; i < R; ++i) {
        const auto y = static_cast<std::size_t>(labels[i]);
        ++s.count[y];
        s.norm_sum[y] += norms[i];
        if (norms[i] > 0) {
            ++s.nonzero[y];
            s.unit_sq_sum[y] += unit_sq[i];
            s.unit_quartic_sum += unit_sq[i] * unit_sq[i];
        }
    }
}

// U^T U = sum (s + v)(s + v)^T = V^T V + n s s^T + s (sum v)^T + (sum v) s^T, lower triangle.
void finishUnitGram(PassOneSums& s) {
    double n = 0;
    for (auto c : s.nonzero) n += static_cast<double>(c);
    const Index D = s.unit_gram.rows();
    const VectorXd shift = s.shift.transpose(), sum = s.shift_sum.transpose();
#pragma omp parallel for schedule(dynamic, 16)
    for (Index j = 0; j < D; ++j)
        s.unit_gram.col(j).tail(D - j) +=
            n * shift[j] * shift.tail(D - j) + sum[j] * shift.tail(D - j) + shift[j] * sum.tail(D - j);
}

// The logits of a chunk, Z = H W^T + b, as T products widened to float64.
template <typename T, typename Block>
void computeLogits(const Block& H, const RowMatrixT<T>& weight, const VectorXd& bias, RowMatrixT<T>& tile,
                   RowMatrix::RowsBlockXpr Z, linalg::Float32Library library) {
    const Index R = H.rows(), C = weight.rows();
    if constexpr (std::is_same_v<T, double>) {
        linalg::multiplyByTransposed(H.data(), weight.data(), Z.data(), R, C, H.cols());
        Z.rowwise() += bias.transpose();
    } else {
        linalg::multiplyByTransposed(H.data(), weight.data(), tile.data(), R, C, H.cols(), library);
#pragma omp parallel for schedule(static)
        for (Index i = 0; i < R; ++i) kernels::widenAdd(tile.row(i).data(), bias.data(), C, Z.row(i).data());
    }
}

// Each row's cross-entropy -log softmax(z_i)_{y_i} = logsumexp(z_i) - z_{i,y_i},
// with the largest logit taken out first so that exp never overflows.
void crossEntropy(const RowMatrix::RowsBlockXpr& Z, const std::int32_t* labels, VectorXd& out) {
#pragma omp parallel for schedule(static)
    for (Index i = 0; i < Z.rows(); ++i) {
        const double top = Z.row(i).maxCoeff();
        out[i] = top + std::log(kernels::sumExpShifted(Z.row(i).data(), Z.cols(), top)) - Z(i, labels[i]);
    }
}

// Is argmax z = pred certain under the logits' error bounds e? If not, the
// classes that could be the argmax go to `open`.
inline bool argmaxCertain(const double* z, const double* e, Index C, Index pred, std::vector<std::int32_t>& open) {
    const double floor = z[pred] - e[pred];
    bool certain = true;
    for (Index c = 0; c < C; ++c) {
        if (c == pred || e[c] + e[pred] == 0) continue; // exact pairs: argmax decided them
        if (!(z[c] + e[c] < floor)) {
            certain = false;
            open.push_back(static_cast<std::int32_t>(c));
        }
    }
    if (!certain && e[pred] > 0) open.push_back(static_cast<std::int32_t>(pred));
    return certain;
}

// What decides the rows' predictions and logit-adjustment wins: exact logits
// (float64 products, stored logits), or float32 logits, each with its bound
// |z_hat_c - z_c| <= g ||h_i|| ||w_c||, whose open decisions are refined.
struct RowDecider {
    RowDecider(const ClassifierInput& classifier, bool bounded, Index D, const LogitAdjustmentSweeper& sweeper)
        : bias(classifier.bias) {
        const int threads = std::max(1, omp_get_max_threads());
        sweepers.assign(static_cast<std::size_t>(threads), sweeper);
        if (!bounded) return;
        weight = classifier.weight; // row-major float64, for single logits
        weight_bounds = float32DotBound(D) * classifier.weight.rowwise().norm();
        scratch.resize(static_cast<std::size_t>(threads));
        for (auto& s : scratch) {
            s.errors.resize(static_cast<std::size_t>(weight.rows()));
            s.open.reserve(static_cast<std::size_t>(weight.rows()));
            s.h.resize(D);
        }
    }
    bool bounded() const { return weight.size() > 0; }

    const VectorXd& bias;
    RowMatrix weight;
    VectorXd weight_bounds; // g ||w_c||
    std::vector<LogitAdjustmentSweeper> sweepers; // one per thread, merged at the end
    struct Scratch {
        std::vector<double> errors;
        std::vector<std::int32_t> open;
        Eigen::RowVectorXd h;
    };
    std::vector<Scratch> scratch;
};

// Predictions and the logit-adjustment sweep of independent rows, on all threads.
// Where the float32 bounds leave a decision open, the logits it involves are
// computed again in float64 (in place in Z) and the row is decided again, until
// every decision is certain: the float64 decisions, at the price of a few dot
// products. Returns {rows refined, logits recomputed}.
template <typename Block>
std::pair<std::int64_t, std::int64_t> decideRows(const Block& H, RowMatrix::RowsBlockXpr Z, const VectorXd& norms,
                                                 const std::int32_t* labels, bool sweep, RowDecider& d,
                                                 std::int32_t* prediction) {
    const Index R = Z.rows(), C = Z.cols();
    std::int64_t refined = 0, recomputed = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : refined, recomputed)
    for (Index i = 0; i < R; ++i) {
        const auto t = static_cast<std::size_t>(omp_get_thread_num());
        auto& sweeper = d.sweepers[t];
        double* z = Z.row(i).data();
        if (!d.bounded()) {
            prediction[i] = static_cast<std::int32_t>(argmaxWithLead(z, C).first);
            if (sweep) sweeper.add(z, labels[i], prediction[i]);
            continue;
        }
        auto& s = d.scratch[t];
        double* e = s.errors.data();
        for (Index c = 0; c < C; ++c) e[c] = norms[i] * d.weight_bounds[c];
        auto exact = [&](Index c) {
            z[c] = s.h.dot(d.weight.row(c)) + d.bias[c];
            e[c] = 0;
            ++recomputed;
        };
        for (int round = 0;; ++round) {
            s.open.clear();
            const auto pred = static_cast<std::int32_t>(argmaxWithLead(z, C).first);
            if (argmaxCertain(z, e, C, pred, s.open)) {
                prediction[i] = pred;
                if (!sweep || sweeper.add(z, labels[i], pred, e, &s.open)) break;
            }
            if (round == 0) {
                s.h = H.row(i).template cast<double>();
                ++refined;
            }
            Index named = 0;
            for (const auto c : s.open)
                if (e[c] > 0) {
                    exact(c);
                    ++named;
                }
            if (named == 0 || round >= 8) // a safeguard: all logits exact decide everything
                for (Index c = 0; c < C; ++c)
                    if (e[c] > 0) exact(c);
        }
    }
    return {refined, recomputed};
}

template <typename T>
PassOneSums passOne(const PassContext& ctx, FeatureChunks<T>& chunks, Tiles<T>& tiles, LogitAdjustmentSweeper& sweeper,
                    FiniteCheck& feature_check, FiniteCheck& logit_check, double& blas_flops,
                    const std::function<void(double)>& progress) {
    const Index N = ctx.N, D = ctx.D, C = ctx.C, chunk = ctx.chunk;
    const auto Cs = static_cast<std::size_t>(C);
    PassOneSums s;
    s.count.assign(Cs, 0);
    s.nonzero.assign(Cs, 0);
    s.correct.assign(Cs, 0);
    s.norm_sum.assign(Cs, 0);
    s.unit_sq_sum.assign(Cs, 0);
    s.class_sum = RowMatrix::Zero(C, D);
    s.unit_class_sum = RowMatrix::Zero(C, D);
    s.unit_gram = MatrixXd::Zero(D, D);
    s.shift_sum = s.max_dev_from_first = Eigen::RowVectorXd::Zero(D);
    s.prediction.assign(static_cast<std::size_t>(N), 0);
    s.confusion.assign(Cs * Cs, 0);
    s.loss_sum.assign(Cs, 0.0);

    const bool stored_logits = ctx.source.hasLogits();
    const RowMatrixT<T> weight = ctx.classifier.weight.cast<T>();
    RowDecider decider(ctx.classifier, std::is_same_v<T, float> && !stored_logits && C > 0, D, sweeper);
    VectorXd& norms = tiles.norms;
    VectorXd unit_sq(chunk), cross_entropy(chunk);
    for (Index row0 = 0; row0 < N; row0 += chunk) {
        const Index R = std::min(chunk, N - row0);
        const std::int32_t* labels = ctx.labels.data() + row0;
        auto H = chunks.rows(row0, R, false);
        feature_check.scan(H, row0);
        if (feature_check.bad) continue; // keep counting; the pass ends in an error
        auto Z = tiles.logits.topRows(R);
        if (stored_logits) {
            ctx.source.readLogits(row0, Z);
            logit_check.scan(Z, row0);
        } else {
            computeLogits<T>(H, weight, ctx.classifier.bias, tiles.products, Z, ctx.library);
            blas_flops += 2.0 * R * C * D;
        }
        rowNorms(H, norms, unit_sq);
        if (row0 == 0) {
            s.first_row = H.row(0).template cast<double>();
            s.shift = meanUnitRow(H, norms);
        }
        auto V = tiles.rows.topRows(R);
        accumulateColumns<T>(H, V, norms, labels, s);
        addGram(s.unit_gram, tiles.gram, V, ctx.library);
        blas_flops += static_cast<double>(R) * D * (D + 1);
        countRows(norms, unit_sq, labels, R, s);

        const bool sweep = !logit_check.bad;
        std::int32_t* prediction = s.prediction.data() + row0;
        const auto [refined, recomputed] = decideRows(H, Z, norms, labels, sweep, decider, prediction);
        s.recomputed += refined;
        s.logits_recomputed += recomputed;
        if (sweep) crossEntropy(Z, labels, cross_entropy);
        for (Index i = 0; i < R; ++i) {
            const auto y = static_cast<std::size_t>(labels[i]);
            ++s.confusion[y * Cs + static_cast<std::size_t>(prediction[i])];
            if (prediction[i] == labels[i]) ++s.correct[y];
            if (sweep) s.loss_sum[y] += cross_entropy[i];
        }
        progress(0.5 * static_cast<double>(row0 + R) / static_cast<double>(N));
    }
    for (const auto& part : decider.sweepers) sweeper.merge(part);
    if (N > 0 && s.shift.size() == D) finishUnitGram(s);
    return s;
}

// ---- Pass 2: within-class scatter (centred in float64: exact) and nearest class mean

struct PassTwoResult {
    MatrixXd scatter_within; // lower triangle
    std::int64_t nc4_mismatches = 0;
};

template <typename T>
PassTwoResult passTwo(const PassContext& ctx, FeatureChunks<T>& chunks, Tiles<T>& tiles, const RowMatrix& means,
                      const RowMatrix& present_means, const RowMatrix& centred_means, const std::vector<Index>& present,
                      const std::vector<std::int32_t>& prediction, double& blas_flops,
                      const std::function<void(double)>& progress) {
    const Index N = ctx.N, D = ctx.D, K = present_means.rows(), chunk = ctx.chunk;
    PassTwoResult out;
    out.scatter_within = MatrixXd::Zero(D, D);
    std::vector<Index> present_index(static_cast<std::size_t>(ctx.C), -1);
    for (Index k = 0; k < K; ++k) present_index[static_cast<std::size_t>(present[static_cast<std::size_t>(k)])] = k;
    NearestMeanData nm{present_means, centred_means.rowwise().squaredNorm(), centred_means * centred_means.transpose(),
                       K ? centred_means.rowwise().norm().maxCoeff() : 0.0,
                       std::is_same_v<T, float> ? float32DotBound(D) : 0.0};
    const RowMatrixT<T> centred_means_t = centred_means.cast<T>();
    VectorXd& centred_norms = tiles.norms;
    for (Index row0 = 0; row0 < N; row0 += chunk) {
        const Index R = std::min(chunk, N - row0);
        const std::int32_t* labels = ctx.labels.data() + row0;
        auto H = chunks.rows(row0, R, true);
        auto centred = tiles.rows.topRows(R);
#pragma omp parallel for schedule(static)
        for (Index i = 0; i < R; ++i)
            centred_norms[i] = std::sqrt(kernels::centre(H.data() + i * H.outerStride(), means.row(labels[i]).data(),
                                                         D, centred.data() + i * centred.outerStride()));
        addGram(out.scatter_within, tiles.gram, centred, ctx.library);
        Eigen::Map<RowMatrixT<T>> scores(tiles.products.data(), R, K); // K <= C columns
        multiply(centred.data(), centred_means_t.data(), scores.data(), R, K, D, ctx.library);
        blas_flops += static_cast<double>(R) * D * (D + 1) + 2.0 * R * K * D;
        std::int64_t mismatches = 0;
#pragma omp parallel for schedule(static) reduction(+ : mismatches)
        for (Index i = 0; i < R; ++i) {
            const Index y = present_index[static_cast<std::size_t>(labels[i])];
            const Index best = nearestMean(H.row(i), centred_norms[i], y, scores.row(i), nm);
            if (present[static_cast<std::size_t>(best)] != prediction[static_cast<std::size_t>(row0 + i)]) ++mismatches;
        }
        out.nc4_mismatches += mismatches;
        progress(0.5 + 0.5 * static_cast<double>(row0 + R) / static_cast<double>(N));
    }
    return out;
}

// Both passes in precision T; the pass-1 sums, class statistics and pass-2 results.
struct ClassStatistics {
    std::vector<Index> present;
    RowMatrix means, present_means, centred_means, present_weights;
    Eigen::RowVectorXd mean_of_means;
};

ClassStatistics classStatistics(const PassOneSums& s, const ClassifierInput& classifier) {
    const Index C = s.class_sum.rows(), D = s.class_sum.cols();
    ClassStatistics cs;
    for (Index c = 0; c < C; ++c)
        if (s.count[static_cast<std::size_t>(c)] > 0) cs.present.push_back(c);
    const auto K = static_cast<Index>(cs.present.size());
    cs.means = RowMatrix::Zero(C, D); // mu_c (zero rows for absent classes)
    for (Index c : cs.present) cs.means.row(c) = s.class_sum.row(c) / static_cast<double>(s.count[static_cast<std::size_t>(c)]);
    cs.present_means.resize(K, D);
    cs.present_weights.resize(K, D);
    for (Index k = 0; k < K; ++k) {
        cs.present_means.row(k) = cs.means.row(cs.present[static_cast<std::size_t>(k)]);
        cs.present_weights.row(k) = classifier.weight.row(cs.present[static_cast<std::size_t>(k)]);
    }
    cs.mean_of_means = K ? Eigen::RowVectorXd(cs.present_means.colwise().mean()) : Eigen::RowVectorXd::Zero(D);
    cs.centred_means = cs.present_means.rowwise() - cs.mean_of_means;
    return cs;
}

} // namespace

AnalysisOptions defaultOptionsFor(const RunFile& file, std::optional<std::int64_t> many_threshold,
                                  std::optional<std::int64_t> few_threshold) {
    AnalysisOptions options;
    options.many_threshold = many_threshold.value_or(file.classes().many_threshold.value_or(100));
    options.few_threshold = few_threshold.value_or(file.classes().few_threshold.value_or(20));
    if (options.many_threshold < options.few_threshold) {
        const auto from = [](bool given) { return given ? " (given)" : " (the run file's, or the default)"; };
        throw UsageError("--many-threshold " + std::to_string(options.many_threshold) + from(many_threshold.has_value()) +
                         " is below --few-threshold " + std::to_string(options.few_threshold) +
                         from(few_threshold.has_value()) + ": many-shot is n > many and few-shot n < few, so "
                         "--many-threshold must be >= --few-threshold");
    }
    return options;
}

Analysis analyze(const FeatureSource& source, const ClassifierInput& classifier, const AnalysisOptions& options) {
    const auto started = std::chrono::steady_clock::now();
    const Index N = source.numSamples(), D = source.featureDim(), C = classifier.weight.rows();
    if (classifier.weight.cols() != D || classifier.bias.size() != C ||
        static_cast<Index>(classifier.train_counts.size()) != C)
        throw UsageError("classifier, bias, train counts and features disagree in shape");
    const auto Cs = static_cast<std::size_t>(C);

    Analysis result;
    result.num_classes = C;
    result.feature_dim = D;
    result.num_samples = N;
    result.many_threshold = options.many_threshold;
    result.few_threshold = options.few_threshold;
    result.float32_products = useFloat32(source, options, N, D, C);
    // Both passes' products: two D x D Grams (as SYRK), the logits and the nearest-mean scores.
    const double product_flops = 2.0 * N * D * (D + 1.0) + 4.0 * N * C * D;
    auto library = linalg::Float32Library::OpenBLAS; // unused by the float64 products
    if (result.float32_products) {
        const linalg::Float32Products products = linalg::float32ProductsFor(product_flops);
        library = products.library;
        result.float32_library = products.name;
    }
    const PassContext ctx{source, classifier, source.labels(), N, D, C,
                          chunkRows(options, result.float32_products, N, D, C), library};

    auto phase_start = started;
    auto mark_phase = [&](const std::string& name) {
        const auto now = std::chrono::steady_clock::now();
        result.phase_seconds.emplace_back(name, std::chrono::duration<double>(now - phase_start).count());
        phase_start = now;
    };
    const std::function<void(double)> report_progress = [&](double fraction) {
        if (options.progress && !options.progress(fraction)) throw Cancelled();
    };

    // ---- The two passes over the features, in float32 tiles or float64 ----------
    LogitAdjustmentSweeper sweeper(classifier.train_counts);
    PassOneSums sums;
    ClassStatistics stats;
    PassTwoResult second;
    auto run_passes = [&](auto scalar) {
        using T = decltype(scalar);
        FeatureChunks<T> chunks(source, N, D, ctx.chunk);
        Tiles<T> tiles(ctx.chunk, D, C);
        FiniteCheck feature_check, logit_check;
        sums = passOne<T>(ctx, chunks, tiles, sweeper, feature_check, logit_check, result.blas_flops, report_progress);
        feature_check.report(source, "features");
        logit_check.report(source, "logits");
        const std::string precision = result.float32_products ? "float32 tiles" : "float64";
        mark_phase(("pass 1 (" + precision + "; sums, cone Gram, logits, LA sweep; " + std::to_string(sums.recomputed) +
                    " rows refined, " + std::to_string(sums.logits_recomputed) + " logits in float64)").c_str());
        stats = classStatistics(sums, classifier);
        second = passTwo<T>(ctx, chunks, tiles, stats.means, stats.present_means, stats.centred_means, stats.present,
                            sums.prediction, result.blas_flops, report_progress);
        mark_phase("pass 2 (within-class scatter, nearest mean)");
    };
    if (result.float32_products)
        run_passes(float{});
    else
        run_passes(double{});
    result.rows_recomputed = sums.recomputed;
    result.logits_recomputed = sums.logits_recomputed;
    result.confusion = std::move(sums.confusion);

    // The names the metrics below use.
    const auto& count = sums.count;
    const auto& nonzero = sums.nonzero;
    const auto& correct = sums.correct;
    const auto& norm_sum = sums.norm_sum;
    const auto& unit_sq_sum = sums.unit_sq_sum;
    const RowMatrix& class_sum = sums.class_sum;
    const RowMatrix& unit_class_sum = sums.unit_class_sum;
    const double unit_quartic_sum = sums.unit_quartic_sum;
    const double entry_sum = class_sum.sum();
    const Eigen::RowVectorXd& max_dev_from_first = sums.max_dev_from_first;
    const std::vector<Index>& present = stats.present;
    const auto K = static_cast<Index>(present.size());
    const RowMatrix& means = stats.means;
    const RowMatrix& present_means = stats.present_means;
    const RowMatrix& centred_means = stats.centred_means;
    const RowMatrix& present_weights = stats.present_weights;
    const Eigen::RowVectorXd& mean_of_means = stats.mean_of_means;
    const std::int64_t nc4_mismatches = second.nc4_mismatches;
    MatrixXd& scatter_within = second.scatter_within;
    MatrixXd& unit_gram = sums.unit_gram;
    linalg::symmetrizeFromLower(scatter_within);
    linalg::symmetrizeFromLower(unit_gram);
    mark_phase("Gram and scatter symmetrised");

    // ---- Per-class series and accuracies -------------------------------------
    auto& pc = result.per_class;
    pc.train_count = classifier.train_counts;
    pc.count = count;
    pc.weight_norm.resize(Cs);
    pc.bias.resize(Cs);
    pc.feature_norm.assign(Cs, std::nullopt);
    pc.mean_norm.assign(Cs, std::nullopt);
    pc.accuracy.assign(Cs, std::nullopt);
    pc.loss.assign(Cs, std::nullopt);
    pc.group.resize(Cs);
    for (std::size_t c = 0; c < Cs; ++c) {
        const auto ci = static_cast<Index>(c);
        pc.weight_norm[c] = classifier.weight.row(ci).stableNorm(); // finite for rows near 1e300
        pc.bias[c] = classifier.bias[ci];
        const std::int64_t n = classifier.train_counts[c];
        pc.group[c] = n > options.many_threshold ? ShotGroup::Many
                      : n < options.few_threshold ? ShotGroup::Few
                                                  : ShotGroup::Medium;
        if (count[c] == 0) continue;
        pc.feature_norm[c] = norm_sum[c] / static_cast<double>(count[c]);
        pc.mean_norm[c] = (means.row(ci) - mean_of_means).norm();
        pc.accuracy[c] = static_cast<double>(correct[c]) / static_cast<double>(count[c]);
        if (std::isfinite(sums.loss_sum[c])) pc.loss[c] = sums.loss_sum[c] / static_cast<double>(count[c]);
    }
    const ShotAccuracy shots = shotAccuracy(pc.accuracy, pc.group);
    result.accuracy = shots.all;
    result.accuracy_many = shots.many;
    result.accuracy_medium = shots.medium;
    result.accuracy_few = shots.few;
    std::int64_t total_correct = 0;
    for (auto c : correct) total_correct += c;
    if (N > 0) result.sample_accuracy = static_cast<double>(total_correct) / static_cast<double>(N);
    if (N > 0) result.nc4 = static_cast<double>(nc4_mismatches) / static_cast<double>(N);

    // ---- Neural collapse ------------------------------------------------------
    if (K >= 2) {
        // tr(Sigma_B^+ Sigma_W) / K with Sigma_W = S_W / N: the trace is linear in S_W.
        const linalg::PseudoInverse sigma_b_pinv = linalg::pseudoInverseOfGram(centred_means, static_cast<double>(K));
        result.nc1 = linalg::traceOfPinvTimes(sigma_b_pinv, scatter_within) / static_cast<double>(N) /
                     static_cast<double>(K);

        // Scale-invariant: computed on copies scaled down when their squares would overflow.
        RowMatrix scaled_means, scaled_weights;
        const RowMatrix& means_t = tamed(centred_means, scaled_means);
        const RowMatrix& weights_t = tamed(present_weights, scaled_weights);
        const VectorXd mean_norms = means_t.rowwise().norm();
        const auto [mn_mean, mn_std] = meanAndStd(mean_norms);
        result.nc2_equinorm_means = ratio(mn_std, mn_mean);
        const VectorXd weight_norms = weights_t.rowwise().norm();
        const auto [wn_mean, wn_std] = meanAndStd(weight_norms);
        result.nc2_equinorm_weights = ratio(wn_std, wn_mean);

        const AngleStats mean_angles = pairwiseCosineStats(means_t);
        result.nc2_equiangular_means = mean_angles.equiangular;
        result.nc2_maxangle_means = mean_angles.maxangle;
        const AngleStats weight_angles = pairwiseCosineStats(weights_t);
        result.nc2_equiangular_weights = weight_angles.equiangular;
        result.nc2_maxangle_weights = weight_angles.maxangle;

        const double wf = weights_t.norm(), mf = means_t.norm();
        if (wf > 0 && mf > 0) result.nc3 = (weights_t / wf - means_t / mf).squaredNorm();
    }
    mark_phase("NC1-NC3 (pseudo-inverse of the between-class scatter)");

    result.class_means = std::move(stats.means); // `means` is not used below
    result.classifier_weight = classifier.weight;
    // Mean unit features per class, for the sample-pair and feature-weight cosines.
    result.unit_class_means = RowMatrix::Zero(C, D);
    result.unit_count = nonzero;
    for (std::size_t c = 0; c < Cs; ++c)
        if (nonzero[c] > 0)
            result.unit_class_means.row(static_cast<Index>(c)) =
                unit_class_sum.row(static_cast<Index>(c)) / static_cast<double>(nonzero[c]);

    // Cosines between the (uncentred) class means: their mean, and the C x C
    // matrix for the heatmap views.
    const MatrixXd mean_cosines = cosineMatrix(present_means);
    result.class_means_mean_cos = cosineStats(mean_cosines).mean_cos;
    result.class_mean_cosine.assign(Cs * Cs, std::nullopt);
    for (Index a = 0; a < K; ++a)
        for (Index b = 0; b < K; ++b)
            if (!std::isnan(mean_cosines(a, b)))
                result.class_mean_cosine[static_cast<std::size_t>(present[static_cast<std::size_t>(a)]) * Cs +
                                         static_cast<std::size_t>(present[static_cast<std::size_t>(b)])] = mean_cosines(a, b);

    // ---- Fisher's discriminant ratio on the non-constant dimensions ------------
    if (K >= 2) {
        const double threshold =
            kFdrConstantDimTolerance * std::abs(entry_sum / (static_cast<double>(N) * static_cast<double>(D)));
        std::vector<Index> kept;
        for (Index d = 0; d < D; ++d)
            if (max_dev_from_first[d] > threshold) kept.push_back(d);
        result.fdr_dims_kept = static_cast<std::int64_t>(kept.size());
        if (!kept.empty()) {
            const auto Dk = static_cast<Index>(kept.size());
            const Eigen::RowVectorXd overall_mean = class_sum.colwise().sum() / static_cast<double>(N);
            MatrixXd kept_sw; // the kept dimensions' block, only when some are dropped
            RowMatrix between(K, Dk); // rows sqrt(n_c) (mu_c - mu)
            if (Dk < D) { // column by column (column-major: the inner index walks memory)
                kept_sw.resize(Dk, Dk);
                for (Index b = 0; b < Dk; ++b) {
                    const auto column = scatter_within.col(kept[static_cast<std::size_t>(b)]);
                    for (Index a = 0; a < Dk; ++a) kept_sw(a, b) = column[kept[static_cast<std::size_t>(a)]];
                }
            }
            for (Index k = 0; k < K; ++k) {
                const double w = std::sqrt(static_cast<double>(count[static_cast<std::size_t>(present[static_cast<std::size_t>(k)])]));
                for (Index a = 0; a < Dk; ++a) {
                    const Index d = kept[static_cast<std::size_t>(a)];
                    between(k, a) = w * (present_means(k, d) - overall_mean[d]);
                }
            }
            const MatrixXd& sw = Dk < D ? kept_sw : scatter_within;
            result.trace_sw = sw.trace();
            result.trace_sb = between.squaredNorm();
            // tr(S_W^+ S_B) with S_B = B^T B: the D x D S_B is never formed.
            result.fdr = linalg::traceOfPinvTimesGram(sw, std::move(between));
        }
    }
    mark_phase("FDR (Cholesky of the within-class scatter)");

    // ---- Cone effect: exact all-pairs statistics from sums and the Gram matrix --
    {
        double n_unit = 0, sq_sum = 0, same_pairs = 0, same_sum = 0;
        for (std::size_t c = 0; c < Cs; ++c) {
            const double n = static_cast<double>(nonzero[c]);
            n_unit += n;
            sq_sum += unit_sq_sum[c];
            same_pairs += n * (n - 1) / 2;
            same_sum += (unit_class_sum.row(static_cast<Index>(c)).squaredNorm() - unit_sq_sum[c]) / 2;
        }
        const double pairs = n_unit * (n_unit - 1) / 2;
        if (pairs > 0) {
            const double pair_sum = (unit_class_sum.colwise().sum().squaredNorm() - sq_sum) / 2;
            const double pair_sq_sum = (unit_gram.squaredNorm() - unit_quartic_sum) / 2;
            const double mean = pair_sum / pairs;
            result.cone_mean_cos = mean;
            result.cone_std_cos = std::sqrt(std::max(0.0, pair_sq_sum / pairs - mean * mean));
            if (same_pairs > 0) result.cone_mean_cos_same_class = same_sum / same_pairs;
            if (pairs - same_pairs > 0) result.cone_mean_cos_diff_class = (pair_sum - same_sum) / (pairs - same_pairs);
        }
    }

    // ---- Logit adjustment -----------------------------------------------------
    {
        const ImplicitLogitAdjustment implicit = implicitLogitAdjustment(pc.weight_norm, classifier.train_counts);
        result.implicit_la_tau = implicit.tau;
        result.implicit_la_intercept = implicit.intercept;
        result.la_additive = sweeper.finish(Adjustment::Additive, count, pc.group);
        result.la_multiplicative = sweeper.finish(Adjustment::Multiplicative, count, pc.group);
    }

    mark_phase("cone, logit adjustment");
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

std::size_t analysisWorkingSetBytes(std::int64_t N, std::int64_t D, std::int64_t C) {
    const double n = static_cast<double>(std::max<std::int64_t>(N, 0)), d = static_cast<double>(std::max<std::int64_t>(D, 0)),
                 c = static_cast<double>(std::max<std::int64_t>(C, 0));
    double largest = 0;
    for (const bool float32 : {true, false}) { // whichever precision the analysis picks
        const double value = float32 ? sizeof(float) : sizeof(double);
        const double chunk = static_cast<double>(chunkRows(AnalysisOptions{}, float32, N, D, C));
        const double features = keptWhole(N, D, static_cast<std::size_t>(value)) ? n * d * value : chunk * d * value;
        const double tiles = chunk * (d + c) * value + chunk * c * sizeof(double) + (float32 ? d * d * sizeof(float) : 0);
        largest = std::max(largest, features + tiles);
    }
    // Four D x D matrices (cone Gram, scatter, FDR's work, its kept block), about
    // a dozen C x D (sums, means, weights, the result's copies), per-sample vectors.
    const double rest = 4 * d * d * sizeof(double) + 12 * c * d * sizeof(double) + n * 16 + c * c * 24;
    return static_cast<std::size_t>(std::min(largest + rest, 0x1p62));
}

Analysis analyzeWeights(const ClassifierInput& classifier, const AnalysisOptions& options) {
    const MemorySource empty(RowMatrix(0, classifier.weight.cols()), {});
    return analyze(empty, classifier, options);
}

Analysis analyzeSnapshot(const std::shared_ptr<const RunFile>& file, const SnapshotInfo& snapshot,
                         const SplitInfo& split, const AnalysisOptions& options) {
    const std::string object = snapshotPath(snapshot) + "/" + split.name;
    Analysis result;
    try {
        ClassifierInput classifier{file->classifierWeight(snapshot), file->classifierBias(snapshot),
                                   file->classes().train_counts};
        const RunFileSource source(file, snapshot, split);
        result = analyze(source, classifier, options);
    } catch (const linalg::NumericalFailure& e) { // the library's words, with the file's
        throw InputError(file->path(), object, std::string("cannot be analysed: ") + e.what());
    } catch (const std::bad_alloc&) { // declared sizes beyond this machine's memory
        throw InputError(file->path(), object,
                         "not enough memory for its declared size (" + std::to_string(split.num_samples) +
                             " samples x " + std::to_string(snapshot.feature_dim) + " features, " +
                             std::to_string(file->classes().numClasses()) + " classes)");
    }
    result.snapshot = snapshot.name;
    result.split = split.name;
    result.epoch = snapshot.epoch;
    return result;
}

} // namespace ltlab
