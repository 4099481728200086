#include "linalg.h"

#include "ltlab/error.h"

#include <cblas.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Dense>

// LAPACK's Fortran symbol (in OpenBLAS), with gfortran's hidden string lengths.
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                        double* work, const int* lwork, int* iwork, const int* liwork, int* info, std::size_t jobz_len,
                        std::size_t uplo_len);

extern "C" void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, std::size_t uplo_len);

namespace ltlab::linalg {

namespace {
// A = L L^T in place, L in the lower triangle (LAPACK dpotrf: OpenBLAS's is
// blocked and threaded, several times Eigen's LLT at D = 2048). False when A
// is not positive definite (a pivot <= 0 or NaN), as Eigen's LLT would say.
bool choleskyLower(Eigen::MatrixXd& a) {
    const int n = static_cast<int>(a.rows());
    int info = 0;
    if (n > 0) dpotrf_("L", &n, a.data(), &n, &info, 1);
    return info == 0;
}
} // namespace

void addGramLower(Eigen::MatrixXd& G, const double* X, Eigen::Index rows, Eigen::Index cols) {
    if (rows == 0 || cols == 0) return;
    // Row-major X (rows x cols) is column-major X^T (cols x rows): G += X^T (X^T)^T.
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, static_cast<int>(cols), static_cast<int>(rows), 1.0, X,
                static_cast<int>(cols), 1.0, G.data(), static_cast<int>(G.rows()));
}

namespace {

// oneDNN's sgemm, looked up at first use (libdnnl.so.2, Debian's libdnnl2, which
// libtorch depends on): row-major C = alpha op(A) op(B) + beta C. It picks its
// kernel for the CPU itself, whatever OPENBLAS_CORETYPE says, and shares
// libgomp's threads with OpenBLAS and the engine.
using DnnlSgemm = int (*)(char transa, char transb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                          const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                          std::int64_t ldc);
struct DnnlVersion {
    int major, minor, patch;
    const char* hash;
    unsigned cpu_runtime, gpu_runtime;
};

// The forced choice of LTLAB_FLOAT32_GEMM ("" for auto), checked.
std::string float32Choice() {
    const char* env = std::getenv("LTLAB_FLOAT32_GEMM");
    const std::string choice = env ? env : "";
    if (choice != "" && choice != "auto" && choice != "onednn" && choice != "openblas")
        throw UsageError("LTLAB_FLOAT32_GEMM must be auto, onednn or openblas, not '" + choice + "'");
    return choice == "auto" ? "" : choice;
}

// oneDNN's sgemm, looked up once; `missing` says why it is not there.
struct OneDnn {
    DnnlSgemm sgemm = nullptr;
    std::string name, missing;
    OneDnn() {
#ifdef LTLAB_SANITIZED_BUILD
        missing = "sanitizer build: oneDNN is not loaded";
        return;
#endif
        void* lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            missing = "oneDNN's libdnnl.so.2 not found";
            return;
        }
        sgemm = reinterpret_cast<DnnlSgemm>(dlsym(lib, "dnnl_sgemm"));
        using VersionFn = const DnnlVersion* (*)();
        const auto version = reinterpret_cast<VersionFn>(dlsym(lib, "dnnl_version"));
        if (!sgemm) {
            missing = "libdnnl.so.2 has no dnnl_sgemm";
            return;
        }
        name = "oneDNN";
        if (version)
            if (const DnnlVersion* v = version())
                name += " " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    }
};

std::string oneDnnThreshold() { return std::to_string(static_cast<int>(kOneDnnMinFlops / 1e9)) + " GFLOP"; }

const OneDnn& oneDnn() {
    static const OneDnn library;
    return library;
}

DnnlSgemm sgemmOf(Float32Library library) { return library == Float32Library::OneDnn ? oneDnn().sgemm : nullptr; }

// The lower triangle of X^T X (X: rows x n, row-major) into `tile` (column-major
// n x n) by blocks of GEMM rows: the tile's column-major lower triangle is the
// row-major upper one, and each block of 256 rows takes its columns from the
// diagonal on, 1 + 1/8 of SYRK's work at n = 2048.
void gramByGemm(DnnlSgemm sgemm, float* tile, const float* X, std::int64_t rows, std::int64_t n) {
    constexpr std::int64_t kBlock = 256;
    for (std::int64_t r0 = 0; r0 < n; r0 += kBlock) {
        const std::int64_t m = std::min(kBlock, n - r0);
        sgemm('T', 'N', m, n - r0, rows, 1.0f, X + r0, n, X + r0, n, 0.0f, tile + r0 * n + r0, n);
    }
}

} // namespace

