#!/usr/bin/env bash
# Installs what is missing, builds ltlab and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake --preset release
cmake --build --preset release
ctest --preset release
