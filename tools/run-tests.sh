#!/usr/bin/env bash
# Installs what is missing, builds ltlab and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake --preset release
cmake --build --preset release
ctest --preset release
# The sanitizer build (docs/reliability.md, "Sanitizers"): AddressSanitizer and
# UndefinedBehaviorSanitizer over core, the app, the training module and their
# tests, in build-asan/. LTLAB_SANITIZERS=0 skips it.
if [[ "${LTLAB_SANITIZERS:-1}" != 0 ]]; then
  cmake --preset asan
  cmake --build --preset asan
  ctest --preset asan
fi
