// The stage-2 engine (ltlab/stage2.h) against closed forms: class-balanced
// weights, the MaxNorm threshold and projection, the permutation, and one
// SGD step of each loss computed by hand.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <set>

#include "ltlab/error.h"
#include "ltlab/stage2.h"

// Counts the process's malloc calls while asked (the executable's malloc
// interposes the C library's, for the shared libraries too: Eigen allocates
// through malloc). Not in the sanitizer build, whose runtime owns malloc.
static std::atomic<long> g_mallocs{0};
static std::atomic<bool> g_counting{false};
#ifndef LTLAB_SANITIZE
extern "C" void* __libc_malloc(std::size_t);
extern "C" void* malloc(std::size_t size) {
    if (g_counting.load(std::memory_order_relaxed)) g_mallocs.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(size);
}
#endif

namespace ltlab {
namespace {

TEST(Stage2, ClassBalancedWeightsAreEffectiveNumbersNormalisedToSumToC) {
    const std::vector<std::int64_t> counts{100, 10, 1};
    const double beta = 0.9;
    std::vector<double> raw;
    for (auto n : counts) raw.push_back((1 - beta) / (1 - std::pow(beta, double(n))));
    const double sum = raw[0] + raw[1] + raw[2];
    const auto w = classBalancedWeights(counts, beta);
    ASSERT_EQ(w.size(), 3u);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(w[c], 3 * raw[c] / sum, 1e-15);
    EXPECT_NEAR(w[0] + w[1] + w[2], 3.0, 1e-14);
    // n = 1 has effective number 1: weight (1 - beta) / (1 - beta) = 1 before normalising.
    EXPECT_NEAR(raw[2], 1.0, 1e-15);

    // beta = 1: inverse frequency; beta = 0: every class alike (plain cross-entropy).
    const auto inv = classBalancedWeights(counts, 1.0);
    const double isum = 1.0 / 100 + 1.0 / 10 + 1.0;
    EXPECT_NEAR(inv[0], 3 * 0.01 / isum, 1e-15);
    EXPECT_NEAR(inv[2], 3 * 1.0 / isum, 1e-15);
    for (double x : classBalancedWeights(counts, 0.0)) EXPECT_NEAR(x, 1.0, 1e-15);
    // The papers' beta on a CIFAR-100-LT-like tail: the ratio of the extremes.
    const auto paper = classBalancedWeights({500, 5}, 0.9999);
    EXPECT_NEAR(paper[1] / paper[0], (1 - std::pow(0.9999, 500.0)) / (1 - std::pow(0.9999, 5.0)), 1e-12);
    // An absent class gets 0 and the others still sum to C.
    const auto absent = classBalancedWeights({10, 0, 5}, 0.99);
    EXPECT_EQ(absent[1], 0.0);
    EXPECT_NEAR(absent[0] + absent[2], 3.0, 1e-14);
    EXPECT_THROW(classBalancedWeights(counts, 1.5), UsageError);
    EXPECT_THROW(classBalancedWeights(counts, -0.1), UsageError);
}

TEST(Stage2, MaxNormThresholdAndProjection) {
    Eigen::MatrixXd W(3, 2);
    W << 3, 4, 1, 0, 0, 2; // norms 5, 1, 2
    EXPECT_DOUBLE_EQ(maxNormThreshold(W, 0.1), 1 + 0.1 * (5 - 1));
    EXPECT_DOUBLE_EQ(maxNormThreshold(W, 0.0), 1.0);
    EXPECT_DOUBLE_EQ(maxNormThreshold(W, 1.0), 5.0);
    RowMatrix P = W;
    maxNormProject(P, 1.4);
    EXPECT_NEAR(P.row(0).norm(), 1.4, 1e-15);
    EXPECT_NEAR(P(0, 0) / P(0, 1), 0.75, 1e-15); // the direction is kept
    EXPECT_EQ(P(1, 0), 1.0);                      // under the threshold: unchanged
    EXPECT_EQ(P(1, 1), 0.0);
    EXPECT_NEAR(P(2, 1), 1.4, 1e-15);
    RowMatrix Z = RowMatrix::Zero(2, 3);
    maxNormProject(Z, 0.0); // zero rows stay zero (no 0/0)
    EXPECT_TRUE(Z.isZero());
}

TEST(Stage2, PermutationIsSeededPerEpochAndAPermutation) {
    const auto a = stage2Permutation(1000, 7, 0);
    auto sorted = a;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> iota(1000);
    std::iota(iota.begin(), iota.end(), 0);
    EXPECT_EQ(sorted, iota);
    EXPECT_EQ(a, stage2Permutation(1000, 7, 0));
    EXPECT_NE(a, stage2Permutation(1000, 7, 1));
    EXPECT_NE(a, stage2Permutation(1000, 8, 0));
    EXPECT_NE(a, iota);
    EXPECT_TRUE(stage2Permutation(0, 1, 0).empty());
    EXPECT_EQ(stage2Permutation(1, 1, 0), std::vector<std::int64_t>{0});
    // Fixed values (the Python transcription in tests/python/test_stage2.py checks the same rule).
    EXPECT_EQ(stage2Permutation(5, 0, 0), (std::vector<std::int64_t>{2, 4, 3, 1, 0}));
    EXPECT_EQ(stage2Permutation(10, 3, 2), (std::vector<std::int64_t>{3, 1, 9, 8, 7, 4, 5, 0, 6, 2}));
}

// One full batch, one epoch, no momentum: W1 = W0 - lr (dL/dW), computed here directly.
struct OneStep {
    RowMatrix H;
    std::vector<std::int32_t> y;
    std::vector<std::int64_t> counts;
    Eigen::MatrixXd W0;
    Eigen::VectorXd b0;

