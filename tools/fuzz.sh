#!/usr/bin/env bash
# libFuzzer harnesses of ltlab's readers (fuzz/, docs/reliability.md "Fuzzing").
#   tools/fuzz.sh NAME SECONDS   build (build-fuzz/, clang) and fuzz one harness
#   tools/fuzz.sh smoke [SECONDS] each harness for SECONDS (default 10); 0: each generated seed once,
#                                no mutation (the CI check, deterministic: fuzzing's new findings
#                                are for tools/fuzz.sh NAME SECONDS, not for a landing gate)
#   tools/fuzz.sh build          build only
# NAME: run_file, idx, cifar, config, checkpoint. Seeds are written by
# fuzz/make_seeds.py into build-fuzz/seeds/NAME; the corpus grows in
# build-fuzz/corpus/NAME; crashes land in build-fuzz/artifacts/NAME/.
# Exit status: 0 no finding, 1 a crash, leak, timeout or failed build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${LTLAB_FUZZ_BUILD:-$ROOT/build-fuzz}
HARNESSES=(run_file idx cifar config checkpoint)
JOBS=${LTLAB_FUZZ_JOBS:-2}

# libFuzzer's limit on one malloc. run_file: 4200 MB, because HDF5 1.10 allocates
# an object header chunk of the size the file declares (4 bytes in version 1)
# before it reads it, and fails the open when the read comes up short: an
# untouched allocation, no memory used (docs/reliability.md, "Fuzzing").
malloc_limit() {
  case $1 in
    run_file) echo 4200 ;;
    *) echo 1024 ;;
  esac
}

max_len() {
  case $1 in
    run_file) echo 65536 ;;
    checkpoint) echo 16384 ;;
    cifar) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

build() {
  command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
  if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S fuzz -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
          -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD.configure.log" 2>&1 ||
      { cat "$BUILD.configure.log" >&2; exit 1; }
  fi
  nice ninja -C "$BUILD" -j "$JOBS" >"$BUILD/build.log" 2>&1 || { tail -50 "$BUILD/build.log" >&2; exit 1; }
  if [ ! -d "$BUILD/seeds" ] || [ fuzz/make_seeds.py -nt "$BUILD/seeds" ]; then
    rm -rf "$BUILD/seeds.tmp"
    LTLAB_BIN=${LTLAB_BIN:-} /usr/bin/python3 fuzz/make_seeds.py "$BUILD/seeds.tmp"
    rm -rf "$BUILD/seeds" && mv "$BUILD/seeds.tmp" "$BUILD/seeds"
  fi
}

# fuzz NAME SECONDS: libFuzzer's final stats line and a summary on stdout.
fuzz() {
  local name=$1 seconds=$2
  local corpus=$BUILD/corpus/$name artifacts=$BUILD/artifacts/$name log=$BUILD/fuzz-$name.log
  mkdir -p "$corpus" "$artifacts"
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0:allocator_may_return_null=1:abort_on_error=1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
  local rc=0
  # SECONDS 0: run each generated seed once, no mutation (deterministic: the CI check).
  local mode=(-max_total_time="$seconds") dirs=("$corpus" "$BUILD/seeds/$name")
  if [ "$seconds" = 0 ]; then mode=(-runs=0); dirs=("$BUILD/seeds/$name"); fi
  nice "$BUILD/bin/fuzz_$name" "${mode[@]}" -max_len="$(max_len "$name")" -timeout=10 \
       -rss_limit_mb=2048 -malloc_limit_mb="$(malloc_limit "$name")" -print_final_stats=1 -artifact_prefix="$artifacts/" \
       "${dirs[@]}" >"$log" 2>&1 || rc=$?
  local last
  last=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
  local eps
  eps=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
  echo "fuzz_$name: ${seconds}s, ${eps:-?} exec/s, ${last}"
  if [ "$rc" -ne 0 ]; then
    echo "fuzz_$name: FINDING (exit $rc), log $log, inputs in $artifacts/:" >&2
    grep -E 'ERROR|SUMMARY|==[0-9]+==|#[0-9]+ 0x|runtime error|deadly signal|Test unit written' "$log" | head -40 >&2
    return 1
  fi
}

case ${1:-} in
  build) build ;;
  smoke)
    seconds=${2:-10}
    build
    failed=0
    for h in "${HARNESSES[@]}"; do fuzz "$h" "$seconds" || failed=1; done
    exit $failed ;;
  run_file|idx|cifar|config|checkpoint)
    [ $# -eq 2 ] || { echo "usage: tools/fuzz.sh NAME SECONDS" >&2; exit 1; }
    build
    fuzz "$1" "$2" ;;
  *)
    echo "usage: tools/fuzz.sh NAME SECONDS | smoke [SECONDS] | build   (NAME: ${HARNESSES[*]})" >&2
    exit 1 ;;
esac
