#!/usr/bin/python3
"""Times `ltlab inspect` (whole process, best of N) on a CIFAR ResNet-34
state_dict (100 classes, about 85 MB) that it writes with Debian's
python3-torch, with and without --counts, and prints the figures
(docs/performance.md).

Run: bench/inspect_benchmark.py [--ltlab build/bin/ltlab] [--repeats 5]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))


def best_of(cmd, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            sys.exit("%s failed: %s" % (" ".join(cmd), proc.stderr))
    return min(times), sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ltlab", default=os.path.join(HERE, "..", "build", "bin", "ltlab"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import torch
    import ltlab_ckpt_models as models
    with tempfile.TemporaryDirectory(prefix="ltlab_inspect_bench_") as tmp:
        path = os.path.join(tmp, "resnet34.pth")
        torch.save(models.Wrapper(models.resnet("resnet34", num_classes=100, cifar=True)).state_dict(), path)
        counts = os.path.join(tmp, "counts.json")
        with open(counts, "w") as f:
            json.dump([int(500 * 0.01 ** (i / 99)) for i in range(100)], f)
        size = os.path.getsize(path) / 1e6
        print("file: CIFAR ResNet-34 state_dict (encoder. prefix), %.1f MB" % size)
        for label, extra in (("inspect", []), ("inspect --format json", ["--format", "json"]),
                             ("inspect --counts", ["--counts", counts])):
            best, median = best_of([args.ltlab, "inspect", path] + extra, args.repeats)
            print("%-24s best %.3f s, median %.3f s (of %d, whole process)" % (label, best, median, args.repeats))
        best, median = best_of([args.ltlab, "--version"], args.repeats)
        print("%-24s best %.3f s, median %.3f s (process start, for scale)" % ("--version", best, median))


if __name__ == "__main__":
    main()
