#!/usr/bin/env bash
# Issue 13, finding the cause: every candidate plan of one row timed on its own, on a quiet
# host and beside a CPU burner (one busy loop per core), then auto with a fresh cache beside
# the burner, with the evidence auto recorded (its cache file). Usage, on the GPU machine
# after bench/device_run.sh built ./build:
#   bash bench/auto_diagnose.sh [PRESET] [TEST_ARGS...]   (default: llama-1b -p 512 -n 0)
set -uo pipefail
braid="${BRAID:-./build/braid}"
out="${OUT:-$PWD/out}"
preset="${1:-llama-1b}"
shift || true
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(-p 512 -n 0)
pids=()
burn() { for _ in $(seq "$(nproc)"); do sh -c 'while :; do :; done' & pids+=($!); done; }
unburn() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; pids=(); }
trap unburn EXIT
for condition in quiet burner; do
  [ "$condition" = burner ] && burn
  echo "== $condition: every policy of $preset ${tests[*]}"
  XDG_CACHE_HOME="$(mktemp -d)" "$braid" bench --preset "$preset" "${tests[@]}" -r 5 --graph 1 \
    --policy serial,branch,levels,chains,cost,auto 2>/dev/null | grep -E "^\| $preset|^- auto"
  XDG_CACHE_HOME="$(mktemp -d)"
  export XDG_CACHE_HOME
  echo "== $condition: auto alone, fresh cache"
  "$braid" bench --preset "$preset" "${tests[@]}" -r 5 --graph 1 --policy serial,auto 2>/dev/null | grep -E "^\| $preset|^- auto"
  cp "$XDG_CACHE_HOME/braid/autotune.json" "$out/autotune-$condition.json" 2>/dev/null
  unburn
done
