"""`ltlab layers` (docs/analysis.md, "Layer-wise analysis") against numpy and
Debian's python3-torch: small models written here (ltlab's small CNN and MLP
as state_dicts), their per-block features recomputed in PyTorch, and every
statistic recomputed with numpy: the cosines of the flattened maps, the
channel-pooled FDR, ReLU-FDR and traces, the sample-space pseudo-inverse FDR
of flattened maps against a direct D x D computation, mean, variance, Hoyer
sparsity and the batch-norm statistics. The noise path is seeded and
reproducible, label-free statistics are null on noise, --init differs from
the trained weights, --out stores what the JSON says, a run of ltlab train and
a run of ltlab import are rebuilt, a traced TorchScript module's top-level
submodules are its layers (against PyTorch), and bad inputs fail cleanly.

Run: LTLAB_BIN=build/bin/ltlab /usr/bin/python3 -m unittest -v test_layers
"""

import math
import os
import sys
import tempfile
import unittest

import h5py
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltlab_ckpt_models as models  # noqa: E402
import ltlab_reference as ref  # noqa: E402
import ltlab_testutil as tu  # noqa: E402
from ltlab_testutil import run_ltlab  # noqa: E402

C = 3
PER_CLASS = 8
FMNIST = (0.2860, 0.3530)
LABEL_FREE = ("cone_mean_cos", "cone_std_cos", "feature_mean", "feature_var", "hoyer_sparsity")
LABELLED = ("cone_mean_cos_same_class", "cone_mean_cos_diff_class", "fdr", "relu_fdr", "trace_sw", "trace_sb",
            "trace_ratio")


# ---- numpy reference ---------------------------------------------------------------------

def fdr(X, y):
    """analysis.md's FDR with the D x D matrices: constant dims dropped, pinv cut at 1e-8."""
    X = np.asarray(X, dtype=np.float64)
    keep = ~(np.abs(X - X[0]).max(axis=0) <= 1e-3 * abs(X.mean()))
    X = X[:, keep]
    mu = X.mean(axis=0)
    sw = np.zeros((X.shape[1], X.shape[1]))
    sb = np.zeros_like(sw)
    for c in np.unique(y):
        Xc = X[y == c]
        m = Xc.mean(axis=0)
        sw += (Xc - m).T @ (Xc - m)
        sb += len(Xc) * np.outer(m - mu, m - mu)
    return float(np.trace(ref.pinv_sym(sw) @ sb)), float(np.trace(sw)), float(np.trace(sb))


def pair_stats(X, y=None):
    X = np.asarray(X, dtype=np.float64)
    n = np.linalg.norm(X, axis=1)
    keep = n > 0
    U = X[keep] / n[keep, None]
    G = U @ U.T
    i, j = np.tril_indices(len(U), -1)
    c = G[i, j]
    out = {"cone_mean_cos": c.mean(), "cone_std_cos": c.std()}
    if y is not None:
        yk = np.asarray(y)[keep]
        same = yk[i] == yk[j]
        out.update(cone_mean_cos_same_class=c[same].mean(), cone_std_cos_same_class=c[same].std(),
                   cone_mean_cos_diff_class=c[~same].mean(), cone_std_cos_diff_class=c[~same].std())
    return out


def layer_reference(h, y=None, flat=False):
    """Every statistic of one layer's output h (torch, N x ...), as docs/analysis.md defines it."""
    X = h.reshape(h.shape[0], -1).double().numpy()
    N, D = X.shape
    r = pair_stats(X, y)
    r["feature_mean"] = X.mean()
    r["feature_var"] = X.var(ddof=1)
    a = np.abs(X)
    l1, l2 = a.sum(axis=1), np.sqrt((a * a).sum(axis=1))
    hoyer = (math.sqrt(D) - l1[l2 > 0] / l2[l2 > 0]) / (math.sqrt(D) - 1)
    r["hoyer_sparsity"] = hoyer.mean()
    r["hoyer_sparsity_var"] = hoyer.var(ddof=1)
    if y is None:
        return r
    pooled = h.double().mean(dim=(2, 3)).numpy() if h.dim() == 4 else X
    relu_pooled = torch.relu(h).double().mean(dim=(2, 3)).numpy() if h.dim() == 4 else np.maximum(X, 0)
    r["fdr"], r["trace_sw"], r["trace_sb"] = fdr(pooled, y)
    r["relu_fdr"] = fdr(relu_pooled, y)[0]
    r["trace_ratio"] = r["trace_sb"] / r["trace_sw"]
    if flat:
        r["flat_fdr"], r["flat_trace_sw"], r["flat_trace_sb"] = fdr(X, y)
        r["flat_relu_fdr"] = fdr(np.maximum(X, 0), y)[0]
    return r


