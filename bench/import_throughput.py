#!/usr/bin/python3
"""Evaluation throughput of an imported ResNet-34 (CIFAR form, torchvision
names) in `ltlab import` against the same model in PyTorch's Python API
(Debian's python3-torch 1.13), same threads, same batch (256), in the same run.

ltlab's figure is its own evaluation time (PNG decoding of the image folder,
normalisation, forward passes to the features and the logits, first batch
included), from the line "evaluated N images in S s". PyTorch's is eval-mode
forward passes (`torch.inference_mode`) over tensors already in memory, in a
fresh process, timed from cold like ltlab's (and again warm, for reference): once as Python starts (glibc's default
malloc, which maps and unmaps every large activation afresh), once with
glibc told to keep freed memory (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
MALLOC_TOP_PAD_), which is what ltlab's caching allocator does
(core/train/memory_pool.cpp). Best of alternating trials. Prints figures;
asserts nothing.

    bench/import_throughput.py [--ltlab build/bin/ltlab] [--images 1024] [--threads N] [--trials 2]
"""


import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import ltlab_ckpt_models as models  # noqa: E402

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]
CLASSES = 10
BATCH = 256


def write_images(root, n, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        d = os.path.join(root, "class_%d" % (i % CLASSES))
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "img_%05d.png" % i)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return sorted(paths)


def to_tensor(paths):
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB")).copy()) for p in paths])
    x = x.permute(0, 3, 1, 2).float().div(255)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


GLIBC_KEEPS = {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 32),
               "MALLOC_TOP_PAD_": str(1 << 30)}


def python_worker(ckpt, folder, threads):
    """Runs in a child process: prints PyTorch's images/s."""
    torch.set_num_threads(threads)
    model = models.resnet("resnet34", num_classes=CLASSES, cifar=True)
    model.load_state_dict(torch.load(ckpt))
    model.eval()
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs)
    x = to_tensor(paths)
    rates = []
    with torch.inference_mode():
        for _ in range(2):  # the first pass from cold, as ltlab's; the second warm
            start = time.perf_counter()
            for i in range(0, len(paths), BATCH):
                model(x[i:i + BATCH])
            rates.append(len(paths) / (time.perf_counter() - start))
    print(*rates)


def python_rate(ckpt, folder, threads, env):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", ckpt, folder, str(threads)],
                          stdout=subprocess.PIPE, text=True, check=True, env=dict(os.environ, **env))
    return [float(v) for v in proc.stdout.split()[-2:]]


def ltlab_rate(ltlab, ckpt, folder, out, threads, counts):
    start = time.perf_counter()
    proc = subprocess.run([ltlab, "import", ckpt, "--dataset", "folder:" + folder, "--counts", counts, "--out", out,
                           "--overwrite", "--threads", str(threads)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, check=True)
    wall = time.perf_counter() - start
    m = re.search(r"evaluated (\d+) images in ([0-9.]+) s", proc.stdout)
    return int(m.group(1)) / float(m.group(2)), wall


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        return python_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ltlab", default=os.path.join(ROOT, "build", "bin", "ltlab"))
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--trials", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ltlab_import_bench_") as tmp:
        model = models.calibrate(models.resnet("resnet34", num_classes=CLASSES, cifar=True), torch.randn(64, 3, 32, 32))
        ckpt = os.path.join(tmp, "resnet34.pth")
        torch.save(model.state_dict(), ckpt)
        folder = os.path.join(tmp, "images")
        write_images(folder, a.images)
        counts = os.path.join(tmp, "counts.txt")
        with open(counts, "w") as f:
            f.write(" ".join(["100"] * CLASSES))
        out = os.path.join(tmp, "run.h5")
        best = {"ltlab": 0.0, "torch": [0.0, 0.0], "torch_kept": [0.0, 0.0]}
        walls = []
        for _ in range(a.trials):
            rate, wall = ltlab_rate(a.ltlab, ckpt, folder, out, a.threads, counts)
            best["ltlab"] = max(best["ltlab"], rate)
            walls.append(wall)
            for key, env in (("torch", {}), ("torch_kept", GLIBC_KEEPS)):
                best[key] = [max(b, r) for b, r in zip(best[key], python_rate(ckpt, folder, a.threads, env))]
    print("ResNet-34 (CIFAR form), %d images 3x32x32, batch %d, %d threads, best of %d" %
          (a.images, BATCH, a.threads, a.trials))
    print("  ltlab import (decode + forward, from cold):  %7.1f images/s" % best["ltlab"])
    for key, what in (("torch", "glibc's default malloc"), ("torch_kept", "glibc keeping freed memory")):
        cold, warm = best[key]
        print("  PyTorch, %-26s %7.1f images/s from cold (ltlab/PyTorch %.2fx), %.1f warm" %
              (what + ":", cold, best["ltlab"] / cold, warm))
    print("  ltlab import, whole process: %.2f s (libtorch start, reading, evaluation, analysis, run file)" % min(walls))


if __name__ == "__main__":
    main()
