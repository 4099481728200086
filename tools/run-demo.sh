#!/usr/bin/env bash
# Installs what is missing, builds ltlab, and runs the main job: a synthetic
# long-tailed run (five epochs collapsing towards a simplex ETF) and its analysis.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake --preset release
cmake --build --preset release
mkdir -p demo
build/bin/ltlab synth --out demo/synthetic-lt.h5 --classes 10 --dim 64 --imbalance 100 --snapshots 5 --seed 1
build/bin/ltlab analyze demo/synthetic-lt.h5
