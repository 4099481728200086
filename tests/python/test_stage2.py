"""Weight balancing's stage 2: `ltlab train --recipe wb`, `ltlab stage2` and
core's engine (ltlab/stage2.h) against two independent Python versions.

* a numpy float64 transcription of the training loop (docs/stage2.md): the
  same weights after 3 epochs to 1e-8, for each loss, reduction, MaxNorm
  placement, a frozen bias and a start from zero;
* the papers' stage 2 written in PyTorch as their code writes it (the
  softmax branch of utils/class_balanced_loss.py: per-sample weights times
  the cross-entropy, then the plain mean over the batch; weight decay as
  lambda/2 sum ||theta||^2; MaxNorm_via_PGD's projection with the threshold
  fixed from the stage-1 norms), on the stage-1 features that `ltlab train`
  stored, compared with that run's stage 2 and with `ltlab stage2`;
* the command line: settings recorded in the snapshot, appending in place,
  a capped train sample said plainly, usage and input errors.
"""

import json
import math
import os
import tempfile
import unittest

import h5py
import numpy as np

from ltlab_testutil import analyze_json, describe, run_ltlab

MASK = (1 << 64) - 1


def permutation(n, seed, epoch):
    """stage2Permutation: Fisher-Yates driven by SplitMix64 (docs/stage2.md)."""
    state = (seed ^ ((0xD1B54A32D192ED03 * (epoch + 1)) & MASK)) & MASK
    out = list(range(n))
    for i in range(n - 1, 0, -1):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        j = (z * (i + 1)) >> 64
        out[i], out[j] = out[j], out[i]
    return np.array(out, dtype=np.int64)


def cb_weights(counts, beta):
    counts = np.asarray(counts, dtype=np.float64)
    w = 1.0 / counts if beta == 1.0 else (1.0 - beta) / (1.0 - np.power(beta, counts))
    return w / w.sum() * len(counts)


