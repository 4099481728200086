#!/usr/bin/python3
"""Writes the seed corpora of the libFuzzer harnesses (fuzz/fuzz_*.cpp):
small valid inputs of each reader, generated here so that nothing binary is
committed. Usage: /usr/bin/python3 fuzz/make_seeds.py OUT_DIR
(OUT_DIR/<harness>/ for run_file, idx, cifar, config, checkpoint).
Run files come from tests/python/ltlab_testutil.py; when LTLAB_BIN names an
ltlab binary, `ltlab synth` adds one with a history. Checkpoints need torch
(skipped when it is missing: safetensors and hand-made pickles remain)."""

import gzip
import io
import json
import os
import pickle
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))
import ltlab_testutil as tu  # noqa: E402


def put(out, harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def run_files(out):
    import h5py
    d = os.path.join(out, "run_file")
    os.makedirs(d, exist_ok=True)
    tu.write_base(os.path.join(d, "base.h5"))
    tu.write_base(os.path.join(d, "nobias_nologits.h5"), with_bias=False, with_logits=False, with_names=False)
    tu.write_base(os.path.join(d, "c3d2.h5"), C=3, D=2, N=9, seed=1)

    def thresholds(f):
        f["classes"].attrs["many_threshold"] = 25
        f["classes"].attrs["few_threshold"] = 15
    tu.write_base(os.path.join(d, "thresholds.h5"), thresholds)

    def history(f):
        h = f.create_group("history")
        h.create_dataset("epoch", data=np.arange(1, 4, dtype=np.int64))
        h.create_dataset("train_loss", data=np.array([2.0, 1.5, 1.2]))
        f.attrs["config"] = json.dumps({"recipe": "ce", "epochs": 3})
    tu.write_base(os.path.join(d, "history.h5"), history)

    def enum_names(f):  # refused before HDF5 decodes it (its member names crashed H5Dopen when damaged)
        del f["/classes/names"]
        f.create_dataset("/classes/names", data=np.arange(4, dtype="i1"),
                         dtype=h5py.enum_dtype({"c%d" % c: c for c in range(4)}, basetype="i1"))
    tu.write_base(os.path.join(d, "enum_names.h5"), enum_names)

    rng = np.random.default_rng(2)
    counts = tu.lt_counts(4, 8, 4)
    snaps = [tu.make_snapshot(rng, "epoch_%04d" % e, counts, {"train": counts, "test": [2, 2, 2, 2]}, 3,
                              epoch=e, logits=(e == 2), dtype=np.float64 if e == 1 else np.float32)
             for e in (1, 2)]
    tu.write_run(os.path.join(d, "two_snapshots.h5"), counts, snaps, names=["cat", "dog", "ant", "bee"])
    ltlab = os.environ.get("LTLAB_BIN")
    if ltlab and os.path.exists(ltlab):
        subprocess.run([ltlab, "synth", "--out", os.path.join(d, "synth.h5"), "--classes", "3", "--dim", "2",
                        "--snapshots", "2", "--imbalance", "4"], check=False, capture_output=True)
        if os.path.exists(os.path.join(d, "synth.h5")) and os.path.getsize(os.path.join(d, "synth.h5")) > 200000:
            os.remove(os.path.join(d, "synth.h5"))


def idx(out):
    def one(n, h, w, seed, gz=False):
        rng = np.random.default_rng(seed)
        images = struct.pack(">IIII", 0x803, n, h, w) + rng.integers(0, 256, n * h * w, dtype=np.uint8).tobytes()
        labels = struct.pack(">II", 0x801, n) + rng.integers(0, 10, n, dtype=np.uint8).tobytes()
        if gz:
            images, labels = gzip.compress(images), gzip.compress(labels)
        return struct.pack("<H", len(images)) + images + labels
    put(out, "idx", "3x4x4", one(3, 4, 4, 0))
    put(out, "idx", "1x28x28", one(1, 28, 28, 1))
    put(out, "idx", "5x2x3_gz", one(5, 2, 3, 2, gz=True))
    put(out, "idx", "empty", one(0, 28, 28, 3))


def cifar(out):
    rng = np.random.default_rng(0)
    pixels = 3 * 32 * 32
    for n, labels in ((1, 2), (2, 2), (2, 1)):
        data = b"".join(bytes([int(rng.integers(0, 10))] * labels) + rng.integers(0, 256, pixels, dtype=np.uint8).tobytes()
                        for _ in range(n))
        put(out, "cifar", "n%d_label%d" % (n, labels), data)
    put(out, "cifar", "gz", gzip.compress(bytes([3, 7]) + bytes(pixels)))


def configs(out):
    put(out, "config", "empty", b"{}")
    put(out, "config", "wb", json.dumps({"recipe": "wb", "epochs": 8, "weight_decay": 5e-3, "stage2_epochs": 10,
                                         "cb_beta": 0.9999, "maxnorm": True, "maxnorm_factor": 0.1}).encode())
    put(out, "config", "la", json.dumps({"recipe": "la", "la_mode": "multiplicative", "tau": 1.5}).encode())
    put(out, "config", "data", json.dumps({"dataset": "cifar100-lt", "data_dir": "/x", "imbalance": 100,
                                           "val_per_class": 20, "threads": 2, "lr": 0.05, "momentum": 0.9,
                                           "snapshot_every": 2, "train_feature_cap": -1}).encode())
    try:  # every key the build knows, with its default (a config as ltlab records it)
        ltlab = os.environ.get("LTLAB_BIN")
        if ltlab:
            text = subprocess.run([ltlab, "recipes"], capture_output=True, text=True, timeout=30).stdout
            put(out, "config", "recipes_text", text.encode()[:4096])
    except Exception:
        pass


def safetensors_bytes(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr).tobytes()
        dtype = {"float32": "F32", "float64": "F64", "int64": "I64", "float16": "F16"}[str(arr.dtype)]
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def checkpoints(out):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    put(out, "checkpoint", "fc.safetensors", safetensors_bytes({"fc.weight": W, "fc.bias": b}, {"format": "pt"}))
    put(out, "checkpoint", "etf.safetensors",
        safetensors_bytes({"fc.weight_vec": W.astype(np.float64), "fc.weight_norm": np.ones((4, 1), np.float16)}))
    # plain pickles: not checkpoints, but the unpickler's opcodes
    for proto in (2, 4):
        put(out, "checkpoint", "pickle_p%d" % proto,
            pickle.dumps({"epoch": 3, "acc": 0.5, "name": "x", "t": (1, [2, 3]), "b": b"\x00\x01", "s": {1}},
                         protocol=proto))
    try:
        import torch
    except ImportError:
        return
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.Linear(8, 4))
    sd = {"conv1.weight": torch.randn(2, 1, 3, 3), "bn1.running_mean": torch.zeros(2),
          "fc.weight": torch.from_numpy(W), "fc.bias": torch.from_numpy(b)}
    for name, obj in (("state_dict", sd),
                      ("training", {"epoch": 5, "state_dict": {"module." + k: v for k, v in sd.items()},
                                    "optimizer": {"lr": 0.1}, "best_acc": torch.tensor(0.5)}),
                      ("view", {"fc.weight": torch.randn(8, 6)[::2, 1:4], "fc.bias": torch.randn(4).double()})):
        buf = io.BytesIO()
        torch.save(obj, buf)
        put(out, "checkpoint", name + "_zip.pth", buf.getvalue())
        buf = io.BytesIO()
        torch.save(obj, buf, _use_new_zipfile_serialization=False)
        put(out, "checkpoint", name + "_legacy.pt", buf.getvalue())
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(3, 4), buf)  # a pickled module
    put(out, "checkpoint", "module_zip.pth", buf.getvalue())
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 4)), buf)
    put(out, "checkpoint", "torchscript.pt", buf.getvalue())
    del conv


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_seeds.py OUT_DIR")
    out = sys.argv[1]
    for f in (run_files, idx, cifar, configs, checkpoints):
        f(out)


if __name__ == "__main__":
    main()