Float32Products float32ProductsFor(double flops) {
    const std::string choice = float32Choice();
    if (choice == "openblas") return {Float32Library::OpenBLAS, "OpenBLAS (LTLAB_FLOAT32_GEMM=openblas)"};
    if (choice != "onednn" && flops < kOneDnnMinFlops) // decided without opening oneDNN
        return {Float32Library::OpenBLAS, "OpenBLAS (work below " + oneDnnThreshold() +
                                              ": oneDNN's kernel generation would cost more than it saves)"};
    if (!oneDnn().sgemm) return {Float32Library::OpenBLAS, "OpenBLAS (" + oneDnn().missing + ")"};
    return {Float32Library::OneDnn, oneDnn().name};
}

std::string float32GemmName() {
    const Float32Products large = float32ProductsFor(kOneDnnMinFlops);
    if (large.library == Float32Library::OpenBLAS) return large.name;
    if (float32Choice() == "onednn") return large.name + " (LTLAB_FLOAT32_GEMM=onednn)";
    return large.name + " from " + oneDnnThreshold() + " of work, OpenBLAS below";
}

void addGramLower(Eigen::MatrixXd& G, Eigen::MatrixXf& tile, const float* X, Eigen::Index rows, Eigen::Index cols,
                  Float32Library library) {
    if (rows == 0 || cols == 0) return;
    const int n = static_cast<int>(cols);
    if (const DnnlSgemm sgemm = sgemmOf(library))
        gramByGemm(sgemm, tile.data(), X, rows, cols);
    else
        cblas_ssyrk(CblasColMajor, CblasLower, CblasNoTrans, n, static_cast<int>(rows), 1.0f, X, n, 0.0f, tile.data(), n);
#pragma omp parallel for schedule(dynamic, 16)
    for (Eigen::Index j = 0; j < cols; ++j)
        G.col(j).tail(cols - j) += tile.col(j).tail(cols - j).cast<double>();
}

void multiplyByTransposed(const double* A, const double* B, double* out, Eigen::Index rows, Eigen::Index M,
                          Eigen::Index D) {
    if (rows == 0 || M == 0) return;
    if (D == 0) {
        std::fill(out, out + rows * M, 0.0);
        return;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(M),
                static_cast<int>(D), 1.0, A, static_cast<int>(D), B, static_cast<int>(D), 0.0, out, static_cast<int>(M));
}

void multiplyByTransposed(const float* A, const float* B, float* out, Eigen::Index rows, Eigen::Index M,
                          Eigen::Index D, Float32Library library) {
    if (rows == 0 || M == 0) return;
    if (D == 0) {
        std::fill(out, out + rows * M, 0.0f);
        return;
    }
    if (const DnnlSgemm sgemm = sgemmOf(library)) {
        sgemm('N', 'T', rows, M, D, 1.0f, A, D, B, D, 0.0f, out, M);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(M),
                static_cast<int>(D), 1.0f, A, static_cast<int>(D), B, static_cast<int>(D), 0.0f, out, static_cast<int>(M));
}

void symmetrizeFromLower(Eigen::MatrixXd& G) {
    G.triangularView<Eigen::StrictlyUpper>() = G.transpose();
}

