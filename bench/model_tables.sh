#!/usr/bin/env bash
# The issue-4 table, on the GPU machine after a build: decode time per token (tg, one
# token per step, no prompt test) for each built-in model, for serial without and with a
# CUDA graph, every multi-stream policy and auto with a graph, plus device memory per
# plan. `braid bench` also measures the multi-stream policies without a graph; those rows
# stay in the JSON and appear in the table with --all.
#
# Usage: bash bench/model_tables.sh [MODEL ...]   (default: tiny-256 llama-1b llama-7b moe-8x1b)
# Environment: BRAID (the CLI, default ./build/braid), OUT (folder for the JSON, logs and
# table, default ./out), GEN (decode steps per test, default 128), REPS (repetitions,
# default 3). One model per call keeps each call short: llama-7b and moe-8x1b build
# 13 GiB and 9 GiB of random weights on the host first.
# On the device through bench/device_run.sh:
#   bash bench/device_run.sh none -- bash bench/model_tables.sh tiny-256 llama-1b
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
braid="${BRAID:-./build/braid}"
out="${OUT:-$PWD/out}"
gen="${GEN:-128}"
reps="${REPS:-3}"
mkdir -p "$out"
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(tiny-256 llama-1b llama-7b moe-8x1b)

# A fresh auto-tune cache: auto times its candidates in this run, never reuses an old choice.
XDG_CACHE_HOME="$(mktemp -d)"
export XDG_CACHE_HOME
trap 'rm -rf "$XDG_CACHE_HOME"' EXIT

files=()
for model in "${models[@]}"; do
  json="$out/tg-$model.json"
  log="$out/tg-$model.log"
  echo "+ $model" >&2
  # -p 0: no prompt test (bench skips lengths <= 0); the context is sized for -n.
  if ! "$braid" bench --preset "$model" -p 0 -n "$gen" -r "$reps" \
      --policy serial,branch,levels,chains,cost,auto --graph 0,1 -o json >"$json" 2>"$log"; then
    tail -20 "$log" >&2
    exit 1
  fi
  files+=("$json")
done

python3 "$here/format_results.py" "${files[@]}" | tee "$out/model_tables.md"
