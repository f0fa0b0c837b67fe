#!/usr/bin/env bash
# One call on the GPU machine: configure for sm_90, build, run the CUDA test suite, then
# whatever benchmark commands are passed as arguments. Logs go under $OUT (or ./out).
# Usage: bash bench/device_run.sh [TESTFILTER] [-- COMMAND ...]
set -uo pipefail
out="${OUT:-$PWD/out}"
mkdir -p "$out"
export BRAID_FIXTURES="$PWD/.fixtures"
filter="${1:-*}"
shift || true
[ "${1:-}" = "--" ] && shift
# Debian packages the GPU image lacks (PCRE2 for the BPE pre-tokenizers; cpp-httplib and the
# libraries its pkg-config file names, for braid serve), carried as .debs/ (`apt-get download
# libpcre2-dev libpcre2-8-0 libcpp-httplib-dev libcpp-httplib0.11 libssl-dev libssl3
# zlib1g-dev zlib1g libbrotli-dev libbrotli1` here): unpacked aside and found through
# pkg-config, which then looks there only (its sysroot would misplace the image's own files).
# Later calls on the same machine need LD_LIBRARY_PATH=/tmp/debs/usr/lib/x86_64-linux-gnu.
if [ -d .debs ] && ! { pkg-config --exists libpcre2-8 && pkg-config --exists cpp-httplib; } 2>/dev/null; then
  mkdir -p /tmp/debs && for f in .debs/*.deb; do dpkg -x "$f" /tmp/debs; done
  export PKG_CONFIG_SYSROOT_DIR=/tmp/debs PKG_CONFIG_LIBDIR=/tmp/debs/usr/lib/x86_64-linux-gnu/pkgconfig:/tmp/debs/usr/share/pkgconfig
  export LD_LIBRARY_PATH=/tmp/debs/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "from .debs: PCRE2 $(pkg-config --modversion libpcre2-8), cpp-httplib $(pkg-config --modversion cpp-httplib 2>&1)"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
# Without cpp-httplib (no .debs carried) braid builds without its server.
http=ON; pkg-config --exists cpp-httplib 2>/dev/null || http=OFF
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DBRAID_SERVE_HTTP=$http >"$out/configure.log" 2>&1 \
  || { tail -30 "$out/configure.log"; exit 1; }
cmake --build build -j16 >"$out/build.log" 2>&1 || { grep -E "error|Error" "$out/build.log" | head -40; exit 1; }
echo "build ok"
if [ "$filter" != "none" ]; then
  ./build/tests/braid_tests --gtest_filter="$filter" >"$out/tests.log" 2>&1
  echo "tests rc=$?"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|tests ran" "$out/tests.log" | tail -40
fi
if [ $# -gt 0 ]; then
  echo "+ $*"
  "$@" 2>&1 | tee "$out/command.log"
fi
