"""The reference implementation checked on its own (brute force, closed
forms) and `ltlab analyze --format json` checked against it.

Run: LTLAB_BIN=build/bin/ltlab /usr/bin/python3 -m unittest -v tests/python/test_reference.py
"""

import json
import math
import os
import subprocess
import tempfile
import unittest

import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltlab_testutil as tu  # noqa: E402
from ltlab_testutil import ref  # noqa: E402


def _close(a, b, rtol=1e-10, atol=1e-12):
    return a is not None and b is not None and abs(a - b) <= max(rtol * max(abs(a), abs(b)), atol)


def etf(C, D, rng):
    """C unit vectors in R^D with pairwise cosines -1/(C-1) (simplex ETF),
    and a unit vector orthogonal to all of them."""
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    m = math.sqrt(C / (C - 1)) * (np.eye(C) - np.ones((C, C)) / C)
    return m @ q[:, :C].T, q[:, C]


class ReferenceSelfTest(unittest.TestCase):
    """Needs no ltlab binary."""

    def assertStatsEqual(self, a, b, rtol=1e-9, atol=1e-12):
        self.assertEqual(set(a), set(b))
        for k in a:
            if a[k] is None or b[k] is None:
                self.assertIs(a[k], b[k], k)
                self.assertIs(b[k], a[k], k)
            else:
                self.assertTrue(_close(a[k], b[k], rtol, atol), "%s: %r vs %r" % (k, a[k], b[k]))

    def test_cone_gram_identities_match_brute_force(self):
        rng = np.random.default_rng(1)
        cases = []
        # a cone: non-negative, offset features, 10 classes, with zero rows
        H = np.abs(rng.standard_normal((1500, 64)) + 0.5)
        y = rng.integers(0, 10, 1500)
        H[[3, 700, 1499]] = 0.0
        cases.append((H, y, 10))
        # centred data (mean cos ~ 0), one-sample classes
        y2 = np.r_[np.arange(7), rng.integers(7, 9, 293)]
        cases.append((rng.standard_normal((300, 8)), y2, 12))
        # one class only: no different-class pairs
        cases.append((rng.standard_normal((50, 4)) + 1, np.full(50, 2), 3))
        # every sample its own class: no same-class pairs
        cases.append((rng.standard_normal((30, 5)), np.arange(30), 30))
        # fewer than two nonzero samples
        cases.append((np.zeros((5, 3)), np.arange(5) % 2, 2))
        cases.append((np.r_[np.zeros((4, 3)), np.ones((1, 3))], np.arange(5) % 2, 2))
        # float32 data
        cases.append((rng.random((400, 32)).astype(np.float32), rng.integers(0, 4, 400), 4))
        for i, (H, y, C) in enumerate(cases):
            with self.subTest(case=i):
                fast = ref.cone_stats(H, y, C)
                slow = ref.brute_force_cone(H, y)
                self.assertStatsEqual(fast, slow, rtol=1e-9, atol=1e-12)
                if H.shape[0] <= 60:
                    self.assertStatsEqual(fast, ref.brute_force_cone_loops(H, y), 1e-9, 1e-12)
        # the nulls of the degenerate cases
        self.assertIsNone(ref.cone_stats(*cases[2])["cone_mean_cos_diff_class"])
        self.assertIsNone(ref.cone_stats(*cases[3])["cone_mean_cos_same_class"])
        self.assertTrue(all(v is None for v in ref.cone_stats(*cases[4]).values()))
        self.assertTrue(all(v is None for v in ref.cone_stats(*cases[5]).values()))

    def test_loops_agree_with_matrix_brute_force(self):
        rng = np.random.default_rng(2)
        H = rng.standard_normal((40, 6)) + 0.3
        H[5] = 0
        y = rng.integers(0, 3, 40)
        self.assertStatsEqual(ref.brute_force_cone(H, y), ref.brute_force_cone_loops(H, y))

    def test_analyze_cone_keys_match_brute_force(self):
        rng = np.random.default_rng(3)
        C, D, N = 8, 20, 900
        H = np.abs(rng.standard_normal((N, D)) + 1.0)
        y = rng.integers(0, C, N)
        W = rng.standard_normal((C, D))
        r = ref.analyze(H, y, W, None, np.arange(C) + 5)
        bf = ref.brute_force_cone(H, y)
        for k, v in bf.items():
            self.assertTrue(_close(r[k], v, 1e-9), k)
        # class_means_mean_cos by explicit loops
        mus = [H[y == c].mean(0) for c in range(C)]
        cs = [mus[i] @ mus[j] / np.linalg.norm(mus[i]) / np.linalg.norm(mus[j])
              for i in range(C) for j in range(i + 1, C)]
        self.assertTrue(_close(r["class_means_mean_cos"], float(np.mean(cs)), 1e-12))

    def test_explicit_loops_for_nc_and_fdr(self):
        """nc1..nc3 and fdr against a direct, loop-based transcription."""
        rng = np.random.default_rng(4)
        C, D = 5, 7
        y = np.r_[np.arange(C), rng.integers(0, C - 1, 60)]     # class 4: one sample
        H = rng.standard_normal((y.size, D)) + rng.standard_normal((C, D))[y] * 2 + 1
        W = rng.standard_normal((C, D))
        r = ref.analyze(H, y, W, None, np.arange(C) + 3)
        K, N = C, y.size
        mu = np.array([H[y == c].mean(0) for c in range(C)])
        mub = mu.mean(0)
        sw = sum(np.outer(H[i] - mu[y[i]], H[i] - mu[y[i]]) for i in range(N)) / N
        sb = sum(np.outer(mu[c] - mub, mu[c] - mub) for c in range(C)) / K
        self.assertTrue(_close(r["nc1"], np.trace(sw @ np.linalg.pinv(sb, rcond=1e-8)) / K, 1e-8))
        nm = [np.linalg.norm(mu[c] - mub) for c in range(C)]
        self.assertTrue(_close(r["nc2_equinorm_means"], np.std(nm) / np.mean(nm)))
        cos = [(mu[i] - mub) @ (mu[j] - mub) / nm[i] / nm[j] for i in range(C) for j in range(i + 1, C)]
        self.assertTrue(_close(r["nc2_equiangular_means"], float(np.std(cos))))
        self.assertTrue(_close(r["nc2_maxangle_means"], float(np.mean([abs(c + 1 / (K - 1)) for c in cos]))))
        wc = [W[i] @ W[j] / np.linalg.norm(W[i]) / np.linalg.norm(W[j]) for i in range(C) for j in range(i + 1, C)]
        self.assertTrue(_close(r["nc2_equiangular_weights"], float(np.std(wc))))
        M = mu - mub
        self.assertTrue(_close(r["nc3"], float(np.linalg.norm(W / np.linalg.norm(W) - M / np.linalg.norm(M)) ** 2)))
        muall = H.mean(0)
        SW = sw * N
        SB = sum((y == c).sum() * np.outer(mu[c] - muall, mu[c] - muall) for c in range(C))
        self.assertTrue(_close(r["fdr"], float(np.trace(np.linalg.inv(SW) @ SB)), 1e-8))
        self.assertTrue(_close(r["trace_sw"], float(np.trace(SW))))
        self.assertTrue(_close(r["trace_sb"], float(np.trace(SB))))
        # nc4 with explicit distances
        Z = H @ W.T
        near = [int(np.argmin([np.sum((H[i] - mu[c]) ** 2) for c in range(C)])) for i in range(N)]
        self.assertAlmostEqual(r["nc4"], np.mean(np.argmax(Z, 1) != np.array(near)), places=15)

    def test_simplex_etf_closed_form(self):
        rng = np.random.default_rng(5)
        C, D, m = 6, 9, 7
        E, o = etf(C, D, rng)
        y = np.repeat(np.arange(C), m)
        for off in (0.0, 2.0):
            with self.subTest(offset=off):
                H = E[y] + off * o
                r = ref.analyze(H, y, E, None, np.full(C, 50))
                for k in ("nc1", "nc2_equinorm_means", "nc2_equinorm_weights",
                          "nc2_equiangular_means", "nc2_equiangular_weights",
                          "nc2_maxangle_means", "nc2_maxangle_weights", "nc3"):
                    self.assertLess(abs(r[k]), 1e-12, k)
                self.assertEqual(r["nc4"], 0.0)
                self.assertEqual(r["accuracy"], 1.0)
                self.assertEqual(r["sample_accuracy"], 1.0)
                cm = (off ** 2 - 1 / (C - 1)) / (1 + off ** 2)
                self.assertAlmostEqual(r["class_means_mean_cos"], cm, places=12)
                self.assertAlmostEqual(r["cone_mean_cos_same_class"], 1.0, places=12)
                self.assertAlmostEqual(r["cone_mean_cos_diff_class"], cm, places=12)
                same = C * m * (m - 1) / 2
                pairs = C * m * (C * m - 1) / 2
                self.assertAlmostEqual(r["cone_mean_cos"], (same + (pairs - same) * cm) / pairs, places=12)
                for v in r["per_class"]["mean_norm"]:
                    self.assertAlmostEqual(v, 1.0, places=12)
                for v in r["per_class"]["feature_norm"]:
                    self.assertAlmostEqual(v, math.sqrt(1 + off ** 2), places=12)
        # the centred class-mean cosines themselves are -1/(C-1)
        mu = np.array([(E[y] + 2 * o)[y == c].mean(0) for c in range(C)])
        M = mu - mu.mean(0)
        cos = (M @ M.T) / np.outer(np.linalg.norm(M, axis=1), np.linalg.norm(M, axis=1))
        iu = np.triu_indices(C, 1)
        np.testing.assert_allclose(cos[iu], -1 / (C - 1), atol=1e-12)

    def test_hand_computed_fdr_nc1_and_drop_rule(self):
        H = np.array([[0.0, 7, 7.0], [2, 7, 7.004], [4, 7, 7], [6, 7, 7]])
        y = np.array([0, 0, 1, 1])
        W = np.array([[-1.0, 0, 0], [1, 0, 0]])
        r = ref.analyze(H, y, W, None, [10, 10])
        # columns 1 (constant) and 2 (max deviation 0.004 <= 1e-3 * 5.667) are dropped
        self.assertAlmostEqual(r["fdr"], 4.0, places=12)
        self.assertAlmostEqual(r["trace_sw"], 4.0, places=12)
        self.assertAlmostEqual(r["trace_sb"], 16.0, places=12)
        # nc1 uses all dimensions; Sigma_B^+ ignores the null directions
        r1 = ref.analyze(H[:, :1], y, W[:, :1], None, [10, 10])
        self.assertAlmostEqual(r1["nc1"], 0.125, places=12)
        self.assertAlmostEqual(r1["fdr"], 4.0, places=12)
        # a column just above the threshold is kept and changes FDR
        H2 = H.copy()
        H2[1, 2] = 7.5
        r2 = ref.analyze(H2, y, W, None, [10, 10])
        self.assertGreater(abs(r2["trace_sw"] - 4.0), 0.1)
        self.assertNotAlmostEqual(r2["fdr"], 4.0, places=3)

    def test_pinv_rule(self):
        a = np.diag([4.0, 1e-9, 0.0, 1e-7])
        p = ref.pinv_sym(a)
        np.testing.assert_allclose(np.diag(p), [0.25, 0, 0, 1e7])
        np.testing.assert_array_equal(ref.pinv_sym(np.zeros((3, 3))), np.zeros((3, 3)))

    def test_implicit_la_tau(self):
        rng = np.random.default_rng(6)
        C, D = 10, 12
        n = tu.lt_counts(C, 500, 100)
        pi = n / n.sum()
        dirs = rng.standard_normal((C, D))
        dirs /= np.linalg.norm(dirs, axis=1)[:, None]
        W = (3.0 * pi ** -0.7)[:, None] * dirs
        H = rng.standard_normal((30, D))
        y = np.arange(30) % C
        self.assertAlmostEqual(ref.analyze(H, y, W, None, n)["implicit_la_tau"], 0.7, places=12)
        # a zero weight and a zero count are not eligible
        W2, n2 = W.copy(), n.copy()
        W2[0] = 0
        n2[1] = 0
        W2[1] *= 1e3
        self.assertAlmostEqual(ref.analyze(H, y, W2, None, n2)["implicit_la_tau"], 0.7, places=10)
        # equal counts, fewer than two eligible classes -> null
        self.assertIsNone(ref.analyze(H, y, W, None, np.full(C, 9))["implicit_la_tau"])
        W3 = np.zeros_like(W)
        W3[4] = 1
        self.assertIsNone(ref.analyze(H, y, W3, None, n)["implicit_la_tau"])

    def test_nulls_with_one_present_class(self):
        rng = np.random.default_rng(7)
        C, D = 5, 4
        H = rng.standard_normal((9, D)) + 1
        y = np.full(9, 2)
        r = ref.analyze(H, y, rng.standard_normal((C, D)), rng.standard_normal(C), [300, 120, 50, 10, 5])
        for k in ("nc1", "nc2_equinorm_means", "nc2_equinorm_weights",
                  "nc2_equiangular_means", "nc2_equiangular_weights",
                  "nc2_maxangle_means", "nc2_maxangle_weights", "nc3", "fdr",
                  "trace_sw", "trace_sb", "class_means_mean_cos",
                  "cone_mean_cos_diff_class", "accuracy_many", "accuracy_few"):
            self.assertIsNone(r[k], k)
        for k in ("nc4", "accuracy", "sample_accuracy", "accuracy_medium",
                  "cone_mean_cos", "cone_std_cos", "cone_mean_cos_same_class",
                  "implicit_la_tau"):
            self.assertIsNotNone(r[k], k)
        pc = r["per_class"]
        self.assertEqual(pc["count"], [0, 0, 9, 0, 0])
        for k in ("feature_norm", "mean_norm", "accuracy"):
            self.assertEqual([v is None for v in pc[k]], [True, True, False, True, True], k)
        for k in ("weight_norm", "bias"):
            self.assertTrue(all(v is not None for v in pc[k]), k)
        self.assertEqual(pc["mean_norm"][2], 0.0)
        self.assertEqual(r["la_sweep"]["additive"]["accuracy_many"], [None] * 31)
        json.dumps(r, allow_nan=False)

    def test_ties_go_to_lowest_class(self):
        H = np.array([[-2.0], [0.0], [2.0], [0.0]])
        y = np.array([0, 0, 1, 1])
        W = np.zeros((2, 1))
        r = ref.analyze(H, y, W, None, [10, 10])
        # all logits 0 -> every prediction is class 0; the two samples at 0
        # are equidistant from the means -1 and +1 -> nearest class 0
        self.assertEqual(r["per_class"]["accuracy"], [1.0, 0.0])
        self.assertEqual(r["nc4"], 0.25)
        # zero weights: weight cosines and the weight norm ratio are null
        for k in ("nc2_equinorm_weights", "nc2_equiangular_weights",
                  "nc2_maxangle_weights", "nc3", "implicit_la_tau"):
            self.assertIsNone(r[k], k)
        self.assertIsNotNone(r["nc2_equiangular_means"])

    def test_la_sweep_closed_form(self):
        n = np.array([90, 10])          # pi = 0.9, 0.1
        y = np.array([0, 1])
        # additive: class 1 sample right from tau 0.5 (> 1/2.197), class 0
        # sample wrong from tau 1.4 (> 3/2.197)
        Z = np.array([[3.0, 0.0], [1.0, 0.0]])
        H = np.zeros((2, 1))
        W = np.zeros((2, 1))
        r = ref.analyze(H, y, W, None, n, logits=Z, many_threshold=50, few_threshold=20)
        add = r["la_sweep"]["additive"]
        exp = [0.5 if k < 5 else (1.0 if k <= 13 else 0.5) for k in range(31)]
        self.assertEqual(add["accuracy"], exp)
        self.assertEqual(add["best_tau"], 0.5)
        self.assertEqual(add["accuracy_many"], [1.0 if k <= 13 else 0.0 for k in range(31)])
        self.assertEqual(add["accuracy_few"], [0.0 if k < 5 else 1.0 for k in range(31)])
        self.assertEqual(add["accuracy_medium"], [None] * 31)
        self.assertEqual(r["la_sweep"]["tau"], [k / 10 for k in range(31)])
        # multiplicative: class 1 right from tau 0.4, class 0 wrong from 1.4
        Zm = np.array([[1.0, 0.05], [1.0, 0.5]])
        mul = ref.analyze(H, y, W, None, n, logits=Zm)["la_sweep"]["multiplicative"]
        self.assertEqual(mul["accuracy"], [0.5 if k < 4 else (1.0 if k <= 13 else 0.5) for k in range(31)])
        self.assertEqual(mul["best_tau"], 0.4)
        # tau = 0 is the unadjusted accuracy
        self.assertEqual(r["accuracy"], add["accuracy"][0])

    def test_equal_counts_best_tau_is_first(self):
        rng = np.random.default_rng(8)
        C, D = 6, 5
        H = rng.standard_normal((60, D))
        y = np.arange(60) % C
        r = ref.analyze(H, y, rng.standard_normal((C, D)), None, np.full(C, 40))
        for mode in ("additive", "multiplicative"):
            s = r["la_sweep"][mode]
            self.assertEqual(len(set(s["accuracy"])), 1)
            self.assertEqual(s["best_tau"], 0.0)
            self.assertEqual(s["accuracy_many"], [None] * 31)

    def test_run_file_defaults_and_main(self):
        rng = np.random.default_rng(9)
        with tempfile.TemporaryDirectory() as d:
            n = tu.lt_counts(4, 50, 10)
            names = [("a", 2), ("epoch_9", 9), ("epoch_10", 10), ("b", 10),
                     ("zz", None), ("aa", None)]
            snaps = [tu.make_snapshot(rng, nm, n, {"val": [3] * 4, "train": n}, 5, epoch=ep)
                     for nm, ep in names]
            p = tu.write_run(os.path.join(d, "r.h5"), n, snaps)
            import h5py
            with h5py.File(p, "r") as f:
                self.assertEqual(ref.snapshot_order(f), ["aa", "zz", "a", "epoch_9", "b", "epoch_10"])
            res = ref.analyze_file(p)
            self.assertEqual((res["snapshot"], res["split"], res["epoch"]), ("epoch_10", "val", 10))
            self.assertEqual(list(res), ref.TOP_KEYS)
            res2 = ref.analyze_file(p, snapshot="zz", split="train")
            self.assertEqual((res2["snapshot"], res2["split"], res2["epoch"]), ("zz", "train", None))
            out = subprocess.run([tu.PYTHON, ref.__file__, p, "--snapshot", "zz", "--split", "train"],
                                 stdout=subprocess.PIPE, check=True, text=True).stdout
            self.assertEqual(tu.compare(res2, tu.parse_json(out)), [])

    def test_cifar100_lt_size_runs(self):
        """The numpy baseline at CIFAR-100-LT size (N = 10,847, D = 512) gives finite numbers.

        Its speed is measured by bench/analyze_benchmark.py, not asserted here."""
        rng = np.random.default_rng(10)
        C, D = 100, 512
        n = np.array([int(500 * 100 ** (-i / 99)) for i in range(C)])
        y = np.repeat(np.arange(C), n)
        self.assertEqual(y.size, 10847)
        H = np.abs(rng.standard_normal((C, D))[y] + rng.standard_normal((y.size, D)))
        W = rng.standard_normal((C, D))
        r = ref.analyze(H, y, W, rng.standard_normal(C), n)
        self.assertIsNotNone(r["fdr"])
        self.assertTrue(np.isfinite(r["fdr"]) and r["fdr"] > 0)
        json.dumps(r, allow_nan=False)


