#include "linalg.h"

#include <cblas.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include <Eigen/Dense>

// LAPACK's Fortran symbol (in OpenBLAS), with gfortran's hidden string lengths.
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                        double* work, const int* lwork, int* iwork, const int* liwork, int* info, std::size_t jobz_len,
                        std::size_t uplo_len);

namespace ltlab::linalg {

void addGramLower(Eigen::MatrixXd& G, const double* X, Eigen::Index rows, Eigen::Index cols) {
    if (rows == 0 || cols == 0) return;
    // Row-major X (rows x cols) is column-major X^T (cols x rows): G += X^T (X^T)^T.
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, static_cast<int>(cols), static_cast<int>(rows), 1.0, X,
                static_cast<int>(cols), 1.0, G.data(), static_cast<int>(G.rows()));
}

void addGramLower(Eigen::MatrixXd& G, Eigen::MatrixXf& tile, const float* X, Eigen::Index rows, Eigen::Index cols) {
    if (rows == 0 || cols == 0) return;
    const int n = static_cast<int>(cols);
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
                          Eigen::Index D) {
    if (rows == 0 || M == 0) return;
    if (D == 0) {
        std::fill(out, out + rows * M, 0.0f);
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

Eigen::VectorXd symmetricEigenvalues(const Eigen::MatrixXd& A) {
    Eigen::MatrixXd a = A;
    Eigen::VectorXd w(A.rows());
    int info = 0;
    if (A.rows()) dsyevd('N', a, w, info);
    if (info != 0) return symmetricEigen(A).values;
    return w;
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

PseudoInverse pseudoInverseOfGram(const Eigen::MatrixXd& X, double scale) {
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

double traceOfPinvTimesGram(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B) {
    // Every eigenvalue passes the cutoff when A - t I is positive definite for
    // t = cutoff tr(A) >= cutoff lambda_max (A is positive semi-definite): one
    // Cholesky factorisation tells that, several times cheaper than the
    // eigenvalues. Where it cannot tell, the eigenvalues decide, as before.
    bool full_rank = false;
    if (A.rows() > 0) {
        Eigen::MatrixXd shifted = A;
        shifted.diagonal().array() -= kPinvRelativeCutoff * A.trace();
        full_rank = A.trace() > 0 && Eigen::LLT<Eigen::MatrixXd>(shifted).info() == Eigen::Success;
    }
    if (!full_rank) {
        const Eigen::VectorXd values = symmetricEigenvalues(A);
        full_rank = values.size() && values.minCoeff() > kPinvRelativeCutoff * values.maxCoeff();
    }
    if (full_rank) {
        const Eigen::LLT<Eigen::MatrixXd> llt(A);
        if (llt.info() == Eigen::Success) // tr(A^-1 B^T B) = ||L^-1 B^T||_F^2
            return llt.matrixL().solve(B.transpose()).squaredNorm();
    }
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
