#!/usr/bin/env bash
# Selective scan on a CUDA machine with nothing but the toolkit: builds only what the scan tests
# need (kernels library, GoogleTest, the scan test objects; not the CLI or other folders' tests),
# runs the scan tests (GPU cases included), compute-sanitizer memcheck/racecheck on the small
# every-kernel test, and the benchmark. Header-only deps come from .deps (tools/prepare-gpu-deps).
#   tools/bench/selective_scan_gpu.sh [--no-tests] [--no-sanitizer] [--no-bench] [--tune]
# Environment: MCV_SCAN_BUILD (build folder, default build/gpu-scan), MCV_SCAN_CUDA_FLAGS (extra
# CMAKE_CUDA_FLAGS, e.g. -D switches for kernel experiments).
set -uo pipefail
cd "$(dirname "$0")/../.."
tests=1 sanitizer=1 bench=1 tune=0
for a in "$@"; do
  case "$a" in
    --no-tests) tests=0 ;; --no-sanitizer) sanitizer=0 ;; --no-bench) bench=0 ;; --tune) tune=1 ;;
    *) echo "selective_scan_gpu: unknown argument $a" >&2; exit 2 ;;
  esac
done
out=${OUT:-build/scan-logs}
mkdir -p "$out"
deps=$PWD/.deps
b=${MCV_SCAN_BUILD:-build/gpu-scan}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
cmake -S . -B $b -G Ninja -DCMAKE_BUILD_TYPE=Release -DMCV_WITH_CUDA=ON -DMCV_DEPS_PREFIX="$deps" \
  -DMCV_GTEST_SOURCE_DIR="$deps/googletest" -DMCV_ORACLE_DIR="$deps/oracles" \
  ${MCV_SCAN_CUDA_FLAGS:+"-DCMAKE_CUDA_FLAGS=$MCV_SCAN_CUDA_FLAGS"} >"$out/configure.log" 2>&1 \
  || { tail -30 "$out/configure.log"; exit 1; }
t0=$(date +%s)
gt=$(cd $b && ninja -t targets all | grep -oE '^lib/libgtest(_main)?\.so\.[0-9.]+' | sort -u)
objs=()
for f in tests/kernels/test_selective_scan*.cpp tests/support/test_support.cpp; do
  rel=${f#tests/}
  objs+=("tests/CMakeFiles/mcv_kernels_tests.dir/$rel.o")
done
ninja -C $b kernels/libmcv_kernels.so $gt "${objs[@]}" >"$out/build.log" 2>&1 \
  || { grep -E "error|FAILED" "$out/build.log" | head -40; exit 1; }
(cd $b && c++ -O2 "${objs[@]}" -o scan_tests -Wl,-rpath,"$PWD/kernels:$PWD/core:$PWD/lib" \
  kernels/libmcv_kernels.so core/libmcv_core.so $gt) || exit 1
echo "build: $(( $(date +%s) - t0 )) s"
bin=$b/scan_tests
if [ $tests = 1 ]; then
  $bin --gtest_filter='*SelectiveScan*' >"$out/tests.log" 2>&1
  echo "tests: exit $? | $(grep -E '^\[  (PASSED|FAILED)  \]|tests ran' "$out/tests.log" | tr '\n' ' ')"
  grep -E "FAILED|Failure|Expected|Which is|actual" "$out/tests.log" | head -60
fi
if [ $bench = 1 ]; then
  $bin --gtest_also_run_disabled_tests --gtest_filter='SelectiveScanBench.DISABLED_Run' 2>&1 | tee "$out/bench.log" \
    | grep -vE '^\[|^Running|^Note|^$'
fi
if [ $tune = 1 ]; then
  $bin --gtest_also_run_disabled_tests --gtest_filter='SelectiveScanBench.DISABLED_Tune' 2>&1 | tee "$out/tune.log" \
    | grep -vE '^\[|^Running|^Note|^$|^name'
fi
if [ $sanitizer = 1 ] && command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 9 $bin --gtest_filter='*SelectiveScanCudaSanitizer*' \
      >"$out/sanitizer-$tool.log" 2>&1
    echo "compute-sanitizer $tool: exit $? ($(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-$tool.log" | tail -1))"
  done
fi
