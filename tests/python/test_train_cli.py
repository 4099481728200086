"""`ltlab train`, `ltlab recipes` and `ltlab benchmark-training` end to end,
at a tiny budget on the synthetic Gaussian-mixture dataset."""

import json
import math
import os
import random
import re
import signal
import subprocess
import tempfile
import time
import unittest

import h5py

from ltlab_testutil import analyze_json, describe, ltlab_bin, run_ltlab

FAST = ["--dataset", "gaussian-lt", "--gaussian-dim", "8", "--gaussian-per-class", "120", "--imbalance", "20",
        "--lr", "0.05"]


class TrainCli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_recipes_lists_every_recipe_with_defaults(self):
        p = run_ltlab("recipes")
        self.assertEqual(p.returncode, 0, describe(p))
        for name in ("ce", "ce-wd", "wb", "wd-fr-etf", "la"):
            self.assertIn(name + "\n", p.stdout)
        p = run_ltlab("recipes", "--json")
        configs = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([c["recipe"] for c in configs], ["ce", "ce-wd", "wb", "wd-fr-etf", "la"])
        self.assertEqual(configs[0]["weight_decay"], 0.0)
        self.assertEqual(configs[1]["weight_decay"], 0.005)

    def test_usage_errors(self):
        out = self.path("x.h5")
        cases = [
            ("train", "--recipe", "ce"),                                   # no --out
            ("train", "--out", out),                                       # no recipe
            ("train", "--recipe", "adam", "--out", out),                   # unknown recipe
            ("train", "--recipe", "ce", "--out", out, "--bogus", "1"),     # unknown option
            ("train", "--recipe", "ce", "--out", out, "--epochs", "many"), # wrong type
            ("train", "--recipe", "la", "--out", out),                     # la without --from
            ("train", "--recipe", "ce", "--out", out, "--device", "tpu"),  # unknown device
            ("benchmark-training", "--device", "tpu"),
            ("benchmark-training", "--model", "vgg"),
        ]
        for args in cases:
            p = run_ltlab(*args)
            self.assertEqual(p.returncode, 1, f"{args}: {describe(p)}")
            self.assertTrue(p.stderr.startswith(f"ltlab {args[0]}: "), f"{args}: {p.stderr!r}")
        self.assertFalse(os.path.exists(out))

    def test_train_writes_a_run_that_analyze_reads_and_refuses_to_overwrite(self):
        out = self.path("ce.h5")
        p = run_ltlab("train", "--recipe", "ce", "--epochs", "2", *FAST, "--out", out, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("test accuracy (balanced)", p.stdout)
        self.assertIn("epoch 2/2", p.stderr)  # plain progress lines when stderr is not a terminal
        with h5py.File(out, "r") as f:
            self.assertEqual(list(f["history/epoch"][:]), [1, 2])
            self.assertIn("final", f["snapshots"])
            self.assertEqual(json.loads(f.attrs["config"])["recipe"], "ce")
        result = analyze_json(self, out)
        self.assertEqual(result["snapshot"], "final")
        p = run_ltlab("train", "--recipe", "ce", "--epochs", "1", *FAST, "--out", out)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--overwrite", p.stderr)

    def test_config_file_and_its_errors(self):
        config = self.path("config.json")
        with open(config, "w") as f:
            json.dump({"recipe": "ce-wd", "epochs": 1, "dataset": "gaussian-lt", "gaussian_dim": 8,
                       "gaussian_per_class": 100}, f)
        out = self.path("cfg.h5")
        p = run_ltlab("train", "--config", config, "--out", out, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        with h5py.File(out, "r") as f:
            stored = json.loads(f.attrs["config"])
        self.assertEqual(stored["recipe"], "ce-wd")
        self.assertEqual(stored["weight_decay"], 0.005)
        with open(config, "w") as f:
            f.write("{not json")
        p = run_ltlab("train", "--config", config, "--out", self.path("bad.h5"))
        self.assertEqual(p.returncode, 2, describe(p))
        self.assertIn("config.json", p.stderr)
        with open(config, "w") as f:
            json.dump({"recipe": "ce", "epoch": 3}, f)
        p = run_ltlab("train", "--config", config, "--out", self.path("bad.h5"))
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("'epoch'", p.stderr)

    def test_la_recipe_adjusts_a_finished_run(self):
        base = self.path("base.h5")
        self.assertEqual(run_ltlab("train", "--recipe", "ce", "--epochs", "2", *FAST, "--out", base,
                                   timeout=300).returncode, 0)
        out = self.path("la.h5")
        p = run_ltlab("train", "--recipe", "la", "--from", base, "--tau", "1.0", "--out", out)
        self.assertEqual(p.returncode, 0, describe(p))
        before = analyze_json(self, base)
        after = analyze_json(self, out)
        self.assertEqual(after["snapshot"], "final_la")
        # Additive adjustment by tau = 1 gives the sweep's accuracy at tau = 1.
        self.assertAlmostEqual(after["accuracy"], before["la_sweep"]["additive"]["accuracy"][10], places=9)

        # Adjusting the adjusted run again starts from the last snapshot that is not
        # itself adjusted (wd-fr-etf ends on final_la): never final_la_la.
        again = self.path("la2.h5")
        p = run_ltlab("train", "--recipe", "la", "--from", out, "--tau", "1.0", "--out", again)
        self.assertEqual(p.returncode, 0, describe(p))
        with h5py.File(again, "r") as f:
            self.assertNotIn("final_la_la", f["snapshots"])
            self.assertIn("final_la", f["snapshots"])
        self.assertEqual(analyze_json(self, again)["accuracy"], after["accuracy"])

    def test_divergence_exits_3_with_a_message(self):
        p = run_ltlab("train", "--recipe", "ce", "--epochs", "2", *FAST[:-2], "--lr", "1e6",
                      "--out", self.path("nan.h5"), timeout=300)
        self.assertEqual(p.returncode, 3, describe(p))
        self.assertIn("diverged", p.stderr)

    def test_interrupt_keeps_finished_epochs(self):
        out = self.path("int.h5")
        proc = subprocess.Popen([ltlab_bin(), "train", "--recipe", "ce", "--epochs", "100000", *FAST, "--out", out],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in proc.stderr:
            if line.startswith("epoch 2/"):
                break
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 130)
        self.assertIn("interrupted", stdout)
        with h5py.File(out, "r") as f:
            self.assertGreaterEqual(len(f["history/epoch"]), 2)

    def assert_complete_run(self, out):
        """Every finished epoch is there and the file is one that analyze accepts."""
        with h5py.File(out, "r") as f:
            lengths = {name: len(ds) for name, ds in f["history"].items()}
            self.assertEqual(len(set(lengths.values())), 1, lengths)
            epochs = list(f["history/epoch"][()])
            self.assertEqual(epochs, list(range(1, len(epochs) + 1)))
            for name, snap in f["snapshots"].items():
                self.assertIn("classifier_weight", snap, name)
                self.assertLessEqual(snap.attrs["epoch"], len(epochs), name)
        p = run_ltlab("analyze", out, "--format", "json")
        self.assertEqual(p.returncode, 0, describe(p))
        return len(epochs)

    def test_kill_at_any_moment_leaves_a_complete_file_and_resume_continues(self):
        # Epochs of this tiny run take milliseconds, most of them spent writing
        # the run file (a snapshot every epoch): random kills land mid-write.
        out, log = self.path("killed.h5"), self.path("train.log")
        rng = random.Random(11)
        epochs_before = 0
        for trial in range(8):
            args = ["--resume", out] if trial else ["--recipe", "ce", "--epochs", "100000", *FAST,
                                                    "--snapshot-every", "1", "--out", out]
            with open(log, "w") as err:
                proc = subprocess.Popen([ltlab_bin(), "train", *args], stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 120
            def text():
                with open(log) as f:
                    return f.read()
            # Kill after this process finished an epoch, at a random moment of the next ones.
            while (not re.search(r"^epoch \d+/", text(), re.M) and time.monotonic() < deadline
                   and proc.poll() is None):
                time.sleep(0.02)
            self.assertIsNone(proc.poll(), text())
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            epochs = self.assert_complete_run(out)
            if os.environ.get("LTLAB_TEST_VERBOSE"):
                print(f"trial {trial}: {epochs} epochs; log: {text()[-200:]!r}")
            # A kill between the epoch's record and its checkpoint loses that epoch at most.
            self.assertGreaterEqual(epochs, epochs_before - 1)
            epochs_before = epochs
        self.assertGreater(epochs_before, 1)

    def test_resume_with_more_epochs_extends_the_run_and_its_schedule(self):
        out = self.path("extend.h5")
        p = run_ltlab("train", "--recipe", "ce", "--epochs", "2", *FAST, "--out", out, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        p = run_ltlab("train", "--resume", out, "--epochs", "3", timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("extending", p.stderr)
        with h5py.File(out, "r") as f:
            self.assertEqual(list(f["history/epoch"][()]), [1, 2, 3])
            lr = list(f["history/lr"][()])
            config = json.loads(f.attrs["config"])
            snaps = {n: int(s.attrs["epoch"]) for n, s in f["snapshots"].items()}
        # Epochs 1-2 kept the 2-epoch schedule; epoch 3 (e = 2) is on the 3-epoch one.
        base = 0.05
        self.assertAlmostEqual(lr[0], base, places=9)
        self.assertAlmostEqual(lr[1], base * 0.5 * (1 + math.cos(math.pi * 1 / 2)), places=9)
        self.assertAlmostEqual(lr[2], base * 0.5 * (1 + math.cos(math.pi * 2 / 3)), places=9)
        self.assertEqual(config["epochs"], 3)
        self.assertEqual(config["extended"], [{"after_epoch": 2, "epochs": [2, 3]}])
        self.assertEqual(snaps["final"], 3)       # the new end
        self.assertEqual(snaps["epoch_0002"], 2)  # the old end, renamed
        # A second extension, then refusals: shrinking, stage 2 of a one-stage run.
        self.assertEqual(run_ltlab("train", "--resume", out, "--epochs", "4", timeout=300).returncode, 0)
        with h5py.File(out, "r") as f:
            self.assertEqual(len(json.loads(f.attrs["config"])["extended"]), 2)
            self.assertEqual(len(f["history/epoch"]), 4)
        for args, text in ((["--epochs", "2"], "never cuts"), (["--stage2-epochs", "5"], "only the wb recipe"),
                           (["--lr", "0.1"], "only --threads may change")):
            p = run_ltlab("train", "--resume", out, *args)
            self.assertEqual(p.returncode, 1, describe(p))
            self.assertIn(text, p.stderr)
        # wd-fr-etf: the logit adjustment is made again at the new end.
        etf = self.path("etf.h5")
        self.assertEqual(run_ltlab("train", "--recipe", "wd-fr-etf", "--epochs", "1", *FAST, "--out", etf,
                                   timeout=300).returncode, 0)
        p = run_ltlab("train", "--resume", etf, "--epochs", "2", timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        with h5py.File(etf, "r") as f:
            self.assertEqual(int(f["snapshots/final_la"].attrs["epoch"]), 2)
            self.assertEqual(int(f["snapshots/final"].attrs["epoch"]), 2)
            self.assertNotIn("epoch_0001_la", f["snapshots"])
        # wb: stage 2 grows; stage 1 cannot once stage 2 has begun.
        wb = self.path("wb.h5")
        self.assertEqual(run_ltlab("train", "--recipe", "wb", "--epochs", "1", "--stage2-epochs", "1", *FAST,
                                   "--out", wb, timeout=300).returncode, 0)
        p = run_ltlab("train", "--resume", wb, "--epochs", "2")
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("stage 2 has begun", p.stderr)
        p = run_ltlab("train", "--resume", wb, "--stage2-epochs", "2", timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        with h5py.File(wb, "r") as f:
            self.assertEqual(list(f["history/stage"][()]), [1, 2, 2])
            self.assertEqual(int(f["snapshots/stage2_final"].attrs["epoch"]), 3)

    def test_help_gives_each_option_its_meaning(self):
        p = run_ltlab("train", "--help")
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("cifar100-lt", p.stdout)           # --dataset lists the datasets
        self.assertIn("resnext50_32x4d", p.stdout)       # --model lists the models
        self.assertIn("or la", p.stdout)                 # --recipe lists la
        self.assertIn("(default 0.01)", p.stdout)        # --lr its default
        self.assertTrue(all(len(line) <= 100 for line in p.stdout.splitlines()), p.stdout)

    def test_benchmark_training_prints_a_rate(self):
        p = run_ltlab("benchmark-training", "--model", "mlp", "--steps", "3", "--batch-size", "16")
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertGreater(float(p.stdout.split(":")[1]), 0)


if __name__ == "__main__":
    unittest.main()