def _files(d):
    """The run files compared with ltlab: {key: (path, [arg lists])}."""
    files = {}
    f64 = np.float64

    def add(key, seed, train_counts, snap_specs, args_list=((),), **kw):
        rng = np.random.default_rng(seed)
        snaps = []
        for spec in snap_specs:
            spec = dict(spec)
            post = spec.pop("post", None)
            s = tu.make_snapshot(rng, train_counts=train_counts, **spec)
            if post:
                post(s, rng)
            snaps.append(s)
        path = tu.write_run(os.path.join(d, key + ".h5"), train_counts, snaps, **kw)
        files[key] = (path, [list(a) for a in args_list])

    n10 = tu.lt_counts(10, 500, 100)
    add("lt_f32_bias", 11, n10,
        [dict(name="final", epoch=30, splits={"test": [15] * 10}, D=16, noise=2.5)])
    n20 = tu.lt_counts(20, 200, 100)
    add("lt_f64_nobias_logits", 12, n20,
        [dict(name="epoch_0050", epoch=50, D=32, dtype=f64, bias=False, logits=True, noise=2.0,
              splits={"train": n20, "val": [5] * 20, "test": [10] * 20})],
        args_list=[[], ["--split", "train"], ["--split", "val"], ["--split", "test"]],
        names=["class %d" % c for c in range(20)])
    n12 = tu.lt_counts(12, 300, 50)

    def zero_w7(s, rng):
        s["weight"][7] = 0
    add("absent_classes", 13, n12,
        [dict(name="s", D=24, noise=2.0, post=zero_w7,
              splits={"test": [0 if c in (3, 7, 11) else 8 for c in range(12)]})])
    n6 = tu.lt_counts(6, 200, 20)
    add("val_only", 14, n6, [dict(name="v", epoch=1, D=8, splits={"val": [6] * 6})])
    add("train_only", 15, n6, [dict(name="t", D=8, dtype=f64, logits=True, splits={"train": n6})])
    n5 = tu.lt_counts(5, 150, 10)
    snaps = [dict(name=nm, epoch=ep, D=6, noise=1.5 + i * 0.3, splits={"test": [7] * 5, "train": n5})
             for i, (nm, ep) in enumerate([("a", 2), ("epoch_9", 9), ("epoch_10", 10), ("b", 10),
                                           ("zz_noepoch", None), ("aa_noepoch", None)])]
    add("snapshots", 16, n5, snaps,
        args_list=[[]] + [["--snapshot", s["name"]] for s in snaps]
        + [["--snapshot", "a", "--split", "train"]])
    add("no_epochs", 17, n5, [dict(name=nm, D=6, splits={"test": [4] * 5}) for nm in ("gamma", "alpha", "beta")])
    add("mixed_epochs", 18, n5, [dict(name="zzz", D=6, splits={"test": [4] * 5}),
                                 dict(name="aaa", epoch=0, D=6, splits={"test": [4] * 5})])
    nmid = np.array([90, 80, 70, 60, 50, 40, 30, 25])
    add("medium_only", 19, nmid, [dict(name="s", D=10, noise=2.0, splits={"test": [9] * 8})])
    add("few_absent", 20, n10,
        [dict(name="s", D=12, noise=2.0, splits={"test": [10] * 7 + [0] * 3})],
        args_list=[[], ["--few-threshold", "30"]])
    n_c10 = np.array([4980, 2985, 1790, 1073, 643, 386, 231, 139, 83, 50])
    add("class_thresholds", 21, n_c10,
        [dict(name="s", D=16, noise=2.5, splits={"test": [20] * 10})],
        args_list=[[], ["--many-threshold", "500", "--few-threshold", "100"],
                   ["--few-threshold", "60"], ["--many-threshold", "2000"]],
        class_attrs={"many_threshold": 1000, "few_threshold": 200})

    def const_dims(s, rng):
        H = s["splits"]["test"]["features"]
        H[:, 0] = 3.0
        H[:, 1] = 3.0
        mean = abs(H.mean())
        H[:, 1] += 1e-4 * mean * rng.random(H.shape[0])        # dropped
        H[:, 2] = 3.0 + 0.05 * mean * rng.random(H.shape[0])   # kept
    add("const_dims", 22, n6,
        [dict(name="s", D=10, dtype=f64, post=const_dims, splits={"test": [12] * 6})])
    add("single_class", 23, n6, [dict(name="s", D=4, splits={"test": [0, 0, 10, 0, 0, 0]})])

    def zero_vectors(s, rng):
        s["splits"]["test"]["features"][[0, 5, 17]] = 0
        s["weight"][0] = 0
    add("zero_vectors", 24, n6, [dict(name="s", D=8, post=zero_vectors, splits={"test": [5] * 6})])
    add("equal_counts", 25, np.full(7, 50),
        [dict(name="s", D=9, noise=2.5, splits={"test": [8] * 7})])
    n100 = tu.lt_counts(100, 150, 100)
    add("large", 26, n100,
        [dict(name="s", D=64, noise=3.0, splits={"train": n100, "test": [5] * 100})],
        args_list=[[], ["--split", "train"]])
    add("tiny_classes", 27, tu.lt_counts(8, 100, 10),
        [dict(name="s", D=5, splits={"test": [1, 1, 2, 1, 3, 1, 1, 1]})])
    add("two_present", 28, tu.lt_counts(4, 100, 10),
        [dict(name="s", D=5, splits={"test": [0, 6, 0, 9]})])

    def int_dtypes(s, rng):
        sp = s["splits"]["test"]
        sp["labels"] = sp["labels"].astype(np.uint8)
        sp["logits"] = sp["logits"].astype(np.float64)
        s["bias"] = s["bias"].astype(np.float64)
    add("int_dtypes", 29, n6, [dict(name="s", D=7, logits=True, post=int_dtypes, splits={"test": [6] * 6})],
        counts_dtype=np.int32)
    add("minimal", 30, n6, [dict(name="only", D=3, bias=False, splits={"test": [5] * 6})])

    # exact ties: integer-valued stored logits (argmax ties) and the origin,
    # equidistant from the four class means (+-1, 0), (0, +-1)
    def ties(s, rng):
        pts = []
        for v in ([-2, 0], [2, 0], [0, -2], [0, 2]):
            pts += [v, [0, 0], v, [0, 0]]
        H = np.array(pts, dtype=np.float32)          # class means v/2
        y = np.repeat(np.arange(4), 4)
        s["splits"]["test"] = {"features": H, "labels": y,
                               "logits": rng.integers(0, 3, (16, 4)).astype(np.float32)}
        s["weight"] = np.zeros((4, 2), np.float32)
        s["bias"] = None
    add("ties", 31, np.array([40, 30, 20, 10]),
        [dict(name="s", D=2, post=ties, splits={"test": [1] * 4})],
        args_list=[[], ["--many-threshold", "25", "--few-threshold", "15"]])

    def ties_equal(s, rng):
        ties(s, rng)
        del s["splits"]["test"]["logits"]   # Z = 0: every prediction is class 0
    add("ties_equal_counts", 32, np.full(4, 10),
        [dict(name="s", D=2, post=ties_equal, splits={"test": [1] * 4})])

    # balanced accuracy 3/20 at tau 0 (3/10 and 0/10) and at every tau >= 0.1
    # (1/10 and 2/10): a mathematical tie that a float sum breaks
    # (0.3 + 0.0 < 0.1 + 0.2); best additive tau is the first, 0.0
    def rounding_tie(s, rng):
        dl = math.log(9.0)                   # log(pi_0 / pi_1), n = 90, 10
        m0 = [0.05, 0.05, 10] + [-10] * 7    # z_0 - z_1, class-0 samples
        m1 = [0.05, 0.05] + [10] * 8         # z_0 - z_1, class-1 samples
        Z = np.zeros((20, 2))
        Z[:, 0] = np.array(m0 + m1) * dl
        sp = s["splits"]["test"]
        sp["labels"] = np.repeat([0, 1], 10)
        sp["features"] = rng.standard_normal((20, 3)).astype(np.float32)
        sp["logits"] = Z
    def all_constant(s, rng):
        s["splits"]["test"]["features"][:] = np.float32(1.7)
    add("all_constant", 34, np.array([50, 30, 20, 10]),
        [dict(name="s", D=3, post=all_constant, splits={"test": [6] * 4})])

    add("rounding_tie", 33, np.array([90, 10]),
        [dict(name="s", D=3, post=rounding_tie, splits={"test": [10, 10]})])
    return files


