"""`ltlab import` end to end (docs/checkpoints.md): checkpoints written here by
Debian's python3-torch for every built-in architecture (plain, DataParallel
`module.`, training-checkpoint dict, legacy format, GPU-tagged), the papers'
layout with the ETF head and HN410's side files, a torchvision resnet18,
TorchScript scripted and traced, and bad inputs. Features and logits are
compared with Python's on the same images (max abs difference < 1e-4).

Run: LTLAB_BIN=build/bin/ltlab /usr/bin/python3 -m unittest -v test_import
"""

import json
import os
import random
import sys
import tempfile
import unittest

import h5py
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltlab_ckpt_models as models  # noqa: E402
import ltlab_testutil as tu  # noqa: E402
from ltlab_testutil import run_ltlab  # noqa: E402

CIFAR = ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010])
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
FMNIST = ([0.2860], [0.3530])
TOL = 1e-4
C = 3


def write_folder(root, sizes, mode, jpeg_first=False, seed=0):
    """One subfolder per class; sizes: list of (h, w) per class (one image each), x2."""
    rng = np.random.default_rng(seed)
    for c in range(C):
        os.makedirs(os.path.join(root, "class_%d" % c), exist_ok=True)
        for i, (h, w) in enumerate(sizes):
            shape = (h, w) if mode == "L" else (h, w, 3)
            img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
            jpeg = jpeg_first and c == 0 and i == 0
            img.save(os.path.join(root, "class_%d" % c, "img_%d.%s" % (i, "jpg" if jpeg else "png")))
    return root


def load_folder(root, channels, resize, crop, norm):
    """The images as ltlab evaluates them: torchvision's ImageFolder order,
    Resize(resize) (antialiased bilinear on tensors), CenterCrop(crop), Normalize."""
    xs = []
    for c in sorted(os.listdir(root)):
        for f in sorted(os.listdir(os.path.join(root, c))):
            img = Image.open(os.path.join(root, c, f)).convert("L" if channels == 1 else "RGB")
            x = torch.from_numpy(np.asarray(img).copy()).float().div(255)
            x = x.unsqueeze(0) if channels == 1 else x.permute(2, 0, 1)
            h, w = x.shape[1:]
            if resize and min(h, w) != resize:
                size = (resize, resize * w // h) if h <= w else (resize * h // w, resize)
                x = torch.nn.functional.interpolate(x[None], size=size, mode="bilinear", align_corners=False,
                                                    antialias=True)[0]
            h, w = x.shape[1:]
            top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
            xs.append(x[:, top:top + crop, left:left + crop])
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in norm)
    return (torch.stack(xs) - mean) / std


def outputs(model, x):
    """(features, logits) in eval mode; features = the classifier's input."""
    got = {}
    head = model.fc if hasattr(model, "fc") else model.encoder.fc
    hook = head.register_forward_pre_hook(lambda m, inp: got.setdefault("h", inp[0].detach().clone()))
    with torch.no_grad():
        z = model.eval()(x)
    hook.remove()
    return got["h"], z


def save_variants(model, stem, d):
    """plain state_dict; DataParallel keys + GPU tag (zip); training-checkpoint dict in the legacy format."""
    sd = model.state_dict()
    torch.save(sd, os.path.join(d, stem + "_01.pth"))
    original = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: "cuda:0"
    try:
        torch.save(torch.nn.DataParallel(model).state_dict(), os.path.join(d, stem + "_02.pt"))
    finally:
        torch.serialization.location_tag = original
    torch.save({"epoch": 3, "state_dict": sd, "best_acc": np.float64(0.25)}, os.path.join(d, stem + "_x.ckpt"),
               _use_new_zipfile_serialization=False)


class ImportTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        torch.manual_seed(0)
        torch.set_num_threads(1)
        cls.tmp = tempfile.TemporaryDirectory(prefix="ltlab_import_")
        t = cls.tmp.name
        cls.rgb32 = write_folder(os.path.join(t, "rgb32"), [(32, 32), (32, 32)], "RGB", jpeg_first=True)
        cls.gray28 = write_folder(os.path.join(t, "gray28"), [(28, 28), (28, 28)], "L")
        cls.rgb256 = write_folder(os.path.join(t, "rgb256"), [(256, 256), (320, 288)], "RGB")
        cls.rgb64 = write_folder(os.path.join(t, "rgb64"), [(64, 64), (80, 72)], "RGB")
        cls.counts = os.path.join(t, "counts.json")
        with open(cls.counts, "w") as f:
            json.dump([50, 10, 2], f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        tu.ltlab_bin()

    def path(self, *names):
        return os.path.join(self.tmp.name, *names)

    def run_import(self, *args, code=0):
        """One thread unless told otherwise, as Python's torch here: the same kernels, the same sums."""
        threads = () if "--threads" in args else ("--threads", "1")
        proc = run_ltlab("import", *args, *threads, timeout=600)
        self.assertEqual(proc.returncode, code, tu.describe(proc))
        self.assertNotIn("Traceback", proc.stderr)
        return proc

    def assert_snapshot(self, run, snapshot, expected, split="test", labels=None):
        """Features and logits within TOL of Python's, relative to their largest magnitude
        (at least 1); labels in ImageFolder order unless given. Relative: where OpenBLAS
        falls back to Prescott, ltlab picks another kernel (docs/performance.md) and
        Python's torch keeps Prescott, so deep nets (ResNet-50) differ by float32
        rounding in their BLAS layers (2.8e-4 on features of magnitude 55)."""
        h, z = expected
        with h5py.File(run, "r") as f:
            g = f["snapshots"][snapshot][split]
            self.assertEqual(g["features"].shape, tuple(h.shape), snapshot)
            for name, ref in (("features", h.numpy()), ("logits", z.numpy())):
                tol = TOL * max(1.0, float(np.abs(ref).max()))
                self.assertLess(np.abs(g[name][()] - ref).max(), tol, "%s %s" % (snapshot, name))
            if labels is None:
                labels = [c for c in range(C) for _ in range(len(g["labels"]) // C)]
            self.assertEqual(list(g["labels"][()]), list(labels))

    # -- every built-in architecture ------------------------------------------------

    def check_architecture(self, name, model, folder, channels, resize, crop, norm, *args):
        d = self.path("arch_" + name)
        os.makedirs(d)
        x = load_folder(folder, channels, resize, crop, norm)
        models.calibrate(model, torch.randn(8, *x.shape[1:]))
        expected = outputs(model, x)
        save_variants(model, name, d)
        run = self.path(name + ".h5")
        proc = self.run_import(d, "--dataset", "folder:" + folder, "--counts", self.counts, "--out", run, "--logits", *args)
        with h5py.File(run, "r") as f:
            snaps = sorted(f["snapshots"], key=lambda s: f["snapshots"][s].attrs["epoch"])
            self.assertEqual(snaps, [name + "_01", name + "_02", name + "_x"])
            self.assertEqual([int(f["snapshots"][s].attrs["epoch"]) for s in snaps], [1, 2, 3])
            config = json.loads(f.attrs["config"])
            self.assertEqual(list(f["classes"]["train_counts"][()]), [50, 10, 2])
        self.assertEqual(config["kind"], "import")
        self.assertEqual(len(config["sources"]), 3)
        self.assertEqual(len(config["sources"][0]["sha256"]), 64)
        for s in snaps:
            self.assert_snapshot(run, s, expected)
        return proc, config

    def test_small_architectures(self):
        self.check_architecture("mlp", models.LtlabMlp(784, C), self.gray28, 1, 28, 28, FMNIST)
        self.check_architecture("cnn", models.LtlabCnn(1, C), self.gray28, 1, 28, 28, FMNIST)
        _, config = self.check_architecture("resnet32", models.cifar_resnet(5, num_classes=C), self.rgb32, 3, 32, 32, CIFAR)
        self.assertEqual(config["architecture"], "resnet32")
        self.assertEqual(config["transform"]["crop"], 32)

    def test_safetensors(self):
        """A safetensors file (8-byte length, JSON header, raw little-endian data; written here
        byte by byte, as the format's spec says) imports like the state_dict it holds."""
        model = models.LtlabCnn(1, C)
        x = load_folder(self.gray28, 1, 28, 28, FMNIST)
        models.calibrate(model, torch.randn(8, *x.shape[1:]))
        expected = outputs(model, x)
        sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
        for k, v in sd.items():
            dtype = {torch.float32: "F32", torch.int64: "I64"}[v.dtype]
            blob = v.numpy().tobytes()
            header[k] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [offset, offset + len(blob)]}
            blobs.append(blob)
            offset += len(blob)
        text = json.dumps(header).encode()
        path = self.path("cnn.safetensors")
        with open(path, "wb") as f:
            f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))
        run = self.path("cnn_safetensors.h5")
        self.run_import(path, "--dataset", "folder:" + self.gray28, "--counts", self.counts, "--out", run, "--logits")
        with h5py.File(run, "r") as f:
            self.assertEqual(list(f["snapshots"]), ["cnn"])
            self.assertEqual(json.loads(f.attrs["config"])["sources"][0]["format"], "safetensors")
        self.assert_snapshot(run, "cnn", expected)

    def test_resnets_cifar_form(self):
        for name in ("resnet18", "resnet34", "resnet50", "resnext50_32x4d"):
            with self.subTest(arch=name):
                _, config = self.check_architecture(name, models.resnet(name, num_classes=C, cifar=True), self.rgb32, 3, 32, 32,
                                                    CIFAR)
                self.assertEqual(config["architecture"], name)

    def test_resnets_imagenet_form(self):
        # small images keep it quick (the 256/224 default is tested with torchvision's resnet18)
        for name in ("resnet18", "resnet34", "resnet50", "resnext50_32x4d"):
            with self.subTest(arch=name):
                _, config = self.check_architecture(name + "_im", models.resnet(name, num_classes=C, cifar=False), self.rgb64,
                                                    3, 64, 56, IMAGENET, "--resize", "64", "--crop", "56")
                self.assertEqual(config["architecture"], name + "-imagenet")
                self.assertEqual((config["transform"]["resize"], config["transform"]["crop"]), (64, 56))

    # -- the papers' layout and side files ----------------------------------------------

    def test_papers_layout_etf_and_side_files(self):
        d = self.path("hn410")
        os.makedirs(d)
        model = models.Wrapper(models.resnet("resnet34", num_classes=C, cifar=True), etf=True)
        x = load_folder(self.rgb32, 3, 32, 32, CIFAR)
        models.calibrate(model, torch.randn(8, 3, 32, 32))
        expected = outputs(model, x)
        torch.save(model.state_dict(), os.path.join(d, "best.paramOnly"))
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
        torch.save({"epoch": 7, "model": model.state_dict(), "opt": opt.state_dict(), "py_random": random.getstate(),
                    "torch_random": torch.get_rng_state(), "cuda_random": None}, os.path.join(d, "checkpoint.ckpt"))
        with open(os.path.join(d, "args.json"), "w") as f:
            json.dump({"data": {"name": "CIFAR100", "n_classes": C},
                       "model": {"name": "ResNet34", "use_etf": True, "logit_adjustment_tau": 0.65,
                                 "use_additive_logit_adjustment": False}}, f)
        norms = [torch.rand(C) + 0.5 for _ in range(4)]
        torch.save({"model_name": "ResNet34", "weightNorm": norms, "acc_train": [0.1, 0.2, 0.3, 0.4],
                    "acc_test": [0.05, 0.1, 0.15, 0.2], "best_acc": 0.2}, os.path.join(d, "trackRecords.ckpt"))
        run = self.path("hn410.h5")
        proc = self.run_import(d, "--dataset", "folder:" + self.rgb32, "--counts", self.counts, "--out", run, "--logits")
        self.assertIn("resnet34", proc.stdout)
        with h5py.File(run, "r") as f:
            self.assertEqual(sorted(f["snapshots"]), ["best", "best_la", "checkpoint", "checkpoint_la"])
            self.assertEqual(int(f["snapshots/checkpoint"].attrs["epoch"]), 7)
            self.assertNotIn("epoch", f["snapshots/best"].attrs)
            fc = model.encoder.fc
            w = (fc.weight_vec * fc.weight_norm).detach().numpy()
            np.testing.assert_allclose(f["snapshots/best/classifier_weight"][()], w, atol=1e-6)
            self.assertIn("multiplicative", f["snapshots/best_la"].attrs["label"])
            h = f["history"]
            self.assertEqual(list(h["epoch"][()]), [1, 2, 3, 4])
            np.testing.assert_allclose(h["test_accuracy"][()], [0.05, 0.1, 0.15, 0.2])
            for c in range(C):
                np.testing.assert_allclose(h["weight_norm_%d" % c][()], [float(n[c]) for n in norms], rtol=1e-6)
        for s in ("best", "checkpoint"):
            self.assert_snapshot(run, s, expected)
        # the run reads like any other
        got = tu.analyze_json(self, run, "--snapshot", "checkpoint")
        self.assertIn("accuracy", json.dumps(got))

    # -- a torchvision model --------------------------------------------------------------

    def test_torchvision_resnet18(self):
        try:
            import torchvision
        except ImportError:
            self.skipTest("python3-torchvision is not installed (tools/install-deps.sh)")
        model = torchvision.models.resnet18(num_classes=C)
        x = load_folder(self.rgb256, 3, 256, 224, IMAGENET)
        models.calibrate(model, torch.randn(4, 3, 224, 224))
        expected = outputs(model, x)
        p = self.path("torchvision_resnet18.pth")
        torch.save(model.state_dict(), p)
        run = self.path("tv.h5")
        self.run_import(p, "--dataset", "folder:" + self.rgb256, "--counts", self.counts, "--out", run, "--logits")
        self.assert_snapshot(run, "torchvision_resnet18", expected)
        with h5py.File(run, "r") as f:
            config = json.loads(f.attrs["config"])
        self.assertEqual(config["architecture"], "resnet18-imagenet")
        t = config["transform"]
        self.assertEqual((t["channels"], t["resize"], t["crop"]), (3, 256, 224))
        np.testing.assert_allclose([t["mean"], t["std"]], IMAGENET, rtol=1e-6)

    # -- data: a dataset training knows, split folders, split lists, appending ----------------

    def test_fashion_mnist_and_appending(self):
        if not os.path.exists("/usr/share/datasets/fashion-mnist"):
            self.skipTest("dataset-fashion-mnist is not installed")
        import gzip
        with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
            images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
        with gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz") as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)
        x = (torch.from_numpy(images.copy()).float() / 255 - FMNIST[0][0]) / FMNIST[1][0]
        model = models.calibrate(models.LtlabCnn(1, 10), x[:64])
        expected = outputs(model, x)
        p1, p2 = self.path("fm_cnn_5.pth"), self.path("fm_cnn_9.pth")
        torch.save(model.state_dict(), p1)
        torch.save(model.state_dict(), p2)
        run = self.path("fm.h5")
        proc = self.run_import(p1, "--dataset", "fashion-mnist", "--splits", "test", "--out", run, "--logits", "--progress-json")
        events = [json.loads(line) for line in proc.stdout.splitlines()]
        kinds = {e["event"] for e in events}
        self.assertTrue({"progress", "snapshot"} <= kinds, kinds)
        self.assertTrue(any(e["event"] == "progress" and e["eta_seconds"] is not None for e in events))
        self.assert_snapshot(run, "fm_cnn_5", expected, labels=labels)
        with h5py.File(run, "r") as f:
            self.assertEqual(list(f["classes/train_counts"][()]), [6000] * 10)
            self.assertEqual(list(f["snapshots/fm_cnn_5"]), ["classifier_bias", "classifier_weight", "test"])
        # appending: the second checkpoint joins the run, its source is recorded
        self.run_import(p2, "--dataset", "fashion-mnist", "--splits", "test", "--out", run, "--max-per-class", "3")
        with h5py.File(run, "r") as f:
            self.assertEqual(sorted(f["snapshots"]), ["fm_cnn_5", "fm_cnn_9"])
            self.assertEqual(len(f["snapshots/fm_cnn_9/test/labels"]), 30)
            self.assertEqual([s["snapshot"] for s in json.loads(f.attrs["config"])["sources"]], ["fm_cnn_5", "fm_cnn_9"])

    def test_split_folders_and_lists(self):
        root = self.path("splits")
        for split in ("train", "test"):
            write_folder(os.path.join(root, split), [(32, 32)] * (3 if split == "train" else 1), "RGB", seed=len(split))
        model = models.calibrate(models.cifar_resnet(1, num_classes=C), torch.randn(8, 3, 32, 32))
        p = self.path("r8.pth")
        torch.save(model.state_dict(), p)
        run = self.path("splits.h5")
        self.run_import(p, "--dataset", "folder:" + root, "--out", run, "--logits", "--threads", "2")
        with h5py.File(run, "r") as f:
            self.assertEqual(list(f["classes/train_counts"][()]), [3, 3, 3])
            self.assertEqual(sorted(f["snapshots/r8"]), ["classifier_bias", "classifier_weight", "test", "train"])
        self.assert_snapshot(run, "r8", outputs(model, load_folder(os.path.join(root, "test"), 3, 32, 32, CIFAR)))
        # the same test images through an ImageNet-LT style list, relative to the root
        lst = self.path("ImageNet_LT_test.txt")
        with open(lst, "w") as f:
            for c in range(C):
                f.write("test/class_%d/img_0.png %d\n" % (c, c))
        run2 = self.path("list.h5")
        self.run_import(p, "--dataset", "list:" + lst, "--data-dir", root, "--counts", self.counts, "--out", run2, "--logits")
        self.assert_snapshot(run2, "r8", outputs(model, load_folder(os.path.join(root, "test"), 3, 32, 32, CIFAR)))

    # -- TorchScript ----------------------------------------------------------------------------

    def test_torchscript(self):
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = torch.nn.Conv2d(3, 8, 3, 1, 1, bias=False)
                self.bn1 = torch.nn.BatchNorm2d(8)
                self.fc = torch.nn.Linear(8, C)

            def body(self, x):
                x = torch.relu(self.bn1(self.conv1(x)))
                return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)

            def forward(self, x):
                return self.fc(self.body(x))

        class Exported(Net):
            @torch.jit.export
            def features(self, x):
                return self.body(x)

            def forward(self, x):
                return self.fc(self.features(x))

        x = load_folder(self.rgb32, 3, 32, 32, CIFAR)
        cases = []
        for kind, cls in (("exported", Exported), ("plain", Net)):
            m = models.calibrate(cls(), torch.randn(8, 3, 32, 32))
            expected = outputs(m, x)
            for how in ("scripted", "traced"):
                p = self.path("ts_%s_%s.pt" % (kind, how))
                (torch.jit.script(m) if how == "scripted" else torch.jit.trace(m, torch.randn(2, 3, 32, 32))).save(p)
                cases.append((p, expected))
        for p, expected in cases:
            with self.subTest(file=os.path.basename(p)):
                run = p + ".h5"
                proc = self.run_import(p, "--dataset", "folder:" + self.rgb32, "--counts", self.counts, "--out", run, "--logits")
                self.assertNotIn("train mode", proc.stderr)
                self.assert_snapshot(run, os.path.basename(p)[:-3], expected)
        # the papers' ETF head is a matmul, not aten::linear: the features' submodule and the classifier are named
        class Etf(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(8),
                                                    torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
                self.fc = models.ETFClassifier(8, C)

            def forward(self, x):
                return self.fc(self.backbone(x))

        m = models.calibrate(Etf(), torch.randn(8, 3, 32, 32))
        p = self.path("ts_etf.pt")
        torch.jit.script(m).save(p)
        base = (p, "--dataset", "folder:" + self.rgb32, "--counts", self.counts, "--out", p + ".h5", "--logits")
        self.run_import(*base, code=2)  # no aten::linear, no features method
        self.run_import(*base, "--overwrite", "--features-module", "backbone", "--classifier", "fc")
        self.assert_snapshot(p + ".h5", "ts_etf", outputs(m, x))
        # traced in train mode: a warning
        m = Net().train()
        p = self.path("ts_train_mode.pt")
        torch.jit.trace(m, torch.randn(2, 3, 32, 32)).save(p)
        proc = self.run_import(p, "--dataset", "folder:" + self.rgb32, "--counts", self.counts, "--out", p + ".h5")
        self.assertIn("traced in train mode", proc.stderr)

    # -- bad inputs ------------------------------------------------------------------------------

    def fails(self, path, *args, message):
        proc = self.run_import(path, "--dataset", "folder:" + self.rgb32, "--counts", self.counts, "--out",
                               self.path("bad.h5"), "--overwrite", *args, code=2)
        self.assertIn(os.path.basename(path), proc.stderr)
        self.assertIn(message, proc.stderr)
        return proc

    def test_bad_inputs(self):
        p = self.path("r18.pth")
        torch.save(models.resnet("resnet18", num_classes=C).state_dict(), p)
        proc = self.fails(p, "--arch", "resnet34", message="missing")
        self.assertIn("layer1.2.", proc.stderr)
        p = self.path("r32_5classes.pth")
        torch.save(models.cifar_resnet(1, num_classes=5).state_dict(), p)
        self.fails(p, message="5 classes")

        class NoHead(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 3)

            def forward(self, x):
                return self.conv(x).mean((2, 3))

        p = self.path("ts_no_head.pt")
        torch.jit.script(NoHead()).save(p)
        self.fails(p, message="no classifier")
        with open(self.path("notes.pt"), "w") as f:
            f.write("not a checkpoint\n")
        self.fails(self.path("notes.pt"), message="not a checkpoint")


if __name__ == "__main__":
    unittest.main()
