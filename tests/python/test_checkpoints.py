"""`ltlab inspect` on checkpoints written here by Debian's python3-torch
(docs/checkpoints.md): every torch.save kind, safetensors written by hand,
TorchScript, and bad or malicious files. Values are compared with Python's
through `inspect --format json --values`.

Run: LTLAB_BIN=build/bin/ltlab /usr/bin/python3 -m unittest -v test_checkpoints
"""

import collections
import json
import os
import random
import struct
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltlab_ckpt_models as models  # noqa: E402
import ltlab_testutil as tu  # noqa: E402
from ltlab_testutil import run_ltlab  # noqa: E402


class Evil:
    """Pickles as os.system(...): a loader that runs code would create the marker."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


class ScriptNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def as_list(t):
    """A tensor's elements as Python numbers, row-major (what --values prints)."""
    t = t.detach()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.contiguous().reshape(-1).tolist()


def write_safetensors(path, tensors, header_extra=None, offsets=None, dtype_override=None, raw_header=None):
    """tensors: {name: (safetensors dtype, shape, bytes)} in data order."""
    header, data = {}, b""
    for name, (dt, shape, raw) in tensors.items():
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    for name, off in (offsets or {}).items():
        header[name]["data_offsets"] = off
    for name, dt in (dtype_override or {}).items():
        header[name]["dtype"] = dt
    header.update(header_extra or {})
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
    return path


class CheckpointTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        torch.manual_seed(0)
        cls.tmp = tempfile.TemporaryDirectory(prefix="ltlab_ckpt_")
        cls.small = models.cifar_resnet(5, num_classes=10)    # ResNet-32
        cls.small.train()
        cls.small(torch.randn(4, 3, 32, 32))                    # non-trivial BN statistics
        cls.sd = cls.small.state_dict()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        tu.ltlab_bin()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    # -- running ltlab ----------------------------------------------------------

    def inspect(self, path, *args, values=False):
        extra = ["--values"] if values else []
        proc = run_ltlab("inspect", path, "--format", "json", *extra, *args)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        return tu.parse_json(proc.stdout)

    def fails(self, path, *args, code=2, message=None):
        proc = run_ltlab("inspect", path, *args)
        self.assertEqual(proc.returncode, code, tu.describe(proc))
        self.assertIn(os.path.basename(path), proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        if message:
            self.assertIn(message, proc.stderr)
        return proc

    def assert_values(self, got, expected, original_names=False):
        """got: inspect's state_dict; expected: {name: tensor} in file order."""
        key = "original_name" if original_names else "name"
        names = [t[key] for t in got["state_dict"]["tensors"]]
        self.assertEqual(names, list(expected.keys()))
        for t in got["state_dict"]["tensors"]:
            e = expected[t[key]]
            self.assertEqual(t["shape"], list(e.shape), t["name"])
            self.assertEqual(t["values"], as_list(e), t["name"])

    # -- torch.save kinds ---------------------------------------------------------

    def test_plain_state_dict(self):
        p = self.path("best.paramOnly")
        torch.save(self.sd, p)
        self.assertTrue(hasattr(self.sd, "_metadata"))
        got = self.inspect(p, values=True)
        self.assertEqual(got["format"], "pytorch-zip")
        self.assertEqual(got["state_dict"]["kind"], "state_dict")
        self.assert_values(got, self.sd)
        a = got["architecture"]
        self.assertEqual((a["name"], a["stem"], a["block"], a["blocks"], a["feature_dim"]),
                         ("resnet32", "cifar", "basic", [5, 5, 5], 64))
        c = got["classifier"]
        self.assertEqual((c["weight"], c["bias"], c["num_classes"], c["feature_dim"], c["etf"]),
                         ("fc.weight", "fc.bias", 10, 64, False))

    def test_module_prefix_and_legacy_and_gpu_tag(self):
        dp = self.path("sd_ddp.pt")
        torch.save(torch.nn.DataParallel(self.small).state_dict(), dp)
        leg = self.path("sd_legacy.pth")
        torch.save(self.sd, leg, _use_new_zipfile_serialization=False)
        cuda = self.path("sd_cuda.ckpt")
        original = torch.serialization.location_tag
        torch.serialization.location_tag = lambda storage: "cuda:0"
        try:
            torch.save(self.sd, cuda)
            torch.save(self.sd, cuda + ".legacy", _use_new_zipfile_serialization=False)
        finally:
            torch.serialization.location_tag = original
        for p, fmt in ((dp, "pytorch-zip"), (leg, "pytorch-legacy"), (cuda, "pytorch-zip"),
                       (cuda + ".legacy", "pytorch-legacy")):
            with self.subTest(file=os.path.basename(p)):
                got = self.inspect(p, values=True)
                self.assertEqual(got["format"], fmt)
                self.assert_values(got, self.sd)
                self.assertEqual(got["architecture"]["name"], "resnet32")
        got = self.inspect(dp)
        self.assertEqual(got["state_dict"]["prefixes"], ["module."])
        self.assertTrue(got["state_dict"]["tensors"][0]["original_name"].startswith("module."))
        self.assertEqual({t["location"] for t in self.inspect(cuda)["state_dict"]["tensors"]}, {"cuda:0"})

    def hn410_checkpoint(self, etf):
        model = models.Wrapper(models.resnet("resnet18", num_classes=20, cifar=True), etf=etf)
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9,
                              weight_decay=5e-3)
        model(torch.randn(2, 3, 32, 32)).sum().backward()
        opt.step()
        ckpt = {"epoch": 7, "model": model.state_dict(), "opt": opt.state_dict(),
                "py_random": random.getstate(), "torch_random": torch.get_rng_state(), "cuda_random": None,
                "best_acc": np.float64(0.5), "hist": np.arange(3), "note": "run", "flag": True,
                "args": {"milestones": [3], "nested": {"tau": 1.9}}, "blob": b"\x00\x80\xff"}
        return model, ckpt

    def test_training_checkpoint_hn410_etf(self):
        model, ckpt = self.hn410_checkpoint(etf=True)
        d = os.path.join(self.tmp.name, "hn410")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "checkpoint.ckpt")
        torch.save(ckpt, p)
        with open(os.path.join(d, "args.json"), "w") as f:
            json.dump({"data": {"name": "CIFAR100", "n_classes": 20},
                       "model": {"name": "ResNet18", "use_etf": True, "logit_adjustment_tau": 1.5,
                                 "use_additive_logit_adjustment": False}}, f)
        counts = tu.lt_counts(20, 500, 100)
        cp = self.path("counts.json")
        with open(cp, "w") as f:
            json.dump(counts.tolist(), f)
        got = self.inspect(p, "--counts", cp)
        sd = got["state_dict"]
        self.assertEqual((sd["kind"], sd["source"], sd["prefixes"]), ("training checkpoint", "model", ["encoder."]))
        self.assertEqual(sd["num_tensors"], len(ckpt["model"]))
        self.assertEqual(got["architecture"]["name"], "resnet18")
        self.assertEqual(got["architecture"]["stem"], "cifar")
        c = got["classifier"]
        self.assertEqual((c["weight"], c["norm"], c["bias"], c["etf"], c["num_classes"], c["feature_dim"]),
                         ("fc.weight_vec", "fc.weight_norm", "fc.bias", True, 20, 512))
        self.assertEqual(got["args_json"]["tau"], 1.5)
        self.assertEqual(got["args_json"]["num_classes"], 20)
        self.assertEqual(got["warnings"], [])
        opaque = {o["path"]: o["type"] for o in got["opaque"]}
        self.assertEqual(opaque.get("best_acc"), "numpy.core.multiarray.scalar")
        self.assertIn("hist", opaque)
        fc = model.encoder.fc
        w = fc.weight_vec.detach().double() * fc.weight_norm.detach().double()   # ltlab forms W in float64
        norms = w.norm(dim=1).numpy()
        np.testing.assert_allclose(got["classes"]["weight_norm"], norms, rtol=1e-12)
        np.testing.assert_allclose(got["classes"]["bias"], fc.bias.detach().double().numpy(), rtol=1e-12)
        x = -np.log(counts / counts.sum())
        y = np.log(norms)
        tau = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
        self.assertAlmostEqual(got["implicit_la_tau"], tau, places=10)
        top = {e["key"]: e["value"] for e in got["top_level"]}
        self.assertEqual(top["epoch"], "int 7")
        self.assertTrue(top["py_random"].startswith("tuple"))
        self.assertEqual(top["blob"], "bytes (3)")
        # the text report names the same things
        proc = run_ltlab("inspect", p, "--counts", cp)
        self.assertEqual(proc.returncode, 0, tu.describe(proc))
        for s in ("resnet18", "fc.weight_vec x fc.weight_norm", "best_acc", "implicit tau"):
            self.assertIn(s, proc.stdout)

    def test_training_checkpoint_legacy_linear(self):
        model, ckpt = self.hn410_checkpoint(etf=False)
        p = self.path("checkpoint_legacy.ckpt")
        torch.save(ckpt, p, _use_new_zipfile_serialization=False)
        got = self.inspect(p, values=True)
        self.assertEqual(got["format"], "pytorch-legacy")
        self.assert_values(got, ckpt["model"], original_names=True)
        self.assertEqual(got["classifier"]["weight"], "fc.weight")

    def test_whole_module_and_parameter_dict(self):
        p = self.path("whole_model.pt")
        torch.save(self.small, p)
        got = self.inspect(p, values=True)
        self.assertEqual(got["state_dict"]["kind"], "pickled module")
        self.assert_values(got, self.sd)
        self.assertEqual(got["opaque"][0]["path"], "(root)")
        self.assertTrue(got["opaque"][0]["type"].endswith("ResNet"))
        # a non-persistent buffer is not part of the weights
        w = models.Wrapper(models.cifar_resnet(1, num_classes=3))
        torch.save(w, self.path("wrapper.pt"))
        names = [t["original_name"] for t in self.inspect(self.path("wrapper.pt"))["state_dict"]["tensors"]]
        self.assertEqual(names, list(w.state_dict().keys()))
        params = dict(self.small.named_parameters())
        torch.save(params, self.path("params.pt"))
        got = self.inspect(self.path("params.pt"), values=True)
        self.assertEqual(got["state_dict"]["kind"], "dict of parameters")
        self.assert_values(got, params)

    def test_architectures(self):
        for name, cifar, blocks in (("resnet18", False, [2, 2, 2, 2]), ("resnet34", True, [3, 4, 6, 3]),
                                    ("resnet50", False, [3, 4, 6, 3]), ("resnext50_32x4d", True, [3, 4, 6, 3])):
            with self.subTest(arch=name):
                m = models.resnet(name, num_classes=7, cifar=cifar)
                p = self.path(name + ".pth")
                torch.save(m.state_dict(), p)
                got = self.inspect(p)
                a = got["architecture"]
                self.assertEqual((a["name"], a["stem"], a["blocks"]), (name, "cifar" if cifar else "imagenet", blocks))
                d = 512 if name in ("resnet18", "resnet34") else 2048
                self.assertEqual((a["feature_dim"], got["classifier"]["num_classes"], got["classifier"]["feature_dim"]), (d, 7, d))
                os.remove(p)
        torch.save({"fc1.weight": torch.zeros(4, 3), "fc1.bias": torch.zeros(4), "out.weight": torch.zeros(2, 4)},
                   self.path("mlp.pt"))
        got = self.inspect(self.path("mlp.pt"))
        self.assertEqual(got["architecture"]["name"], "mlp")
        self.assertEqual(got["classifier"]["weight"], "out.weight")
        self.assertIsNone(got["classifier"]["bias"])

    def test_dtypes_views_offsets(self):
        base = torch.arange(40, dtype=torch.float32).reshape(5, 8)
        ts = collections.OrderedDict([
            ("f32", torch.randn(3, 4)), ("f64", torch.randn(2, 3, dtype=torch.float64)),
            ("f16", torch.randn(3, 5).half()), ("bf16", torch.randn(3, 5).bfloat16()),
            ("i64", torch.tensor([-(2 ** 40), 5, 2 ** 50])), ("i32", torch.tensor([-7, 9], dtype=torch.int32)),
            ("i16", torch.tensor([-300, 2], dtype=torch.int16)), ("i8", torch.tensor([-128, 127], dtype=torch.int8)),
            ("u8", torch.tensor([0, 255], dtype=torch.uint8)), ("bool", torch.tensor([True, False, True])),
            ("zero_d", torch.tensor(3.5)), ("transposed", base.t()), ("row_slice", base[1:3]),
            ("column", base[:, 2]), ("shared_base", base), ("empty", torch.zeros(0, 7)),
        ])
        for legacy in (False, True):
            with self.subTest(legacy=legacy):
                p = self.path("dtypes%s.pt" % ("_legacy" if legacy else ""))
                torch.save(ts, p, _use_new_zipfile_serialization=not legacy)
                got = self.inspect(p, values=True)
                self.assert_values(got, ts)
                dtypes = {t["name"]: t["dtype"] for t in got["state_dict"]["tensors"]}
                self.assertEqual(dtypes["bf16"], "bfloat16")
                self.assertEqual(dtypes["bool"], "bool")

    def test_torchscript(self):
        m = ScriptNet().eval()
        p = self.path("scripted.pt")
        torch.jit.script(m).save(p)
        got = self.inspect(p)
        self.assertEqual(got["format"], "torchscript")
        self.assertTrue(any("training module" in w for w in got["warnings"]))
        self.assertEqual([t["name"] for t in got["state_dict"]["tensors"]][-2:], ["fc.weight", "fc.bias"])

    # -- safetensors --------------------------------------------------------------

    def test_safetensors_dtypes(self):
        f32 = torch.randn(4, 3)
        bf = torch.randn(2, 3).bfloat16()
        tensors = collections.OrderedDict([
            ("w", ("F32", [4, 3], f32.numpy().tobytes())),
            ("d", ("F64", [2], np.array([1.5, -2.25]).tobytes())),
            ("h", ("F16", [3], np.array([0.5, -1, 65504], dtype=np.float16).tobytes())),
            ("b", ("BF16", [2, 3], bf.view(torch.int16).numpy().tobytes())),
            ("step", ("I64", [], np.array(-9, dtype=np.int64).tobytes())),
            ("i32", ("I32", [2], np.array([1, -2], dtype=np.int32).tobytes())),
            ("i16", ("I16", [1], np.array([-3], dtype=np.int16).tobytes())),
            ("i8", ("I8", [2], np.array([-1, 1], dtype=np.int8).tobytes())),
            ("u8", ("U8", [2], np.array([7, 200], dtype=np.uint8).tobytes())),
            ("mask", ("BOOL", [3], np.array([1, 0, 1], dtype=np.uint8).tobytes())),
            ("nothing", ("F32", [0, 4], b"")),
        ])
        p = write_safetensors(self.path("model.safetensors"), tensors,
                              header_extra={"__metadata__": {"format": "pt"}})
        got = self.inspect(p, values=True)
        self.assertEqual(got["format"], "safetensors")
        self.assertEqual(got["metadata"], {"format": "pt"})
        vals = {t["name"]: t["values"] for t in got["state_dict"]["tensors"]}
        self.assertEqual(vals["w"], as_list(f32))
        self.assertEqual(vals["d"], [1.5, -2.25])
        self.assertEqual(vals["h"], [0.5, -1.0, 65504.0])
        self.assertEqual(vals["b"], as_list(bf))
        self.assertEqual(vals["step"], [-9])
        self.assertEqual((vals["i32"], vals["i16"], vals["i8"], vals["u8"], vals["mask"]),
                         ([1, -2], [-3], [-1, 1], [7, 200], [1, 0, 1]))
        self.assertEqual(vals["nothing"], [])

    def test_safetensors_bad_files(self):
        t = collections.OrderedDict([("a", ("F32", [2], b"\0" * 8)), ("b", ("F32", [2], b"\0" * 8))])
        self.fails(write_safetensors(self.path("overlap.safetensors"), t, offsets={"b": [4, 12]}), message="overlap")
        self.fails(write_safetensors(self.path("range.safetensors"), t, offsets={"b": [8, 64]}), message="outside")
        self.fails(write_safetensors(self.path("size.safetensors"), t, offsets={"b": [8, 12]}), message="need")
        self.fails(write_safetensors(self.path("u16.safetensors"), t, dtype_override={"a": "U16"}),
                   message="not supported")
        self.fails(write_safetensors(self.path("json.safetensors"), t, raw_header=b"{not json"), message="JSON")
        p = self.path("long_header.safetensors")
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", 1 << 40) + b"{}")
        self.fails(p, message="header")

    # -- bad and malicious files ------------------------------------------------------

    def test_truncated_and_non_checkpoints(self):
        p = self.path("full.pt")
        torch.save(self.sd, p)
        with open(p, "rb") as f:
            data = f.read()
        for name, cut in (("truncated.pt", len(data) // 2), ("head_only.pt", 100), ("tail_cut.pt", len(data) - 30)):
            with open(self.path(name), "wb") as f:
                f.write(data[:cut])
            self.fails(self.path(name))
        leg = self.path("legacy_full.pt")
        torch.save(self.sd, leg, _use_new_zipfile_serialization=False)
        with open(leg, "rb") as f:
            ldata = f.read()
        for cut in (20, len(ldata) // 3, len(ldata) - 5):
            with open(self.path("legacy_cut.pt"), "wb") as f:
                f.write(ldata[:cut])
            self.fails(self.path("legacy_cut.pt"))
        with open(self.path("notes.ckpt"), "w") as f:
            f.write("this is not a checkpoint\n" * 10)
        self.fails(self.path("notes.ckpt"), message="not a checkpoint")
        self.fails(tu.write_base(self.path("run.h5")), message="HDF5")
        self.fails(self.path("missing.pt"))
        self.assertEqual(run_ltlab("inspect", p, "--values").returncode, 1)   # --values needs json
        self.assertEqual(run_ltlab("inspect").returncode, 1)
        with open(self.path("3.json"), "w") as f:
            json.dump([1, 2, 3], f)
        proc = run_ltlab("inspect", p, "--counts", self.path("3.json"))
        self.assertEqual(proc.returncode, 2, tu.describe(proc))
        self.assertIn("3 class counts", proc.stderr)

    def test_malicious_pickle_runs_nothing(self):
        for legacy in (False, True):
            with self.subTest(legacy=legacy):
                marker = self.path("pwned_%d" % legacy)
                p = self.path("evil_%d.pt" % legacy)
                torch.save({"payload": Evil(marker), "fc.weight": torch.ones(3, 2)}, p,
                           _use_new_zipfile_serialization=not legacy)
                root = self.path("evil_root_%d.pt" % legacy)
                torch.save(Evil(marker), root, _use_new_zipfile_serialization=not legacy)
                self.assertFalse(os.path.exists(marker))
                got = self.inspect(p)
                self.assertEqual(got["opaque"], [{"path": "payload", "type": "posix.system"}])
                self.assertEqual([t["name"] for t in got["state_dict"]["tensors"]], ["fc.weight"])
                got = self.inspect(root)
                self.assertEqual(got["opaque"], [{"path": "(root)", "type": "posix.system"}])
                self.assertEqual(got["state_dict"]["tensors"], [])
                self.assertIsNone(got["classifier"])
                self.assertFalse(os.path.exists(marker), "a loader ran the pickled os.system")


if __name__ == "__main__":
    unittest.main()
