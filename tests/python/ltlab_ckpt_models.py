"""Models with torchvision's parameter names and layouts, written with
Debian's python3-torch (no torchvision in Debian 12), for the checkpoint
tests and bench/inspect_benchmark.py.

resnet(block, layers, num_classes, cifar) mirrors torchvision.models.resnet
(conv1, bn1, layer1.0.conv1, layer2.0.downsample.0/1, fc); cifar=True puts
the 3x3 stride-1 stem in place of the 7x7 one and drops the max-pool, as
HN410 and ShadeAlsha do. cifar_resnet(n) is the 3-stage CIFAR ResNet
(6n+2 layers; n=5 is ResNet-32). Wrapper is HN410's layout: the network
under `encoder.`, optionally with the ETF head (fc.weight_vec,
fc.weight_norm, fc.bias).
"""

import math

import torch
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inp, planes, stride=1, groups=1, width_per_group=64):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inp, planes, stride=1, groups=1, width_per_group=64):
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        self.conv1 = nn.Conv2d(inp, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inp != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + idt)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, cifar=False, groups=1, width_per_group=64,
                 widths=(64, 128, 256, 512)):
        super().__init__()
        self.inplanes = widths[0]
        self.cifar = cifar
        self.conv1 = (nn.Conv2d(3, widths[0], 3, 1, 1, bias=False) if cifar
                      else nn.Conv2d(3, widths[0], 7, 2, 3, bias=False))
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, (w, n) in enumerate(zip(widths, layers)):
            setattr(self, "layer%d" % (i + 1), self._stage(block, w, n, 1 if i == 0 else 2, groups, width_per_group))
        self.nstages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[len(layers) - 1] * block.expansion, num_classes)

    def _stage(self, block, planes, n, stride, groups, wpg):
        blocks = []
        for i in range(n):
            blocks.append(block(self.inplanes, planes, stride if i == 0 else 1, groups, wpg))
            self.inplanes = planes * block.expansion
        return nn.Sequential(*blocks)

    def features(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if not self.cifar:
            x = self.maxpool(x)
        for i in range(self.nstages):
            x = getattr(self, "layer%d" % (i + 1))(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.features(x))


def resnet(name, num_classes=100, cifar=True):
    specs = {
        "resnet18": (BasicBlock, [2, 2, 2, 2], {}),
        "resnet34": (BasicBlock, [3, 4, 6, 3], {}),
        "resnet50": (Bottleneck, [3, 4, 6, 3], {}),
        "resnext50_32x4d": (Bottleneck, [3, 4, 6, 3], {"groups": 32, "width_per_group": 4}),
    }
    block, layers, kw = specs[name]
    return ResNet(block, layers, num_classes, cifar, **kw)


def cifar_resnet(n=5, num_classes=10):
    """The 3-stage CIFAR ResNet (16/32/64 channels), torchvision names."""
    return ResNet(BasicBlock, [n, n, n], num_classes, cifar=True, widths=(16, 32, 64))


class ETFClassifier(nn.Module):
    """HN410's ETF head: W = weight_vec * weight_norm, logits x W^T + b."""

    def __init__(self, d, c, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(d, c, generator=g))
        etf = math.sqrt(c / (c - 1)) * (torch.eye(c) - torch.ones(c, c) / c)
        self.weight_vec = nn.Parameter((q @ etf).t().contiguous(), requires_grad=False)
        self.weight_norm = nn.Parameter(torch.linspace(1.0, 0.3, c).reshape(c, 1))
        self.bias = nn.Parameter(torch.empty(c).uniform_(-1 / d, 1 / d, generator=g))

    def forward(self, x):
        return x @ (self.weight_vec * self.weight_norm).t() + self.bias


class Wrapper(nn.Module):
    """HN410's ResnetEncoder layout: everything under `encoder.`."""

    def __init__(self, encoder, etf=False):
        super().__init__()
        self.encoder = encoder
        if etf:
            self.encoder.fc = ETFClassifier(encoder.fc.in_features, encoder.fc.out_features)
        self.register_buffer("pY", torch.ones(encoder.fc.weight_vec.shape[0] if etf else encoder.fc.out_features),
                             persistent=False)

    def forward(self, x):
        return self.encoder(x)


class LtlabMlp(nn.Module):
    """ltlab's built-in mlp (core/train/networks.cpp): fc1, fc2 with ReLUs, head fc."""

    def __init__(self, inputs, num_classes):
        super().__init__()
        self.fc1 = nn.Linear(inputs, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc = nn.Linear(128, num_classes)

    def features(self, x):
        return torch.relu(self.fc2(torch.relu(self.fc1(torch.flatten(x, 1)))))

    def forward(self, x):
        return self.fc(self.features(x))


class LtlabCnn(nn.Module):
    """ltlab's built-in small CNN: conv1..3 (16/32/64, 3x3) with bn1..3, two 2x2
    max-pools, global average pooling, head fc."""

    def __init__(self, channels, num_classes):
        super().__init__()
        widths = [channels, 16, 32, 64]
        for i in range(3):
            setattr(self, "conv%d" % (i + 1), nn.Conv2d(widths[i], widths[i + 1], 3, 1, 1, bias=False))
            setattr(self, "bn%d" % (i + 1), nn.BatchNorm2d(widths[i + 1]))
        self.fc = nn.Linear(64, num_classes)

    def features(self, x):
        for i in range(3):
            x = torch.relu(getattr(self, "bn%d" % (i + 1))(getattr(self, "conv%d" % (i + 1))(x)))
            if i < 2:
                x = torch.nn.functional.max_pool2d(x, 2)
        return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x):
        return self.fc(self.features(x))


def calibrate(model, x, seed=0):
    """Realistic eval-mode numbers: BN running statistics set to those of one
    train-mode batch (cumulative average), BN affine parameters perturbed."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
            with torch.no_grad():
                m.weight.add_(0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=g))
    model.train()
    with torch.no_grad():
        model(x)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    return model.eval()
