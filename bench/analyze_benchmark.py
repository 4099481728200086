#!/usr/bin/python3
"""Benchmark of `ltlab analyze`: whole-process wall time, peak RSS and the
achieved fraction of the machine's GEMM rates, at CIFAR-100-LT size
(N = 10,847, D = 512, C = 100) and ImageNet-LT size (N = 116,080, D = 2048,
C = 1000), against the vectorised numpy implementation of the same metrics
(tests/python/ltlab_reference.py) on the same files.

Everything runs twice, labelled: with the machine's environment as it is, and
with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (OpenBLAS then picks its
kernel for this CPU). In each, the float32 and float64 GEMM rates are measured
first (`ltlab info --measure-dgemm --measure-sgemm`), then ltlab (its default
precision, and its float64 path through LTLAB_ANALYSIS_PRECISION=float64) and
numpy alternate, best of --repeats (the machine may be shared: best-of-N).
Where OpenBLAS falls back to its Prescott kernel and ltlab picks another
(ltlab info: "chosen by ltlab"), numpy runs with that kernel too
(OPENBLAS_CORETYPE set for it, and said), so that both use the same GEMM.

Prints figures; asserts nothing. Usage:
    bench/analyze_benchmark.py [--ltlab build/bin/ltlab] [--quick] [--repeats 3] [--workdir DIR]
                               [--env as-is|unset|both]
"""

import argparse
import os
import re
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE = os.path.join(ROOT, "tests", "python", "ltlab_reference.py")
PYTHON = "/usr/bin/python3"  # Debian's, with numpy and h5py

SIZES = [
    # name, classes, dim, imbalance, train total; goals: seconds, peak RSS MB, times faster than numpy
    ("CIFAR-100-LT", 100, 512, 100, 10847, None, None, 5.0),
    ("ImageNet-LT", 1000, 2048, 256, 116080, 12.0, 512, None),
]
ENVIRONMENTS = {
    "as-is": lambda env: env,
    "unset": lambda env: {k: v for k, v in env.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
}


def timed(cmd, env):
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - t0, res


def peak_rss_mb(cmd, env):
    """Peak RSS of one run through GNU time (exact per process)."""
    res = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, check=True, env=env)
    return int(res.stderr.decode().strip().splitlines()[-1]) / 1024.0


