"""One test per validation rule of run-format.md: ltlab analyze on a file
broken one way must exit 2, print nothing on stdout, and say on stderr which
file and which object (convention: `FILE: /hdf5/object/path: problem`).

Run: LTLAB_BIN=build/bin/ltlab /usr/bin/python3 -m unittest -v tests/python/test_validation.py
"""

import json
import os
import re
import subprocess
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



class Hardening(unittest.TestCase):
    """Issue 12: options out of range are usage errors (exit 1) naming the
    option; FIFOs, devices and folders are refused without blocking (exit 2,
    naming the file); overflowing counts, huge declared sizes and a missing
    output folder are clear input errors; the text report escapes control
    characters and never prints inf or nan."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ltlab_hard_")
        cls.base = write_base(os.path.join(cls.tmp.name, "base.h5"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        tu.ltlab_bin()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def run_bad(self, code, args, *patterns, timeout=30):
        try:
            proc = tu.run_ltlab(*args, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("ltlab %s did not finish in %d s" % (" ".join(map(str, args)), timeout))
        info = tu.describe(proc)
        self.assertEqual(proc.returncode, code, "ltlab %s: %s" % (" ".join(map(str, args)), info))
        for p in patterns:
            self.assertRegex(proc.stderr, re.compile(p, re.I), info)
        self.assertLess(len(proc.stderr.splitlines()), 5, "one clear line: " + info)
        return proc

    # -- --threads ---------------------------------------------------------
    def test_threads_capped_for_every_command(self):
        big = str(4 * os.cpu_count() + 1)
        out = self.path("threads_out.h5")
        for args in (["analyze", self.base], ["synth", "--out", out], ["info"],
                     ["stage2", self.base, "--out", out], ["cone-lab"],
                     ["train", "--recipe", "ce", "--out", out], ["train", "--resume", self.base],
                     ["import", self.base, "--dataset", "cifar100-lt", "--out", out], ["benchmark-training"]):
            for value in (big, "10000"):
                with self.subTest(args=args, threads=value):
                    self.run_bad(1, args + ["--threads", value], r"--threads", r"at most")
        self.assertFalse(os.path.exists(out))

    # -- non-regular files -------------------------------------------------
    def test_fifo_device_and_folder_refused(self):
        fifo = self.path("pipe.h5")
        os.mkfifo(fifo)
        folder = self.path("a_folder")
        os.mkdir(folder)
        out = self.path("fifo_out.h5")
        for bad, kind in ((fifo, r"FIFO"), ("/dev/zero", r"character device"), (folder, r"directory")):
            for args in (["analyze", bad], ["train", "--recipe", "ce", "--config", bad, "--out", out],
                         ["inspect", bad], ["train", "--resume", bad],
                         ["stage2", bad, "--out", out]):
                with self.subTest(args=args):
                    self.run_bad(2, args, re.escape(bad), kind, r"regular file", timeout=20)
        self.assertFalse(os.path.exists(out))

    def test_checkpoint_fifo_refused_before_libtorch(self):
        """RUN.h5.ckpt is read by libtorch: a FIFO there is refused first."""
        run = self.path("with_ckpt.h5")
        write_base(run, lambda f: f.attrs.__setitem__("config", '{"recipe": "ce"}'))
        os.mkfifo(run + ".ckpt")
        self.run_bad(2, ["train", "--resume", run], re.escape(run + ".ckpt"), r"FIFO", timeout=20)
        self.run_bad(2, ["train", "--recipe", "wb", "--from", run, "--out", self.path("from_out.h5")],
                     re.escape(run + ".ckpt"), r"FIFO", timeout=20)

    def test_counts_fifo_refused(self):
        fifo = self.path("counts_pipe.json")
        os.mkfifo(fifo)
        ckpt = self.path("tiny.safetensors")
        header = b'{"fc.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'
        with open(ckpt, "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header + bytes(16))
        self.run_bad(2, ["inspect", ckpt, "--counts", fifo], re.escape(fifo), r"FIFO", timeout=20)

    def test_config_too_large(self):
        big = self.path("big_config.json")
        with open(big, "wb") as f:
            f.truncate(17 << 20)   # sparse: 17 MB of zeros
        self.run_bad(2, ["train", "--recipe", "ce", "--config", big, "--out", self.path("big_out.h5")],
                     re.escape(big), r"at most 16")

    # -- training options ----------------------------------------------------
    def test_training_options_out_of_range(self):
        out = self.path("opt_out.h5")
        cases = [
            (["--recipe", "ce-wd", "--weight-decay", "-1"], "--weight-decay", r">= 0"),
            (["--recipe", "wb", "--stage2-weight-decay", "-0.5"], "--stage2-weight-decay", r">= 0"),
            (["--recipe", "wb", "--stage2-epochs", "-1"], "--stage2-epochs", r">= 0"),
            (["--recipe", "ce", "--epochs", "0"], "--epochs", r">= 1"),
            (["--recipe", "ce", "--val-per-class", "-5"], "--val-per-class", r">= 0"),
            (["--recipe", "ce", "--lr", "1e300"], "--lr", r"\(0, 1000000000\]"),
            (["--recipe", "ce", "--lr", "0"], "--lr", r"\(0, "),
            (["--recipe", "ce", "--lr", "-0.1"], "--lr", r"\(0, "),
            (["--recipe", "ce", "--lr", "1e400"], "--lr", r"finite number"),
            (["--recipe", "ce", "--lr", "nan"], "lr", r""),
            (["--recipe", "ce", "--momentum", "-1"], "--momentum", r"\[0, 1\)"),
            (["--recipe", "ce", "--momentum", "1"], "--momentum", r"\[0, 1\)"),
            (["--recipe", "ce", "--batch-size", "0"], "--batch-size", r">= 1"),
            (["--recipe", "wb", "--cb-beta", "1.5"], "--cb-beta", r"\[0, 1\]"),
            (["--recipe", "wd-fr-etf", "--tau", "1e308"], "--tau", r"\[0, 10\]"),
            (["--recipe", "ce", "--la-mode", "sideways"], "--la-mode", r"additive or multiplicative"),
            (["--recipe", "ce", "--snapshot-every", "0"], "--snapshot-every", r">= 1"),
            (["--recipe", "ce", "--threads", "100000"], "--threads", r"at most \d+ \(4 x the"),
        ]
        for args, option, rng in cases:
            with self.subTest(args=args):
                self.run_bad(1, ["train"] + args + ["--out", out], re.escape(option), rng)
        self.assertFalse(os.path.exists(out))

    @unittest.skipIf(os.environ.get("ASAN_OPTIONS"), "AddressSanitizer reserves terabytes of address space")
    def test_threads_fit_an_address_space_limit(self):
        """Under ulimit -v, OpenBLAS spun forever when a thread's buffer could not
        be mapped (issue 12): ltlab now uses the threads that fit and says so."""
        import resource
        limit = 800 << 20
        proc = subprocess.run([tu.ltlab_bin(), "analyze", self.base, "--threads", "8"], capture_output=True,
                              text=True, timeout=120,
                              preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertRegex(proc.stderr, r"address-space limit \(ulimit -v, 800 MiB\) leaves room for \d+ numeric thread")
        self.assertIn("Snapshot", proc.stdout)

    def test_stage2_options_out_of_range(self):
        """`ltlab stage2` names the option, its range and the value, exit 1, and writes nothing."""
        out = self.path("stage2_opt_out.h5")
        cases = [
            (["--lr", "-1"], "--lr", r"\(0, 1e9\]", r"got -1"),
            (["--lr", "1e300"], "--lr", r"\(0, 1e9\]", r"got 1e\+300"),
            (["--momentum", "1"], "--momentum", r"\[0, 1\)", r"got 1"),
            (["--weight-decay", "-1"], "--weight-decay", r"\[0, 1e9\]", r"got -1"),
            (["--cb-beta", "1.5"], "--cb-beta", r"\[0, 1\]", r"got 1.5"),
            (["--maxnorm-threshold", "-2"], "--maxnorm-threshold", r"\[0, 1e9\]", r"got -2"),
            (["--epochs", "0"], "--epochs", r">= 1|at least 1", r""),
            (["--batch-size", "0"], "--batch-size", r">= 1|at least 1", r""),
        ]
        for args, option, rng, got in cases:
            with self.subTest(args=args):
                self.run_bad(1, ["stage2", self.base] + args + ["--out", out], re.escape(option), rng, got)
        self.assertFalse(os.path.exists(out))

    def test_config_file_values_checked(self):
        cfg = self.path("bad_values.json")
        with open(cfg, "w") as f:
            f.write('{"recipe": "ce-wd", "weight_decay": -1}')
        self.run_bad(1, ["train", "--config", cfg, "--out", self.path("cfg_out.h5")],
                     re.escape(cfg), r"weight-decay", r">= 0")

    def test_config_file_threads_capped(self):
        cfg = self.path("many_threads.json")
        with open(cfg, "w") as f:
            f.write('{"recipe": "ce", "threads": 100000}')
        self.run_bad(1, ["train", "--config", cfg, "--out", self.path("thr_out.h5")],
                     re.escape(cfg), r"threads", r"at most \d+")

    def test_la_tau_too_large(self):
        out = self.path("la_out.h5")
        self.run_bad(1, ["train", "--recipe", "la", "--from", self.base, "--tau", "1e308", "--out", out],
                     r"--tau", r"finite number in \[0, 10\]")
        self.assertFalse(os.path.exists(out))

    def test_la_non_finite_adjustment(self):
        """A class with no training samples has prior 0: dividing by 0^tau is inf."""
        p = write_base(self.path("zero_class.h5"), lambda f: replace_dataset(
            f, "classes/train_counts", np.array([40, 30, 20, 0], np.int64)))
        out = self.path("la_zero_out.h5")
        self.run_bad(1, ["train", "--recipe", "la", "--la-mode", "multiplicative", "--from", p,
                         "--tau", "1", "--out", out], r"--tau", r"non-finite", r"prior is 0")
        self.assertFalse(os.path.exists(out))

    def test_la_records_tau_exactly(self):
        out = self.path("la_exact.h5")
        proc = tu.run_ltlab("train", "--recipe", "la", "--from", self.base, "--tau", "1.23456789", "--out", out)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        import json
        with h5py.File(out, "r") as f:
            config = json.loads(f.attrs["config"])
        self.assertEqual(config["tau"], 1.23456789)
        self.assertEqual(config["from"], self.base)

    def test_thresholds_many_below_few(self):
        self.run_bad(1, ["analyze", self.base, "--many-threshold", "10", "--few-threshold", "20"],
                     r"--many-threshold", r"--few-threshold", r">= --few-threshold")
        self.run_bad(1, ["analyze", self.base, "--many-threshold", "5"], r"--many-threshold 5", r"--few-threshold 20")

        def m(f):
            f["classes"].attrs["many_threshold"] = 10
            f["classes"].attrs["few_threshold"] = 20
        p = write_base(self.path("thresholds.h5"), m)
        self.run_bad(2, ["analyze", p], r"thresholds\.h5: /classes", r"many_threshold \(10\) is below few_threshold \(20\)")

    # -- numbers --------------------------------------------------------------
    def test_counts_sum_overflow(self):
        p = write_base(self.path("overflow.h5"), lambda f: replace_dataset(
            f, "classes/train_counts", np.array([2**62, 2**62, 2**62, 1], np.int64)))
        self.run_bad(2, ["analyze", p], r"overflow\.h5: /classes/train_counts", r"2\^63 - 1", r"overflow")

    def test_counts_file_overflow(self):
        counts = self.path("counts_overflow.txt")
        with open(counts, "w") as f:
            f.write("%d %d 3\n" % (2**62, 2**62))
        ckpt = self.path("tiny2.safetensors")
        header = b'{"fc.weight":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]}}'
        with open(ckpt, "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header + bytes(24))
        self.run_bad(2, ["inspect", ckpt, "--counts", counts], re.escape(counts), r"overflow")

    def test_huge_declared_rows(self):
        """A tiny file whose features and labels declare 2^40 rows (chunked, never written)."""
        def m(f):
            del f[SPLIT + "/logits"]
            del f[SPLIT + "/features"]
            del f[SPLIT + "/labels"]
            f.create_dataset(SPLIT + "/features", shape=(2**40, D), dtype="f4", chunks=(1024, D))
            f.create_dataset(SPLIT + "/labels", shape=(2**40,), dtype="i8", chunks=(1024,))
        p = write_base(self.path("huge_rows.h5"), m)
        self.assertLess(os.path.getsize(p), 1 << 20)
        self.run_bad(2, ["analyze", p], r"huge_rows\.h5: /snapshots/final/test/labels", r"declares 1099511627776",
                     r"memory")

    def test_huge_declared_dimension(self):
        """2^20-d features: the D x D scatter matrices cannot be allocated; the
        bad_alloc becomes an input error naming the split (under an 8 GB limit)."""
        import resource
        def m(f):
            for k in ("test/logits", "test/features", "classifier_weight"):
                del f[SNAP + "/" + k]
            f.create_dataset(SNAP + "/classifier_weight", shape=(C, 2**20), dtype="f4", chunks=(1, 4096))
            f.create_dataset(SPLIT + "/features", shape=(N, 2**20), dtype="f4", chunks=(1, 4096))
        p = write_base(self.path("huge_dim.h5"), m)

        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
        # AddressSanitizer reserves terabytes of address space (no ulimit -v);
        # its allocator refuses the 8 TB itself (allocator_may_return_null=1: bad_alloc).
        asan = bool(os.environ.get("ASAN_OPTIONS"))
        proc = subprocess.run([tu.ltlab_bin(), "analyze", p, "--threads", "1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=60, preexec_fn=None if asan else limit,
                              env=dict(os.environ, LC_ALL="C"))
        self.assertEqual(proc.returncode, 2, tu.describe(proc))
        self.assertIn("huge_dim.h5: /snapshots/final/test: not enough memory", proc.stderr, tu.describe(proc))
        self.assertIn("1048576 features", proc.stderr)

    def test_eigen_failure_names_file(self):
        """Finite features near 1e300 overflow the scatter matrices: the failed
        decomposition is reported with the file, snapshot and split."""
        def m(f):
            h = f[SPLIT + "/features"][...].astype(np.float64) * 1e300
            replace_dataset(f, SPLIT + "/features", h)
            del f[SPLIT + "/logits"]
        p = write_base(self.path("huge_features.h5"), m)
        self.run_bad(2, ["analyze", p], r"huge_features\.h5: /snapshots/final/test: cannot be analysed",
                     r"eigen-decomposition")

    def test_output_folder_missing(self):
        out = self.path("no/such/folder/out.h5")
        for args in (["synth", "--out", out, "--classes", "3", "--dim", "2", "--snapshots", "1"],
                     ["train", "--recipe", "la", "--from", self.base, "--tau", "1", "--out", out],
                     ["train", "--recipe", "ce", "--epochs", "1", "--out", out]):
            with self.subTest(args=args):
                self.run_bad(2, args, re.escape(out), r"folder .*no/such/folder does not exist")

    def test_report_escapes_control_characters(self):
        names = ["plain", "new\nline", "esc\x1b[31mred", "tab\there"]
        def m(f):
            del f["classes/names"]
            f["classes"].create_dataset("names", data=names, dtype=h5py.string_dtype("utf-8"))
            f.move(SNAP, "/snapshots/evil\x1b[2Jname")
        p = write_base(self.path("control_names.h5"), m)
        proc = tu.run_ltlab("analyze", p)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        self.assertNotIn("\x1b", proc.stdout)
        self.assertNotIn("\t", proc.stdout)
        self.assertIn(r"new\nline", proc.stdout)
        self.assertIn(r"esc\e[31mred", proc.stdout)
        self.assertIn(r"evil\e[2Jname", proc.stdout)
        # JSON keeps the names exact (escaped by JSON itself)
        js = tu.run_ltlab("analyze", p, "--format", "json")
        self.assertEqual(js.returncode, 0, tu.describe(js))
        self.assertEqual(tu.parse_json(js.stdout)["snapshot"], "evil\x1b[2Jname")

    def test_report_huge_weights_no_nan(self):
        def m(f):
            w = f[SNAP + "/classifier_weight"][...].astype(np.float64) * 1e300
            replace_dataset(f, SNAP + "/classifier_weight", w)
            del f[SPLIT + "/logits"]
        p = write_base(self.path("huge_weights.h5"), m)
        proc = tu.run_ltlab("analyze", p)
        if proc.returncode == 2:   # refused as an input problem: must name the file and object
            self.assertIn("huge_weights.h5: /snapshots/final", proc.stderr, tu.describe(proc))
            return
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        self.assertNotRegex(proc.stdout, re.compile(r"\bnan\b|\binf\b", re.I), proc.stdout)
        self.assertRegex(proc.stdout, r"e\+300", "the weight norms are finite and printed")
        js = tu.run_ltlab("analyze", p, "--format", "json")
        self.assertEqual(js.returncode, 0, tu.describe(js))
        huge = tu.parse_json(js.stdout)
        # NC2 and NC3 are scale-invariant: the same as for the unscaled weights
        plain = tu.parse_json(tu.run_ltlab("analyze", self.base, "--format", "json").stdout)
        for key in ("nc2_equinorm_weights", "nc2_equiangular_weights", "nc2_maxangle_weights", "nc3"):
            self.assertIsNotNone(huge[key], key)
            self.assertAlmostEqual(huge[key], plain[key], places=6, msg=key)


    def _damaged_heap_runs(self, name, damage):
        """ltlab analyze on the base file with damage(bytearray, gcol) applied
        to its bytes: (returncode, stderr); a signal or a hang fails."""
        base = write_base(self.path(name + "_base.h5"))
        with open(base, "rb") as fh:
            data = bytearray(fh.read())
        gcol = data.find(b"GCOL\x01\x00\x00\x00")
        self.assertGreaterEqual(gcol, 0, "h5py wrote the names into a global heap")
        damage(data, gcol)
        p = self.path(name + ".h5")
        with open(p, "wb") as fh:
            fh.write(data)
        proc = subprocess.run([tu.ltlab_bin(), "analyze", p], capture_output=True, text=True,
                              errors="replace", timeout=60)
        self.assertGreaterEqual(proc.returncode, 0, "killed by signal %d: %s" % (-proc.returncode, proc.stderr[-500:]))
        self.assertIn(proc.returncode, (0, 2), proc.stderr[-500:])
        return proc

    def test_damaged_global_heap_object_size(self):
        # issue 12: one byte of the first heap object's size (the variable-length
        # strings of / attributes and /classes/names) made HDF5 1.10 crash or hang
        for value in (0x00, 0x7F, 0x10, 0xFF):
            for at in (24, 25, 26, 31):
                def damage(d, gcol):
                    d[gcol + at] = value
                proc = self._damaged_heap_runs("heap_%d_%02x" % (at, value), damage)
                if proc.returncode == 2:
                    self.assertIn("heap_%d_%02x.h5" % (at, value), proc.stderr)
                    self.assertLess(len(proc.stderr.splitlines()), 5, proc.stderr)

    def test_damaged_global_heap_is_refused(self):
        def damage(d, gcol):
            d[gcol + 25] = 0xFF   # object 1 claims 64 KiB in a 4 KiB collection
        proc = self._damaged_heap_runs("heap_size", damage)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertRegex(proc.stderr, re.compile("global heap|variable-length", re.I))
        self.assertEqual(proc.stdout, "")

    def test_damaged_global_heap_every_byte(self):
        # each of the collection's first 128 bytes set to 0xFF: never a signal or a hang
        for at in range(0, 128):
            for value in (0xFF,):
                def damage(d, gcol):
                    d[gcol + at] = value
                self._damaged_heap_runs("heap_every", damage)

    def test_compound_and_enum_datatypes_are_refused_before_hdf5_decodes_them(self):
        """HDF5 1.10 copies compound and enum member names out of the object
        header with an unbounded strdup (fuzzing found a read past its buffer on
        a damaged name, inside H5Dopen): such datatypes, which no run file needs,
        are refused from the header's bytes first, for datasets and attributes."""
        import h5py
        names = ["c%d" % c for c in range(4)]

        def enum_names(f):
            del f["/classes/names"]
            f.create_dataset("/classes/names", data=np.arange(4, dtype="i1"),
                             dtype=h5py.enum_dtype({n: i for i, n in enumerate(names)}, basetype="i1"))

        def compound_features(f):
            H = f[SPLIT + "/features"][()]
            del f[SPLIT + "/features"]
            rec = np.zeros(H.shape[0], dtype=[("a", "f4"), ("b", "f4"), ("c", "f4")])
            f.create_dataset(SPLIT + "/features", data=rec)

        def enum_attribute(f):
            f.attrs.create("colour", 1, dtype=h5py.enum_dtype({"red": 0, "green": 1}, basetype="i1"))

        def vlen_of_enum(f):  # nested: a variable-length sequence of an enum
            dt = h5py.vlen_dtype(h5py.enum_dtype({"a": 0, "b": 1}, basetype="i1"))
            ds = f.create_dataset("/classes/extra", (1,), dtype=dt)
            ds[0] = np.array([0, 1], dtype="i1")
            f.attrs.create("tags", np.array([1], dtype="i1"), dtype=h5py.enum_dtype({"x": 0, "y": 1}, basetype="i1"))

        cases = [("enum_names", enum_names, r"/classes/names", r"enumerated datatype"),
                 ("compound_features", compound_features, re.escape(SPLIT) + r"/features", r"compound datatype"),
                 ("enum_attribute", enum_attribute, r"attribute", r"enumerated datatype"),
                 ("vlen_enum", vlen_of_enum, r"attribute|/classes/extra", r"enumerated datatype")]
        for tag, mutate, where, what in cases:
            with self.subTest(tag):
                p = write_base(self.path("types_%s.h5" % tag), mutate)
                self.run_bad(2, ["analyze", p], re.escape(os.path.basename(p)), where, what)

    def test_json_of_names_that_are_not_utf8(self):
        """A snapshot name with bytes that are not UTF-8 (found by fuzzing: the
        JSON writer threw and `--format json` failed): the JSON is written,
        valid UTF-8, with U+FFFD for each invalid byte."""
        def rename(f):
            f.move(SNAP, b"/snapshots/ep\xff")
        p = write_base(self.path("not_utf8.h5"), rename)
        proc = subprocess.run([tu.ltlab_bin(), "analyze", p, "--format", "json"], capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode("utf-8", "replace"))
        j = json.loads(proc.stdout.decode("utf-8"))  # strict: valid UTF-8
        self.assertEqual(j["snapshot"], "ep\ufffd")

    def test_damaged_names_reference(self):
        # the stored reference of a name points at a missing heap object
        base = write_base(self.path("ref_base.h5"))
        import h5py
        with h5py.File(base, "r") as f:
            offset = f["/classes/names"].id.get_offset()
        self.assertIsNotNone(offset, "contiguous /classes/names")
        with open(base, "rb") as fh:
            data = bytearray(fh.read())
        data[offset + 12] = 0x7F          # element 0's heap object index (4 + 8 bytes in)
        p = self.path("ref_damaged.h5")
        with open(p, "wb") as fh:
            fh.write(data)
        proc = subprocess.run([tu.ltlab_bin(), "analyze", p], capture_output=True, text=True,
                              errors="replace", timeout=60)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("/classes/names", proc.stderr)
        self.assertRegex(proc.stderr, re.compile("missing object|variable-length", re.I))

    def _attribute_reference_damaged(self, tag, libver, offset, fmt, value):
        """The run file with the `format` attribute's stored reference (length 4,
        collection address 8, object index 4) changed at `offset` within it."""
        import struct
        base = self.path("attr_%s.h5" % libver)
        if not os.path.exists(base):
            write_base(base)
            if libver == "latest":   # the same content in version-2 object headers ("OHDR")
                import h5py
                with h5py.File(base, "r") as src, h5py.File(base + ".v2", "w", libver="latest") as dst:
                    for k, v in src.attrs.items():
                        dst.attrs[k] = v
                    for k in src:
                        src.copy(src[k], dst, k)
                os.replace(base + ".v2", base)
        with open(base, "rb") as fh:
            data = bytearray(fh.read())
        refs = [m.start() for g in re.finditer(b"GCOL\x01", data)
                for m in re.finditer(re.escape(struct.pack("<IQ", len("ltlab-run"), g.start())), data)]
        self.assertEqual(len(refs), 1, "one stored reference of the 9-byte 'ltlab-run'")
        struct.pack_into(fmt, data, refs[0] + offset, value)
        p = self.path("attr_%s_%s.h5" % (libver, tag))
        with open(p, "wb") as fh:
            fh.write(data)
        return p

    def test_damaged_attribute_reference(self):
        # issue 12: the reference of a variable-length string attribute pointing at
        # object 65535 of its collection crashed HDF5 1.10 (SIGSEGV); a length of
        # 2^31 made it loop (over 100 s); a length one too long read a wrong string
        cases = [("index_65535", 12, "<I", 65535), ("index_70000", 12, "<I", 70000), ("index_0", 12, "<I", 0),
                 ("length_2g", 0, "<I", 1 << 31), ("length_10", 0, "<I", 10), ("length_4105", 0, "<I", 4105)]
        for libver in ("earliest", "latest"):
            for tag, offset, fmt, value in cases:
                with self.subTest(libver=libver, damage=tag):
                    p = self._attribute_reference_damaged(tag, libver, offset, fmt, value)
                    proc = self.run_bad(2, ["analyze", p], re.escape(p), r"attribute 'format'",
                                        r"missing object|length|variable-length|damaged object header", timeout=30)
                    self.assertEqual(proc.stdout, "")


if __name__ == "__main__":
    unittest.main()
