#!/usr/bin/env bash
# `braid bench` on several presets, one after another, every policy, graph off and on,
# fusion off and on; markdown per preset under $OUT (or ./out), summaries on stdout.
# Usage: bash bench/run_presets.sh PRESET ...   Environment: PROMPT (512), GEN (128),
# REPS (3), FUSE (0,1), POLICIES (serial,branch,levels,chains,cost,auto).
set -uo pipefail
out="${OUT:-$PWD/out}"
mkdir -p "$out"
XDG_CACHE_HOME="$(mktemp -d)"  # auto tunes afresh in this run
export XDG_CACHE_HOME
for preset in "$@"; do
  ./build/braid bench --preset "$preset" -p "${PROMPT:-512}" -n "${GEN:-128}" -r "${REPS:-3}" \
    --policy "${POLICIES:-serial,branch,levels,chains,cost,auto}" --graph 0,1 --fuse "${FUSE:-0,1}" \
    >"$out/bench-$preset.md" 2>"$out/bench-$preset.log" || { tail -5 "$out/bench-$preset.log"; continue; }
  echo "## $preset"
  sed -n '/^| model | test/,$p' "$out/bench-$preset.md"
done