    OneStep() : H(4, 3), y{0, 1, 1, 2}, counts{30, 20, 2}, W0(3, 3), b0(3) {
        H << 1.0, 0.5, -0.2, 0.3, 1.2, 0.1, -0.4, 0.9, 0.7, 0.2, -0.1, 1.5;
        W0 << 0.5, -0.1, 0.2, 0.0, 0.4, -0.3, 0.1, 0.1, 0.6;
        b0 << 0.1, -0.2, 0.05;
    }

    // Gradient of sum_i s_i CE_i + wd/2 (||W||^2 + ||b||^2) with per-sample scales s_i.
    void expected(const std::vector<double>& s, double wd, Eigen::MatrixXd& gW, Eigen::VectorXd& gb, double& loss) const {
        gW = wd * W0;
        gb = wd * b0;
        loss = 0.5 * wd * (W0.squaredNorm() + b0.squaredNorm());
        for (int i = 0; i < 4; ++i) {
            Eigen::VectorXd z = W0 * H.row(i).transpose() + b0;
            Eigen::VectorXd p = (z.array() - z.maxCoeff()).exp();
            const double lse = std::log(p.sum()) + z.maxCoeff();
            p /= p.sum();
            loss += s[i] * (lse - z[y[i]]);
            p[y[i]] -= 1;
            gW += s[i] * p * H.row(i);
            gb += s[i] * p;
        }
    }
};

TEST(Stage2, OneStepOfEachLossIsTheGradientStepComputedByHand) {
    const OneStep t;
    Stage2Trainer trainer(t.H, t.y, t.counts);
    ClassifierInput start{t.W0, t.b0, t.counts};
    Stage2Settings s;
    s.epochs = 1;
    s.batch_size = 64; // one batch holds all four samples: the order does not matter
    s.momentum = 0;
    s.maxnorm = false;
    s.lr = 0.3;
    s.weight_decay = 0.05;
    s.cb_beta = 0.9;
    const auto w = classBalancedWeights(t.counts, s.cb_beta);
    const std::vector<double> wy{w[0], w[1], w[1], w[2]};
    const double wsum = wy[0] + wy[1] + wy[2] + wy[3];
    struct Case {
        Stage2Loss loss;
        CbReduction reduction;
        std::vector<double> scale;
    } cases[] = {
        {Stage2Loss::ClassBalanced, CbReduction::Batch, {wy[0] / 4, wy[1] / 4, wy[2] / 4, wy[3] / 4}},
        {Stage2Loss::ClassBalanced, CbReduction::WeightSum, {wy[0] / wsum, wy[1] / wsum, wy[2] / wsum, wy[3] / wsum}},
        {Stage2Loss::CrossEntropy, CbReduction::Batch, {0.25, 0.25, 0.25, 0.25}},
    };
    for (const Case& c : cases) {
        s.loss = c.loss;
        s.cb_reduction = c.reduction;
        Eigen::MatrixXd gW;
        Eigen::VectorXd gb;
        double loss;
        t.expected(c.scale, s.weight_decay, gW, gb, loss);
        const Stage2Result r = trainer.run(start, s);
        EXPECT_LT((r.classifier.weight - (t.W0 - s.lr * gW)).cwiseAbs().maxCoeff(), 1e-14);
        EXPECT_LT((r.classifier.bias - (t.b0 - s.lr * gb)).cwiseAbs().maxCoeff(), 1e-14);
        ASSERT_EQ(r.epochs.size(), 1u);
        EXPECT_NEAR(r.epochs[0].loss, loss, 1e-14);
        EXPECT_EQ(r.epochs[0].lr, s.lr);
    }
    // The papers' form is the weight-sum form times the batch's mean weight.
    EXPECT_GT(std::abs(wsum / 4 - 1), 0.1);

    // Frozen bias: unchanged, and not decayed; from zero: W starts at 0.
    s.loss = Stage2Loss::ClassBalanced;
    s.train_bias = false;
    Stage2Result frozen = trainer.run(start, s);
    EXPECT_EQ(frozen.classifier.bias, t.b0);
    s.train_bias = true;
    s.from_zero = true;
    s.weight_decay = 0;
    Stage2Result zero = trainer.run(start, s);
    // From zero every logit is 0: the gradient is s_i (1/C - onehot) h_i.
    Eigen::MatrixXd gW = Eigen::MatrixXd::Zero(3, 3);
    for (int i = 0; i < 4; ++i) {
        Eigen::VectorXd p = Eigen::VectorXd::Constant(3, 1.0 / 3);
        p[t.y[i]] -= 1;
        gW += (wy[i] / 4) * p * t.H.row(i);
    }
    EXPECT_LT((zero.classifier.weight + s.lr * gW).cwiseAbs().maxCoeff(), 1e-15);
}

TEST(Stage2, MomentumScheduleMaxNormAndCancellation) {
    // Two epochs of one batch each, momentum 0.9: the second step moves by
    // lr_1 (0.9 g_0 + g_1) with lr_1 = lr (1 + cos(pi / 2)) / 2 = lr / 2.
    const OneStep t;
    Stage2Trainer trainer(t.H, t.y, t.counts);
    ClassifierInput start{t.W0, t.b0, t.counts};
    Stage2Settings s;
    s.epochs = 2;
    s.batch_size = 4;
    s.maxnorm = false;
    s.weight_decay = 0;
    s.lr = 0.2;
    Stage2Result r = trainer.run(start, s);
    ASSERT_EQ(r.epochs.size(), 2u);
    EXPECT_DOUBLE_EQ(r.epochs[0].lr, 0.2);
    EXPECT_NEAR(r.epochs[1].lr, 0.1, 1e-16);

    // MaxNorm per step with a large learning rate: no row ends above the threshold.
    s.lr = 5;
    s.epochs = 3;
    s.batch_size = 1;
    s.maxnorm = true;
    s.maxnorm_factor = 0.1;
    r = trainer.run(start, s);
    const double threshold = maxNormThreshold(t.W0, 0.1);
    ASSERT_TRUE(r.maxnorm_threshold);
    EXPECT_DOUBLE_EQ(*r.maxnorm_threshold, threshold);
    EXPECT_LE(r.classifier.weight.rowwise().norm().maxCoeff(), threshold * (1 + 1e-12));
    s.maxnorm_threshold = 0.25; // absolute
    r = trainer.run(start, s);
    EXPECT_LE(r.classifier.weight.rowwise().norm().maxCoeff(), 0.25 * (1 + 1e-12));

    // Cancelling from the progress callback.
    int calls = 0;
    EXPECT_THROW(trainer.run(start, s, [&](double) { return ++calls < 2; }), Cancelled);
    EXPECT_EQ(calls, 2);
    std::vector<double> fractions;
    trainer.run(start, s, [&](double f) { fractions.push_back(f); return true; });
    ASSERT_FALSE(fractions.empty());
    EXPECT_DOUBLE_EQ(fractions.back(), 1.0);
}

TEST(Stage2, RunAllocatesPerRunNotPerBatch) {
    // 600 samples in batches of 4: 150 steps an epoch.
    RowMatrix H = RowMatrix::Random(600, 32).cwiseAbs();
    std::vector<std::int32_t> y(600);
    for (int i = 0; i < 600; ++i) y[i] = i % 20 == 0 ? 4 : i % 3;
#ifdef LTLAB_SANITIZE
    GTEST_SKIP() << "counts malloc calls by interposing malloc, which AddressSanitizer's runtime owns";
#endif
    const std::vector<std::int64_t> counts{200, 200, 170, 0, 30};
    Stage2Trainer trainer(H, y, counts);
    ClassifierInput start{Eigen::MatrixXd::Random(5, 32), Eigen::VectorXd::Zero(5), counts};
    Stage2Settings s;
    s.batch_size = 4;
    auto mallocs = [&](std::int64_t epochs) {
        s.epochs = epochs;
        trainer.run(start, s); // warm: buffers sized, BLAS started
        g_mallocs = 0;
        g_counting = true;
        trainer.run(start, s);
        g_counting = false;
        return g_mallocs.load();
    };
    const long one = mallocs(1), four = mallocs(4);
    EXPECT_GT(one, 0); // the counter counts: the result alone allocates
    EXPECT_LT(one, 40);
    EXPECT_LE(four - one, 6); // the per-epoch record only, not 450 more steps
}

TEST(Stage2, BadSettingsAndInputsAreUsageErrors) {
    const OneStep t;
    Stage2Trainer trainer(t.H, t.y, t.counts);
    ClassifierInput start{t.W0, t.b0, t.counts};
    auto bad = [&](auto change) {
        Stage2Settings s;
        change(s);
        EXPECT_THROW(trainer.run(start, s), UsageError);
    };
    bad([](Stage2Settings& s) { s.epochs = 0; });
    bad([](Stage2Settings& s) { s.lr = 0; });
    bad([](Stage2Settings& s) { s.batch_size = 0; });
    bad([](Stage2Settings& s) { s.cb_beta = 2; });
    bad([](Stage2Settings& s) { s.weight_decay = -1; });
    bad([](Stage2Settings& s) { s.momentum = 1; });
    EXPECT_THROW(parseCbReduction("mean"), UsageError);
    EXPECT_EQ(parseCbReduction("weight-sum"), CbReduction::WeightSum);
    ClassifierInput wrong{Eigen::MatrixXd::Zero(2, 3), Eigen::VectorXd::Zero(2), t.counts};
    EXPECT_THROW(trainer.run(wrong, Stage2Settings{}), UsageError);
    EXPECT_THROW(Stage2Trainer(t.H, {0, 1, 5, 0}, t.counts), UsageError); // label out of range
    RowMatrix nan = t.H;
    nan(1, 1) = NAN;
    EXPECT_THROW(Stage2Trainer(nan, t.y, t.counts), UsageError);
}

} // namespace
} // namespace ltlab