def stage2_numpy(H, y, counts, W0, b0, loss="cb", beta=0.9999, reduction="batch", wd=0.1, maxnorm=True,
                 factor=0.1, per_epoch=False, epochs=10, lr=0.01, momentum=0.9, batch=64, seed=0,
                 from_zero=False, train_bias=True):
    """The stage-2 loop in float64, written out step by step."""
    H = np.asarray(H, dtype=np.float64)
    N, C = H.shape[0], W0.shape[0]
    norms = np.linalg.norm(W0, axis=1)
    threshold = norms.min() + factor * (norms.max() - norms.min())
    w = cb_weights(counts, beta) if loss == "cb" else np.ones(C)
    W = np.zeros_like(W0) if from_zero else W0.astype(np.float64).copy()
    b = np.zeros(C) if from_zero else b0.astype(np.float64).copy()
    vW, vb = np.zeros_like(W), np.zeros_like(b)

    def project(W):
        n = np.linalg.norm(W, axis=1)
        scale = np.where(n > threshold, threshold / np.where(n > 0, n, 1), 1.0)
        return W * scale[:, None]

    for e in range(epochs):
        rate = lr * 0.5 * (1 + math.cos(math.pi * e / epochs))
        order = permutation(N, seed, e)
        for k in range(0, N, batch):
            idx = order[k:k + batch]
            X, t = H[idx], y[idx]
            Z = X @ W.T + b
            P = np.exp(Z - Z.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
            wy = w[t]
            s = wy / (wy.sum() if (loss == "cb" and reduction == "weight-sum") else len(idx))
            G = P.copy()
            G[np.arange(len(idx)), t] -= 1
            G *= s[:, None]
            gW = G.T @ X + wd * W
            vW = momentum * vW + gW
            W = W - rate * vW
            if train_bias:
                gb = G.sum(axis=0) + wd * b
                vb = momentum * vb + gb
                b = b - rate * vb
            if maxnorm and not per_epoch:
                W = project(W)
        if maxnorm and per_epoch:
            W = project(W)
    return W, b


def write_run(path, H, y, counts, W, b, test=None, config=None):
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "ltlab-run"
        f.attrs["format_version"] = 1
        if config is not None:
            f.attrs["config"] = json.dumps(config)
        f.create_group("classes")["train_counts"] = np.asarray(counts, dtype=np.int64)
        s = f.create_group("snapshots/start")
        s.attrs["epoch"] = 4
        s.attrs["stage"] = 1
        s["classifier_weight"] = W.astype(np.float32)
        s["classifier_bias"] = b.astype(np.float32)
        g = s.create_group("train")
        g["features"] = H.astype(np.float32)
        g["labels"] = y.astype(np.int64)
        if test is not None:
            g = s.create_group("test")
            g["features"] = test[0].astype(np.float32)
            g["labels"] = test[1].astype(np.int64)


def small_problem(seed=0, C=5, D=12):
    rng = np.random.default_rng(seed)
    counts = [80, 45, 25, 12, 6]
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    means = rng.normal(0, 1.0, (C, D))
    H = np.maximum(means[y] + rng.normal(0, 1.0, (len(y), D)), 0).astype(np.float32)
    yt = np.repeat(np.arange(C), 30)
    Ht = np.maximum(means[yt] + rng.normal(0, 1.0, (len(yt), D)), 0).astype(np.float32)
    W = (rng.normal(0, 0.3, (C, D)) * np.linspace(1.5, 0.5, C)[:, None]).astype(np.float32)
    b = rng.normal(0, 0.1, C).astype(np.float32)
    return H, y, counts, W, b, (Ht, yt)


class Stage2Engine(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def run_stage2(self, src, out, *args, snapshot="start", expect=0):
        p = run_ltlab("stage2", src, "--snapshot", snapshot, "--out", out, *args)
        self.assertEqual(p.returncode, expect, describe(p))
        return p

    def test_help(self):
        p = run_ltlab("stage2", "--help")
        self.assertEqual(p.returncode, 0, describe(p))
        for option in ("--snapshot", "--out", "--cb-reduction", "--maxnorm-threshold", "--from-zero", "--freeze-bias"):
            self.assertIn(option, p.stdout)
        self.assertIn("stage2 FILE", run_ltlab("--help").stdout)
        p = run_ltlab("train", "--help")
        self.assertIn("--cb-reduction", p.stdout)
        self.assertIn("--recipe wb --from RUN.h5", p.stdout)

    def test_permutation_is_a_seeded_fisher_yates(self):
        # The same values as tests/core/test_stage2.cpp's fixed cases.
        self.assertEqual(list(permutation(5, 0, 0)), [2, 4, 3, 1, 0])
        self.assertEqual(list(permutation(10, 3, 2)), [3, 1, 9, 8, 7, 4, 5, 0, 6, 2])
        self.assertEqual(sorted(permutation(1000, 9, 4)), list(range(1000)))

    def test_training_loop_equals_a_numpy_transcription_after_three_epochs(self):
        H, y, counts, W0, b0, test = small_problem()
        src = self.path("run.h5")
        write_run(src, H, y, counts, W0, b0, test)
        base = dict(epochs=3, lr=0.05, batch=16, seed=11, wd=0.02, beta=0.99)
        cases = [
            ("cb, batch, MaxNorm per step", {}, []),
            ("cb, weight-sum, MaxNorm per epoch", dict(reduction="weight-sum", per_epoch=True),
             ["--cb-reduction", "weight-sum", "--maxnorm-per-epoch", "true"]),
            ("ce, frozen bias, threshold 0.3", dict(loss="ce", train_bias=False, factor=0.3),
             ["--loss", "ce", "--freeze-bias", "--maxnorm-threshold", "0.3"]),
            ("cb from zero without MaxNorm, momentum 0.5", dict(from_zero=True, maxnorm=False, momentum=0.5),
             ["--from-zero", "--maxnorm", "off", "--momentum", "0.5"]),
            ("cb, beta 1 (inverse frequency), batch 7", dict(beta=1.0, batch=7), ["--cb-beta", "1", "--batch-size", "7"]),
        ]
        for i, (title, changes, flags) in enumerate(cases):
            with self.subTest(title):
                settings = dict(base, **changes)
                args = ["--epochs", "3", "--lr", "0.05", "--batch-size", "16", "--seed", "11", "--weight-decay", "0.02",
                        "--cb-beta", "0.99"] + flags
                out = self.path("out%d.h5" % i)
                self.run_stage2(src, out, *args, "--name", "s2")
                W, b = stage2_numpy(H, y, counts, W0.astype(np.float64), b0.astype(np.float64), **settings)
                with h5py.File(out, "r") as f:
                    g = f["snapshots/s2"]
                    self.assertEqual(g["classifier_weight"].dtype, np.float64)
                    Wl, bl = g["classifier_weight"][:], g["classifier_bias"][:]
                    config = json.loads(g.attrs["config"])
                self.assertLess(np.abs(Wl - W).max(), 1e-8, title)
                self.assertLess(np.abs(bl - b).max(), 1e-8, title)
                self.assertGreater(np.abs(W - W0).max(), 1e-2)  # it did train
                self.assertEqual(config["stage2"]["epochs"], 3)
                self.assertEqual(config["stage2"]["seed"], 11)
                self.assertEqual(config["from_snapshot"], "start")
                if settings.get("from_zero"):
                    self.assertTrue(config["stage2"]["from_zero"])
                if not settings.get("train_bias", True):
                    np.testing.assert_array_equal(bl, b0.astype(np.float64))

    def test_cvpr_bce_form_equals_torch_autograd(self):
        """The CVPR code's loss: F.binary_cross_entropy(softmax(z), onehot, weight=w_y), gradients by autograd."""
        import torch
        import torch.nn.functional as F
        H, y, counts, W0, b0, test = small_problem(2)
        src = self.path("run.h5")
        write_run(src, H, y, counts, W0, b0, test)
        epochs, lr, batch, seed, wd, beta, mom = 3, 0.5, 16, 5, 0.02, 0.99, 0.9
        W = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(b0, dtype=torch.float64, requires_grad=True)
        Ht, yt = torch.tensor(H, dtype=torch.float64), torch.tensor(y)
        w = torch.tensor(cb_weights(counts, beta))
        norms = np.linalg.norm(W0.astype(np.float64), axis=1)
        threshold = norms.min() + 0.1 * (norms.max() - norms.min())
        opt = torch.optim.SGD([W, b], lr=lr, momentum=mom)
        for e in range(epochs):
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * e / epochs))
            order = torch.tensor(permutation(len(y), seed, e))
            for k in range(0, len(y), batch):
                idx = order[k:k + batch]
                z = Ht[idx] @ W.T + b
                onehot = F.one_hot(yt[idx], len(counts)).double()
                weight = w[yt[idx]].unsqueeze(1).repeat(1, len(counts))
                loss = F.binary_cross_entropy(z.softmax(1), onehot, weight=weight)
                loss = loss + 0.5 * wd * (W.pow(2).sum() + b.pow(2).sum())
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():  # MaxNorm after every step
                    n = W.norm(dim=1, keepdim=True)
                    W.mul_(torch.where(n > threshold, threshold / n, torch.ones_like(n)))
        out = self.path("bce.h5")
        self.run_stage2(src, out, "--loss", "cb-bce", "--epochs", str(epochs), "--lr", str(lr), "--batch-size",
                        str(batch), "--seed", str(seed), "--weight-decay", str(wd), "--cb-beta", str(beta),
                        "--name", "s2")
        with h5py.File(out, "r") as f:
            g = f["snapshots/s2"]
            Wl, bl = g["classifier_weight"][:], g["classifier_bias"][:]
            config = json.loads(g.attrs["config"])
            label = g.attrs["label"]
        self.assertEqual(config["stage2"]["loss"], "cb-bce")
        self.assertIn("CVPR", label if isinstance(label, str) else label.decode())
        self.assertGreater(np.abs(W.detach().numpy() - W0).max(), 1e-3)  # it did train
        self.assertLess(np.abs(Wl - W.detach().numpy()).max(), 1e-8)
        self.assertLess(np.abs(bl - b.detach().numpy()).max(), 1e-8)

    def test_command_line_records_appends_and_refuses(self):
        H, y, counts, W0, b0, test = small_problem(1)
        src = self.path("run.h5")
        write_run(src, H, y, counts, W0, b0, test)
        p = self.run_stage2(src, src, "--epochs", "2", "--weight-decay", "5e-3")
        self.assertIn("snapshot: start_stage2 in", p.stdout)
        self.assertIn("test accuracy (balanced):", p.stdout)
        self.assertIn("Accuracy", p.stdout)                   # the analysis report follows
        self.assertIn("the wb recipe's defaults", p.stderr)  # no training configuration in this file
        self.assertNotIn("note:", p.stderr)                  # every training sample is there
        self.run_stage2(src, src, "--epochs", "1")           # a second one gets the next free name
        with h5py.File(src, "r") as f:
            self.assertEqual(sorted(f["snapshots"]), ["start", "start_stage2", "start_stage2_2"])
            g = f["snapshots/start_stage2"]
            self.assertEqual(g.attrs["stage"], 2)
            self.assertEqual(g.attrs["epoch"], 4 + 2)
            self.assertIn("weight decay 0.005", g.attrs["label"])
            config = json.loads(g.attrs["config"])
            self.assertEqual(config["stage2"]["cb_reduction"], "batch")
            self.assertEqual(config["stage2"]["weight_decay"], 5e-3)
            self.assertEqual(config["train_rows"], len(y))
            self.assertFalse(config["train_is_sample"])
            self.assertEqual(len(config["epochs"]), 2)
            self.assertEqual(list(g), ["classifier_bias", "classifier_weight", "test", "train"])
            np.testing.assert_array_equal(g["train/features"][:], H)
        result = analyze_json(self, src, "--snapshot", "start_stage2")
        self.assertEqual(result["snapshot"], "start_stage2")
        json_out = run_ltlab("stage2", src, "--snapshot", "start", "--out", self.path("j.h5"), "--format", "json",
                             "--epochs", "1")
        self.assertEqual(json_out.returncode, 0, describe(json_out))
        self.assertEqual(json.loads(json_out.stdout)["snapshot"], "start_stage2_3")  # the names of src are taken

        out = self.path("copy.h5")
        usage = [
            ("--epochs", "0"), ("--cb-reduction", "mean"), ("--maxnorm", "maybe"), ("--loss", "focal"),
            ("--cb-beta", "1.5"), ("--lr", "-1"), ("--bogus",), ("--format", "xml"),
        ]
        for extra in usage:
            p = run_ltlab("stage2", src, "--snapshot", "start", "--out", out, *extra)
            self.assertEqual(p.returncode, 1, "%s: %s" % (extra, describe(p)))
            self.assertTrue(p.stderr.startswith("ltlab stage2: "), p.stderr)
        self.assertFalse(os.path.exists(out))
        p = run_ltlab("stage2", src, "--snapshot", "start")
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("--out", p.stderr)
        p = run_ltlab("stage2", src, "--snapshot", "nope", "--out", out)
        self.assertEqual(p.returncode, 2, describe(p))  # as ltlab analyze: the file has no such snapshot
        self.assertIn("start", p.stderr)  # names the snapshots that exist
        self.run_stage2(src, src, "--name", "start_stage2", expect=1)  # taken
        self.run_stage2(src, src, "--name", "start_stage2", "--overwrite", "--epochs", "1")
        self.run_stage2(src, self.path("j.h5"), expect=1)              # exists, no --overwrite
        p = run_ltlab("stage2", self.path("missing.h5"), "--out", out)
        self.assertEqual(p.returncode, 2, describe(p))
        self.assertIn("missing.h5", p.stderr)
        # A snapshot without train features: exit 2, naming the file and the snapshot.
        notrain = self.path("notrain.h5")
        with h5py.File(notrain, "w") as f:
            f.attrs["format"] = "ltlab-run"
            f.attrs["format_version"] = 1
            f.create_group("classes")["train_counts"] = np.asarray(counts, dtype=np.int64)
            s = f.create_group("snapshots/start")
            s["classifier_weight"] = W0
            s["test/features"] = test[0]
            s["test/labels"] = test[1]
        p = run_ltlab("stage2", notrain, "--out", out)
        self.assertEqual(p.returncode, 2, describe(p))
        self.assertIn("notrain.h5", p.stderr)
        self.assertIn("/snapshots/start", p.stderr)
        self.assertIn("no train split", p.stderr)
        # Divergence: exit 3 and nothing written.
        p = run_ltlab("stage2", src, "--snapshot", "start", "--out", out, "--lr", "1e6", "--maxnorm", "off",
                      "--weight-decay", "10", "--batch-size", "1")
        self.assertEqual(p.returncode, 3, describe(p))
        self.assertIn("diverged", p.stderr)
        self.assertFalse(os.path.exists(out))


