"""`ltlab figures`: the workbench's figures without a window."""

import csv
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

import h5py
import numpy as np

from ltlab_testutil import analyze_json, describe, ltlab_bin, run_ltlab


class FiguresCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.run_path = os.path.join(cls.tmp.name, "run.h5")
        p = run_ltlab("synth", "--out", cls.run_path, "--classes", "6", "--dim", "12", "--snapshots", "3", "--seed", "4")
        assert p.returncode == 0, describe(p)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_writes_every_view_in_every_format_with_its_data(self):
        out = os.path.join(self.tmp.name, "figs")
        env_display = os.environ.pop("DISPLAY", None)  # headless, as on a cluster node
        try:
            p = run_ltlab("figures", self.run_path, "--out", out, "--format", "pdf,svg,png", "--dpi", "100")
        finally:
            if env_display is not None:
                os.environ["DISPLAY"] = env_display
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("xvfb-run", p.stderr)  # says why there is no 3D figure
        self.assertFalse(os.path.exists(os.path.join(out, "geometry.png")))
        for stem in ("weight_norms", "logit_adjustment", "logit_adjustment_implicit", "training_curves", "cone",
                     "cone_class_means", "per_class", "per_class_confusion"):
            with open(os.path.join(out, stem + ".pdf"), "rb") as f:
                self.assertEqual(f.read(5), b"%PDF-", stem)
            self.assertEqual(ET.parse(os.path.join(out, stem + ".svg")).getroot().tag, "{http://www.w3.org/2000/svg}svg")
            with open(os.path.join(out, stem + ".png"), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", stem)
        # The data behind the figures is the engine's.
        expected = analyze_json(self, self.run_path)
        with open(os.path.join(out, "weight_norms.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 6)
        for row in rows:
            c = int(row["class"])
            self.assertAlmostEqual(float(row["weight_norm"]), expected["per_class"]["weight_norm"][c], places=12)
        with open(os.path.join(out, "logit_adjustment.csv")) as f:
            sweep = list(csv.DictReader(f))
        self.assertEqual(len(sweep), 31)
        self.assertAlmostEqual(float(sweep[7]["additive"]), expected["la_sweep"]["additive"]["accuracy"][7], places=12)
        with open(os.path.join(out, "report.json")) as f:
            self.assertEqual(json.load(f)["nc1"], expected["nc1"])
        # The other figures' data: the confusion matrix's rows hold each class's test samples and its
        # diagonal the correct ones; the per-class sweep at tau 0 is the unadjusted accuracy.
        with open(os.path.join(out, "per_class_confusion.csv")) as f:
            confusion = list(csv.reader(f))[1:]
        self.assertEqual(len(confusion), 6)
        for c, row in enumerate(confusion):
            counts = [int(v) for v in row[1:]]
            self.assertEqual(sum(counts), expected["per_class"]["count"][c])
            self.assertAlmostEqual(counts[c] / sum(counts), expected["per_class"]["accuracy"][c], places=12)
        with open(os.path.join(out, "logit_adjustment_per_class.csv")) as f:
            rows = list(csv.reader(f))[1:]
        self.assertEqual(len(rows), 62)
        self.assertEqual(rows[0][:2], ["additive", "0"])
        for c in range(6):
            self.assertAlmostEqual(float(rows[0][2 + c]), expected["per_class"]["accuracy"][c], places=12)
        # Class-mean cosines and the implicit-LA points, recomputed here from the file with numpy.
        with h5py.File(self.run_path, "r") as f:
            snap = f["snapshots"][expected["snapshot"]]
            features = snap["test/features"][()].astype(np.float64)
            labels = snap["test/labels"][()]
            norms = np.linalg.norm(snap["classifier_weight"][()].astype(np.float64), axis=1)
            counts = f["classes/train_counts"][()].astype(np.float64)
        means = np.stack([features[labels == c].mean(axis=0) for c in range(6)])
        unit = means / np.linalg.norm(means, axis=1, keepdims=True)
        with open(os.path.join(out, "cone_class_means.csv")) as f:
            cosines = np.array([[float(v) for v in row[1:]] for row in list(csv.reader(f))[1:]])
        np.testing.assert_allclose(cosines, unit @ unit.T, atol=1e-9)
        with open(os.path.join(out, "logit_adjustment_implicit.csv")) as f:
            implicit = list(csv.DictReader(f))
        self.assertEqual(len(implicit), 6)
        for row in implicit:
            c = int(row["class"])
            self.assertAlmostEqual(float(row["neg_log_prior"]), -np.log(counts[c] / counts.sum()), places=9)
            self.assertAlmostEqual(float(row["log_weight_norm"]), np.log(norms[c]), places=6)

    @unittest.skipUnless(shutil.which("xvfb-run"), "xvfb-run is missing (tools/install-deps.sh installs it)")
    def test_the_3d_view_under_xvfb_with_a_sample_cloud(self):
        out = os.path.join(self.tmp.name, "figs3d")
        p = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", ltlab_bin(), "figures", self.run_path,
                            "--out", out, "--format", "pdf,svg,png", "--dpi", "96", "--samples-per-class", "10"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        with open(os.path.join(out, "geometry.pdf"), "rb") as f:
            self.assertEqual(f.read(5), b"%PDF-")
        svg = ET.parse(os.path.join(out, "geometry.svg")).getroot()
        self.assertEqual(svg.tag, "{http://www.w3.org/2000/svg}svg")
        self.assertIsNotNone(svg.find("{http://www.w3.org/2000/svg}image"))
        with open(os.path.join(out, "geometry.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        with open(os.path.join(out, "geometry.csv")) as f:
            rows = list(csv.DictReader(f))
        kinds = [r["kind"] for r in rows]
        self.assertEqual(kinds.count("mean"), 6)
        self.assertEqual(kinds.count("sample"), 60)
        for c in range(6):
            self.assertEqual(sum(1 for r in rows if r["kind"] == "sample" and int(r["class"]) == c), 10)

    def test_errors(self):
        p = run_ltlab("figures", self.run_path, "--out", os.path.join(self.tmp.name, "x"), "--format", "bmp")
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("bmp", p.stderr)
        p = run_ltlab("figures", self.run_path)
        self.assertEqual(p.returncode, 1, describe(p))
        p = run_ltlab("figures", os.path.join(self.tmp.name, "missing.h5"), "--out", os.path.join(self.tmp.name, "y"))
        self.assertEqual(p.returncode, 2, describe(p))
        self.assertIn("missing.h5", p.stderr)


if __name__ == "__main__":
    unittest.main()
