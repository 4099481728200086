#!/usr/bin/python3
"""Reproduces the weight-balancing analysis paper's claims with ltlab, end to
end, and writes docs/reproduction.md with the numbers and the figures.

    tools/reproduce.py [--ltlab build/bin/ltlab] [--epochs 8] [--stage2-epochs 5] [--workdir DIR]
                       [--train-args "--device cuda"] [--hardware "..."] [--reuse]

What it runs (Fashion-MNIST-LT, imbalance 100, the small CNN; on 2 cores in
about 15-25 minutes at the default budget):
  1. `ltlab train` with the recipes ce, ce-wd and wd-fr-etf (one stage + logit
     adjustment); wb's stage 2 on ce-wd's network (`--recipe wb --from`, at the
     recipe's stage-2 weight decay 0.1 and at 5e-3); post-hoc logit adjustment
     of ce and ce-wd (`--recipe la --from`).
  2. `ltlab analyze` of every final snapshot (test split; stage-1 geometry on
     the full train split, which the stage-end snapshots hold).
  3. `ltlab layers` on the trained ce and ce-wd networks (test images and
     N(0,1) noise) and on ce-wd's architecture at initialisation (noise).
  4. `ltlab cone-lab`: random layers on noise without, with batch and with
     per-sample standardisation, and the paper's gamma settings.
  5. `ltlab figures` of ce-wd and wb (PNG for this page, SVG beside it).
Every number in the document comes from those commands' JSON output. A claim
that does not hold at this budget is reported as such, never hidden.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, quiet=False):
    t0 = time.perf_counter()
    if not quiet:
        print("  $ " + " ".join(cmd), flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr}")
    return res.stdout, time.perf_counter() - t0


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_experiments import num, pct  # noqa: E402  (one formatting of the numbers for both documents)


class Reproduction:
    def __init__(self, args):
        self.a = args
        self.L = args.ltlab
        self.work = args.workdir
        self.files = {}
        self.seconds = {}
        self.lines = []
        self.verdicts = []

    def path(self, name):
        return os.path.join(self.work, name + ".h5")

    def analyze(self, name, snapshot, split="test"):
        out, _ = run([self.L, "analyze", self.files[name], "--snapshot", snapshot, "--split", split,
                      "--format", "json"], quiet=True)
        return json.loads(out)

    # ---- 1. Training ------------------------------------------------------------
    def train(self):
        a = self.a
        common = ["--dataset", "fashion-mnist-lt", "--imbalance", "100", "--seed", str(a.seed), "--overwrite",
                  *a.train_args.split()]
        jobs = [
            ("ce", ["--recipe", "ce", "--epochs", str(a.epochs)]),
            ("ce-wd", ["--recipe", "ce-wd", "--epochs", str(a.epochs)]),
            ("wd-fr-etf", ["--recipe", "wd-fr-etf", "--epochs", str(a.epochs)]),
            ("wb", ["--recipe", "wb", "--from", "@ce-wd", "--stage2-epochs", str(a.stage2_epochs)]),
            ("wb-wd5e-3", ["--recipe", "wb", "--from", "@ce-wd", "--stage2-epochs", str(a.stage2_epochs),
                           "--stage2-weight-decay", "5e-3"]),
            ("ce-la", ["--recipe", "la", "--from", "@ce"]),
            ("ce-wd-la", ["--recipe", "la", "--from", "@ce-wd"]),
        ]
        for name, extra in jobs:
            path = self.files[name] = self.path(name)
            extra = [self.files[e[1:]] if e.startswith("@") else e for e in extra]
            if a.reuse and os.path.exists(path):
                continue
            print(f"training {name} ...", flush=True)
            opts = common if "--from" not in extra else ["--overwrite", *a.train_args.split()]
            _, self.seconds[name] = run([self.L, "train", *extra, *opts, "--out", path])

    # ---- 3. Layers ----------------------------------------------------------------
    def layers(self):
        self.layer_runs = {}
        for name, inputs, init in (("ce-wd", "test", False), ("ce-wd", "noise", False), ("ce-wd", "noise", True),
                                   ("ce", "test", False), ("ce", "noise", False)):
            key = f"{name}, {'init' if init else 'trained'}, {'test images' if inputs == 'test' else 'noise'}"
            cmd = [self.L, "layers", self.files[name], "--inputs", inputs, "--samples", str(self.a.layer_samples),
                   "--seed", str(self.a.seed), "--format", "json", "--out", self.files[name]]
            if init:
                cmd.append("--init")
            out, _ = run(cmd)
            self.layer_runs[key] = json.loads(out)

    # ---- 4. Cone lab ----------------------------------------------------------------
    def cone_lab(self):
        self.cone = {}
        for label, opts in (("no normalisation", ["--norm", "none"]), ("batch standardisation", ["--norm", "batch"]),
                            ("per-sample standardisation", ["--norm", "sample"])):
            out, _ = run([self.L, "cone-lab", *opts, "--json", "--seed", str(self.a.seed)], quiet=True)
            self.cone[label] = json.loads(out)
        self.cone_presets = {}
        for k, std in enumerate(("0", "0.01", "0.05", "0.1")):
            out, _ = run([self.L, "cone-lab", "--preset", str(k), "--json", "--seed", str(self.a.seed)], quiet=True)
            self.cone_presets[std] = json.loads(out)

    # ---- 5. Figures ---------------------------------------------------------------
    def figures(self):
        # Beside the document: docs/reproduction/ for docs/reproduction.md.
        self.figure_dir = os.path.join(os.path.dirname(os.path.abspath(self.a.out)), "reproduction")
        shutil.rmtree(self.figure_dir, ignore_errors=True)
        for name, extra in (("ce-wd", []), ("wb", ["--baseline", self.files["ce-wd"]])):
            out_dir = os.path.join(self.work, "figures", name)
            run([self.L, "figures", self.files[name], "--out", out_dir, "--format", "png,svg", "--dpi", "110",
                 "--size", "page", *extra])
            keep = os.path.join(self.figure_dir, name)
            os.makedirs(keep, exist_ok=True)
            for stem in self.FIGURES[name]:
                for ext in ("png", "svg"):
                    src = os.path.join(out_dir, f"{stem}.{ext}")
                    if os.path.exists(src):
                        shutil.copy(src, keep)

    FIGURES = {"ce-wd": ["weight_norms", "cone", "training_curves", "weight_norm_evolution", "per_class_loss",
                         "features_cos_sim"],
               "wb": ["weight_norms", "logit_adjustment_implicit", "per_class_vs_baseline", "confusion_grouped"]}

    # ---- The document ------------------------------------------------------------
    def claim(self, text, holds, detail):
        verdict = "agrees" if holds else "does not agree"
        self.verdicts.append((text, holds))
        self.lines.append(f"- **{text}** — {verdict} at this budget: {detail}.")

    def write(self):
        a, L = self.a, self.lines
        final = {"ce": "final", "ce-wd": "final", "wd-fr-etf": "final_la", "wb": "stage2_final",
                 "wb-wd5e-3": "stage2_final", "ce-la": "final_la", "ce-wd-la": "final_la"}
        test = {n: self.analyze(n, s) for n, s in final.items()}
        stage1_train = {n: self.analyze(n, "final", "train") for n in ("ce", "ce-wd")}
        stage1_train["wd-fr-etf"] = self.analyze("wd-fr-etf", "final", "train")
        wb_start = self.analyze("ce-wd", "final")  # wb continues ce-wd's network: its stage 1
        titles = {"ce": "ce (cross-entropy)", "ce-wd": "ce-wd (+ weight decay 5e-3)",
                  "wb": "wb (ce-wd, then stage 2 at its weight decay 0.1)",
                  "wb-wd5e-3": "wb, stage-2 weight decay 5e-3", "wd-fr-etf": "wd-fr-etf (one stage + LA)",
                  "ce-la": "ce + logit adjustment", "ce-wd-la": "ce-wd + logit adjustment"}
        L += ["# Reproduction: the weight-balancing paper's claims, measured by ltlab", "",
              f"Written by `tools/reproduce.py --epochs {a.epochs} --stage2-epochs {a.stage2_epochs} --seed {a.seed}"
              f"{' --train-args ' + repr(a.train_args) if a.train_args else ''}` on {datetime.date.today()} "
              f"({a.hardware}), in {self.total / 60:.0f} minutes. Rerun it to regenerate this page and its figures.",
              "",
              "Data: Fashion-MNIST-LT, imbalance factor 100 (5,980 down to 60 training images per class), 20",
              "validation images per class, the balanced test set. Model: ltlab's small CNN (3 conv-BN-ReLU stages,",
              "64-d features). SGD with momentum 0.9, lr 0.01 cosine-annealed to 0, batch 64; weight decay is",
              "lambda/2 ||theta||^2 with lambda 5e-3; wb's stage 2 uses the ICLR code's class-balanced loss",
              "(mean_i w_y CE_i, beta 0.9999) and MaxNorm after every step, on ce-wd's network",
              "(`ltlab train --recipe wb --from ce-wd.h5`). Logit adjustment picks tau on the validation split.",
              f"The paper trains CIFAR ResNets for 200-320 epochs; this budget ({a.epochs} epochs) is a classroom's,",
              "so effects that build up over long training are expected to be weaker.", "",
              "## Accuracy per recipe (test split, balanced)", "",
              "| recipe | snapshot | balanced | many | medium | few | implicit tau | train time |",
              "|---|---|---|---|---|---|---|---|"]
        for n, t in test.items():
            secs = self.seconds.get(n)
            L.append(f"| {titles[n]} | {final[n]} | {pct(t['accuracy'])} | {pct(t['accuracy_many'])} | "
                     f"{pct(t['accuracy_medium'])} | {pct(t['accuracy_few'])} | {num(t['implicit_la_tau'])} | "
                     f"{'' if secs is None else '< 1 s' if secs < 0.5 else f'{secs:.0f} s'} |")
        L += ["", "Shot groups: many > 1000, few < 200 training images. Train time: wall time of `ltlab train`",
              "(with the per-epoch evaluation); the `--from` runs reuse the source's stage 1.", "",
              "## The paper's mechanisms", ""]

        # Weight decay in stage 1: FDR up, cone narrower.
        ce, wd = stage1_train["ce"], stage1_train["ce-wd"]
        self.claim("Weight decay raises FDR of the penultimate features in stage 1",
                   wd["fdr"] > ce["fdr"], f"train FDR ce {num(ce['fdr'], 4)}, ce-wd {num(wd['fdr'], 4)} "
                   f"(every train image, end of stage 1)")
        self.claim("Weight decay narrows the cone (lower cosine between different classes)",
                   wd["cone_mean_cos_diff_class"] < ce["cone_mean_cos_diff_class"],
                   f"different-class mean cosine ce {num(ce['cone_mean_cos_diff_class'])}, "
                   f"ce-wd {num(wd['cone_mean_cos_diff_class'])}; all pairs {num(ce['cone_mean_cos'])} vs "
                   f"{num(wd['cone_mean_cos'])}")
        lt, lc = self.layer_runs["ce-wd, trained, test images"], self.layer_runs["ce, trained, test images"]
        fdr_rows = ", ".join(f"{x['name']} {num(x['fdr'], 3)} / {num(y['fdr'], 3)}" for x, y in zip(lc, lt))
        self.claim("... and through the layers (channel-pooled FDR, ce / ce-wd, test images)",
                   lt[-1]["fdr"] is not None and lc[-1]["fdr"] is not None and lt[-1]["fdr"] > lc[-1]["fdr"], fdr_rows)

        # The cone on noise, before and after training, and what normalisation does.
        noise_t, noise_i = self.layer_runs["ce-wd, trained, noise"], self.layer_runs["ce-wd, init, noise"]
        rows = ", ".join(f"{x['name']} {num(x['cone_mean_cos'])} / {num(y['cone_mean_cos'])}"
                         for x, y in zip(noise_i, noise_t))
        self.claim("The cone appears on N(0,1) noise inputs, already at initialisation",
                   noise_i[-1]["cone_mean_cos"] > noise_i[0]["cone_mean_cos"] + 0.3 and
                   noise_t[-1]["cone_mean_cos"] > noise_t[0]["cone_mean_cos"] + 0.3,
                   f"mean pairwise cosine per layer, init / trained: {rows}")
        last = {k: v["layers"][-1] for k, v in self.cone.items()}
        self.claim("Normalisation shapes the cone (random layers on noise, `ltlab cone-lab`)",
                   abs(last["batch standardisation"]["mean_cos"] - last["no normalisation"]["mean_cos"]) > 0.05,
                   "mean cosine after 5 random ReLU layers: " +
                   ", ".join(f"{k} {num(v['mean_cos'])}" for k, v in last.items()))
        presets = {k: v["layers"][-1]["mean_cos"] for k, v in self.cone_presets.items()}
        first = {k: v["layers"][1]["mean_cos"] for k, v in self.cone_presets.items()}
        self.claim("The cone deepens layer after layer, and the BN scale's spread moves it (the paper's multi-layer "
                   "study: gamma mean 0.1, std 0 ... 0.1)",
                   all(presets[k] > first[k] for k in presets) and abs(presets["0.1"] - presets["0"]) > 1e-3,
                   "mean cosine after layer 1 / layer 5: " +
                   ", ".join(f"std {k}: {num(first[k])} / {num(v)}" for k, v in presets.items()))

        # Stage 2 as implicit logit adjustment.
        s1, s2, s2b, la = wb_start, test["wb"], test["wb-wd5e-3"], test["ce-wd-la"]
        self.claim("Stage 2 acts as an implicit logit adjustment: it raises the implicit tau (tail norms up)",
                   s2b["implicit_la_tau"] > s1["implicit_la_tau"],
                   f"implicit tau {num(s1['implicit_la_tau'])} after stage 1, {num(s2b['implicit_la_tau'])} after "
                   f"stage 2 at weight decay 5e-3, {num(s2['implicit_la_tau'])} at 0.1")
        self.claim("... and lands near explicit logit adjustment of the same features",
                   abs(s2b["accuracy"] - la["accuracy"]) <= 0.03,
                   f"balanced / few: stage 2 (5e-3) {pct(s2b['accuracy'])} / {pct(s2b['accuracy_few'])} %, "
                   f"ce-wd + LA {pct(la['accuracy'])} / {pct(la['accuracy_few'])} %, stage 1 {pct(s1['accuracy'])} / "
                   f"{pct(s1['accuracy_few'])} %")
        self.claim("Stage 2 at the recipe's weight decay 0.1 helps too", s2["accuracy"] > s1["accuracy"],
                   f"{pct(s1['accuracy'])} % -> {pct(s2['accuracy'])} % balanced (the setting matters: "
                   f"5e-3 gives {pct(s2b['accuracy'])} %)")
        etf = test["wd-fr-etf"]
        best_wb = max(s2["accuracy"], s2b["accuracy"])
        self.claim("The one-stage method (WD + FR + ETF, then LA) matches or beats two-stage weight balancing",
                   etf["accuracy"] >= best_wb - 0.01,
                   f"wd-fr-etf {pct(etf['accuracy'])} % against wb {pct(s2['accuracy'])} % (stage-2 WD 0.1) and "
                   f"{pct(s2b['accuracy'])} % (5e-3)")
        L += ["", f"{sum(h for _, h in self.verdicts)} of {len(self.verdicts)} claims agree at this budget.", ""]

        # Layer table.
        L += ["## Through the layers", "",
              f"`ltlab layers` on {self.a.layer_samples} inputs (a seeded class-stratified batch of the test split, "
              "or seeded N(0,1) noise of the input's shape). Cosines on the flattened maps; FDR on the",
              "channel-pooled features (docs/analysis.md, Layer-wise analysis).", "",
              "| layer | dim | cone cos, test (ce / ce-wd) | FDR, test (ce / ce-wd) | cone cos, noise (init / ce-wd) | Hoyer, noise (ce-wd) | BN gamma mean (ce-wd) |",
              "|---|---|---|---|---|---|---|"]
        for x, y, ni, nt in zip(lc, lt, noise_i, noise_t):
            L.append(f"| {y['name']} | {y['dimension']} | {num(x['cone_mean_cos'])} / {num(y['cone_mean_cos'])} | "
                     f"{num(x['fdr'])} / {num(y['fdr'])} | {num(ni['cone_mean_cos'])} / {num(nt['cone_mean_cos'])} | "
                     f"{num(nt['hoyer_sparsity'])} | {num(nt['bn_gamma_mean'])} |")
        L += ["", "The results are stored in the run files under `/layers` and shown in the workbench's Layers tab.", ""]

        # Figures.
        L += ["## Figures", "",
              "Written by `ltlab figures RUN.h5 --size page --format png,svg` (SVG beside each PNG, vector).", ""]
        captions = {"weight_norms": "per-class weight norms", "cone": "pairwise cosines (cone effect)",
                    "training_curves": "training curves", "weight_norm_evolution": "weight-norm evolution",
                    "per_class_loss": "per-class loss and weight-decay penalty",
                    "features_cos_sim": "class x class feature cosine",
                    "logit_adjustment_implicit": "implicit logit adjustment fit",
                    "per_class_vs_baseline": "per-class accuracy against ce-wd",
                    "confusion_grouped": "confusion by shot group"}
        for name, stems in self.FIGURES.items():
            for stem in stems:
                if os.path.exists(os.path.join(self.figure_dir, name, stem + ".png")):
                    L.append(f"![{name}: {captions.get(stem, stem)}](reproduction/{name}/{stem}.png)")
                    L.append("")
        # CIFAR commands.
        L += ["## CIFAR-10-LT and CIFAR-100-LT", "",
              "ltlab downloads nothing: with the CIFAR binary files (`cifar-10-batches-bin/`, `cifar-100-binary/`)",
              "on disk, the paper's setting (ResNet-34, 320 epochs, batch 64) is:", "", "```sh",
              "D=~/data/cifar-100-binary   # or cifar-10-batches-bin with --dataset cifar10-lt",
              "ltlab train --recipe ce-wd --dataset cifar100-lt --imbalance 100 --model resnet34 --epochs 320 \\",
              "            --data-dir $D --device cuda --out c100-ce-wd.h5",
              "ltlab train --recipe wb --from c100-ce-wd.h5 --stage2-epochs 10 --out c100-wb.h5",
              "ltlab train --recipe wd-fr-etf --dataset cifar100-lt --imbalance 100 --model resnet34 --epochs 320 \\",
              "            --data-dir $D --device cuda --out c100-etf.h5",
              "ltlab layers c100-ce-wd.h5 --inputs test --out c100-ce-wd.h5",
              "ltlab layers c100-ce-wd.h5 --inputs noise --out c100-ce-wd.h5",
              "ltlab layers c100-ce-wd.h5 --inputs noise --init --out c100-ce-wd.h5",
              "ltlab figures c100-wb.h5 --baseline c100-ce-wd.h5 --size column --out figures/",
              "```", ""]
        with open(self.a.out, "w") as f:
            f.write("\n".join(L) + "\n")
        print("\n".join(L))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ltlab", default=os.path.join(ROOT, "build", "bin", "ltlab"))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--stage2-epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layer-samples", type=int, default=2000)
    ap.add_argument("--workdir", default=os.path.join(ROOT, "demo", "reproduction"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "reproduction.md"))
    ap.add_argument("--train-args", default="", help="more `ltlab train` options for the trained runs")
    ap.add_argument("--hardware", default="2 CPU cores, Debian's libtorch 1.13")
    ap.add_argument("--reuse", action="store_true", help="keep run files that exist")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    r = Reproduction(args)
    started = time.perf_counter()
    r.train()
    print("layers ...", flush=True)
    r.layers()
    print("cone lab ...", flush=True)
    r.cone_lab()
    print("figures ...", flush=True)
    r.figures()
    r.total = time.perf_counter() - started
    r.write()


if __name__ == "__main__":
    main()
