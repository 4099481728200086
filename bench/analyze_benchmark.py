#!/usr/bin/python3
"""Benchmark of `ltlab analyze`: whole-process wall time, peak RSS and the
achieved fraction of the machine's float64 GEMM rate, at CIFAR-100-LT size
(N = 10,847, D = 512, C = 100) and ImageNet-LT size (N = 115,846, D = 2048,
C = 1000), against the vectorised numpy implementation of the same metrics
(tests/python/ltlab_reference.py) on the same files.

Prints figures; asserts nothing. Usage:
    bench/analyze_benchmark.py [--ltlab build/bin/ltlab] [--quick] [--repeats 3] [--workdir DIR]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE = os.path.join(ROOT, "tests", "python", "ltlab_reference.py")
PYTHON = "/usr/bin/python3"  # Debian's, with numpy and h5py

SIZES = [
    # name, classes, dim, imbalance, train total; goals: seconds, peak RSS MB
    ("CIFAR-100-LT", 100, 512, 100, 10847, 0.5, None),
    ("ImageNet-LT", 1000, 2048, 256, 115846, 30.0, 1536),
]


def peak_rss_mb(cmd):
    """Peak RSS of one run through GNU time (exact per process)."""
    res = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, check=True)
    return int(res.stderr.decode().strip().splitlines()[-1]) / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ltlab", default=os.path.join(ROOT, "build", "bin", "ltlab"))
    ap.add_argument("--quick", action="store_true", help="CIFAR-100-LT size only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", help="where the generated run files go (default: a temp dir)")
    args = ap.parse_args()

    info = subprocess.run([args.ltlab, "info", "--measure-dgemm"], capture_output=True, text=True, check=True).stdout
    dgemm = float(re.search(r"dgemm_gflops: ([0-9.]+)", info).group(1))
    blas = re.search(r"BLAS: (.*)", info).group(1)
    print(f"machine: {os.cpu_count()} cores; {blas}")
    print(f"float64 GEMM rate (2048^3, best of 3): {dgemm:.1f} GFLOP/s\n")

    workdir = args.workdir or tempfile.mkdtemp(prefix="ltlab-bench-")
    os.makedirs(workdir, exist_ok=True)
    rows = []
    for name, C, D, IF, N, goal_s, goal_mb in SIZES[:1] if args.quick else SIZES:
        path = os.path.join(workdir, f"{name}.h5")
        if not os.path.exists(path):
            t0 = time.perf_counter()
            subprocess.run([args.ltlab, "synth", "--out", path, "--classes", str(C), "--dim", str(D),
                            "--imbalance", str(IF), "--train-total", str(N), "--test-per-class", "0",
                            "--no-history", "--seed", "1"], check=True)
            print(f"{name}: generated {path} ({os.path.getsize(path) / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        cmd = [args.ltlab, "analyze", path, "--format", "json", "--timings"]
        walls, flops, phases = [], None, ""
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            walls.append(time.perf_counter() - t0)
            flops = float(re.search(r"([0-9.]+) GFLOP in BLAS", res.stderr).group(1))
            phases = "; ".join(l.strip() for l in res.stderr.splitlines()[1:])
        rss = peak_rss_mb(cmd)
        best = min(walls)
        fraction = flops / best / dgemm
        numpy_walls = []
        for _ in range(args.repeats if C <= 100 else 1):
            t0 = time.perf_counter()
            subprocess.run([PYTHON, REFERENCE, path], stdout=subprocess.DEVNULL, check=True)
            numpy_walls.append(time.perf_counter() - t0)
        numpy_best = min(numpy_walls)
        numpy_rss = peak_rss_mb([PYTHON, REFERENCE, path])
        rows.append((name, N, D, C, best, sorted(walls)[len(walls) // 2], rss, flops, fraction, numpy_best, numpy_rss,
                     goal_s, goal_mb))
        print(f"{name}: ltlab analyze best {best:.3f} s (median {sorted(walls)[len(walls) // 2]:.3f} s), "
              f"peak RSS {rss:.0f} MB, {flops:.1f} GFLOP in BLAS = {100 * fraction:.0f}% of the GEMM rate; "
              f"numpy {numpy_best:.3f} s ({numpy_best / best:.1f}x slower), peak RSS {numpy_rss:.0f} MB")
        print(f"    phases: {phases}")

    print("\n| size | N | D | C | ltlab analyze (best / median) | peak RSS | BLAS work | of GEMM rate | numpy reference | speed-up | goal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, N, D, C, best, median, rss, flops, fraction, npb, nprss, goal_s, goal_mb in rows:
        goal = f"< {goal_s} s" + (f", < {goal_mb} MB" if goal_mb else "") + ", >= 4x numpy" * (goal_mb is None)
        print(f"| {name} | {N:,} | {D} | {C} | {best:.3f} s / {median:.3f} s | {rss:.0f} MB | {flops:.0f} GFLOP | "
              f"{100 * fraction:.0f}% | {npb:.2f} s ({nprss:.0f} MB) | {npb / best:.1f}x | {goal} |")


if __name__ == "__main__":
    main()
