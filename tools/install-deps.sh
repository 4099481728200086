#!/usr/bin/env bash
# Installs, with apt-get, exactly the Debian 12 packages that ltlab needs and
# this machine lacks. Idempotent: with everything present it changes nothing.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config git file dpkg-dev
  # libraries
  qt6-base-dev qt6-base-dev-tools libqt6opengl6-dev qt6-svg-dev
  libqcustomplot-dev libqcustomplot2.1-qt6 libvtk9-dev libhdf5-dev libeigen3-dev
  nlohmann-json3-dev libgtest-dev libgmock-dev libzip-dev
  # checkpoint import: PNG/JPEG decoding, SHA-256 of the source files
  libpng-dev libjpeg62-turbo-dev libssl-dev
  # the fast BLAS: OpenBLAS built with OpenMP (the reference BLAS is ~20x slower)
  libopenblas0-openmp libopenblas-openmp-dev
  # oneDNN, which libtorch uses too: the analysis's float32 products (loaded when used)
  libdnnl2
  # training (loaded only by what trains)
  libtorch-dev
  # tests, packaging and headless rendering
  xvfb xauth desktop-file-utils appstream
  python3-numpy python3-h5py python3-torch python3-torchvision python3-pil
  # fuzzing (libFuzzer) and the sanitizers' symbolizer (docs/reliability.md)
  clang libclang-rt-14-dev llvm
  # the embedded real dataset
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
