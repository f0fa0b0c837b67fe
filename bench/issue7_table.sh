#!/usr/bin/env bash
# The issue-7 results table from one command on the GPU machine, after bench/device_run.sh
# has built ./build: every braid policy with a CUDA graph and the PyTorch peer, per row of
# the issue, then the table (bench/issue7_table.py) with the issue's llama.cpp numbers and
# targets.
#
# Usage: bash bench/issue7_table.sh [ROW ...]   (default: every row, in the issue's order)
# Rows: tiny-256/tg128 llama-1b/tg128 llama-7b/tg128 moe-8x1b/tg128 llama-7b/pp512
#       llama-1b/pp512 llama-1b-q4_0/tg128 llama-7b-q8_0/tg128 llama-7b-q4_0/tg128
#       stories260K/tg128
# Environment: BRAID (default ./build/braid), OUT (default ./out; results go to $OUT/issue7),
# REPS (repetitions, default 3), GEN and PROMPT (tg and pp lengths, default 128 and 512),
# EXTRA_ARGS (appended to every braid bench command, e.g. "--backend cpu --layers 1"),
# PEER=0 (skip PyTorch; skipped anyway where python3 cannot import torch), COMMIT (the
# header's commit where the copy has no .git), PEER_SCRIPT (default
# bench/peers/torch_llama.py; a stand-in tests this script without a GPU), BRAID_FIXTURES
# (stories260K.gguf's folder, default ./.fixtures: carry it to the device).
#
# $OUT/issue7 gets three files: data.json (every row's braid and PyTorch JSON in one bundle)
# and table.md, both rewritten after each row so that a call cut off at its time limit keeps
# what finished, and bench.log (every command's log). The device returns at most 8 files, and a
# device call lasts 10 minutes at most: split the rows over two calls, then merge here with
#   python3 bench/issue7_table.py CALL1/issue7 CALL2/issue7
# On the device:
#   bash bench/device_run.sh none -- bash bench/issue7_table.sh tiny-256/tg128 llama-1b/tg128
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
braid="${BRAID:-./build/braid}"
out="${OUT:-$PWD/out}/issue7"
reps="${REPS:-3}"
gen="${GEN:-128}"
prompt="${PROMPT:-512}"
fixtures="${BRAID_FIXTURES:-$PWD/.fixtures}"
read -r -a extra <<<"${EXTRA_ARGS:-}"
all_rows=(tiny-256/tg128 llama-1b/tg128 llama-7b/tg128 moe-8x1b/tg128 llama-7b/pp512 llama-1b/pp512
          llama-1b-q4_0/tg128 llama-7b-q8_0/tg128 llama-7b-q4_0/tg128 stories260K/tg128)
torch_presets=" tiny-256 llama-1b llama-7b moe-8x1b "

rows=("$@")
[ ${#rows[@]} -eq 0 ] && rows=("${all_rows[@]}")
for row in "${rows[@]}"; do
  [[ " ${all_rows[*]} " == *" $row "* ]] || { echo "issue7_table: unknown row '$row' (known: ${all_rows[*]})" >&2; exit 2; }
done

mkdir -p "$out"
log="$out/bench.log"
: >"$log"
scratch="$(mktemp -d)"
# A fresh auto-tune cache: auto times its candidates in this run, never reuses an old choice.
XDG_CACHE_HOME="$(mktemp -d)"
export XDG_CACHE_HOME
trap 'rm -rf "$XDG_CACHE_HOME" "$scratch"' EXIT

commit="${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
header="$(date -u '+%F %H:%M UTC'), commit: $commit, GPU: ${gpu:-none found}, REPS=$reps GEN=$gen PROMPT=$prompt"
[ ${#extra[@]} -gt 0 ] && header+=" EXTRA_ARGS='${extra[*]}'"
header+=", rows: ${rows[*]}"
echo "issue7: $header"

peer=1
if [ "${PEER:-1}" = 0 ]; then
  peer=0; echo "issue7: PyTorch peer off (PEER=0)"
elif ! python3 -c 'import torch' 2>>"$log"; then
  peer=0; echo "issue7: PyTorch peer skipped: python3 cannot import torch"
fi

# Runs one command, its stdout into $1 and its stderr into the log; a failure is logged and
# leaves {"error": ...} in $1 so that the table says "failed".
run_json() {
  local json="$1"; shift
  local start=$SECONDS rc
  echo "=== $(date -u +%T) $*" >>"$log"
  "$@" >"$json" 2>>"$log"
  rc=$?
  if [ $rc -ne 0 ]; then
    printf '{"error": "exit status %d: %s"}\n' "$rc" "$(basename "$1")" >"$json"
    echo "issue7:   FAILED (exit status $rc), see bench.log; last lines:"
    tail -5 "$log" | sed 's/^/    /'
  fi
  echo "issue7:   $(basename "$json" .json): $((SECONDS - start)) s"
  echo "=== exit status $rc after $((SECONDS - start)) s" >>"$log"
}

# The peer prints a markdown table on stdout: that goes to the log, its JSON rows to stdout.
torch_peer() { python3 "${PEER_SCRIPT:-$here/peers/torch_llama.py}" "$@" --json /dev/fd/3 3>&1 1>&2; }

for row in "${rows[@]}"; do
  model="${row%/*}"
  test="${row#*/}"
  key="${row//\//_}"
  echo "issue7: + $row"
  if [ "$model" = stories260K ]; then
    model_args=(-m "$fixtures/stories260K.gguf")
  elif [[ "$model" =~ ^(.*)-(q4_0|q8_0|q4_1|bf16|f16)$ ]]; then
    model_args=(--preset "${BASH_REMATCH[1]}" --type "${BASH_REMATCH[2]}")
  else
    model_args=(--preset "$model")
  fi
  # 0 skips a test in both programs: a row measures only its own test.
  if [ "${test:0:2}" = pp ]; then lengths=(-p "$prompt" -n 0); else lengths=(-p 0 -n "$gen"); fi

  run_json "$scratch/braid-$key.json" "$braid" bench "${model_args[@]}" "${lengths[@]}" -r "$reps" \
    --policy serial,branch,levels,chains,cost,auto --graph 1 -o json "${extra[@]}"

  if [ $peer = 1 ] && [[ "$torch_presets" == *" $model "* ]]; then
    if [ "${test:0:2}" = pp ]; then modes=eager; else modes=eager,graph,graph-streams,compile; fi
    run_json "$scratch/torch-$key.json" torch_peer --preset "$model" "${lengths[@]}" -r "$reps" --modes "$modes"
  fi
  python3 "$here/issue7_table.py" --pack "$scratch" --header "$header" -o "$out/data.json"
  python3 "$here/issue7_table.py" "$out/data.json" >"$out/table.md"
done

echo
cat "$out/table.md"
