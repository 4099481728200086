#!/usr/bin/python3
"""Peak memory and time of `ltlab layers` on ResNet-34 (CIFAR form, random
initialisation) at batch 2000 of N(0,1) noise: a state_dict written here by
python3-torch, then `/usr/bin/time -v ltlab layers R34.pt --init --samples N`
(and optionally --flat-fdr, --blocks). Prints the wall time, the peak RSS and
the per-layer cosine; asserts nothing.

    bench/layers_benchmark.py [--ltlab build/bin/ltlab] [--samples 2000] [--threads N] [--extra "--flat-fdr"]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import ltlab_ckpt_models as models  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ltlab", default=os.path.join(ROOT, "build", "bin", "ltlab"))
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--extra", default="", help="more options for ltlab layers, e.g. '--flat-fdr --blocks'")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "resnet34.pt")
        torch.manual_seed(0)
        torch.save(models.resnet("resnet34", 100, cifar=True).state_dict(), path)
        cmd = ["/usr/bin/time", "-v", a.ltlab, "layers", path, "--init", "--samples", str(a.samples), "--format", "json"]
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        cmd += a.extra.split()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", proc.stderr).group(1)
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
        print("ltlab layers ResNet-34 (CIFAR, init), %d noise inputs %s: wall %s, peak RSS %.2f GB"
              % (a.samples, a.extra, wall, rss / 1024 ** 2))
        for layer in json.loads(proc.stdout):
            print("  %-10s D %6d  cos %.4f +- %.4f  hoyer %.3f" % (layer["name"], layer["dimension"], layer["cone_mean_cos"],
                                                                  layer["cone_std_cos"], layer["hoyer_sparsity"]))


if __name__ == "__main__":
    main()
