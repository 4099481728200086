"""tools/python/ltlab_export.py: the PyTorch exporter of run files.

* alone: the file it writes is read by `ltlab analyze`, whose numbers equal
  the numpy reference's on the same features (taken from the tensors, not
  from the file) and on the file;
* several epochs: several snapshots, a /history of the right length that
  ltlab reads (the training-curves CSV of `ltlab figures`);
* a real 2-process gloo group (loopback only; DDP training, DistributedSampler
  with padding, unequal shards): the file equals the one a single process
  writes, dataset for dataset, byte for byte;
* atomicity: a crash injected at each stage of a write, and a SIGKILL in the
  middle of one, leave the previous file intact; a reader polling the file
  while epochs are appended always finds a complete, valid file;
* bad inputs: clear errors, the file untouched.

The DDP and kill cases run this file as a script in subprocesses
(`python3 test_exporter.py worker ...`), with timeouts.
"""

import csv
import hashlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.normpath(os.path.join(HERE, "..", "..", "tools", "python"))
for p in (HERE, TOOLS):
    if p not in sys.path:
        sys.path.insert(0, p)

import h5py  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset  # noqa: E402

import ltlab_export as lx  # noqa: E402
import ltlab_reference as ref  # noqa: E402
from ltlab_testutil import (PYTHON, analyze_json, assert_matches_reference,  # noqa: E402
                            compare_report, describe, have_ui, lt_counts, run_ltlab)

C, D_IN, D = 6, 12, 16
MANY, FEW = 40, 10


# --------------------------------------------------------------------------
# a small model and a small long-tailed data set, the same in every process

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(D_IN, 24), torch.nn.ReLU(),
                                        torch.nn.Linear(24, D), torch.nn.ReLU())
        self.fc = torch.nn.Linear(D, C)

    def forward(self, x):
        return self.fc(self.body(x))


