"""One test per validation rule of run-format.md: ltlab analyze on a file
broken one way must exit 2, print nothing on stdout, and say on stderr which
file and which object (convention: `FILE: /hdf5/object/path: problem`).

Run: LTLAB_BIN=build/bin/ltlab /usr/bin/python3 -m unittest -v tests/python/test_validation.py
"""

import os
import re
import sys
import tempfile
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltlab_testutil as tu  # noqa: E402
from ltlab_testutil import replace_dataset, write_base  # noqa: E402

C, D, N = 4, 3, 20          # the base file of ltlab_testutil.write_base
SNAP = "/snapshots/final"
SPLIT = SNAP + "/test"


class Validation(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ltlab_val_")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        tu.ltlab_bin()     # fails clearly when LTLAB_BIN is not set

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def broken(self, name, mutate, **kw):
        return write_base(self.path(name), mutate, **kw)

    def assertRejected(self, path, *patterns):
        """exit 2, empty stdout, stderr names the file and matches every
        pattern (a case-insensitive regex; use | for alternatives)."""
        proc = tu.run_ltlab("analyze", path)
        info = tu.describe(proc)
        self.assertEqual(proc.returncode, 2, "expected exit 2 for %s: %s" % (os.path.basename(path), info))
        self.assertEqual(proc.stdout, "", "stdout must be empty on error: " + info)
        self.assertIn(os.path.basename(path), proc.stderr, "stderr must name the file: " + info)
        # the file names are descriptive: match the patterns without them
        rest = proc.stderr.replace(path, "<FILE>").replace(os.path.basename(path), "<FILE>")
        for p in patterns:
            self.assertRegex(rest, re.compile(p, re.I), "stderr must mention %r: %s" % (p, info))
        self.assertLess(len(proc.stderr.splitlines()), 50, "a message, not a dump: " + info)
        return proc

    def assertAccepted(self, path, *args):
        proc = tu.run_ltlab("analyze", path, *args)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        self.assertTrue(proc.stdout.strip(), "no output: " + tu.describe(proc))
        return proc

    # -- control ---------------------------------------------------------
    def test_base_file_is_valid(self):
        """The unbroken base file every other test starts from."""
        self.assertAccepted(self.broken("base_ok.h5", None))

    # -- not an HDF5 run file --------------------------------------------
    def test_text_file(self):
        p = self.path("plain_text.h5")
        with open(p, "w") as f:
            f.write("epoch,loss\n1,2.3\nthis is not an HDF5 file\n")
        self.assertRejected(p, r"hdf5|signature|not a|open|read|format")

    def test_empty_file(self):
        p = self.path("empty_file.h5")
        open(p, "w").close()
        self.assertRejected(p, r"hdf5|signature|not a|open|read|format|empty")

    def test_truncated_file(self):
        full = write_base(self.path("full_for_truncation.h5"), None, N=2000, D=16)
        with open(full, "rb") as f:
            data = f.read()
        p = self.path("truncated_half.h5")
        with open(p, "wb") as f:
            f.write(data[:len(data) // 2])
        self.assertRejected(p, r"truncat|eof|hdf5|corrupt|damaged|incomplete|open|read")

    def test_missing_format_attribute(self):
        self.assertRejected(self.broken("no_format.h5", lambda f: f.attrs.__delitem__("format")),
                            r"format")

    def test_wrong_format_string(self):
        def m(f):
            f.attrs["format"] = "some-other-run"
        self.assertRejected(self.broken("wrong_format.h5", m), r"format")

    def test_format_version_2(self):
        def m(f):
            f.attrs["format_version"] = 2
        self.assertRejected(self.broken("format_version_2.h5", m), r"format_version")

    def test_missing_format_version(self):
        self.assertRejected(self.broken("no_format_version.h5",
                                        lambda f: f.attrs.__delitem__("format_version")),
                            r"format_version")

    # -- /classes ----------------------------------------------------------
    def test_missing_train_counts(self):
        self.assertRejected(self.broken("no_train_counts.h5",
                                        lambda f: f.__delitem__("classes/train_counts")),
                            r"train_counts")

    def test_train_counts_wrong_rank(self):
        def m(f):
            replace_dataset(f, "classes/train_counts", np.array([[40], [30], [20], [10]]))
        self.assertRejected(self.broken("train_counts_rank2.h5", m), r"train_counts")

    def test_fewer_than_two_classes(self):
        """A consistent one-class file: only C < 2 is wrong."""
        def m(f):
            replace_dataset(f, "classes/train_counts", np.array([50]))
            replace_dataset(f, "classes/names", ["only"], dtype=h5py.string_dtype())
            replace_dataset(f, SNAP + "/classifier_weight", np.ones((1, D), np.float32))
            replace_dataset(f, SNAP + "/classifier_bias", np.zeros(1, np.float32))
            replace_dataset(f, SPLIT + "/labels", np.zeros(N, np.int64))
            replace_dataset(f, SPLIT + "/logits", np.zeros((N, 1), np.float32))
        self.assertRejected(self.broken("one_class.h5", m), r"train_counts|classes")

    def test_negative_counts(self):
        def m(f):
            replace_dataset(f, "classes/train_counts", np.array([40, -3, 20, 10]))
        self.assertRejected(self.broken("negative_counts.h5", m), r"train_counts")

    def test_float_train_counts(self):
        def m(f):
            replace_dataset(f, "classes/train_counts", np.array([40.0, 30, 20, 10]))
        self.assertRejected(self.broken("float_train_counts.h5", m), r"train_counts")

    def test_names_wrong_length(self):
        def m(f):
            replace_dataset(f, "classes/names", ["a", "b", "c"], dtype=h5py.string_dtype())
        self.assertRejected(self.broken("names_length.h5", m), r"names")

    # -- /snapshots ----------------------------------------------------------
    def test_missing_snapshots_group(self):
        self.assertRejected(self.broken("no_snapshots_group.h5", lambda f: f.__delitem__("snapshots")),
                            r"snapshots")

    def test_no_snapshot(self):
        self.assertRejected(self.broken("empty_snapshots.h5", lambda f: f.__delitem__(SNAP)),
                            r"snapshot")

    def test_snapshot_without_split(self):
        self.assertRejected(self.broken("no_split.h5", lambda f: f.__delitem__(SPLIT)),
                            r"final|split")

    def test_missing_classifier_weight(self):
        self.assertRejected(self.broken("no_weight.h5",
                                        lambda f: f.__delitem__(SNAP + "/classifier_weight")),
                            r"classifier_weight")

    def test_classifier_weight_wrong_rank(self):
        def m(f):
            replace_dataset(f, SNAP + "/classifier_weight", np.ones(C * D, np.float32))
        self.assertRejected(self.broken("weight_rank1.h5", m), r"classifier_weight")

    def test_weight_classes_differ_from_train_counts(self):
        def m(f):
            replace_dataset(f, SNAP + "/classifier_weight", np.ones((C + 1, D), np.float32))
        self.assertRejected(self.broken("weight_C_mismatch.h5", m), r"classifier_weight|train_counts")

    def test_weight_dim_differs_from_features(self):
        def m(f):
            replace_dataset(f, SPLIT + "/features", np.ones((N, D + 1), np.float32))
        self.assertRejected(self.broken("features_D_mismatch.h5", m), r"features|classifier_weight")

    def test_bias_wrong_length(self):
        def m(f):
            replace_dataset(f, SNAP + "/classifier_bias", np.zeros(C + 1, np.float32))
        self.assertRejected(self.broken("bias_length.h5", m), r"classifier_bias")

    def test_inf_in_classifier_weight(self):
        def m(f):
            w = f[SNAP + "/classifier_weight"][...]
            w[1, 2] = np.inf
            replace_dataset(f, SNAP + "/classifier_weight", w)
        self.assertRejected(self.broken("inf_weight.h5", m), r"classifier_weight")

    # -- splits ------------------------------------------------------------
    def test_missing_features(self):
        self.assertRejected(self.broken("no_features.h5", lambda f: f.__delitem__(SPLIT + "/features")),
                            r"features")

    def test_missing_labels(self):
        self.assertRejected(self.broken("no_labels.h5", lambda f: f.__delitem__(SPLIT + "/labels")),
                            r"labels")

    def test_features_wrong_rank(self):
        def m(f):
            replace_dataset(f, SPLIT + "/features", np.ones(N * D, np.float32))
        self.assertRejected(self.broken("features_rank1.h5", m), r"features")

    def test_features_labels_count_differ(self):
        def m(f):
            replace_dataset(f, SPLIT + "/labels", np.arange(N - 1) % C)
        self.assertRejected(self.broken("labels_N_mismatch.h5", m), r"labels|features")

    def test_negative_label(self):
        def m(f):
            y = f[SPLIT + "/labels"][...]
            y[5] = -1
            replace_dataset(f, SPLIT + "/labels", y)
        self.assertRejected(self.broken("label_negative.h5", m), r"labels")

    def test_label_too_large(self):
        def m(f):
            y = f[SPLIT + "/labels"][...]
            y[7] = C
            y[9] = C + 8
            replace_dataset(f, SPLIT + "/labels", y)
        self.assertRejected(self.broken("label_ge_C.h5", m), r"labels")

    def test_nan_in_features(self):
        def m(f):
            h = f[SPLIT + "/features"][...]
            h.reshape(-1)[[0, 4, 9, 20, 33, 41, 58]] = np.nan        # 7 NaNs
            replace_dataset(f, SPLIT + "/features", h)
        proc = self.assertRejected(self.broken("nan_features.h5", m), r"features")
        rest = proc.stderr.replace(self.tmp.name, "<DIR>")
        self.assertRegex(rest, r"(?<![\d.])7(?![\d.])", "the message should say how many (7)")

    def test_nan_in_logits(self):
        def m(f):
            z = f[SPLIT + "/logits"][...]
            z[3, 1] = np.nan
            replace_dataset(f, SPLIT + "/logits", z)
        self.assertRejected(self.broken("nan_logits.h5", m), r"logits")

    def test_logits_wrong_shape(self):
        def m(f):
            replace_dataset(f, SPLIT + "/logits", np.zeros((N, C + 1), np.float32))
        self.assertRejected(self.broken("logits_shape.h5", m), r"logits")

    def test_float_labels(self):
        def m(f):
            replace_dataset(f, SPLIT + "/labels", (np.arange(N) % C).astype(np.float64))
        self.assertRejected(self.broken("float_labels.h5", m), r"labels")

    def test_string_features(self):
        def m(f):
            replace_dataset(f, SPLIT + "/features", np.full((N, D), b"1.5", dtype="S8"))
        self.assertRejected(self.broken("string_features.h5", m), r"features")

    # -- what must be accepted ------------------------------------------------
    def test_minimal_valid_file(self):
        """Only the required objects: format attributes, train_counts, one
        snapshot with classifier_weight and one split with features/labels."""
        p = self.path("minimal_valid.h5")
        rng = np.random.default_rng(0)
        with h5py.File(p, "w") as f:
            f.attrs["format"] = "ltlab-run"
            f.attrs["format_version"] = 1
            f.create_dataset("classes/train_counts", data=np.array([30, 10, 5]))
            f.create_dataset("snapshots/s/classifier_weight", data=rng.standard_normal((3, 2)))
            f.create_dataset("snapshots/s/val/features", data=rng.standard_normal((9, 2)))
            f.create_dataset("snapshots/s/val/labels", data=np.arange(9) % 3)
        self.assertAccepted(p)
        self.assertAccepted(p, "--format", "json")

    def test_other_valid_encodings(self):
        """Fixed-length ASCII string attribute, 32-bit format_version, small
        integer types, float32 bias with float64 weight: all follow the page."""
        def m(f):
            f.attrs.create("format", np.bytes_(b"ltlab-run"))
            f.attrs.create("format_version", 1, dtype=np.int32)
            replace_dataset(f, "classes/train_counts", np.array([40, 30, 20, 10], np.uint16))
            replace_dataset(f, SPLIT + "/labels", (np.arange(N) % C).astype(np.uint8))
            w = f[SNAP + "/classifier_weight"][...].astype(np.float64)
            replace_dataset(f, SNAP + "/classifier_weight", w)
            f["classes"].attrs.create("many_threshold", 25, dtype=np.int32)
            f["classes"].attrs.create("few_threshold", 15, dtype=np.int16)
            f[SNAP].attrs["label"] = "best"
            f[SNAP].attrs["stage"] = 1
            f.attrs["config"] = '{"lr": 0.01}'
            f.create_dataset("history/epoch", data=np.arange(5), maxshape=(None,), chunks=True)
            f.create_dataset("history/train_loss", data=np.linspace(2, 1, 5), maxshape=(None,), chunks=True)
        self.assertAccepted(self.broken("valid_encodings.h5", m), "--format", "json")


if __name__ == "__main__":
    unittest.main()
