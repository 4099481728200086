"""`ltlab cone-lab` against numpy: the same seeded network (written by --save-network),
forwarded and measured independently in float64.

Run: LTLAB_BIN=build/bin/ltlab /usr/bin/python3 -m unittest -v tests/python/test_cone_lab.py
"""

import json
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltlab_testutil as tu  # noqa: E402
from ltlab_testutil import ref  # noqa: E402


def forward(h, w, gamma, beta, norm):
    f = h @ w
    if norm == "batch":
        f = (f - f.mean(0)) / (f.std(0, ddof=1) + 1e-5)
    elif norm == "sample":
        f = (f - f.mean(1, keepdims=True)) / (f.std(1, ddof=1, keepdims=True) + 1e-5)
    return np.maximum(0.0, gamma * f + beta)


def pair_stats(h, y, bins):
    keep = np.linalg.norm(h, axis=1) > 0
    u = h[keep] / np.linalg.norm(h[keep], axis=1, keepdims=True)
    y = y[keep]
    i, j = np.triu_indices(len(u), 1)
    c = np.einsum("ij,ij->i", u[i], u[j])
    same = y[i] == y[j]
    edges = np.minimum(bins - 1, ((np.clip(c, -1, 1) + 1) * 0.5 * bins).astype(int))
    return {"mean_cos": c.mean(), "std_cos": c.std(),
            "mean_cos_same_class": c[same].mean() if same.any() else None,
            "mean_cos_diff_class": c[~same].mean() if (~same).any() else None,
            "histogram_same_class": np.bincount(edges[same], minlength=bins),
            "histogram_diff_class": np.bincount(edges[~same], minlength=bins)}


class ConeLab(unittest.TestCase):

    def run_lab(self, *args):
        d = tempfile.mkdtemp(prefix="ltlab_cone_lab_")
        proc = tu.run_ltlab("cone-lab", "--json", "--save-network", d, *args)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        return json.loads(proc.stdout), d

    def check(self, norm, labelled, *extra):
        bins = 40
        args = ["--layers", "3", "--width", "48", "--batch", "120", "--bins", str(bins), "--norm", norm, "--seed", "5",
                "--gamma-std", "0.05", "--beta-std", "0.02", *extra]
        if labelled:
            args += ["--input", "spike-slab", "--classes", "4", "--slab-p", "0.6"]
        out, d = self.run_lab(*args)
        load = lambda name: np.load(os.path.join(d, name + ".npy"))  # noqa: E731
        h, y = load("input"), load("labels")
        self.assertEqual(h.shape, (120, 48))
        layers = out["layers"]
        self.assertEqual([l["name"] for l in layers], ["input", "layer 1", "layer 2", "layer 3"])
        for k, got in enumerate(layers):
            if k > 0:
                h = forward(h, load("weight_%d" % k), load("gamma_%d" % k), load("beta_%d" % k), norm)
            want = pair_stats(h, y, bins)
            self.assertAlmostEqual(got["mean_cos"], want["mean_cos"], delta=1e-10)
            self.assertAlmostEqual(got["std_cos"], want["std_cos"], delta=1e-10)
            self.assertEqual(got["histogram_same_class"], want["histogram_same_class"].tolist())
            self.assertEqual(got["histogram_diff_class"], want["histogram_diff_class"].tolist())
            self.assertAlmostEqual(got["zero_fraction"], float((h == 0).mean()), delta=1e-12)
            self.assertAlmostEqual(got["feature_mean"], h.mean(), delta=1e-10)
            self.assertAlmostEqual(got["feature_std"], h.std(), delta=1e-10)
            if labelled:
                self.assertAlmostEqual(got["mean_cos_same_class"], want["mean_cos_same_class"], delta=1e-10)
                self.assertAlmostEqual(got["mean_cos_diff_class"], want["mean_cos_diff_class"], delta=1e-10)
                counts = np.bincount(y, minlength=4)
                r = ref.analyze(h, y, np.zeros((4, 48)), np.zeros(4), counts)
                self.assertLess(abs(got["fdr"] - r["fdr"]), 1e-8 * max(1.0, abs(r["fdr"])), k)
            else:
                self.assertIsNone(got["mean_cos_same_class"])
                self.assertIsNone(got["fdr"])
        return layers

    def test_per_sample_standardisation_without_labels(self):
        layers = self.check("sample", False)
        # The cone: noise goes in at mean cosine ~0 and comes out of the ReLU layers narrower.
        self.assertLess(abs(layers[0]["mean_cos"]), 0.05)
        self.assertGreater(layers[-1]["mean_cos"], layers[1]["mean_cos"])
        self.assertGreater(layers[1]["mean_cos"], 0.2)

    def test_batch_norm_with_spike_and_slab_labels(self):
        self.check("batch", True)

    def test_no_normalisation_relu_input(self):
        self.check("none", True, "--weight-std", "0.2", "--weight-keep", "0.5")

    def test_same_seed_same_network_and_bad_settings(self):
        a, _ = self.run_lab("--layers", "2", "--width", "16", "--batch", "30")
        b, _ = self.run_lab("--layers", "2", "--width", "16", "--batch", "30")
        c, _ = self.run_lab("--layers", "2", "--width", "16", "--batch", "30", "--seed", "1")
        self.assertEqual(a["layers"][2]["mean_cos"], b["layers"][2]["mean_cos"])
        self.assertNotEqual(a["layers"][2]["mean_cos"], c["layers"][2]["mean_cos"])
        for bad in (["--width", "100000"], ["--gamma-std", "-1"], ["--norm", "layer"], ["--input", "uniform"],
                    ["--preset", "9"], ["--beta-mean", "nan"]):
            proc = tu.run_ltlab("cone-lab", *bad)
            self.assertEqual(proc.returncode, 1, (bad, tu.describe(proc)))
            self.assertIn("ltlab cone-lab:", proc.stderr)

    def test_presets_are_the_papers_multi_layer_study(self):
        proc = tu.run_ltlab("cone-lab", "--help")
        self.assertIn("--preset", proc.stdout)
        out, d = self.run_lab("--preset", "2", "--layers", "1", "--width", "32", "--batch", "40")
        gamma = np.load(os.path.join(d, "gamma_1.npy"))
        self.assertAlmostEqual(gamma.mean(), 0.1, delta=0.05)
        self.assertGreater(gamma.std(), 0.02)  # std 0.05


if __name__ == "__main__":
    unittest.main()