# Stage 1 with the mlp on the Gaussian mixture; every train feature stored.
GAUSS = ["--dataset", "gaussian-lt", "--gaussian-dim", "16", "--gaussian-per-class", "300", "--imbalance", "50",
         "--lr", "0.05", "--seed", "3", "--threads", "2"]


def papers_stage2_torch(H, y, counts, W0, b0, wd, beta, epochs, lr, batch, seed, factor=0.1, weighted_mean=False):
    """The papers' stage 2 in PyTorch (float64): CB_loss's softmax branch with
    reduction "mean" (w_{y_i} CE_i averaged over the batch), weight decay as
    the explicit term lambda sum ||theta||^2 / 2 over fc.weight and fc.bias,
    SGD momentum 0.9, and MaxNorm_via_PGD after each step (threshold min +
    0.1 (max - min) of the stage-1 norms, bias unconstrained). The schedule is
    ltlab's standard cosine (epoch e at lr (1 + cos(pi e / E)) / 2; the
    papers' scheduler runs one epoch ahead, docs/architecture.md) and the
    order ltlab's seeded permutation, so that the runs are comparable.
    weighted_mean: PyTorch's cross_entropy(weight=w) instead (ltlab's old loss)."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(2)
    H = torch.tensor(np.asarray(H), dtype=torch.float64)
    y = torch.tensor(np.asarray(y), dtype=torch.int64)
    C = len(counts)
    fc = torch.nn.Linear(H.shape[1], C).double()
    with torch.no_grad():
        fc.weight.copy_(torch.tensor(W0))
        fc.bias.copy_(torch.tensor(b0))
    effective = 1.0 - np.power(beta, np.asarray(counts, dtype=np.float64))
    weights = (1.0 - beta) / effective
    weights = torch.tensor(weights / weights.sum() * C, dtype=torch.float64)
    norms = torch.linalg.norm(fc.weight.detach(), dim=1)
    thresh = norms.min() + factor * (norms.max() - norms.min())
    opt = torch.optim.SGD([fc.weight, fc.bias], lr=lr, momentum=0.9)
    for e in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * e / epochs))
        order = torch.tensor(permutation(len(y), seed, e))
        for k in range(0, len(y), batch):
            idx = order[k:k + batch]
            logits, labels = fc(H[idx]), y[idx]
            if weighted_mean:
                loss = F.cross_entropy(logits, labels, weight=weights)
            else:
                one_hot = F.one_hot(labels, C).double()
                w = (weights.unsqueeze(0).repeat(len(idx), 1) * one_hot).sum(1)
                loss = (w * F.cross_entropy(logits, labels, reduction="none")).mean()
            loss = loss + wd * (torch.norm(fc.weight) ** 2 / 2 + torch.norm(fc.bias) ** 2 / 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():  # MaxNorm_via_PGD.PGD on fc.weight
                n = torch.linalg.norm(fc.weight, dim=1, keepdim=True)
                over = (n > thresh).squeeze(1)
                fc.weight[over] = fc.weight[over] * (thresh / n[over])
    return fc.weight.detach().numpy(), fc.bias.detach().numpy()


class Stage2AgainstTraining(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.run_path = os.path.join(cls.tmp.name, "wb.h5")
        p = run_ltlab("train", "--recipe", "wb", "--epochs", "3", "--stage2-epochs", "4", *GAUSS,
                      "--stage2-weight-decay", "5e-3", "--train-feature-cap", "-1", "--out", cls.run_path, timeout=300)
        assert p.returncode == 0, describe(p)
        with h5py.File(cls.run_path, "r") as f:
            cls.config = json.loads(f.attrs["config"])
            s1 = f["snapshots/stage1_final"]
            cls.H = s1["train/features"][:]
            cls.y = s1["train/labels"][:]
            cls.W1 = s1["classifier_weight"][:].astype(np.float64)
            cls.b1 = s1["classifier_bias"][:].astype(np.float64)
            s2 = f["snapshots/stage2_final"]
            cls.W2 = s2["classifier_weight"][:].astype(np.float64)
            cls.b2 = s2["classifier_bias"][:].astype(np.float64)
            cls.counts = f["classes/train_counts"][:]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_config_records_the_reduction(self):
        self.assertEqual(self.config["cb_reduction"], "batch")
        self.assertEqual(len(self.y), int(self.counts.sum()))  # every train sample stored

    def test_trainers_stage2_is_the_papers_stage2(self):
        c = self.config
        W, b = papers_stage2_torch(self.H, self.y, self.counts, self.W1, self.b1, c["stage2_weight_decay"],
                                   c["cb_beta"], c["stage2_epochs"], c["lr"], c["batch_size"], c["seed"])
        scale = np.abs(W).max()
        # ltlab trains in float32, the reference in float64.
        self.assertLess(np.abs(self.W2 - W).max(), 1e-4 * scale)
        self.assertLess(np.abs(self.b2 - b).max(), 1e-4 * max(1.0, np.abs(b).max()))
        # The test can tell the losses apart: PyTorch's weighted mean lands elsewhere.
        Wm, _ = papers_stage2_torch(self.H, self.y, self.counts, self.W1, self.b1, c["stage2_weight_decay"],
                                    c["cb_beta"], c["stage2_epochs"], c["lr"], c["batch_size"], c["seed"],
                                    weighted_mean=True)
        self.assertGreater(np.abs(Wm - W).max(), 100 * np.abs(self.W2 - W).max())

    def test_ltlab_stage2_reproduces_the_trainers_stage2(self):
        out = os.path.join(self.tmp.name, "sandbox.h5")
        p = run_ltlab("stage2", self.run_path, "--snapshot", "stage1_final", "--out", out, "--name", "sandbox")
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("the run's training configuration", p.stderr)
        with h5py.File(out, "r") as f:
            W = f["snapshots/sandbox/classifier_weight"][:]
        self.assertLess(np.abs(W - self.W2).max(), 1e-4 * np.abs(W).max())
        trained = analyze_json(self, out, "--snapshot", "stage2_final")
        sandbox = analyze_json(self, out, "--snapshot", "sandbox")
        self.assertLess(abs(trained["accuracy"] - sandbox["accuracy"]), 0.005)
        self.assertLess(abs(trained["implicit_la_tau"] - sandbox["implicit_la_tau"]), 1e-2)

    def test_train_from_a_finished_run_repeats_its_stage2_without_stage1(self):
        out = os.path.join(self.tmp.name, "from.h5")
        p = run_ltlab("train", "--recipe", "wb", "--from", self.run_path, "--out", out, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("snapshot stage1_final (epoch 3)", p.stderr)
        self.assertNotIn("(stage 1)", p.stderr)  # no stage-1 epoch is trained again
        with h5py.File(out, "r") as f:
            config = json.loads(f.attrs["config"])
            self.assertEqual((config["recipe"], config["epochs"], config["stage2_epochs"]), ("wb", 3, 4))
            self.assertEqual(list(f["history/stage"][:]), [1, 1, 1, 2, 2, 2, 2])
            np.testing.assert_array_equal(f["snapshots/stage1_final/classifier_weight"][:], self.W1.astype(np.float32))
            W = f["snapshots/stage2_final/classifier_weight"][:].astype(np.float64)
        # The same settings, seed and order: the source run's stage 2 again.
        self.assertLess(np.abs(W - self.W2).max(), 1e-5 * np.abs(W).max())
        self.assertTrue(os.path.exists(out + ".ckpt"))
        p = run_ltlab("train", "--resume", out)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("nothing to resume", p.stderr)

        # Another stage-2 setting from the same network, against ltlab stage2 on the stored features.
        out5 = os.path.join(self.tmp.name, "from5.h5")
        p = run_ltlab("train", "--recipe", "wb", "--from", self.run_path, "--snapshot", "stage1_final",
                      "--stage2-weight-decay", "0.05", "--cb-reduction", "weight-sum", "--out", out5, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        sandbox = os.path.join(self.tmp.name, "sandbox5.h5")
        p = run_ltlab("stage2", self.run_path, "--snapshot", "stage1_final", "--weight-decay", "0.05",
                      "--cb-reduction", "weight-sum", "--out", sandbox, "--name", "s")
        self.assertEqual(p.returncode, 0, describe(p))
        with h5py.File(out5, "r") as f, h5py.File(sandbox, "r") as g:
            self.assertEqual(json.loads(f.attrs["config"])["cb_reduction"], "weight-sum")
            W5, Ws = f["snapshots/stage2_final/classifier_weight"][:], g["snapshots/s/classifier_weight"][:]
        self.assertLess(np.abs(W5 - Ws).max(), 1e-5 * np.abs(Ws).max())
        self.assertGreater(np.abs(W5 - self.W2).max(), 1e-3)

        # Refusals: stage-1 keys, a stage-2 snapshot, the same file, no checkpoint.
        bad = os.path.join(self.tmp.name, "bad.h5")
        for extra, code, text in [
            (["--weight-decay", "0.1"], 1, "describes stage 1"),
            (["--snapshot", "stage2_final"], 1, "from stage 2"),
            (["--dataset", "fashion-mnist-lt"], 1, "describes stage 1"),
        ]:
            p = run_ltlab("train", "--recipe", "wb", "--from", self.run_path, *extra, "--out", bad)
            self.assertEqual(p.returncode, code, "%s: %s" % (extra, describe(p)))
            self.assertIn(text, p.stderr)
        p = run_ltlab("train", "--recipe", "wb", "--from", self.run_path, "--out", self.run_path, "--overwrite")
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("--out must differ from --from", p.stderr)
        orphan = os.path.join(self.tmp.name, "orphan.h5")
        with open(self.run_path, "rb") as src, open(orphan, "wb") as dst:
            dst.write(src.read())
        p = run_ltlab("train", "--recipe", "wb", "--from", orphan, "--out", bad)
        self.assertEqual(p.returncode, 2, describe(p))
        self.assertIn("no checkpoint", p.stderr)
        self.assertFalse(os.path.exists(bad))

    def test_a_capped_train_sample_is_said_plainly(self):
        capped = os.path.join(self.tmp.name, "capped.h5")
        p = run_ltlab("train", "--recipe", "ce-wd", "--epochs", "2", *GAUSS, "--train-feature-cap", "10",
                      "--snapshot-every", "1", "--out", capped, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        # The snapshot of epoch 1 holds the capped sample; the stage's end, every train row.
        with h5py.File(capped, "r") as f:
            total = int(f["classes/train_counts"][:].sum())
            self.assertEqual(f["snapshots/final/train/labels"].shape[0], total)
            capped_rows = f["snapshots/epoch_0001/train/labels"].shape[0]
            self.assertLessEqual(capped_rows, 10 * len(f["classes/train_counts"]))
            # /history's train metrics are of the rows the epoch's snapshot holds.
            self.assertEqual(list(f["history/train_rows"][:]), [capped_rows, total])
        for snapshot, sample in (("epoch_0001", True), ("final", False)):
            p = run_ltlab("stage2", capped, "--snapshot", snapshot, "--out", capped, "--epochs", "1")
            self.assertEqual(p.returncode, 0, describe(p))
            self.assertEqual("note: the train split holds" in p.stderr, sample, p.stderr)
            self.assertEqual("train_feature_cap 10 per class" in p.stderr, sample, p.stderr)
            with h5py.File(capped, "r") as f:
                config = json.loads(f["snapshots/%s_stage2" % snapshot].attrs["config"])
            self.assertEqual(config["train_is_sample"], sample)
            self.assertEqual(config["train_rows"] < config["training_set_size"], sample)
        # A ce-wd run goes on to stage 2 with the wb recipe's stage-2 defaults.
        wb = os.path.join(self.tmp.name, "capped-wb.h5")
        p = run_ltlab("train", "--recipe", "wb", "--from", capped, "--stage2-epochs", "2", "--out", wb, timeout=300)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("snapshot final (epoch 2)", p.stderr)
        with h5py.File(wb, "r") as f:
            config = json.loads(f.attrs["config"])
            self.assertEqual((config["recipe"], config["stage2_weight_decay"], config["cb_reduction"]), ("wb", 0.1, "batch"))
            self.assertIn("stage2_final", f["snapshots"])
            self.assertNotIn("final_stage2", f["snapshots"])  # the source's stage-2 snapshot is not stage 1


if __name__ == "__main__":
    unittest.main()
