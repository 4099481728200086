"""End-to-end tests of the ltlab command line (analyze and synth).

Run: LTLAB_BIN=build/bin/ltlab /usr/bin/python3 -m unittest -v tests/python/test_cli.py
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
from ltlab_testutil import ref, run_ltlab  # noqa: E402

SYNTH_BASE = ["--classes", "10", "--dim", "16", "--imbalance", "100", "--seed", "3"]


class CliBase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ltlab_cli_")
        cls.valid = tu.write_base(os.path.join(cls.tmp.name, "base_run.h5"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        tu.ltlab_bin()     # fails clearly when LTLAB_BIN is not set

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def ok(self, *args):
        proc = run_ltlab(*args)
        self.assertEqual(proc.returncode, 0, "ltlab %s: %s" % (" ".join(map(str, args)), tu.describe(proc)))
        return proc

    def fails(self, code, *args):
        proc = run_ltlab(*args)
        info = "ltlab %s: %s" % (" ".join(map(str, args)), tu.describe(proc))
        if isinstance(code, tuple):
            self.assertIn(proc.returncode, code, info)
        elif code is None:
            self.assertNotEqual(proc.returncode, 0, info)
        else:
            self.assertEqual(proc.returncode, code, info)
        self.assertTrue(proc.stderr.strip(), "an error message on stderr: " + info)
        self.assertNotIn("Traceback", proc.stderr)
        return proc

    def synth(self, name, *args):
        p = self.path(name)
        self.ok("synth", "--out", p, *args)
        self.assertTrue(os.path.isfile(p))
        return p


class Usage(CliBase):

    def test_help_and_version(self):
        h = self.ok("--help")
        self.assertTrue((h.stdout + h.stderr).strip())
        self.assertIn("analyze", h.stdout + h.stderr)
        self.assertIn("synth", h.stdout + h.stderr)
        v = self.ok("--version")
        self.assertRegex(v.stdout + v.stderr, r"\d+\.\d+")

    def test_subcommand_help(self):
        a = self.ok("analyze", "--help")
        self.assertIn("--snapshot", a.stdout + a.stderr)
        self.assertIn("--split", a.stdout + a.stderr)
        s = self.ok("synth", "--help")
        self.assertIn("--out", s.stdout + s.stderr)

    def test_unknown_subcommand(self):
        self.fails(1, "frobnicate")

    def test_unknown_option(self):
        self.fails(1, "analyze", self.valid, "--bogus-option")

    def test_missing_file_argument(self):
        self.fails(1, "analyze")
        self.fails(1, "analyze", "--format", "json")

    def test_bad_format_value(self):
        self.fails(1, "analyze", self.valid, "--format", "xml")

    def test_bad_split_value(self):
        self.fails(1, "analyze", self.valid, "--split", "dev")

    def test_non_integer_thresholds(self):
        for args in (["--many-threshold", "abc"], ["--few-threshold", "2.5"],
                     ["--many-threshold", "12x"], ["--few-threshold"]):
            with self.subTest(args=args):
                self.fails(1, "analyze", self.valid, *args)

    def test_synth_usage_errors(self):
        self.fails(1, "synth", "--classes", "10")                       # no --out
        self.fails(1, "synth", "--out", self.path("x.h5"), "--classes", "ten")

    def test_nonexistent_file(self):
        p = self.path("does_not_exist.h5")
        proc = self.fails(2, "analyze", p)
        self.assertIn("does_not_exist.h5", proc.stderr)
        self.assertEqual(proc.stdout, "")

    def test_unknown_snapshot(self):
        proc = self.fails((1, 2), "analyze", self.valid, "--snapshot", "no_such_snapshot")
        self.assertIn("no_such_snapshot", proc.stderr)
        self.assertEqual(proc.stdout, "")

    def test_absent_split(self):
        proc = self.fails(None, "analyze", self.valid, "--split", "val")   # only test exists
        self.assertRegex(proc.stderr.replace(self.valid, "<FILE>"), r"\bval\b")
        self.assertEqual(proc.stdout, "")

    def test_valid_file_text_and_json(self):
        t = self.ok("analyze", self.valid)
        self.assertTrue(t.stdout.strip())
        self.assertEqual(self.ok("analyze", self.valid, "--format", "text").stdout, t.stdout)
        j = tu.parse_json(self.ok("analyze", self.valid, "--format", "json").stdout)
        for k in ref.TOP_KEYS:
            self.assertIn(k, j)


class BlasKernel(CliBase):
    """OpenBLAS 0.3.21 falls back to its Prescott (SSE3) kernel on CPUs it does
    not know (Sapphire/Emerald Rapids); ltlab then picks the kernel for the
    CPU's instruction set, and OPENBLAS_CORETYPE, when set, always wins."""

    def info(self, **env):
        base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        base.update(env, LC_ALL="C")
        proc = subprocess.run([tu.ltlab_bin(), "info"], capture_output=True, text=True, env=base, timeout=60)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        return re.search(r"BLAS: (.*)", proc.stdout).group(1)

    def test_no_fallback_kernel_on_a_cpu_with_avx2(self):
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        blas = self.info()
        config = blas.split(" (")[0] + " "  # OpenBLAS's own line: its kernel's name
        if "avx2" in flags and "fma" in flags:
            self.assertNotIn(" Prescott ", config, blas)
            if "chosen by ltlab" in blas:
                expected = "SkylakeX" if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= set(flags) else "Haswell"
                self.assertIn(" %s " % expected, config)

    def test_openblas_coretype_is_respected(self):
        for core in ("Prescott", "Haswell"):
            blas = self.info(OPENBLAS_CORETYPE=core)
            self.assertIn(" %s " % core, blas.split(" (")[0] + " ")
            self.assertNotIn("chosen by ltlab", blas)


