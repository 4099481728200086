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



# --------------------------------------------------------------------------
# The papers' figure set (issue 10)

FIGURE_SET = ("weight_norm_evolution", "features_cos_sim", "features_weights_cos_sim", "features_weights_norm",
              "weights_cos_sim", "features_norms", "per_class_loss", "per_class_vs_baseline", "confusion_grouped")


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit PNG, decoded here with zlib (no PIL needed)."""
    import struct
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def read_matrix(path):
    """A class x class CSV (names in the first row and column) as a float array, NaN for empty cells."""
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    return np.array([[float(v) if v else np.nan for v in row[1:]] for row in rows])


class FigureSet(unittest.TestCase):
    """Each figure of the set from a generated run: valid PDF and PNG, and the numbers behind it."""

    C = 6

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.run_path = os.path.join(d, "run.h5")
        cls.base_path = os.path.join(d, "base.h5")
        cls.other_path = os.path.join(d, "other_classes.h5")
        for path, seed, classes in ((cls.run_path, 4, cls.C), (cls.base_path, 9, cls.C), (cls.other_path, 1, 5)):
            p = run_ltlab("synth", "--out", path, "--classes", classes, "--dim", "12", "--snapshots", "3",
                          "--seed", seed, "--noise", "2")
            assert p.returncode == 0, describe(p)
        cls.out = {}
        env_display = os.environ.pop("DISPLAY", None)  # headless
        try:
            for size in ("column", "page"):
                out = os.path.join(d, "figs-" + size)
                p = run_ltlab("figures", cls.run_path, "--out", out, "--format", "pdf,svg,png", "--dpi", "100",
                              "--size", size, "--baseline", cls.base_path, "--weight-decay", "0.005")
                assert p.returncode == 0, describe(p)
                cls.out[size] = out
        finally:
            if env_display is not None:
                os.environ["DISPLAY"] = env_display

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def engine(self, path=None):
        return analyze_json(self, path or self.run_path)

    def file_data(self):
        """The analysed snapshot's test split, classifier and counts, read here with h5py."""
        snapshot = self.engine()["snapshot"]
        with h5py.File(self.run_path, "r") as f:
            s = f["snapshots"][snapshot]
            H = s["test/features"][()].astype(np.float64)
            y = s["test/labels"][()]
            W = s["classifier_weight"][()].astype(np.float64)
            b = s["classifier_bias"][()].astype(np.float64) if "classifier_bias" in s else np.zeros(self.C)
            counts = f["classes/train_counts"][()]
            names = sorted(f["snapshots"].keys(), key=lambda n: (f["snapshots"][n].attrs.get("epoch", -1), n))
            norms = [np.linalg.norm(f["snapshots"][n]["classifier_weight"][()].astype(np.float64), axis=1) for n in names]
        return H, y, W, b, counts, np.array(norms)

    def test_every_figure_is_a_valid_pdf_svg_and_png(self):
        for stem in FIGURE_SET:
            path = os.path.join(self.out["column"], stem)
            with open(path + ".pdf", "rb") as f:
                pdf = f.read()
            self.assertEqual(pdf[:5], b"%PDF-", stem)
            self.assertIn(b"%%EOF", pdf[-64:], stem)
            if shutil.which("pdfinfo"):
                p = subprocess.run(["pdfinfo", path + ".pdf"], capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, stem + ": " + p.stderr)
                self.assertRegex(p.stdout, r"Pages:\s+1\n", stem)
            self.assertEqual(ET.parse(path + ".svg").getroot().tag, "{http://www.w3.org/2000/svg}svg", stem)
            width, height, channels, rows = png_pixels(path + ".png")
            self.assertEqual(width, round(252 * 100 / 72), stem)  # 3.5 in at 100 dpi
            self.assertGreater(height, 200, stem)
            # Non-trivial content: ink on a good part of the picture, and many colours.
            pixels = [row[i:i + 3] for row in rows[::4] for i in range(0, len(row), channels * 4)]
            ink = sum(1 for px in pixels if min(px) < 200) / len(pixels)
            self.assertGreater(ink, 0.03, stem)
            self.assertGreater(len(set(pixels)), 20, stem)
            self.assertTrue(os.path.isfile(path + ".csv"), stem)

    def test_page_size_is_twice_the_column(self):
        for stem in FIGURE_SET:
            w_col = png_pixels(os.path.join(self.out["column"], stem + ".png"))[0]
            w_page = png_pixels(os.path.join(self.out["page"], stem + ".png"))[0]
            self.assertEqual((w_col, w_page), (350, 700), stem)
            if shutil.which("pdfinfo"):
                sizes = []
                for size in ("column", "page"):
                    p = subprocess.run(["pdfinfo", os.path.join(self.out[size], stem + ".pdf")], capture_output=True,
                                       text=True)
                    line = [l for l in p.stdout.splitlines() if l.startswith("Page size:")][0]
                    sizes.append(float(line.split()[2]))
                self.assertEqual(sizes, [252, 504], stem)
        # The older views follow --size too.
        for stem in ("weight_norms", "per_class_confusion", "cone"):
            self.assertEqual(png_pixels(os.path.join(self.out["page"], stem + ".png"))[0], 700, stem)

    def test_heatmap_cells_equal_the_engine_and_numpy(self):
        H, y, W, b, counts, _ = self.file_data()
        engine = self.engine()
        norms = np.linalg.norm(H, axis=1)
        U = H / norms[:, None]
        ubar = np.stack([U[y == c].mean(axis=0) for c in range(self.C)])
        w_norm = np.linalg.norm(W, axis=1)
        h_norm = np.array([norms[y == c].mean() for c in range(self.C)])
        # Mean cosine over all pairs of samples of classes c and c' (papers' get_features_cos_sim_ij), directly.
        direct = np.array([[np.mean(U[y == r] @ U[y == c].T) for c in range(self.C)] for r in range(self.C)])
        cells = read_matrix(os.path.join(self.out["column"], "features_cos_sim.csv"))
        np.testing.assert_allclose(cells, direct, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(cells, ubar @ ubar.T, rtol=1e-9, atol=1e-12)
        # Mean over the class's samples of cos(h_i, w_c') and of ||h_i|| ||w_c'||.
        fw = np.array([[np.mean(U[y == r] @ W[c] / w_norm[c]) for c in range(self.C)] for r in range(self.C)])
        np.testing.assert_allclose(read_matrix(os.path.join(self.out["column"], "features_weights_cos_sim.csv")), fw,
                                   rtol=1e-9, atol=1e-12)
        fn = np.array([[np.mean(norms[y == r] * w_norm[c]) for c in range(self.C)] for r in range(self.C)])
        cells = read_matrix(os.path.join(self.out["column"], "features_weights_norm.csv"))
        np.testing.assert_allclose(cells, fn, rtol=1e-9)
        # ... which is the engine's per-class feature norm times its weight norm.
        np.testing.assert_allclose(cells, np.outer(engine["per_class"]["feature_norm"], engine["per_class"]["weight_norm"]),
                                   rtol=1e-12)
        Wn = W / w_norm[:, None]
        np.testing.assert_allclose(read_matrix(os.path.join(self.out["column"], "weights_cos_sim.csv")), Wn @ Wn.T,
                                   rtol=1e-9, atol=1e-12)
        # Per-class mean feature norms: the engine's numbers.
        with open(os.path.join(self.out["column"], "features_norms.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([int(r["class"]) for r in rows], list(np.argsort(-counts, kind="stable")))
        for r in rows:
            c = int(r["class"])
            self.assertEqual(float(r["feature_norm"]), engine["per_class"]["feature_norm"][c])
            self.assertAlmostEqual(float(r["feature_norm"]), h_norm[c], places=10)

    def test_weight_norm_evolution_has_every_snapshot(self):
        *_, norms = self.file_data()
        with open(os.path.join(self.out["column"], "weight_norm_evolution.csv")) as f:
            rows = list(csv.reader(f))
        self.assertEqual(len(rows) - 1, 3)
        self.assertEqual(rows[0][:3], ["row", "epoch", "stage"])
        cells = np.array([[float(v) for v in row[3:]] for row in rows[1:]])
        np.testing.assert_allclose(cells, norms, rtol=1e-6)  # float32 weights, norms in float64

    def test_per_class_loss_and_penalty(self):
        H, y, W, b, counts, _ = self.file_data()
        engine = self.engine()
        Z = H @ W.T + b
        top = Z.max(axis=1, keepdims=True)
        ce = (top[:, 0] + np.log(np.exp(Z - top).sum(axis=1))) - Z[np.arange(len(y)), y]
        loss = np.array([ce[y == c].mean() for c in range(self.C)])
        np.testing.assert_allclose(engine["per_class"]["loss"], loss, rtol=1e-9)  # in the JSON report too
        with open(os.path.join(self.out["column"], "per_class_loss.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), self.C)
        for r in rows:
            c = int(r["class"])
            self.assertEqual(float(r["loss"]), engine["per_class"]["loss"][c])
            self.assertAlmostEqual(float(r["penalty"]), 0.005 / 2 * (W[c] @ W[c] + b[c] ** 2), places=12)
            self.assertEqual(float(r["weight_decay"]), 0.005)
            self.assertEqual(r["weight_decay_source"], "given")

    def test_weight_decay_recorded_by_the_run_matches_the_stage(self):
        path = os.path.join(self.tmp.name, "configured.h5")
        shutil.copy(self.run_path, path)
        with h5py.File(path, "a") as f:
            f.attrs["config"] = json.dumps({"weight_decay": 0.003, "stage2_weight_decay": 0.1})
            names = sorted(f["snapshots"].keys(), key=lambda n: f["snapshots"][n].attrs.get("epoch", -1))
            f["snapshots"][names[-1]].attrs["stage"] = 2
            f["snapshots"][names[0]].attrs["stage"] = 1
        for snapshot, lam, source in ((names[-1], 0.1, "stage2_weight_decay"), (names[0], 0.003, "weight_decay")):
            out = os.path.join(self.tmp.name, "wd-" + snapshot)
            p = run_ltlab("figures", path, "--out", out, "--format", "pdf", "--snapshot", snapshot)
            self.assertEqual(p.returncode, 0, describe(p))
            with open(os.path.join(out, "per_class_loss.csv")) as f:
                rows = list(csv.DictReader(f))
            self.assertEqual(float(rows[0]["weight_decay"]), lam)
            self.assertIn(source, rows[0]["weight_decay_source"])
            self.assertFalse(os.path.exists(os.path.join(out, "per_class_vs_baseline.pdf")))  # no baseline given

    def test_grouped_confusion(self):
        H, y, W, b, counts, _ = self.file_data()
        engine = self.engine()
        pred = np.argmax(H @ W.T + b, axis=1)
        group = np.where(counts > 100, 0, np.where(counts < 20, 2, 1))
        block = np.zeros((3, 3))
        np.add.at(block, (group[y], group[pred]), 1)
        with open(os.path.join(self.out["column"], "confusion_grouped.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["true_group"] for r in rows], ["many", "medium", "few"])
        for g, r in enumerate(rows):
            self.assertEqual(int(r["classes"]), int((group == g).sum()))
            got_counts = [int(r[k + "_count"]) for k in ("many", "medium", "few")]
            self.assertEqual(got_counts, list(block[g].astype(int)))
            # The counts are the engine's confusion matrix summed in blocks.
            self.assertEqual(sum(got_counts), sum(engine["per_class"]["count"][c] for c in range(self.C) if group[c] == g))
            if block[g].sum():
                np.testing.assert_allclose([float(r[k]) for k in ("many", "medium", "few")], block[g] / block[g].sum(),
                                           rtol=1e-12)

    def test_accuracy_against_the_baseline(self):
        engine, base = self.engine(), self.engine(self.base_path)
        with open(os.path.join(self.out["column"], "per_class_vs_baseline.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), self.C)
        for r in rows:
            c = int(r["class"])
            self.assertEqual(float(r["accuracy"]), engine["per_class"]["accuracy"][c])
            self.assertEqual(float(r["baseline_accuracy"]), base["per_class"]["accuracy"][c])
            self.assertEqual(int(r["train_count"]), engine["per_class"]["train_count"][c])

    def test_baseline_errors(self):
        out = os.path.join(self.tmp.name, "refused")
        p = run_ltlab("figures", self.run_path, "--out", out, "--baseline", self.other_path)
        self.assertEqual(p.returncode, 2, describe(p))
        self.assertIn("other_classes.h5", p.stderr)
        self.assertIn("5 classes", p.stderr)
        self.assertFalse(os.path.exists(out))  # refused before anything is written
        p = run_ltlab("figures", self.run_path, "--out", out, "--baseline-snapshot", "epoch_0001")
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("--baseline", p.stderr)
        p = run_ltlab("figures", self.run_path, "--out", out, "--size", "poster")
        self.assertEqual(p.returncode, 1, describe(p))
        p = run_ltlab("figures", self.run_path, "--out", out, "--baseline", os.path.join(self.tmp.name, "nope.h5"))
        self.assertEqual(p.returncode, 2, describe(p))
        self.assertIn("nope.h5", p.stderr)

    def test_help_lists_the_figure_set(self):
        p = run_ltlab("figures", "--help")
        self.assertEqual(p.returncode, 0, describe(p))
        for stem in FIGURE_SET:
            self.assertIn(stem, p.stdout)
        self.assertIn("--size", p.stdout)


if __name__ == "__main__":
    unittest.main()
