#!/usr/bin/env bash
# Issue 13: does `auto` stay >= 0.99x serial on a busy host? Runs every row twice, on a
# quiet host and with a CPU burner on every core (one busy shell loop per core, started
# before the bench and killed after it), each time `braid bench --policy serial,auto
# --graph 1` with a fresh auto-tune cache, then writes the table (auto_under_load.py).
#
# Usage (on the GPU machine, after bench/device_run.sh built ./build):
#   bash bench/auto_under_load.sh [ROW ...]
# Rows: a preset (tiny-256, llama-1b, llama-7b, moe-8x1b, smollm2-135m, llama3.2-1b), a
# preset with a weight type (llama-1b:q4_0), or a GGUF file (file:PATH). Default: the small
# rows of the issue-7 table. Environment: BRAID (./build/braid), OUT (./out; results go to
# $OUT/auto_load), REPS (3), GEN (128), PROMPT (512).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
braid="${BRAID:-./build/braid}"
out="${OUT:-$PWD/out}/auto_load"
reps="${REPS:-3}"
rows=("$@")
[ ${#rows[@]} -eq 0 ] && rows=(tiny-256 llama-1b moe-8x1b llama-1b:q4_0)
mkdir -p "$out"
log="$out/bench.log"
: >"$log"

burner_pids=()
start_burner() {
  for _ in $(seq "$(nproc)"); do
    sh -c 'while :; do :; done' &
    burner_pids+=($!)
  done
}
stop_burner() {
  [ ${#burner_pids[@]} -gt 0 ] && kill "${burner_pids[@]}" 2>/dev/null
  wait "${burner_pids[@]}" 2>/dev/null
  burner_pids=()
}
trap stop_burner EXIT

for condition in quiet burner; do
  for row in "${rows[@]}"; do
    args=()
    case "$row" in
      file:*) args=(-m "${row#file:}") ;;
      *:*) args=(--preset "${row%%:*}" --type "${row#*:}") ;;
      *) args=(--preset "$row") ;;
    esac
    name="${row//[:\/]/_}"
    XDG_CACHE_HOME="$(mktemp -d)"  # a fresh tuning: auto times its candidates now
    export XDG_CACHE_HOME
    [ "$condition" = burner ] && start_burner
    echo "=== $(date -u +%T) $condition $row" | tee -a "$log"
    "$braid" bench "${args[@]}" -p "${PROMPT:-512}" -n "${GEN:-128}" -r "$reps" --policy serial,auto --graph 1 \
      -o json >"$out/$condition-$(basename "$name").json" 2>>"$log" || echo "  FAILED, see bench.log" | tee -a "$log"
    stop_burner
    rm -rf "$XDG_CACHE_HOME"
  done
done
python3 "$here/auto_under_load.py" "$out" | tee "$out/table.md"