def have_onednn():
    return any(os.path.exists(os.path.join(d, "libdnnl.so.2"))
               for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib", "/lib"))


class Float32Products(CliBase):
    """The analysis's float32 products run in oneDNN's sgemm when Debian's
    libdnnl2 is installed and the work repays its start-up (it picks its kernel
    for the CPU, whatever OPENBLAS_CORETYPE says), in OpenBLAS otherwise or when
    LTLAB_FLOAT32_GEMM=openblas; `ltlab info` and `analyze --timings` name which."""

    def products(self, **env):
        proc = subprocess.run([tu.ltlab_bin(), "info"], capture_output=True, text=True,
                              env=dict(os.environ, LC_ALL="C", **env), timeout=60)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        return re.search(r"float32 products: (.*)", proc.stdout).group(1)

    def test_onednn_when_installed_openblas_when_asked(self):
        have_dnnl = have_onednn()
        if self.products().startswith("OpenBLAS (sanitizer build"):
            pass  # the sanitizer build never loads oneDNN (docs/reliability.md)
        elif have_dnnl:
            self.assertRegex(self.products(), r"^oneDNN \d+\.\d+\.\d+ from 50 GFLOP of work, OpenBLAS below$")
            self.assertRegex(self.products(LTLAB_FLOAT32_GEMM="onednn"),
                             r"^oneDNN \d+\.\d+\.\d+ \(LTLAB_FLOAT32_GEMM=onednn\)$")
        else:
            self.assertTrue(self.products().startswith("OpenBLAS"))
        self.assertEqual(self.products(LTLAB_FLOAT32_GEMM="openblas"), "OpenBLAS (LTLAB_FLOAT32_GEMM=openblas)")
        proc = subprocess.run([tu.ltlab_bin(), "info"], capture_output=True, text=True,
                              env=dict(os.environ, LTLAB_FLOAT32_GEMM="mkl"), timeout=60)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("LTLAB_FLOAT32_GEMM must be auto, onednn or openblas, not 'mkl'", proc.stderr)

    def test_timings_name_the_library_the_analysis_used(self):
        # A small run is far below 50 GFLOP of products: OpenBLAS, whatever is installed,
        # unless LTLAB_FLOAT32_GEMM asks otherwise.
        p = self.synth("f32-small.h5", *SYNTH_BASE)

        def used(**env):
            proc = subprocess.run([tu.ltlab_bin(), "analyze", p, "--timings"], capture_output=True, text=True,
                                  env=dict(os.environ, LC_ALL="C", LTLAB_ANALYSIS_PRECISION="float32", **env),
                                  timeout=120)
            self.assertEqual(proc.returncode, 0, tu.describe(proc))
            return re.search(r"float32 products: (.*)", proc.stdout + proc.stderr).group(1)

        if self.products().startswith("OpenBLAS (sanitizer build"):
            self.assertTrue(used(LTLAB_FLOAT32_GEMM="onednn").startswith("OpenBLAS (sanitizer build"))
        elif have_onednn():
            self.assertEqual(used(), "OpenBLAS (work below 50 GFLOP: oneDNN's kernel generation "
                                     "would cost more than it saves)")
            self.assertRegex(used(LTLAB_FLOAT32_GEMM="onednn"), r"^oneDNN \d+\.\d+\.\d+$")
        else:
            self.assertTrue(used().startswith("OpenBLAS ("))
        self.assertEqual(used(LTLAB_FLOAT32_GEMM="openblas"), "OpenBLAS (LTLAB_FLOAT32_GEMM=openblas)")

    def test_both_libraries_give_the_same_analysis(self):
        p = self.synth("f32.h5", *SYNTH_BASE)
        runs = []
        for gemm in ("onednn", "openblas"):
            env = dict(os.environ, LTLAB_ANALYSIS_PRECISION="float32", LTLAB_FLOAT32_GEMM=gemm)
            proc = subprocess.run([tu.ltlab_bin(), "analyze", p, "--format", "json"], capture_output=True,
                                  text=True, env=env, timeout=120)
            self.assertEqual(proc.returncode, 0, tu.describe(proc))
            runs.append(json.loads(proc.stdout))
        a, b = runs
        for key in ("nc1", "nc2_equiangular_means", "fdr", "cone_mean_cos", "cone_std_cos"):
            self.assertAlmostEqual(a[key], b[key], delta=1e-6 * max(1.0, abs(b[key])), msg=key)
        for key in ("accuracy", "nc4"):
            self.assertEqual(a[key], b[key], key)


class SweepKernels(CliBase):
    """The multiplicative logit-adjustment pass runs in an AVX-512, AVX2 or
    portable kernel chosen for the CPU (LTLAB_SWEEP_KERNEL picks one); every
    kernel gives the same analysis, byte for byte."""

    def test_every_kernel_the_cpu_has_gives_the_same_json(self):
        with open("/proc/cpuinfo") as f:
            flags = set(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
        p = self.synth("kernels.h5", "--classes", "60", "--dim", "32", "--imbalance", "100", "--seed", "8")
        outputs = {}
        for kernel in ["", "portable"] + [k for k, flag in (("avx2", "avx2"), ("avx512", "avx512f")) if flag in flags]:
            for precision in ("float32", "float64"):
                env = dict(os.environ, LTLAB_SWEEP_KERNEL=kernel, LTLAB_ANALYSIS_PRECISION=precision)
                proc = subprocess.run([tu.ltlab_bin(), "analyze", p, "--format", "json"], capture_output=True,
                                      text=True, env=env, timeout=120)
                self.assertEqual(proc.returncode, 0, tu.describe(proc))
                outputs.setdefault(precision, {})[kernel] = proc.stdout
        for precision, by_kernel in outputs.items():
            for kernel, text in by_kernel.items():
                self.assertEqual(text, by_kernel[""], "%s kernel %r" % (precision, kernel))
        proc = subprocess.run([tu.ltlab_bin(), "analyze", p], capture_output=True, text=True,
                              env=dict(os.environ, LTLAB_SWEEP_KERNEL="sse9"), timeout=60)
        self.assertEqual(proc.returncode, 1, tu.describe(proc))
        self.assertIn("LTLAB_SWEEP_KERNEL must be portable, avx2 or avx512, not 'sse9'", proc.stderr)


class Synth(CliBase):

    def test_synth_then_analyze_json(self):
        p = self.synth("s3.h5", *SYNTH_BASE)
        j = tu.analyze_json(self, p)
        for k in ref.TOP_KEYS:
            self.assertIn(k, j)
        for k in ref.PER_CLASS_KEYS:
            self.assertIn(k, j["per_class"])
            self.assertEqual(len(j["per_class"][k]), 10, k)
        for mode in ("additive", "multiplicative"):
            for k in ref.SWEEP_KEYS:
                self.assertIn(k, j["la_sweep"][mode])
        self.assertEqual(len(j["la_sweep"]["tau"]), 31)
        self.assertEqual((j["num_classes"], j["feature_dim"]), (10, 16))
        self.assertEqual(j["split"], "test")
        # the file follows run-format.md
        with h5py.File(p, "r") as f:
            fmt = f.attrs["format"]
            self.assertEqual(fmt.decode() if isinstance(fmt, bytes) else fmt, "ltlab-run")
            self.assertEqual(int(f.attrs["format_version"]), 1)
            n = f["classes/train_counts"][...]
            self.assertEqual(n.shape, (10,))
            self.assertTrue(np.issubdtype(n.dtype, np.integer))
            self.assertTrue(50 <= n.max() / max(n.min(), 1) <= 200, "imbalance 100: %s" % n)
            self.assertGreaterEqual(len(f["snapshots"]), 1)
            for name, g in f["snapshots"].items():
                self.assertRegex(name, r"^epoch_\d{4}$")
                self.assertIn("epoch", g.attrs)
                self.assertEqual(g["classifier_weight"].shape, (10, 16))
                self.assertEqual(g["test/features"].dtype, np.float32)
        self.assertEqual(j["per_class"]["train_count"], [int(v) for v in n])

    def test_text_report(self):
        p = self.synth("s3_text.h5", *SYNTH_BASE)
        out = self.ok("analyze", p, "--format", "text").stdout
        for word in ("NC1", "FDR"):
            self.assertRegex(out, re.compile(word, re.I))

    def test_same_seed_same_json(self):
        p = self.path("seeded.h5")
        outs = []
        for seed in ("3", "3", "4"):
            args = SYNTH_BASE[:-1] + [seed]
            self.ok("synth", "--out", p, *args)
            outs.append(self.ok("analyze", p, "--format", "json").stdout)
        self.assertEqual(outs[0], outs[1], "same seed, different analysis")
        self.assertNotEqual(outs[0], outs[2], "different seed, same analysis")

    def test_snapshots_default_is_last_epoch(self):
        p = self.synth("s_snap3.h5", *SYNTH_BASE, "--snapshots", "3", "--max-per-class", "60")
        with h5py.File(p, "r") as f:
            self.assertEqual(len(f["snapshots"]), 3)
            epochs = {name: int(g.attrs["epoch"]) for name, g in f["snapshots"].items()}
        self.assertEqual(len(set(epochs.values())), 3, epochs)
        last = max(epochs, key=epochs.get)
        j = tu.analyze_json(self, p)
        self.assertEqual((j["snapshot"], j["epoch"]), (last, epochs[last]))
        for name in epochs:
            with self.subTest(snapshot=name):
                e, g = tu.assert_matches_reference(self, p, "--snapshot", name)
                self.assertEqual(g["epoch"], epochs[name])

    def test_reference_agrees_on_synth_files(self):
        variants = {
            "default": [],
            "logits": ["--logits"],
            "float64": ["--float64"],
            "sizes": ["--max-per-class", "80", "--test-per-class", "7", "--val-per-class", "4",
                      "--noise", "2.0", "--logits", "--float64"],
        }
        for key, extra in variants.items():
            with self.subTest(variant=key):
                p = self.synth("synth_%s.h5" % key, *SYNTH_BASE, *extra)
                with h5py.File(p, "r") as f:
                    snap = ref.snapshot_order(f)[-1]
                    g = f["snapshots"][snap]
                    splits = [s for s in ("train", "val", "test") if s in g]
                    if "--logits" in extra:
                        for s in splits:
                            self.assertIn("logits", g[s], "--logits: %s/logits" % s)
                    dt = np.float64 if "--float64" in extra else np.float32
                    self.assertEqual(g["test/features"].dtype, dt)
                    if key == "sizes":
                        self.assertEqual(g["test/labels"].shape, (70,))
                        self.assertIn("val", g)
                        self.assertEqual(g["val/labels"].shape, (40,))
                        n = f["classes/train_counts"][...]
                        self.assertLessEqual(int(n.max()), 80)
                        if "train" in g:
                            np.testing.assert_array_equal(
                                np.bincount(g["train/labels"][...], minlength=10), n)
                for s in splits:
                    tu.assert_matches_reference(self, p, "--split", s, label="synth " + key)
                tu.assert_matches_reference(self, p, "--many-threshold", "50", "--few-threshold", "10",
                                            label="synth " + key)

    def test_noise_controls_collapse(self):
        lo = tu.analyze_json(self, self.synth("noise_lo.h5", *SYNTH_BASE, "--noise", "0.05"))
        hi = tu.analyze_json(self, self.synth("noise_hi.h5", *SYNTH_BASE, "--noise", "3.0"))
        self.assertLess(lo["nc1"], hi["nc1"])


if __name__ == "__main__":
    unittest.main()
