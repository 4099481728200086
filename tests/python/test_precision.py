"""The float32 tiles of `ltlab analyze` against the float64 reference.

The engine's products run as float32 tiles accumulated in float64 for large
float32 splits (docs/analysis.md, "Precision"); LTLAB_ANALYSIS_PRECISION forces
either path. Here every reference fixture runs forced to float32, and so do
near-collapsed synthetic runs (within-class spread 1e-3 and 1e-5 of the first
epoch's), where centring and the cone shift are what keep float32 accurate.

Run: LTLAB_BIN=build/bin/ltlab /usr/bin/python3 -m unittest -v tests/python/test_precision.py
"""

import os
import subprocess
import tempfile
import unittest

import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltlab_testutil as tu  # noqa: E402
import test_reference  # noqa: E402


class Float32Tiles:
    """Runs every test of the class it is mixed into with float32 products forced."""

    def setUp(self):
        super().setUp()
        self._saved = os.environ.get("LTLAB_ANALYSIS_PRECISION")
        os.environ["LTLAB_ANALYSIS_PRECISION"] = "float32"

    def tearDown(self):
        if self._saved is None:
            os.environ.pop("LTLAB_ANALYSIS_PRECISION", None)
        else:
            os.environ["LTLAB_ANALYSIS_PRECISION"] = self._saved
        super().tearDown()


class ReferenceFixturesInFloat32(Float32Tiles, test_reference.CompareWithLtlab):
    """The fixtures of test_reference, float32 tiles forced."""


class NearCollapsedSyntheticRuns(Float32Tiles, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ltlab_precision_")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def synth(self, name, *flags):
        path = os.path.join(self.tmp.name, name + ".h5")
        subprocess.run([tu.ltlab_bin(), "synth", "--out", path, "--classes", "30", "--dim", "256",
                        "--imbalance", "50", "--train-total", "3000", "--test-per-class", "0",
                        "--no-history", *flags], check=True, stdout=subprocess.DEVNULL)
        return path

    def test_collapsed_features(self):
        for name, flags in (("collapse_1e-3", ("--collapse", "0.999", "--seed", "4")),
                            ("collapse_1e-5", ("--collapse", "0.99999", "--noise", "0.5", "--seed", "5")),
                            ("spread", ("--noise", "3", "--seed", "6"))):
            with self.subTest(run=name):
                expected, got = tu.assert_matches_reference(self, self.synth(name, *flags), label=name)
                self.assertLess(got["nc1"], 1e-3 if name != "spread" else 1e9)


if __name__ == "__main__":
    unittest.main()
