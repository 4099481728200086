"""tools/reproduce.py end to end at a tiny budget (1 epoch, 200 layer inputs):
it trains, analyses, runs the layer analysis and the cone lab, writes the
figures, and its document holds the recipe table, a verdict for each claim,
numbers equal to `ltlab analyze` of its run files, and the figures it names."""

import json
import os
import re
import subprocess
import tempfile
import unittest

from ltlab_testutil import describe, ltlab_bin, run_ltlab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Reproduce(unittest.TestCase):
    def test_tiny_budget_document(self):
        with tempfile.TemporaryDirectory() as tmp:
            work, doc = os.path.join(tmp, "work"), os.path.join(tmp, "docs", "reproduction.md")
            p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tools", "reproduce.py"), "--ltlab", ltlab_bin(),
                                "--epochs", "1", "--stage2-epochs", "1", "--layer-samples", "200",
                                "--workdir", work, "--out", doc], capture_output=True, text=True, timeout=1500)
            self.assertEqual(p.returncode, 0, describe(p))
            text = open(doc).read()
            for heading in ("## Accuracy per recipe", "## The paper's mechanisms", "## Through the layers",
                            "## Figures", "## CIFAR-10-LT and CIFAR-100-LT"):
                self.assertIn(heading, text)
            claims = re.findall(r"^- \*\*.*\*\* — (agrees|does not agree) at this budget: ", text, re.M)
            self.assertEqual(len(claims), 10, text)
            # The table's ce row is ltlab analyze's number.
            a = json.loads(run_ltlab("analyze", os.path.join(work, "ce.h5"), "--format", "json").stdout)
            row = next(l for l in text.splitlines() if l.startswith("| ce (cross-entropy) |"))
            self.assertEqual(row.split("|")[3].strip(), "%.1f" % (100 * a["accuracy"]))
            # Every figure it shows exists beside it.
            for path in re.findall(r"\]\((reproduction/[^)]+\.png)\)", text):
                self.assertTrue(os.path.getsize(os.path.join(tmp, "docs", path)) > 1000, path)
            self.assertGreaterEqual(len(re.findall(r"\]\(reproduction/", text)), 8)
            # The layer results were stored in the runs.
            import h5py
            with h5py.File(os.path.join(work, "ce-wd.h5"), "r") as f:
                self.assertGreaterEqual(len(f["layers"]), 3)


if __name__ == "__main__":
    unittest.main()
