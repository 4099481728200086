#!/usr/bin/python3
"""Training throughput of ltlab's libtorch models against the same models in
PyTorch's Python API (Debian's python3-torch 1.13), same threads, same batch,
in the same run: images/s of forward + cross-entropy + backward + SGD step on
random inputs, after 5 warm-up steps, best of alternating trials. Prints
figures; asserts nothing.

    bench/train_throughput.py [--ltlab build/bin/ltlab] [--steps 30] [--threads N]
"""

import argparse
import os
import re
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SmallCNN(nn.Module):
    """ltlab's `cnn`: three conv3x3-BN-ReLU (16, 32, 64), 2x2 max-pools after the first two, global average pool."""

    def __init__(self, channels, classes):
        super().__init__()
        widths = [channels, 16, 32, 64]
        self.convs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False) for i in range(3))
        self.bns = nn.ModuleList(nn.BatchNorm2d(widths[i + 1]) for i in range(3))
        self.classifier = nn.Linear(64, classes)

    def forward(self, x):
        for i in range(3):
            x = F.relu(self.bns[i](self.convs[i](x)))
            if i < 2:
                x = F.max_pool2d(x, 2)
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class CifarResNet(nn.Module):
    """ltlab's `resnet32` (5+5+5 blocks of 16/32/64) and `resnet34` (3+4+6+3 of 64..512)."""

    def __init__(self, channels, blocks, widths, classes):
        super().__init__()
        self.stem = nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for s, (n, w) in enumerate(zip(blocks, widths)):
            for b in range(n):
                layers.append(BasicBlock(cin, w, 2 if s > 0 and b == 0 else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.stages(F.relu(self.stem_bn(self.stem(x))))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


def python_throughput(model_name, batch, steps, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if model_name == "cnn":
        net, shape, classes = SmallCNN(1, 10), (1, 28, 28), 10
    else:
        net, shape, classes = CifarResNet(3, [5, 5, 5], [16, 32, 64], 100), (3, 32, 32), 100
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, classes, (batch,))

    def step():
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ltlab", default=os.path.join(ROOT, "build", "bin", "ltlab"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--trials", type=int, default=3, help="alternating trials of each; the best counts")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {args.threads} threads, {args.steps} timed steps\n")
    print("| model | batch | ltlab (C++) images/s | PyTorch (Python) images/s | ratio |")
    print("|---|---|---|---|---|")
    for model in ("cnn", "resnet32"):
        for batch in (64, 128):
            ours, theirs = 0.0, 0.0
            for _ in range(args.trials):  # alternate, so that both see the same machine
                out = subprocess.run([args.ltlab, "benchmark-training", "--model", model, "--batch-size", str(batch),
                                      "--steps", str(args.steps), "--threads", str(args.threads)],
                                     capture_output=True, text=True, check=True).stdout
                ours = max(ours, float(re.search(r"images_per_second: ([0-9.eE+]+)", out).group(1)))
                theirs = max(theirs, python_throughput(model, batch, args.steps, args.threads))
            print(f"| {model} | {batch} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
