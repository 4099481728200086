#pragma once
// Dense linear algebra on top of Eigen and OpenBLAS/LAPACK (internal).

#include <Eigen/Core>

#include <stdexcept>
#include <string>

namespace ltlab::linalg {

using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A decomposition that did not converge (non-finite or enormous entries);
// analyzeSnapshot turns it into an InputError naming the file and snapshot.
class NumericalFailure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// G += X^T X for row-major X (rows x D), lower triangle only (BLAS dsyrk).
void addGramLower(Eigen::MatrixXd& G, const double* X_row_major, Eigen::Index rows, Eigen::Index cols);
// Which library runs an analysis's float32 products. oneDNN's sgemm (libdnnl.so.2,
// when present) picks its kernel for the CPU, whatever OPENBLAS_CORETYPE says, but
// generates its kernels on first use (30-50 ms measured); OpenBLAS starts at once.
enum class Float32Library { OpenBLAS, OneDnn };
// float32 work (FLOP) from which oneDNN's start-up is repaid by its rate.
constexpr double kOneDnnMinFlops = 50e9;
// The library for `flops` of float32 work, and its name ("oneDNN 2.6.3" or
// "OpenBLAS (why)"): oneDNN from kOneDnnMinFlops on when it is there, else
// OpenBLAS; oneDNN is opened only when it would run. LTLAB_FLOAT32_GEMM=openblas
// or onednn forces one (auto: the default; anything else is a UsageError).
struct Float32Products {
    Float32Library library;
    std::string name;
};
Float32Products float32ProductsFor(double flops);
// What runs the float32 products of large and of small work, in words.
std::string float32GemmName();

// The same in float32: the lower triangle of X^T X into `tile` (D x D,
// overwritten; oneDNN's sgemm by blocks, or OpenBLAS's ssyrk), then added to G
// in float64.
void addGramLower(Eigen::MatrixXd& G, Eigen::MatrixXf& tile, const float* X_row_major, Eigen::Index rows,
                  Eigen::Index cols, Float32Library library);
// out (rows x M, row-major) = A (rows x D, row-major) B^T for B (M x D, row-major): BLAS ?gemm.
void multiplyByTransposed(const double* A, const double* B, double* out, Eigen::Index rows, Eigen::Index M,
                          Eigen::Index D);
void multiplyByTransposed(const float* A, const float* B, float* out, Eigen::Index rows, Eigen::Index M,
                          Eigen::Index D, Float32Library library);
// Copies the lower triangle onto the upper one.
void symmetrizeFromLower(Eigen::MatrixXd& G);

// Eigen-decomposition of a symmetric matrix (LAPACK dsyevd), ascending.
struct SymmetricEigen {
    Eigen::VectorXd values;
    Eigen::MatrixXd vectors; // columns
};
SymmetricEigen symmetricEigen(const Eigen::MatrixXd& A);
// Eigenvalues only (ascending): several times cheaper than with vectors.
Eigen::VectorXd symmetricEigenvalues(const Eigen::MatrixXd& A);

// The pseudo-inverse of analysis.md: eigen-decompose the symmetric matrix and
// invert the eigenvalues greater than 1e-8 times the largest; A^+ = V diag(1/l) V^T.
struct PseudoInverse {
    Eigen::VectorXd kept_values;   // the eigenvalues inverted
    Eigen::MatrixXd kept_vectors;  // their eigenvectors (D x r)
};
constexpr double kPinvRelativeCutoff = 1e-8;
PseudoInverse pseudoInverse(const Eigen::MatrixXd& A);
// The pseudo-inverse of A = X^T X / scale (X: K x D) through the K x K Gram
// matrix X X^T / scale when K < D: the same non-zero eigenvalues, cheaper.
// X is row-major (class means): no transposed copy is made of it.
PseudoInverse pseudoInverseOfGram(const RowMatrixXd& X, double scale);
// tr(A^+ B^T B) for symmetric A (D x D) and B (K x D). When every eigenvalue of
// A passes the cutoff, A^+ = A^-1 and a Cholesky solve gives the same number
// without eigenvectors. B is taken by value and solved in place (its row-major
// storage is B^T column-major): move it in when it is no longer needed. One
// D x D work matrix is allocated (fresh pages cost more than the copy).
double traceOfPinvTimesGram(const Eigen::MatrixXd& A, RowMatrixXd B);
// tr(A^+ B) for symmetric B.
double traceOfPinvTimes(const PseudoInverse& pinv, const Eigen::MatrixXd& B);

} // namespace ltlab::linalg
