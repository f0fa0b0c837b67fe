#!/usr/bin/env bash
# Issue 14's tables from one command on the GPU machine, after bench/device_run.sh has built
# ./build: for each model, batched decode alone (`braid bench --parallel`) and the same
# through HTTP (bench/serve_sweep.py: aggregate t/s, median time to first token and the
# split of a step), serial plan vs auto. Models are written by `braid make-model` with a
# fixture's tokenizer (random weights, real shapes): smollm2-135m gets GPT-2's (50257 tokens
# for SmolLM2's 49152), llama3.2-1b Llama 3's, llama-1b and llama-7b LLaMA's SentencePiece.
#
# Usage: bash bench/serve_tables.sh [MODEL[:TYPE] ...]   (default: smollm2-135m llama3.2-1b
#        llama-7b:q4_k_m); Environment: BRAID (./build/braid), OUT (./out; results in
#        $OUT/serve), BRAID_FIXTURES (./.fixtures), CLIENTS (1,8,32,64), POLICIES (serial,auto),
#        GEN (128), REPS (2), EXTRA (more options for bench and serve, e.g. "--cache-type f16"),
#        BACKEND (e.g. cpu, for a small run on a machine without a GPU).
set -uo pipefail
braid="${BRAID:-./build/braid}"
out="${OUT:-$PWD/out}/serve"
fixtures="${BRAID_FIXTURES:-$PWD/.fixtures}"
clients="${CLIENTS:-1,8,32,64}"
policies="${POLICIES:-serial,auto}"
gen="${GEN:-128}"
read -r -a extra <<<"${EXTRA:-}"
backend=()
[ -n "${BACKEND:-}" ] && backend=(--backend "$BACKEND")
mkdir -p "$out"
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(smollm2-135m llama3.2-1b llama-7b:q4_k_m)

vocab_of() {
  case "$1" in
    smollm2-135m) echo ggml-vocab-gpt-2.gguf ;;
    llama3.2-1b) echo ggml-vocab-llama-bpe.gguf ;;
    *) echo ggml-vocab-llama-spm.gguf ;;
  esac
}

for spec in "${models[@]}"; do
  preset="${spec%%:*}"
  type=f16
  [[ "$spec" == *:* ]] && type="${spec#*:}"
  name="$preset-$type"
  file="$out/$name.gguf"
  echo "## $name ${EXTRA:-}"
  "$braid" make-model --preset "$preset" --type "$type" --vocab "$fixtures/$(vocab_of "$preset")" --out "$file" \
    >"$out/$name.log" 2>&1 || { tail -3 "$out/$name.log"; continue; }
  "$braid" bench -m "$file" --parallel "$clients" -p 128 -n "$gen" -r "${REPS:-2}" --policy "$policies" \
    "${backend[@]}" "${extra[@]}" >"$out/$name-bench.md" 2>>"$out/$name.log" || tail -3 "$out/$name.log"
  sed -n '/^| model | test/,$p' "$out/$name-bench.md"
  echo
  PYTHONUNBUFFERED=1 python3 "$(dirname "$0")/serve_sweep.py" --braid "$braid" --model "$file" --clients "$clients" \
    --policies "$policies" --max-tokens "$gen" --ctx $((2 * gen + 128)) --chat-template chatml \
    ${BACKEND:+--backend "$BACKEND"} --serve-args "${EXTRA:-}" 2>>"$out/$name.log" | tee "$out/$name-serve.md"
  echo
  rm -f "$file"  # (a 7B file is gigabytes)
done
