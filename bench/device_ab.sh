#!/usr/bin/env bash
# An A/B comparison in one call on the GPU machine: the working tree (built and tested by
# device_run.sh) against a base commit (only the braid binary, in a worktree), then the same
# command with each binary in turn, base first. Figures compare only within one call
# (bench/RESULTS.md), so the baseline has to run beside the change.
# Usage: bash bench/device_ab.sh BASE TESTFILTER -- COMMAND ...
#   COMMAND runs twice with $BRAID set to each binary, e.g.
#   bash bench/device_ab.sh HEAD 'CudaMulMat*' -- bash -c '$BRAID opbench --type q4_k --batch 64'
set -uo pipefail
base="$1" filter="$2"
shift 2
[ "${1:-}" = "--" ] && shift
out="${OUT:-$PWD/out}"
bash bench/device_run.sh "$filter" || exit 1
# What device_run.sh set up for its own build, for this one.
if [ -d /tmp/debs/usr ]; then
  export LD_LIBRARY_PATH=/tmp/debs/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PKG_CONFIG_SYSROOT_DIR=/tmp/debs
  export PKG_CONFIG_LIBDIR=/tmp/debs/usr/lib/x86_64-linux-gnu/pkgconfig:/tmp/debs/usr/share/pkgconfig
fi
rm -rf /tmp/braid-base && git worktree prune && git worktree add -q --detach /tmp/braid-base "$base" || exit 1
http=ON; pkg-config --exists cpp-httplib 2>/dev/null || http=OFF
cmake -S /tmp/braid-base -B /tmp/braid-base/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DBRAID_TESTS=OFF -DBRAID_BENCHMARKS=OFF -DBRAID_SERVE_HTTP=$http >"$out/base_configure.log" 2>&1 &&
  cmake --build /tmp/braid-base/build -j16 --target braid >"$out/base_build.log" 2>&1 ||
  { tail -20 "$out/base_build.log"; exit 1; }
echo "base $(git -C /tmp/braid-base rev-parse --short HEAD) built"
for binary in /tmp/braid-base/build/braid "$PWD/build/braid"; do
  echo "=== $binary"
  BRAID="$binary" "$@" 2>&1 | tee -a "$out/ab.log"
done