class Indexed(Dataset):
    """(x, y, index) samples: the index travels with the batch."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i], i


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    counts = lt_counts(C, 60, 10)                      # 60 ... 6
    means = 2.0 * rng.standard_normal((C, D_IN))

    def split(per_class):
        y = np.repeat(np.arange(C), per_class)
        y = y[rng.permutation(y.size)]
        x = means[y] + rng.standard_normal((y.size, D_IN))
        return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))

    train = split(counts)
    val = split(np.full(C, 12) + np.arange(C) % 2)     # 75: odd, unequal shards
    test = split(np.full(C, 25) + (np.arange(C) == 0))  # 151: odd, DistributedSampler pads
    return counts, train, val, test


def train_step(model, opt, x, y):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return float(loss.detach())


def export_run(out, rank=0, world=1, epochs=3, batch_size=1):
    """Trains `epochs` steps and exports one snapshot per epoch. With world > 1
    (a process group already initialised) the model is wrapped in DDP, every
    rank trains on the same full batch (so the weights equal the
    single-process ones exactly) and evaluates its shard: test through a
    DistributedSampler (padded), train through a shuffling DistributedSampler,
    val through an explicit unequal split (rank r takes r, r+W, ...)."""
    torch.manual_seed(0)
    counts, (xtr, ytr), (xva, yva), (xte, yte) = make_data()
    net = Net()
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    train_ds = torch.utils.data.TensorDataset(xtr, ytr)
    test_ds = torch.utils.data.TensorDataset(xte, yte)
    if world > 1:
        train_sampler = DistributedSampler(train_ds, world, rank, shuffle=True, seed=3)
        train_loader = DataLoader(train_ds, batch_size=batch_size, sampler=train_sampler)
        test_loader = DataLoader(test_ds, batch_size=batch_size,
                                 sampler=DistributedSampler(test_ds, world, rank, shuffle=False))
        val_loader = DataLoader(Subset(Indexed(xva, yva), range(rank, len(yva), world)),
                                batch_size=batch_size)
    else:
        train_sampler = None
        train_loader = DataLoader(Indexed(xtr, ytr), batch_size=batch_size, shuffle=True,
                                  generator=torch.Generator().manual_seed(5))
        test_loader = DataLoader(test_ds, batch_size=batch_size)
        val_loader = DataLoader(Indexed(xva, yva), batch_size=batch_size)
    run = lx.RunExporter(out, ["class %d" % c for c in range(C - 1)] + ["Å-ß"], counts,
                         config={"lr": 0.5, "epochs": epochs}, many_threshold=MANY, few_threshold=FEW)
    for epoch in range(1, epochs + 1):
        model.train()
        loss = train_step(model, opt, xtr, ytr)
        if train_sampler is not None:
            train_sampler.set_epoch(epoch)
        splits = {"train": lx.extract(model, train_loader),
                  "val": lx.extract(model, val_loader),
                  "test": lx.extract(model, test_loader)}
        run.export_snapshot("epoch_%04d" % epoch, model, splits, epoch=epoch, stage=1,
                            label="test run", history_row={"train_loss": loss, "lr": 0.5})
    return run


def worker_main(argv):
    """python3 test_exporter.py worker RANK WORLD PORT OUTDIR
       python3 test_exporter.py kill-at STAGE FILE"""
    torch.set_num_threads(1)
    if argv[0] == "worker":
        rank, world, port, outdir = int(argv[1]), int(argv[2]), int(argv[3]), argv[4]
        if world > 1:
            torch.distributed.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port,
                                                 rank=rank, world_size=world)
        export_run(os.path.join(outdir, "exact.h5"), rank, world, batch_size=1)
        export_run(os.path.join(outdir, "batched.h5"), rank, world, batch_size=7)
        if world > 1:
            torch.distributed.destroy_process_group()
        return 0
    if argv[0] == "worker-mismatch":
        # rank 1 passes features of another width, then (second call) a NaN
        rank, world, port, outdir = int(argv[1]), int(argv[2]), int(argv[3]), argv[4]
        torch.distributed.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port,
                                             rank=rank, world_size=world)
        path = os.path.join(outdir, "bad.h5")
        run = lx.RunExporter(path, None, make_data()[0])
        W = np.ones((C, D), np.float32)
        for width, bad in ((D + rank, False), (D, rank == 1)):
            H = np.ones((4, width), np.float32)
            if bad:
                H[0, 3] = np.nan            # sample 1: not a duplicate
            try:
                run.export_snapshot("s", W, {"test": (H, [0, 1, 2, 3], None, [rank, rank + 2, 4, 5])})
                print("rank %d: exported" % rank)
            except (ValueError, RuntimeError) as e:
                print("rank %d: %s: %s" % (rank, type(e).__name__, e))
        print("rank %d: file exists: %s" % (rank, os.path.exists(path)))
        torch.distributed.destroy_process_group()
        return 0
    if argv[0] == "kill-at":
        stage, path = argv[1], argv[2]

        def hook(s, partial):
            if s == stage:
                os.kill(os.getpid(), signal.SIGKILL)
        lx._test_hook = hook
        append_epoch(path, 99)
        return 1
    raise SystemExit("unknown worker command %r" % argv[0])


# --------------------------------------------------------------------------
# helpers

def append_epoch(path, epoch, seed=None):
    """Append one epoch of random features to the run at path."""
    rng = np.random.default_rng(epoch if seed is None else seed)
    counts, _, _, (xte, yte) = make_data()
    H = rng.standard_normal((yte.numel(), D)).astype(np.float32) + 1.0
    W = rng.standard_normal((C, D)).astype(np.float32)
    lx.export_snapshot(path, "epoch_%04d" % epoch, (W, np.zeros(C, np.float32)),
                       {"test": {"features": H, "labels": yte}}, epoch=epoch,
                       history_row={"train_loss": 1.0 / epoch}, train_counts=counts)


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def file_contents(path):
    """{object path: (kind, attrs, dtype, shape, bytes)} of every object."""
    out = {}

    def attrs(o):
        return {k: (v.decode() if isinstance(v, bytes) else
                    v.tolist() if isinstance(v, np.ndarray) else v) for k, v in o.attrs.items()}

    with h5py.File(path, "r") as f:
        out["/"] = ("group", attrs(f))

        def visit(name, o):
            if isinstance(o, h5py.Dataset):
                a = o[...]
                raw = (json.dumps([x.decode() if isinstance(x, bytes) else x for x in a.tolist()])
                       if a.dtype.kind == "O" else a.tobytes())
                out[name] = ("dataset", attrs(o), str(o.dtype), o.shape, raw, o.maxshape)
            else:
                out[name] = ("group", attrs(o))
        f.visititems(visit)
    return out


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env():
    return dict(os.environ, GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1",
                OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")


def run_workers(world, outdir, timeout=240, command="worker"):
    port = free_port()
    procs = [subprocess.Popen([PYTHON, os.path.abspath(__file__), command, str(r), str(world),
                               str(port), outdir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=worker_env(), text=True, cwd=HERE)
             for r in range(world)]
    outs = []
    deadline = time.time() + timeout
    try:
        for p in procs:
            out, _ = p.communicate(timeout=max(1, deadline - time.time()))
            outs.append((p.returncode, out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


# --------------------------------------------------------------------------

class ExporterAlone(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ltlab_export_")
        self.path = os.path.join(self.tmp.name, "run.h5")
        torch.set_num_threads(1)

    def tearDown(self):
        self.tmp.cleanup()

    def test_analysis_equals_reference_on_the_same_features(self):
        torch.manual_seed(1)
        counts, (xtr, ytr), _, (xte, yte) = make_data()
        net = Net()
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        for _ in range(20):
            train_step(net, opt, xtr, ytr)
        net.train()
        loader = DataLoader(torch.utils.data.TensorDataset(xte, yte), batch_size=32)
        test = lx.extract(net, loader)
        self.assertTrue(net.training, "extract must restore the train mode")
        # the features are the input of fc, the logits the model's output
        with torch.no_grad():
            net.eval()
            H = net.body(xte)
            Z = net(xte)
        torch.testing.assert_close(test["features"], H, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(test["logits"], Z, rtol=1e-6, atol=1e-6)
        self.assertTrue(torch.equal(test["labels"], yte))
        self.assertTrue(torch.equal(test["indices"], torch.arange(yte.numel())))

        run = lx.RunExporter(self.path, None, counts, many_threshold=MANY, few_threshold=FEW)
        run.export_snapshot("final", net.fc, {"test": test}, epoch=20)
        got = analyze_json(self, self.path)
        self.assertEqual((got["snapshot"], got["split"], got["epoch"]), ("final", "test", 20))
        self.assertEqual((got["num_classes"], got["feature_dim"], got["num_samples"]), (C, D, yte.numel()))
        # the reference on the tensors themselves, not on what was written
        expected = ref.analyze(test["features"].numpy(), test["labels"].numpy(),
                               net.fc.weight.detach().numpy(), net.fc.bias.detach().numpy(),
                               counts, test["logits"].numpy(), MANY, FEW)
        for key in ("nc1", "fdr", "accuracy", "implicit_la_tau", "cone_mean_cos"):
            self.assertIsNotNone(expected[key], key)
        mism = compare_report(expected, {k: got[k] for k in expected})
        self.assertFalse(mism, "ltlab analyze vs the reference on the exported tensors:\n  "
                         + "\n  ".join(mism[:40]))
        # and the whole JSON against the reference reading the file
        assert_matches_reference(self, self.path)
        # the default thresholds came from the file
        self.assertEqual(got["accuracy_many"], expected["accuracy_many"])

    def test_layout_follows_run_format(self):
        counts, _, _, (xte, yte) = make_data()
        net = Net()
        lx.RunExporter(self.path, ["a", "b", "c", "d", "e", "ünï"], counts, config={"seed": 1},
                       many_threshold=MANY, few_threshold=FEW).export_snapshot(
            "epoch_0001", net, {"test": lx.extract(net, DataLoader(
                torch.utils.data.TensorDataset(xte, yte), batch_size=50))},
            epoch=1, stage=2, label="ETF ✓")
        with h5py.File(self.path, "r") as f:
            self.assertEqual(f.attrs["format"], "ltlab-run")
            self.assertEqual(int(f.attrs["format_version"]), 1)
            self.assertEqual(json.loads(f.attrs["config"]), {"seed": 1})
            self.assertEqual(f["classes/train_counts"].dtype, np.int64)
            self.assertEqual(f["classes/train_counts"][...].tolist(), counts.tolist())
            names = f["classes/names"]
            self.assertEqual(h5py.check_string_dtype(names.dtype).encoding, "utf-8")
            self.assertIsNone(h5py.check_string_dtype(names.dtype).length)   # variable length
            self.assertEqual([n.decode() for n in names[...]], ["a", "b", "c", "d", "e", "ünï"])
            self.assertEqual(int(f["classes"].attrs["many_threshold"]), MANY)
            self.assertEqual(int(f["classes"].attrs["few_threshold"]), FEW)
            g = f["snapshots/epoch_0001"]
            self.assertEqual((int(g.attrs["epoch"]), int(g.attrs["stage"]), g.attrs["label"]),
                             (1, 2, "ETF ✓"))
            self.assertEqual(g["classifier_weight"].shape, (C, D))
            self.assertEqual(g["classifier_weight"].dtype, np.float32)
            self.assertEqual(g["classifier_bias"].shape, (C,))
            self.assertEqual(g["test/features"].shape, (yte.numel(), D))
            self.assertEqual(g["test/labels"].dtype, np.int64)
            self.assertEqual(g["test/logits"].shape, (yte.numel(), C))
            self.assertEqual(sorted(f["history"]), ["epoch"])
            self.assertEqual(f["history/epoch"][...].tolist(), [1])
        self.assertFalse(os.path.exists(self.path + ".partial"))

    def test_epochs_append_snapshots_and_history(self):
        for epoch in range(1, 5):
            append_epoch(self.path, epoch)
            with h5py.File(self.path, "r") as f:
                self.assertEqual(len(f["snapshots"]), epoch)
                self.assertEqual(f["history/epoch"].shape, (epoch,))
        run = lx.RunExporter(self.path)                    # appending: counts from the file
        run.append_history({"lr": torch.tensor(0.05), "test_accuracy": np.float32(0.5)}, epoch=5)
        with h5py.File(self.path, "r") as f:
            self.assertEqual(sorted(f["snapshots"]), ["epoch_%04d" % e for e in range(1, 5)])
            h = f["history"]
            self.assertEqual(sorted(h), ["epoch", "lr", "test_accuracy", "train_loss"])
            for name in h:
                ds = h[name]
                self.assertEqual(ds.shape, (5,), name)
                self.assertEqual(ds.maxshape, (None,), name)     # extensible
                self.assertIsNotNone(ds.chunks, name)           # chunked
            self.assertEqual(h["epoch"].dtype, np.int64)
            self.assertEqual(h["epoch"][...].tolist(), [1, 2, 3, 4, 5])
            np.testing.assert_allclose(h["train_loss"][:4], [1, 1 / 2, 1 / 3, 1 / 4])
            self.assertTrue(math.isnan(h["train_loss"][4]))
            self.assertTrue(np.all(np.isnan(h["lr"][:4])))     # a late series is padded
            self.assertAlmostEqual(float(h["lr"][4]), 0.05, places=6)
        for e in (2, 4):
            got = analyze_json(self, self.path, "--snapshot", "epoch_%04d" % e)
            self.assertEqual(got["epoch"], e)
        self.assertEqual(analyze_json(self, self.path)["snapshot"], "epoch_0004")
        # ltlab reads the history: its training-curves table has 5 epochs
        if not have_ui():
            return  # `ltlab figures` needs the UI module
        out = os.path.join(self.tmp.name, "figs")
        p = run_ltlab("figures", self.path, "--out", out, "--format", "svg")
        self.assertEqual(p.returncode, 0, describe(p))
        with open(os.path.join(out, "training_curves.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([int(r["epoch"]) for r in rows], [1, 2, 3, 4, 5])
        self.assertAlmostEqual(float(rows[1]["train_loss"]), 0.5)

    def test_modes_and_refusals(self):
        append_epoch(self.path, 1)
        before = file_digest(self.path)
        counts = make_data()[0]
        with self.assertRaisesRegex(ValueError, "snapshot epoch_0001 exists"):
            append_epoch(self.path, 1)
        with self.assertRaisesRegex(ValueError, "other train_counts"):
            lx.export_snapshot(self.path, "x", np.ones((C, D), np.float32),
                               {"test": (np.ones((3, D), np.float32), [0, 1, 2])},
                               train_counts=counts + 1)
        bad_h = np.ones((3, D), np.float32)
        bad_h[1, 2] = np.nan
        bad_h[2, 0] = np.inf
        with self.assertRaisesRegex(ValueError, r"test/features: 2 non-finite values \(first at \(1, 2\)\)"):
            lx.export_snapshot(self.path, "x", np.ones((C, D), np.float32), {"test": (bad_h, [0, 1, 2])})
        with self.assertRaisesRegex(ValueError, r"labels outside \[0, 6\)"):
            lx.export_snapshot(self.path, "x", np.ones((C, D), np.float32),
                               {"test": (np.ones((3, D), np.float32), [0, 1, 6])})
        with self.assertRaisesRegex(ValueError, "classifier has 5 classes, train_counts has 6"):
            lx.export_snapshot(self.path, "x", np.ones((C - 1, D), np.float32),
                               {"test": (np.ones((3, D), np.float32), [0, 1, 2])})
        with self.assertRaisesRegex(ValueError, "features have D=4, the classifier D=16"):
            lx.export_snapshot(self.path, "x", np.ones((C, D), np.float32),
                               {"test": (np.ones((3, 4), np.float32), [0, 1, 2])})
        with self.assertRaisesRegex(ValueError, "unknown split"):
            lx.export_snapshot(self.path, "x", np.ones((C, D), np.float32),
                               {"valid": (np.ones((3, D), np.float32), [0, 1, 2])})
        with self.assertRaisesRegex(ValueError, "no split"):
            lx.export_snapshot(self.path, "x", np.ones((C, D), np.float32), {})
        with self.assertRaisesRegex(ValueError, r"many_threshold \(10\) must be >= few_threshold \(20\)"):
            lx.RunExporter(self.path, None, counts, many_threshold=10, few_threshold=20)
        self.assertEqual(file_digest(self.path), before, "a refused export changed the file")
        self.assertFalse(os.path.exists(self.path + ".partial"))
        # replace=True replaces a snapshot; mode "w" starts the file again
        lx.export_snapshot(self.path, "epoch_0001", np.ones((C, D), np.float32),
                           {"test": (np.ones((3, D), np.float32), [0, 1, 2])}, epoch=1,
                           history_row=False, replace=True)
        with h5py.File(self.path, "r") as f:
            self.assertEqual(f["snapshots/epoch_0001/test/features"].shape, (3, D))
            self.assertEqual(f["history/epoch"].shape, (1,))
        run = lx.RunExporter(self.path, None, counts, mode="w")
        run.export_snapshot("a", np.ones((C, D)), {"val": (np.ones((2, D)), [0, 1])}, epoch=1)
        run.export_snapshot("b", np.ones((C, D)), {"val": (np.ones((2, D)), [0, 1])}, epoch=2)
        with h5py.File(self.path, "r") as f:
            self.assertEqual(sorted(f["snapshots"]), ["a", "b"])
            self.assertEqual(f["snapshots/a/classifier_weight"].dtype, np.float64)
            self.assertNotIn("classifier_bias", f["snapshots/a"])
        with open(os.path.join(self.tmp.name, "other.h5"), "wb") as f:
            f.write(b"not hdf5")
        with self.assertRaisesRegex(ValueError, "cannot read the existing run file"):
            append_epoch(os.path.join(self.tmp.name, "other.h5"), 1)


class ExporterAtomic(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ltlab_export_")
        self.path = os.path.join(self.tmp.name, "run.h5")
        append_epoch(self.path, 1)
        append_epoch(self.path, 2)
        self.before = file_digest(self.path)

    def tearDown(self):
        lx._test_hook = lambda stage, path: None
        self.tmp.cleanup()

    def assert_previous_file(self):
        self.assertEqual(file_digest(self.path), self.before, "the previous file was changed")
        got = analyze_json(self, self.path)
        self.assertEqual(got["snapshot"], "epoch_0002")
        with h5py.File(self.path, "r") as f:
            self.assertEqual(f["history/epoch"][...].tolist(), [1, 2])

    def test_crash_at_each_stage_leaves_the_previous_file(self):
        class Crash(Exception):
            pass
        for stage in ("copied", "snapshot", "written", "synced"):
            with self.subTest(stage=stage):
                def hook(s, partial, stage=stage):
                    if s == stage:
                        self.assertTrue(os.path.exists(partial))
                        raise Crash(stage)
                lx._test_hook = hook
                with self.assertRaises(Crash):
                    append_epoch(self.path, 3)
                self.assertFalse(os.path.exists(self.path + ".partial"), "the copy was left behind")
                self.assert_previous_file()
        lx._test_hook = lambda stage, path: None
        append_epoch(self.path, 3)
        self.assertEqual(analyze_json(self, self.path)["snapshot"], "epoch_0003")

    def test_sigkill_in_the_middle_of_a_write(self):
        for stage in ("snapshot", "written"):
            with self.subTest(stage=stage):
                p = subprocess.run([PYTHON, os.path.abspath(__file__), "kill-at", stage, self.path],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                                   env=worker_env(), text=True, cwd=HERE)
                self.assertEqual(p.returncode, -signal.SIGKILL, p.stdout)
                self.assertTrue(os.path.exists(self.path + ".partial"))   # the killed copy
                self.assert_previous_file()
        # the next export writes over the stale copy
        append_epoch(self.path, 3)
        self.assertFalse(os.path.exists(self.path + ".partial"))
        with h5py.File(self.path, "r") as f:
            self.assertEqual(f["history/epoch"][...].tolist(), [1, 2, 3])

    def test_reader_always_sees_a_complete_file(self):
        done = os.path.join(self.tmp.name, "done")
        reader = subprocess.Popen([PYTHON, "-c", READER, self.path, done], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=worker_env())
        counter = done + ".reads"

        def reads_so_far():
            try:
                with open(counter) as f:
                    return int(f.read() or 0)
            except (OSError, ValueError):
                return 0

        def wait_for_reads(n):  # a loaded machine may start the reader late: pace the writer by it
            deadline = time.monotonic() + 60
            while reads_so_far() < n and time.monotonic() < deadline and reader.poll() is None:
                time.sleep(0.01)

        try:
            wait_for_reads(1)
            for epoch in range(3, 15):
                before = reads_so_far()
                append_epoch(self.path, epoch)
                wait_for_reads(before + 1)
            open(done, "w").close()
            out, _ = reader.communicate(timeout=120)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
        self.assertEqual(reader.returncode, 0, out)
        report = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(report["bad"], [], "the reader saw an incomplete file")
        self.assertGreater(report["reads"], 5)
        self.assertGreater(len(report["lengths"]), 1, "the reader saw only one state of the file")
        self.assertEqual(max(report["lengths"]), 14)


# A reader polling the run file with h5py while it is being appended to: each
# open must find a complete file: as many history rows as snapshots, the rows
# 1..E, every snapshot with its classifier, features and labels.
READER = r"""
import json, os, sys, h5py
path, done = sys.argv[1], sys.argv[2]
reads, bad, lengths = 0, [], set()
while True:
    finished = os.path.exists(done)
    try:
        with h5py.File(path, "r") as f:
            e = f["history/epoch"][...].tolist()
            snaps = sorted(f["snapshots"])
            ok = (f.attrs["format"] == "ltlab-run" and e == list(range(1, len(e) + 1))
                  and f["history/train_loss"].shape == (len(e),)
                  and snaps == ["epoch_%04d" % k for k in e])
            for s in snaps:
                g = f["snapshots"][s]
                ok = ok and g["classifier_weight"].shape[0] == 6 and \
                    g["test/features"].shape[0] == g["test/labels"].shape[0] == 151
                g["test/features"][...]
            if not ok:
                bad.append("inconsistent at %d epochs" % len(e))
            lengths.add(len(e))
            reads += 1
            with open(done + ".reads.tmp", "w") as c:
                c.write(str(reads))
            os.replace(done + ".reads.tmp", done + ".reads")
    except Exception as ex:
        bad.append("%s: %s" % (type(ex).__name__, ex))
    if finished:
        break