def generate(ltlab, workdir, name, C, D, IF, N):
    path = os.path.join(workdir, f"{name}-{N}.h5")
    if not os.path.exists(path):
        t0 = time.perf_counter()
        subprocess.run([ltlab, "synth", "--out", path, "--classes", str(C), "--dim", str(D),
                        "--imbalance", str(IF), "--train-total", str(N), "--test-per-class", "0",
                        "--no-history", "--seed", "1"], check=True)
        print(f"{name}: generated {path} ({os.path.getsize(path) / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    return path


def measure_size(args, env, path, name, C, numpy_env):
    cmd = [args.ltlab, "analyze", path, "--format", "json", "--timings"]
    f64_env = dict(env, LTLAB_ANALYSIS_PRECISION="float64")
    walls, f64_walls, numpy_walls = [], [], []
    flops, phases = None, ""
    numpy_repeats = args.repeats if C <= 100 else 1
    for r in range(args.repeats):
        wall, res = timed(cmd, env)
        walls.append(wall)
        flops = float(re.search(r"([0-9.]+) GFLOP in BLAS", res.stderr).group(1))
        phases = "; ".join(line.strip() for line in res.stderr.splitlines()[1:])
        f64_walls.append(timed(cmd, f64_env)[0])
        if r < numpy_repeats:
            numpy_walls.append(timed([PYTHON, REFERENCE, path], numpy_env)[0])
    return dict(best=min(walls), median=sorted(walls)[len(walls) // 2], f64=min(f64_walls), flops=flops,
                phases=phases, rss=peak_rss_mb(cmd, env), numpy=min(numpy_walls),
                numpy_rss=peak_rss_mb([PYTHON, REFERENCE, path], numpy_env))


def run_environment(args, label, env, files):
    info = subprocess.run([args.ltlab, "info", "--measure-dgemm", "--measure-sgemm"], capture_output=True,
                          text=True, check=True, env=env).stdout
    dgemm = float(re.search(r"dgemm_gflops: ([0-9.]+)", info).group(1))
    sgemm = float(re.search(r"sgemm_gflops: ([0-9.]+)", info).group(1))
    blas = re.search(r"BLAS: (.*)", info).group(1)
    chosen = re.search(r"kernel (\w+) chosen by ltlab", blas)
    numpy_env = dict(env, OPENBLAS_CORETYPE=chosen.group(1)) if chosen else env
    print(f"\n== environment {label}: OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"OPENBLAS_L2_SIZE={env.get('OPENBLAS_L2_SIZE', '(unset)')}; {blas}")
    print(f"GEMM rates (2048^3, best of 3): float64 {dgemm:.1f} GFLOP/s, float32 {sgemm:.1f} GFLOP/s")
    if chosen:
        print(f"numpy runs with OPENBLAS_CORETYPE={chosen.group(1)}, the kernel ltlab chose")
    rows = []
    for (name, C, D, IF, N, goal_s, goal_mb, goal_x), path in files:
        m = measure_size(args, env, path, name, C, numpy_env)
        rows.append((name, N, D, C, m, goal_s, goal_mb, goal_x))
        print(f"{name}: ltlab analyze best {m['best']:.3f} s (median {m['median']:.3f} s; float64 path "
              f"{m['f64']:.3f} s), peak RSS {m['rss']:.0f} MB, {m['flops']:.1f} GFLOP in BLAS; "
              f"numpy {m['numpy']:.3f} s ({m['numpy'] / m['best']:.1f}x slower), peak RSS {m['numpy_rss']:.0f} MB")
        print(f"    phases: {m['phases']}")
    print(f"\n| environment | size | ltlab analyze (best / median) | float64 path | peak RSS | BLAS work | "
          f"work at the float32 rate | numpy reference | speed-up | goal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, N, D, C, m, goal_s, goal_mb, goal_x in rows:
        goal = ", ".join(g for g in (f"<= {goal_s} s" if goal_s else "", f"<= {goal_mb} MB" if goal_mb else "",
                                     f">= {goal_x}x numpy" if goal_x else "") if g)
        print(f"| {label} (float64 {dgemm:.0f}, float32 {sgemm:.0f} GFLOP/s) | {name} | {m['best']:.3f} s / "
              f"{m['median']:.3f} s | {m['f64']:.3f} s | {m['rss']:.0f} MB | {m['flops']:.0f} GFLOP | "
              f"{m['flops'] / sgemm:.2f} s | {m['numpy']:.2f} s ({m['numpy_rss']:.0f} MB) | "
              f"{m['numpy'] / m['best']:.1f}x | {goal} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ltlab", default=os.path.join(ROOT, "build", "bin", "ltlab"))
    ap.add_argument("--quick", action="store_true", help="CIFAR-100-LT size only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", help="where the generated run files go (default: a temp dir)")
    ap.add_argument("--env", choices=["as-is", "unset", "both"], default="both")
    args = ap.parse_args()

    print(f"machine: {os.cpu_count()} cores; best of {args.repeats} alternating runs")
    workdir = args.workdir or tempfile.mkdtemp(prefix="ltlab-bench-")
    os.makedirs(workdir, exist_ok=True)
    sizes = SIZES[:1] if args.quick else SIZES
    files = [(size, generate(args.ltlab, workdir, *size[:5])) for size in sizes]
    for label in (["as-is", "unset"] if args.env == "both" else [args.env]):
        run_environment(args, label, ENVIRONMENTS[label](dict(os.environ)), files)


if __name__ == "__main__":
    main()
