"""Verified checkpoints and a resume that cannot destroy (issue 12, item 3;
docs/reliability.md): a damaged, foreign or stale RUN.h5.ckpt is refused
before the run file changes; every kill window leaves a run that resumes; a
run written before checkpoints carried a checksum still resumes, with a
warning. Tiny runs on the synthetic Gaussian-mixture dataset."""

import os
import shutil
import subprocess
import tempfile
import unittest

import h5py

from ltlab_testutil import describe, ltlab_bin, run_ltlab

FAST = ["--dataset", "gaussian-lt", "--gaussian-dim", "8", "--gaussian-per-class", "120", "--imbalance", "20",
        "--lr", "0.05"]
MAGIC = b"LTLAB-CHECKPOINT 1\n"


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def epochs_of(path):
    with h5py.File(path, "r") as f:
        return len(f["history/epoch"]) if "history/epoch" in f else 0


class ResumeSafety(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def train(self, name, *args, recipe="ce", epochs=2, env=None):
        out = self.path(name)
        argv = ["train", "--recipe", recipe, "--epochs", str(epochs), *FAST, *args, "--out", out]
        if env is None:
            return out, run_ltlab(*argv, timeout=300)
        # LTLAB_TEST_STOP_AFTER (docs/reliability.md) ends the process where a kill would.
        return out, subprocess.run([ltlab_bin(), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   timeout=300, env=dict(env, LC_ALL="C"))

    def trained(self, name, *args, **kw):
        out, p = self.train(name, *args, **kw)
        self.assertEqual(p.returncode, 0, describe(p))
        return out

    def assert_refused(self, run, words, *extra):
        before, ckpt = read(run), run + ".ckpt"
        p = run_ltlab("train", "--resume", run, *extra, timeout=300)
        self.assertEqual(p.returncode, 2, describe(p))
        self.assertIn(ckpt, p.stderr)
        self.assertIn(words, p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        self.assertEqual(read(run), before, "the run file changed")  # byte-identical

    def test_checkpoint_carries_checksum_and_the_run_records_it(self):
        run = self.trained("a.h5")
        data = read(run + ".ckpt")
        self.assertTrue(data.startswith(MAGIC), data[:40])
        header = dict(line.split(" ", 1) for line in data[len(MAGIC):data.index(b"\n\n")].decode().splitlines())
        with h5py.File(run, "r") as f:
            self.assertEqual(f.attrs["run_id"], header["run_id"])
            self.assertEqual(int(f.attrs["checkpoint_epoch"]), 2)
            self.assertEqual(int(header["epoch"]), 2)
            self.assertEqual(f.attrs["checkpoint_sha256"], header["sha256"])

    def test_a_flipped_byte_is_refused_and_the_run_is_unchanged(self):
        run = self.trained("a.h5")
        data = bytearray(read(run + ".ckpt"))
        for at in (len(data) // 2, len(data) - 30, 5):  # the archive, its end, the header
            damaged = bytearray(data)
            damaged[at] ^= 0x01
            write(run + ".ckpt", bytes(damaged))
            self.assert_refused(run, "damaged", "--epochs", "3")
            self.assert_refused(run, "damaged")

    def test_a_checkpoint_of_another_run_is_refused_as_foreign(self):
        run = self.trained("a.h5")
        other = self.trained("b.h5", "--seed", "7")  # the same network
        shutil.copyfile(other + ".ckpt", run + ".ckpt")
        self.assert_refused(run, "belongs to another run", "--epochs", "3")

    def test_an_earlier_checkpoint_of_the_same_run_is_refused(self):
        # Only the checkpoint of the last finished epoch, or of the one before
        # (a kill between the epoch's record and its checkpoint), is accepted.
        run = self.trained("a.h5", epochs=1)
        old = read(run + ".ckpt")
        p = run_ltlab("train", "--resume", run, "--epochs", "3", timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        write(run + ".ckpt", old)
        self.assert_refused(run, "epoch 1", "--epochs", "4")

    def test_killed_after_the_run_file_is_created_it_resumes(self):
        env = dict(os.environ, LTLAB_TEST_STOP_AFTER="created")
        run, p = self.train("a.h5", env=env)
        self.assertEqual(p.returncode, 86, describe(p))  # stopped there
        self.assertEqual(epochs_of(run), 0)
        self.assertFalse(os.path.exists(run + ".ckpt"))
        p = run_ltlab("train", "--resume", run, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("starting the run", p.stderr)
        self.assertEqual(epochs_of(run), 2)

    def test_killed_between_the_first_record_and_its_checkpoint_it_resumes(self):
        env = dict(os.environ, LTLAB_TEST_STOP_AFTER="record")
        run, p = self.train("a.h5", env=env)
        self.assertEqual(p.returncode, 86, describe(p))
        self.assertEqual(epochs_of(run), 1)  # epoch 1 recorded, the checkpoint is still epoch 0's
        p = run_ltlab("train", "--resume", run, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("dropping 1 epoch", p.stderr)
        self.assertEqual(epochs_of(run), 2)

    def test_a_run_from_before_checksums_still_resumes_with_a_warning(self):
        run = self.trained("a.h5", epochs=1)
        data = read(run + ".ckpt")
        write(run + ".ckpt", data[data.index(b"\n\n") + 2:])  # libtorch's archive alone, as ltlab wrote it before
        with h5py.File(run, "a") as f:
            for key in ("run_id", "checkpoint_epoch", "checkpoint_sha256", "checkpoint_previous_epoch",
                        "checkpoint_previous_sha256"):
                del f.attrs[key]
        p = run_ltlab("train", "--resume", run, "--epochs", "2", timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("cannot be verified", p.stderr)
        self.assertEqual(epochs_of(run), 2)

    def from_run(self, base, name, stop):
        out = self.path(name)
        argv = ["train", "--recipe", "wb", "--from", base, "--stage2-epochs", "1", "--out", out]
        env = dict(os.environ, LC_ALL="C")
        if stop:
            env["LTLAB_TEST_STOP_AFTER"] = stop
        return out, subprocess.run([ltlab_bin(), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   timeout=300, env=env)

    def test_stage2_from_killed_after_its_run_file_is_created_it_resumes(self):
        # The --from run records the source's epochs from the start: its checkpoint
        # is in place before the run file, so a kill leaves a run --resume continues.
        base = self.trained("base.h5", recipe="ce-wd", epochs=1)
        out, p = self.from_run(base, "from.h5", "created")
        self.assertEqual(p.returncode, 86, describe(p))
        self.assertTrue(os.path.exists(out + ".ckpt"))
        self.assertEqual(epochs_of(out), 1)
        p = run_ltlab("train", "--resume", out, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(epochs_of(out), 2)

    def test_stage2_from_killed_before_its_run_file_leaves_nothing_in_the_way(self):
        base = self.trained("base.h5", recipe="ce-wd", epochs=1)
        out, p = self.from_run(base, "from.h5", "from-checkpoint")
        self.assertEqual(p.returncode, 86, describe(p))
        self.assertFalse(os.path.exists(out))      # no run file that cannot be resumed
        out, p = self.from_run(base, "from.h5", None)   # the same command again, no --overwrite
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(epochs_of(out), 2)
        p = run_ltlab("train", "--resume", out, timeout=300)   # finished: nothing left to do, still verified
        self.assertEqual(p.returncode, 0, describe(p))

    def test_stage2_from_a_damaged_checkpoint_is_refused(self):
        run = self.trained("wb.h5", "--stage2-epochs", "1", recipe="wb", epochs=1)
        data = bytearray(read(run + ".ckpt"))
        data[len(data) // 2] ^= 0x10
        write(run + ".ckpt", bytes(data))
        before, out = read(run), self.path("from.h5")
        p = run_ltlab("train", "--recipe", "wb", "--from", run, "--out", out, timeout=300)
        self.assertEqual(p.returncode, 2, describe(p))
        self.assertIn(run + ".ckpt", p.stderr)
        self.assertIn("damaged", p.stderr)
        self.assertFalse(os.path.exists(out))
        self.assertEqual(read(run), before)


if __name__ == "__main__":
    unittest.main()