print(json.dumps({"reads": reads, "bad": bad[:10], "lengths": sorted(lengths)}))
"""


class ExporterDistributed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="ltlab_export_ddp_")
        cls.single = os.path.join(cls.tmp.name, "single")
        cls.ddp = os.path.join(cls.tmp.name, "ddp")
        os.makedirs(cls.single)
        os.makedirs(cls.ddp)
        cls.results = {"single": run_workers(1, cls.single), "ddp": run_workers(2, cls.ddp)}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_workers(self):
        for kind, outs in self.results.items():
            for r, (rc, out) in enumerate(outs):
                self.assertEqual(rc, 0, "%s worker %d failed:\n%s" % (kind, r, out[-4000:]))

    def test_gloo_file_equals_single_process_file(self):
        self.check_workers()
        a = file_contents(os.path.join(self.single, "exact.h5"))
        b = file_contents(os.path.join(self.ddp, "exact.h5"))
        self.assertEqual(sorted(a), sorted(b), "the two files hold different objects")
        for name in a:
            self.assertEqual(a[name][:4], b[name][:4], "%s: kind, attributes, dtype or shape differ" % name)
            if a[name][0] == "dataset":
                self.assertTrue(a[name][4] == b[name][4], "%s: the values differ" % name)
                self.assertEqual(a[name][5], b[name][5], name)
        # every sample once, in dataset order, padding dropped
        with h5py.File(os.path.join(self.ddp, "exact.h5"), "r") as f:
            counts, (_, ytr), (_, yva), (_, yte) = make_data()
            for split, y in (("train", ytr), ("val", yva), ("test", yte)):
                self.assertEqual(f["snapshots/epoch_0003/%s/labels" % split][...].tolist(), y.tolist())
            self.assertEqual(f["history/epoch"][...].tolist(), [1, 2, 3])
        assert_matches_reference(self, os.path.join(self.ddp, "exact.h5"))
        for split in ("train", "val"):
            assert_matches_reference(self, os.path.join(self.ddp, "exact.h5"), "--split", split,
                                     "--snapshot", "epoch_0002")

    def test_gloo_errors_reach_every_rank(self):
        # ranks that disagree are named before the gather; a value rank 0
        # refuses after it is reported on every rank; nobody waits forever
        with tempfile.TemporaryDirectory(prefix="ltlab_export_bad_") as d:
            outs = run_workers(2, d, timeout=120, command="worker-mismatch")
            for rank, (rc, out) in enumerate(outs):
                self.assertEqual(rc, 0, out[-4000:])
                self.assertIn("rank %d: ValueError: export_snapshot: split test: rank 1 has "
                              "feature_shape (17,), rank 0 has (16,)" % rank, out)
                self.assertRegex(out, r"rank %d: \w+Error: .*test/features: 1 non-finite value" % rank)
                self.assertIn("rank %d: file exists: False" % rank, out)

    def test_gloo_batched_equals_single_process_to_rounding(self):
        # batch composition differs between a shard and the whole set, so the
        # kernels may round differently: equal to float32 rounding, labels and
        # everything else exactly
        self.check_workers()
        a = file_contents(os.path.join(self.single, "batched.h5"))
        b = file_contents(os.path.join(self.ddp, "batched.h5"))
        self.assertEqual(sorted(a), sorted(b))
        with h5py.File(os.path.join(self.single, "batched.h5"), "r") as fa, \
                h5py.File(os.path.join(self.ddp, "batched.h5"), "r") as fb:
            for name in a:
                self.assertEqual(a[name][:4], b[name][:4], name)
                if a[name][0] != "dataset":
                    continue
                if name.endswith(("features", "logits")):
                    np.testing.assert_allclose(fb[name][...], fa[name][...], rtol=1e-5, atol=1e-6,
                                               err_msg=name)
                else:
                    self.assertTrue(a[name][4] == b[name][4], name)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("worker", "worker-mismatch", "kill-at"):
        sys.exit(worker_main(sys.argv[1:]))
    unittest.main()