def bn_stats(bns):
    g = torch.cat([b.weight.detach().double() for b in bns]).numpy()
    b = torch.cat([b.bias.detach().double() for b in bns]).numpy()
    return {"bn_gamma_mean": g.mean(), "bn_gamma_std": g.std(), "bn_beta_mean": b.mean(), "bn_beta_std": b.std()}


def cnn_blocks(model, x):
    """ltlab's small CNN block outputs: input, block1..3 (after ReLU, pools after 1 and 2), pooled."""
    out = [("input", x)]
    with torch.no_grad():
        model.eval()
        for i in range(3):
            x = torch.relu(getattr(model, "bn%d" % (i + 1))(getattr(model, "conv%d" % (i + 1))(x)))
            if i < 2:
                x = torch.nn.functional.max_pool2d(x, 2)
            out.append(("block%d" % (i + 1), x))
        out.append(("pooled", x.mean(dim=(2, 3))))
    return out


def mlp_blocks(model, x):
    with torch.no_grad():
        h1 = torch.relu(model.fc1(x.flatten(1)))
        return [("input", x), ("fc1", h1), ("fc2", torch.relu(model.fc2(h1)))]  # the input image: 1 channel


# ---- fixtures ------------------------------------------------------------------------------

def write_images(root, seed=0):
    """C classes of PER_CLASS 28x28 grey images, a little class structure; returns the
    normalised tensor in ImageFolder order and the labels."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(C):
        os.makedirs(os.path.join(root, "class_%d" % c))
        base = rng.integers(0, 256, (28, 28))
        for i in range(PER_CLASS):
            img = np.clip(0.6 * base + 0.4 * rng.integers(0, 256, (28, 28)), 0, 255).astype(np.uint8)
            Image.fromarray(img, "L").save(os.path.join(root, "class_%d" % c, "img_%02d.png" % i))
            xs.append(torch.from_numpy(img.astype(np.float32) / 255)[None])
            ys.append(c)
    return (torch.stack(xs) - FMNIST[0]) / FMNIST[1], np.array(ys)


class LayersCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.folder = os.path.join(d, "images")
        cls.x, cls.y = write_images(cls.folder)
        torch.manual_seed(0)
        cls.cnn = models.LtlabCnn(1, C)
        models.calibrate(cls.cnn, cls.x)
        cls.cnn_path = os.path.join(d, "cnn.pt")
        torch.save(cls.cnn.state_dict(), cls.cnn_path)
        cls.mlp = models.LtlabMlp(28 * 28, C)
        cls.mlp_path = os.path.join(d, "mlp.pt")
        torch.save(cls.mlp.state_dict(), cls.mlp_path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def layers(self, path, *args, code=0):
        proc = run_ltlab("layers", path, "--format", "json", "--threads", "2", *args, timeout=600)
        self.assertEqual(proc.returncode, code, tu.describe(proc))
        return tu.parse_json(proc.stdout) if code == 0 else proc

    def images(self, path, *args):
        return self.layers(path, "--dataset", "folder:" + self.folder, "--inputs", "test",
                           "--samples", str(C * PER_CLASS), *args)

    def assert_layer(self, got, want, rtol=1e-5, fdr_rtol=1e-4):
        for key, value in want.items():
            with self.subTest(layer=got["name"], key=key):
                self.assertIsNotNone(got[key], key)
                tol = fdr_rtol if "fdr" in key else rtol
                self.assertLessEqual(abs(got[key] - value), tol * abs(value) + 1e-7, "%s: %r vs %r" % (key, got[key], value))


class AgainstPython(LayersCase):
    def test_cnn_statistics_per_layer(self):
        got = self.images(self.cnn_path)
        want = cnn_blocks(self.cnn, self.x)
        self.assertEqual([g["name"] for g in got], [n for n, _ in want])
        for g, (name, h) in zip(got, want):
            self.assertEqual(g["dimension"], int(np.prod(h.shape[1:])))
            self.assert_layer(g, layer_reference(h, self.y))
        bns = [self.cnn.bn1, self.cnn.bn2, self.cnn.bn3]
        for i in range(3):
            self.assertEqual(got[i + 1]["bn_layers"], 1)
            self.assert_layer(got[i + 1], bn_stats([bns[i]]))
        self.assertEqual(got[0]["bn_layers"], 0)
        self.assertIsNone(got[0]["bn_gamma_mean"])

    def test_flat_fdr_in_sample_space_equals_direct(self):
        # N = 24 < D for every layer (784, 256, 128): the sample-space path,
        # against tr(pinv(S_W) S_B) with the D x D matrices.
        got = self.images(self.mlp_path, "--flat-fdr")
        want = mlp_blocks(self.mlp, self.x)
        self.assertEqual([g["name"] for g in got], [n for n, _ in want])
        for g, (name, h) in zip(got, want):
            self.assertGreater(g["dimension"], C * PER_CLASS)
            self.assert_layer(g, layer_reference(h, self.y, flat=True), fdr_rtol=1e-3)

    def test_standardised_features(self):
        got = self.images(self.cnn_path, "--standardize")
        for g, (name, h) in zip(got, cnn_blocks(self.cnn, self.x)):
            X = h.reshape(h.shape[0], -1).double()
            sd = X.std(0, unbiased=True)
            Z = torch.where(sd < 1e-5, torch.zeros_like(X), (X - X.mean(0)) / (2 * sd + 1e-6))
            want = pair_stats(Z.numpy(), self.y)
            want["feature_var"] = Z.numpy().var(ddof=1)
            self.assert_layer(g, want)


class Noise(LayersCase):
    def test_seeded_reproducible_and_label_free(self):
        a = self.layers(self.cnn_path, "--samples", "64", "--seed", "5")
        b = self.layers(self.cnn_path, "--samples", "64", "--seed", "5")
        c = self.layers(self.cnn_path, "--samples", "64", "--seed", "6")
        self.assertEqual(a, b)
        self.assertNotEqual(a[1]["cone_mean_cos"], c[1]["cone_mean_cos"])
        for layer in a:
            for key in LABEL_FREE:
                self.assertIsNotNone(layer[key], (layer["name"], key))
            for key in LABELLED:
                self.assertIsNone(layer[key], (layer["name"], key))
        self.assertEqual(a[0]["dimension"], 28 * 28)
        # The input is N(0,1): mean about 0, variance about 1.
        self.assertLess(abs(a[0]["feature_mean"]), 0.05)
        self.assertLess(abs(a[0]["feature_var"] - 1), 0.05)

    def test_init_differs_from_trained(self):
        trained = self.layers(self.cnn_path, "--samples", "32")
        init = self.layers(self.cnn_path, "--samples", "32", "--init")
        init2 = self.layers(self.cnn_path, "--samples", "32", "--init")
        self.assertEqual(trained[0], init[0])  # the same noise
        self.assertNotEqual(trained[1]["cone_mean_cos"], init[1]["cone_mean_cos"])
        self.assertEqual(init, init2)
        self.assertEqual(init[1]["bn_gamma_mean"], 1.0)  # fresh BN: gamma 1, beta 0
        self.assertEqual(init[1]["bn_beta_std"], 0.0)


class Storage(LayersCase):
    def test_out_stores_the_json_and_the_run_still_analyses(self):
        run = os.path.join(self.tmp.name, "run.h5")
        tu.write_base(run)
        got = self.layers(self.cnn_path, "--samples", "32", "--out", run)
        with h5py.File(run, "r") as f:
            g = f["layers/noise_trained"]
            self.assertEqual(g.attrs["inputs"], "noise")
            self.assertEqual(g.attrs["weights"], "trained")
            self.assertEqual(int(g.attrs["samples"]), 32)
            self.assertEqual([n.decode() if isinstance(n, bytes) else n for n in g["name"][()]],
                             [layer["name"] for layer in got])
            for l, layer in enumerate(got):
                self.assertEqual(int(g["dimension"][l]), layer["dimension"])
                for key in LABEL_FREE + LABELLED:
                    stored = float(g[key][l])
                    if layer[key] is None:
                        self.assertTrue(math.isnan(stored), key)
                    else:
                        self.assertEqual(stored, layer[key], key)
        proc = run_ltlab("analyze", run)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))


class Runs(LayersCase):
    def test_a_trained_run_is_rebuilt_from_its_checkpoint(self):
        run = os.path.join(self.tmp.name, "trained.h5")
        proc = run_ltlab("train", "--recipe", "ce", "--epochs", "1", "--threads", "2", "--out", run, timeout=600)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        got = self.layers(run, "--inputs", "test", "--samples", "100")
        self.assertEqual([g["name"] for g in got], ["input", "block1", "block2", "block3", "pooled"])
        for g in got:
            self.assertEqual(g["samples"], 100)
            self.assertIsNotNone(g["fdr"], g["name"])
        os.rename(run + ".ckpt", run + ".moved")
        proc = self.layers(run, code=2)
        self.assertIn(run + ".ckpt", proc.stderr)
        self.assertEqual(len(self.layers(run, "--init", "--samples", "16")), 5)  # no weights needed


class TinyScripted(torch.nn.Module):
    """Top-level submodules as a TorchScript user's model has them: two conv blocks, a pool, the head."""

    def __init__(self):
        super().__init__()
        self.block1 = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
        self.block2 = torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3, padding=1, stride=2), torch.nn.BatchNorm2d(6),
                                          torch.nn.ReLU())
        self.fc = torch.nn.Linear(6, C)

    def forward(self, x):
        h = self.block2(self.block1(x)).mean(dim=(2, 3))
        return self.fc(h)