static void dsyevd(char jobz, Eigen::MatrixXd& a, Eigen::VectorXd& w, int& info) {
    const int n = static_cast<int>(a.rows());
    int lwork = -1, liwork = -1, iwork_query = 0;
    double work_query = 0;
    dsyevd_(&jobz, "L", &n, a.data(), &n, w.data(), &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
    lwork = static_cast<int>(work_query) + 1;
    liwork = iwork_query;
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    dsyevd_(&jobz, "L", &n, a.data(), &n, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
}

// The eigenvalues of A, with `work` (resized to A's shape) destroyed.
static Eigen::VectorXd symmetricEigenvalues(const Eigen::MatrixXd& A, Eigen::MatrixXd& work) {
    work = A;
    Eigen::VectorXd w(A.rows());
    int info = 0;
    if (A.rows()) dsyevd('N', work, w, info);
    if (info != 0) return symmetricEigen(A).values;
    return w;
}

Eigen::VectorXd symmetricEigenvalues(const Eigen::MatrixXd& A) {
    Eigen::MatrixXd work;
    return symmetricEigenvalues(A, work);
}

SymmetricEigen symmetricEigen(const Eigen::MatrixXd& A) {
    const int n = static_cast<int>(A.rows());
    SymmetricEigen out;
    out.vectors = A;
    out.values.resize(n);
    if (n == 0) return out;
    int info = 0;
    dsyevd('V', out.vectors, out.values, info);
    if (info != 0) {
        // dsyevd failed to converge (very rare): fall back to Eigen's QR-based solver.
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(A);
        if (solver.info() != Eigen::Success)
            throw NumericalFailure("the symmetric eigen-decomposition of a " + std::to_string(n) + "x" +
                                   std::to_string(n) + " matrix failed" +
                                   (A.allFinite() ? std::string(" (entries too large?)")
                                                  : std::string(" (it has non-finite entries: values too large?)")));
        out.values = solver.eigenvalues();
        out.vectors = solver.eigenvectors();
    }
    return out;
}

static PseudoInverse keepLarge(const Eigen::VectorXd& values, const Eigen::MatrixXd& vectors) {
    PseudoInverse pinv;
    const double largest = values.size() ? values.maxCoeff() : 0.0;
    std::vector<Eigen::Index> kept;
    if (largest > 0)
        for (Eigen::Index j = 0; j < values.size(); ++j)
            if (values[j] > kPinvRelativeCutoff * largest) kept.push_back(j);
    pinv.kept_values.resize(static_cast<Eigen::Index>(kept.size()));
    pinv.kept_vectors.resize(vectors.rows(), static_cast<Eigen::Index>(kept.size()));
    for (std::size_t i = 0; i < kept.size(); ++i) {
        pinv.kept_values[static_cast<Eigen::Index>(i)] = values[kept[i]];
        pinv.kept_vectors.col(static_cast<Eigen::Index>(i)) = vectors.col(kept[i]);
    }
    return pinv;
}

PseudoInverse pseudoInverse(const Eigen::MatrixXd& A) {
    const SymmetricEigen eig = symmetricEigen(A);
    return keepLarge(eig.values, eig.vectors);
}

PseudoInverse pseudoInverseOfGram(const RowMatrixXd& X, double scale) {
    if (X.rows() >= X.cols()) {
        Eigen::MatrixXd A = Eigen::MatrixXd::Zero(X.cols(), X.cols());
        A.selfadjointView<Eigen::Lower>().rankUpdate(X.transpose(), 1.0 / scale);
        symmetrizeFromLower(A);
        return pseudoInverse(A);
    }
    // X^T X v = l v  <=>  (X X^T) u = l u with v = X^T u / sqrt(l) (l > 0).
    Eigen::MatrixXd small = X * X.transpose() / scale;
    const SymmetricEigen eig = symmetricEigen(small);
    PseudoInverse pinv = keepLarge(eig.values, eig.vectors);
    Eigen::MatrixXd vectors = X.transpose() * pinv.kept_vectors;
    for (Eigen::Index j = 0; j < vectors.cols(); ++j)
        vectors.col(j) /= std::sqrt(pinv.kept_values[j] * scale);
    pinv.kept_vectors = std::move(vectors);
    return pinv;
}

double traceOfPinvTimesGram(const Eigen::MatrixXd& A, RowMatrixXd B) {
    // Every eigenvalue passes the cutoff when A - t I is positive definite for
    // t = cutoff tr(A) >= cutoff lambda_max (A is positive semi-definite): one
    // Cholesky factorisation tells that, several times cheaper than the
    // eigenvalues. Where it cannot tell, the eigenvalues decide, as before.
    // `work` holds each of them in turn (assignments of A's shape reuse it).
    Eigen::MatrixXd work;
    bool full_rank = false;
    if (A.rows() > 0 && A.trace() > 0) {
        work = A;
        work.diagonal().array() -= kPinvRelativeCutoff * A.trace();
        full_rank = choleskyLower(work);
    }
    if (!full_rank) {
        const Eigen::VectorXd values = symmetricEigenvalues(A, work);
        full_rank = values.size() && values.minCoeff() > kPinvRelativeCutoff * values.maxCoeff();
    }
    if (full_rank) {
        work = A;
        if (choleskyLower(work)) { // tr(A^-1 B^T B) = ||L^-1 B^T||_F^2, B^T column-major = B row-major
            const int n = static_cast<int>(work.rows()), k = static_cast<int>(B.rows());
            if (k > 0 && n > 0)
                cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n, k, 1.0, work.data(),
                            n, B.data(), n);
            return B.squaredNorm();
        }
    }
    work.resize(0, 0);
    const PseudoInverse pinv = pseudoInverse(A);
    if (pinv.kept_values.size() == 0) return 0.0;
    const Eigen::MatrixXd projected = B * pinv.kept_vectors;
    return (projected.colwise().squaredNorm().transpose().array() / pinv.kept_values.array()).sum();
}

double traceOfPinvTimes(const PseudoInverse& pinv, const Eigen::MatrixXd& B) {
    if (pinv.kept_values.size() == 0) return 0.0;
    const Eigen::MatrixXd BV = B * pinv.kept_vectors;
    const Eigen::VectorXd quadratic = (pinv.kept_vectors.array() * BV.array()).colwise().sum().transpose();
    return (quadratic.array() / pinv.kept_values.array()).sum();
}

} // namespace ltlab::linalg
