#pragma once
// Dense linear algebra on top of Eigen and OpenBLAS/LAPACK (internal).

#include <Eigen/Core>

#include <stdexcept>
#include <string>

namespace ltlab::linalg {

// A decomposition that did not converge (non-finite or enormous entries);
// analyzeSnapshot turns it into an InputError naming the file and snapshot.
class NumericalFailure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// G += X^T X for row-major X (rows x D), lower triangle only (BLAS dsyrk).
void addGramLower(Eigen::MatrixXd& G, const double* X_row_major, Eigen::Index rows, Eigen::Index cols);
// The same in float32: the lower triangle of X^T X into `tile` (D x D,
// overwritten; oneDNN's sgemm by blocks, or OpenBLAS's ssyrk), then added to G
// in float64.
void addGramLower(Eigen::MatrixXd& G, Eigen::MatrixXf& tile, const float* X_row_major, Eigen::Index rows,
                  Eigen::Index cols);
// out (rows x M, row-major) = A (rows x D, row-major) B^T for B (M x D, row-major): BLAS ?gemm.
void multiplyByTransposed(const double* A, const double* B, double* out, Eigen::Index rows, Eigen::Index M,
                          Eigen::Index D);
// The float32 products run in oneDNN's sgemm when libdnnl.so.2 is there (it
// chooses its kernel for the CPU; OpenBLAS obeys OPENBLAS_CORETYPE), else in
// OpenBLAS; LTLAB_FLOAT32_GEMM=openblas forces OpenBLAS (auto, onednn: the default;
// anything else is a UsageError).
void multiplyByTransposed(const float* A, const float* B, float* out, Eigen::Index rows, Eigen::Index M,
                          Eigen::Index D);
// "oneDNN 2.6.3" or "OpenBLAS (why)": what runs the float32 products.
std::string float32GemmName();
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
PseudoInverse pseudoInverseOfGram(const Eigen::MatrixXd& X, double scale);
// tr(A^+ B^T B) for B (K x D). When every eigenvalue of A passes the cutoff,
// A^+ = A^-1 and a Cholesky solve gives the same number without eigenvectors.
double traceOfPinvTimesGram(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B);
// tr(A^+ B) for symmetric B.
double traceOfPinvTimes(const PseudoInverse& pinv, const Eigen::MatrixXd& B);

} // namespace ltlab::linalg