class TorchScriptAndImports(LayersCase):
    def test_torchscript_top_level_submodules_against_pytorch(self):
        # A TorchScript module's input shape is not in its weights: ltlab takes 3 channels
        # (grey images are replicated), normalised as given.
        torch.manual_seed(3)
        x3 = self.x.repeat(1, 3, 1, 1)
        model = TinyScripted()
        models.calibrate(model, x3)
        model.eval()
        path = os.path.join(self.tmp.name, "scripted.pt")
        torch.jit.trace(model, x3[:2]).save(path)
        got = self.images(path, "--mean", ",".join([str(FMNIST[0])] * 3), "--std", ",".join([str(FMNIST[1])] * 3),
                          "--resize", "28", "--crop", "28")
        with torch.no_grad():
            h1 = model.block1(x3)
            h2 = model.block2(h1)
            want = [("input", x3), ("block1", h1), ("block2", h2), ("pooled", h2.mean(dim=(2, 3)))]
        self.assertEqual([g["name"] for g in got], [n for n, _ in want])
        for g, (name, h) in zip(got, want):
            self.assertEqual(g["dimension"], int(np.prod(h.shape[1:])), name)
            self.assert_layer(g, layer_reference(h, self.y))

    def test_an_imported_run_is_rebuilt_from_its_recorded_source(self):
        run = os.path.join(self.tmp.name, "imported.h5")
        counts = os.path.join(self.tmp.name, "counts.json")
        with open(counts, "w") as f:
            f.write("[40, 20, 10]")
        proc = run_ltlab("import", self.cnn_path, "--dataset", "folder:" + self.folder, "--counts", counts,
                         "--out", run, timeout=600)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        from_run = self.layers(run, "--inputs", "test", "--samples", str(C * PER_CLASS))
        from_file = self.images(self.cnn_path)
        self.assertEqual([g["name"] for g in from_run], [g["name"] for g in from_file])
        for a, b in zip(from_run, from_file):
            self.assertAlmostEqual(a["cone_mean_cos"], b["cone_mean_cos"], places=9)
            self.assertAlmostEqual(a["fdr"], b["fdr"], delta=1e-7 * abs(b["fdr"]))


class BadInput(LayersCase):
    def test_errors_name_the_file(self):
        missing = os.path.join(self.tmp.name, "absent.pt")
        proc = self.layers(missing, code=2)
        self.assertIn(missing, proc.stderr)
        junk = os.path.join(self.tmp.name, "junk.pt")
        with open(junk, "wb") as f:
            f.write(b"not a checkpoint")
        proc = self.layers(junk, code=2)
        self.assertIn(junk, proc.stderr)
        proc = self.layers(self.cnn_path, "--inputs", "test", code=1)  # a split needs --dataset
        self.assertIn("--dataset", proc.stderr)
        proc = self.layers(self.cnn_path, "--inputs", "nothing", code=1)
        self.assertIn("--inputs", proc.stderr)
        plain = os.path.join(self.tmp.name, "plain.h5")
        tu.write_base(plain)  # a run file that records no model
        proc = self.layers(plain, code=2)
        self.assertIn(plain, proc.stderr)


if __name__ == "__main__":
    unittest.main()
