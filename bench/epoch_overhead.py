#!/usr/bin/python3
"""Where a live training epoch's time goes: training against what follows it
(eval-mode feature extraction, the analyses and the snapshot, the run file's
commit), per epoch, for the Training dock's classroom presets on
Fashion-MNIST-LT (small CNN) and for ResNet-32 on CIFAR-sized inputs. Reads
the `timings` of `ltlab train --progress-json`; prints figures, asserts
nothing.

    bench/epoch_overhead.py [--ltlab build/bin/ltlab] [--only ce-wd,wb,wd-fr-etf,resnet32] [--epochs N]
                            [--env NAME=VALUE ...] [--label TEXT]

The CIFAR-sized case writes random 3x32x32 images in the CIFAR-10 binary
format (the time per image does not depend on the pixels) into a temporary
folder; there is no CIFAR copy on this machine. `--env LTLAB_NO_MEMORY_POOL=1`
runs without the training module's caching allocator, for comparison.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The Training dock's presets (ui/training_dock.cpp), and the CIFAR-sized case.
CASES = {
    "ce-wd": ["--recipe", "ce-wd", "--epochs", "8"],
    "wb": ["--recipe", "wb", "--epochs", "6", "--stage2-epochs", "5"],
    "wd-fr-etf": ["--recipe", "wd-fr-etf", "--epochs", "8"],
    "resnet32": ["--recipe", "ce-wd", "--epochs", "2", "--dataset", "cifar10-lt", "--model", "resnet32"],
}


def write_fake_cifar10(folder):
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}.bin", 10000) for i in range(1, 6)] + [("test_batch.bin", 10000)]:
        records = rng.integers(0, 256, size=(n, 3073), dtype=np.uint8)
        records[:, 0] = np.arange(n) % 10
        records.tofile(os.path.join(folder, name))


def run_case(ltlab, name, args, env, data_dir, epochs):
    args = list(args)
    if epochs:
        i = args.index("--epochs")
        args[i + 1] = str(epochs)
    if name == "resnet32":
        args += ["--data-dir", data_dir]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run.h5")
        started = time.monotonic()
        proc = subprocess.run([ltlab, "train", *args, "--out", out, "--progress-json"], capture_output=True,
                              text=True, env=env)
        wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"{name}: ltlab train failed ({proc.returncode}): {proc.stderr[-2000:]}")
    epochs_done = [json.loads(line) for line in proc.stdout.splitlines()
                   if line.startswith("{") and json.loads(line).get("event") == "epoch"]
    return epochs_done, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ltlab", default=os.path.join(ROOT, "build", "bin", "ltlab"))
    parser.add_argument("--only", default=",".join(CASES))
    parser.add_argument("--epochs", type=int, default=0, help="override every case's stage-1 epochs")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the ltlab process")
    parser.add_argument("--label", default="")
    a = parser.parse_args()
    env = dict(os.environ)
    for item in a.env:
        k, _, v = item.partition("=")
        env[k] = v
    print(f"# epoch overhead {a.label} (OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE', 'unset')}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, env {' '.join(a.env) or '-'})")
    with tempfile.TemporaryDirectory() as data_dir:
        names = a.only.split(",")
        if "resnet32" in names:
            write_fake_cifar10(data_dir)
        print("| case | epoch | stage | train s | features s | analysis s | commit s | overhead / train |")
        print("|---|---|---|---|---|---|---|---|")
        summary = []
        for name in names:
            epochs, wall = run_case(a.ltlab, name, CASES[name], env, data_dir, a.epochs)
            train = over = 0.0
            for e in epochs:
                t = e["timings"]
                extra = t["features"] + t["analysis"] + t["commit"]
                print(f"| {name} | {e['epoch']} | {e['stage']} | {t['train']:.2f} | {t['features']:.2f} | "
                      f"{t['analysis']:.3f} | {t['commit']:.3f} | {extra / t['train']:.2f}x |")
                if e["stage"] == 1:
                    train += t["train"]
                    over += extra
            summary.append((name, wall, train, over))
        print()
        print("| case | whole process s | stage-1 training s | stage-1 overhead s | overhead / train |")
        print("|---|---|---|---|---|")
        for name, wall, train, over in summary:
            print(f"| {name} | {wall:.1f} | {train:.1f} | {over:.1f} | {over / train:.2f}x |")


if __name__ == "__main__":
    main()