class CompareWithLtlab(unittest.TestCase):
    """ltlab analyze --format json against the reference, key by key."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ltlab_ref_")
        cls.files = _files(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        tu.ltlab_bin()     # fails clearly when LTLAB_BIN is not set

    def check(self, key):
        path, args_list = self.files[key]
        results = []
        for args in args_list:
            with self.subTest(file=key, args=" ".join(args)):
                results.append(tu.assert_matches_reference(self, path, *args, label=key))
        return results

    def test_lt_f32_bias(self):
        self.check("lt_f32_bias")

    def test_lt_f64_nobias_logits(self):
        (e, g), (e_tr, _), (e_val, _), (e_te, _) = self.check("lt_f64_nobias_logits")
        self.assertEqual(g["split"], "test")
        self.assertEqual((e_tr["split"], e_val["split"]), ("train", "val"))

    def test_absent_classes(self):
        (e, g), = self.check("absent_classes")
        self.assertEqual([g["per_class"]["count"][c] for c in (3, 7, 11)], [0, 0, 0])

    def test_val_only(self):
        (e, g), = self.check("val_only")
        self.assertEqual(g["split"], "val")

    def test_train_only(self):
        (e, g), = self.check("train_only")
        self.assertEqual(g["split"], "train")

    def test_default_snapshot_by_epoch_then_name(self):
        res = self.check("snapshots")
        self.assertEqual((res[0][1]["snapshot"], res[0][1]["epoch"]), ("epoch_10", 10))
        self.assertIsNone(res[5][1]["epoch"])       # zz_noepoch

    def test_default_snapshot_without_epochs(self):
        (e, g), = self.check("no_epochs")
        self.assertEqual(g["snapshot"], "gamma")
        self.assertIsNone(g["epoch"])

    def test_snapshots_without_epoch_come_first(self):
        (e, g), = self.check("mixed_epochs")
        self.assertEqual((g["snapshot"], g["epoch"]), ("aaa", 0))

    def test_empty_shot_groups(self):
        (e, g), = self.check("medium_only")
        self.assertIsNone(g["accuracy_many"])
        self.assertIsNone(g["accuracy_few"])
        self.assertEqual(g["la_sweep"]["additive"]["accuracy_few"], [None] * 31)

    def test_few_group_absent_from_split(self):
        (e, g), (e2, g2) = self.check("few_absent")
        self.assertIsNone(g["accuracy_few"])
        self.assertIsNotNone(g2["accuracy_few"])

    def test_thresholds_from_attributes_and_flags(self):
        res = self.check("class_thresholds")
        self.assertNotEqual(res[0][0]["accuracy_many"], res[1][0]["accuracy_many"])

    def test_fdr_drops_constant_dimensions(self):
        self.check("const_dims")

    def test_single_present_class(self):
        (e, g), = self.check("single_class")
        self.assertIsNone(g["nc1"])
        self.assertIsNotNone(g["nc4"])

    def test_zero_feature_vectors_and_zero_weight(self):
        (e, g), = self.check("zero_vectors")
        self.assertIsNone(g["nc2_equiangular_weights"])

    def test_equal_counts(self):
        (e, g), = self.check("equal_counts")
        self.assertIsNone(g["implicit_la_tau"])
        self.assertEqual(g["la_sweep"]["additive"]["best_tau"], 0.0)
        self.assertEqual(g["la_sweep"]["multiplicative"]["best_tau"], 0.0)

    def test_large(self):
        self.check("large")

    def test_one_sample_classes(self):
        self.check("tiny_classes")

    def test_two_present_classes(self):
        self.check("two_present")

    def test_integer_and_mixed_dtypes(self):
        self.check("int_dtypes")

    def test_minimal_file(self):
        self.check("minimal")

    def test_exact_ties_go_to_lowest_class(self):
        self.check("ties")
        (e, g), = self.check("ties_equal_counts")
        self.assertEqual(g["per_class"]["accuracy"], [1.0, 0.0, 0.0, 0.0])
        self.assertEqual(g["nc4"], 0.375)   # 6 of 16: the far points of classes 1-3

    def test_all_dimensions_constant(self):
        """Every FDR dimension dropped (fdr, trace_sw, trace_sb null), all
        class means equal (centred-mean metrics null), nearest-mean ties."""
        (e, g), = self.check("all_constant")
        for k in ("fdr", "trace_sw", "trace_sb", "nc2_equinorm_means", "nc3"):
            self.assertIsNone(g[k], k)

    def test_cifar100_lt_size(self):
        """N = 10,847 (train split), D = 512, C = 100: the benchmark shape,
        non-negative (ReLU) features, with the constant dimensions a ReLU
        network leaves."""
        rng = np.random.default_rng(35)
        C, D = 100, 512
        n = np.array([int(500 * 100 ** (-i / 99)) for i in range(C)])
        s = tu.make_snapshot(rng, "epoch_0200", n, {"train": n, "test": [10] * C}, D,
                             epoch=200, noise=8.0)
        for sp in s["splits"].values():
            sp["features"] = np.maximum(sp["features"], 0)
            sp["features"][:, :3] = 0          # dead units
        path = tu.write_run(os.path.join(self.tmp.name, "cifar100_lt.h5"), n, [s])
        for args in ([], ["--split", "train"]):
            with self.subTest(args=args):
                tu.assert_matches_reference(self, path, *args, label="cifar100_lt")

    def test_best_tau_is_first_of_an_exact_tie(self):
        """analysis.md: best_tau is the first tau of maximal accuracy; equal
        balanced accuracies must not be told apart by float rounding."""
        path, _ = self.files["rounding_tie"]
        e = ref.analyze_file(path)
        self.assertEqual(e["la_sweep"]["additive"]["best_tau"], 0.0)
        self.assertEqual(set(e["la_sweep"]["additive"]["accuracy"]), {0.15})
        g = tu.analyze_json(self, path)
        self.assertEqual(g["la_sweep"]["additive"]["best_tau"], 0.0,
                         "accuracies %s" % g["la_sweep"]["additive"]["accuracy"][:3])
        self.check("rounding_tie")


if __name__ == "__main__":
    unittest.main()
