#!/usr/bin/env bash
# Reliability checks on a GPU (docs/RELIABILITY.md, "On the GPU"):
#   memcheck, racecheck, synccheck  compute-sanitizer on the CUDA tests (filter 'Cuda*')
#   bench-memcheck                  compute-sanitizer memcheck (leak check on) on one short
#                                   llama-1b bench: prompt 0, 4 decode steps, cost policy, CUDA graph
#   policies                        memcheck, racecheck and synccheck on that llama-1b decode bench
#                                   for every policy (POLICIES), CUDA graph on
#   stress                          braid stress: STRESS_STEPS decode steps in multi-stream graph
#                                   mode, logits compared bit for bit with a serial run
# Builds ./build (CUDA, sm_90) when it has no braid binary. Logs go to $OUT (or ./out); one
# verdict line per check on stdout (and in $OUT/verdicts.txt). Each check has a time limit
# (CHECK_TIMEOUT seconds, 540 by default): run one check per call where calls are limited.
# Usage: bash bench/gpu_reliability.sh [CHECK ...]     (no CHECK: all of them)
set -uo pipefail
out="${OUT:-$PWD/out}"
build="${BUILD_DIR:-build}"
check_timeout="${CHECK_TIMEOUT:-540}"
stress_steps="${STRESS_STEPS:-10000}"
stress_preset="${STRESS_PRESET:-llama-1b}"
test_filter="${CUDA_TEST_FILTER:-Cuda*}"
policies="${POLICIES:-serial branch levels chains cost}"
mkdir -p "$out"
export BRAID_FIXTURES="${BRAID_FIXTURES:-$PWD/.fixtures}"

verdict() {  # check name, verdict text
  printf '%-15s %s\n' "$1" "$2" | tee -a "$out/verdicts.txt"
}

sanitizer=""
if [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
  sanitizer=/usr/local/cuda/bin/compute-sanitizer
elif command -v compute-sanitizer >/dev/null; then
  sanitizer=$(command -v compute-sanitizer)
fi

if [ ! -x "$build/braid" ] || [ ! -x "$build/tests/braid_tests" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1 &&
    cmake --build "$build" -j"$(nproc)" --target braid_cli braid_tests >"$out/build.log" 2>&1 ||
    { verdict build "FAIL: see $out/build.log"; exit 1; }
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/gpu.txt" 2>&1 ||
  echo "no nvidia-smi" >"$out/gpu.txt"
[ -n "$sanitizer" ] && "$sanitizer" --version >"$out/sanitizer-version.txt" 2>&1

# Runs one command under a compute-sanitizer tool and turns its log into a verdict.
# Exit 99 means the tool found errors; 124 the time limit; anything else a failed test
# or crash of the program itself.
sanitize() {  # name, tool, extra tool options (one word, may be empty), command ...
  local name=$1 tool=$2 tool_options=$3
  shift 3
  if [ -z "$sanitizer" ]; then
    verdict "$name" "SKIPPED: compute-sanitizer not found"
    return
  fi
  local log="$out/$name.log" start=$SECONDS
  # shellcheck disable=SC2086  # tool_options is a list of words on purpose
  timeout "$check_timeout" "$sanitizer" --tool "$tool" $tool_options --error-exitcode 99 --print-limit 200 \
    "$@" >"$log" 2>&1
  local rc=$? seconds=$((SECONDS - start))
  local summary tests
  summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY" "$log" | tail -1 | sed 's/^========= //')
  tests=$(grep -E "^\[==========\] [0-9]+ tests? from .* ran" "$log" | sed 's/^\[==========\] //')
  local skipped
  skipped=$(grep -m1 -oE "^\[  SKIPPED \] [0-9]+ tests?" "$log" | sed 's/^\[  SKIPPED \] //')
  local what="${tests:+$tests; }${skipped:+$skipped skipped; }${summary:-no summary}; ${seconds} s"
  case $rc in
    0) verdict "$name" "PASS: $what" ;;
    99) verdict "$name" "FAIL (errors found): $what; first: $(grep -m1 -E '^========= (Invalid|Race|Barrier|Program hit|Leaked|Error)' "$log" | sed 's/^========= //')" ;;
    124) verdict "$name" "TIMEOUT after ${check_timeout} s (partial log: $what)" ;;
    *) verdict "$name" "FAIL (exit $rc): $what; $(grep -m1 -E '^\[  FAILED  \]|braid: error' "$log")" ;;
  esac
}

run_stress() {
  local log="$out/stress.log" start=$SECONDS
  timeout "$check_timeout" "$build/braid" stress --preset "$stress_preset" --steps "$stress_steps" --check-every 100 \
    --policy cost --graph 1 >"$log" 2>&1
  local rc=$? seconds=$((SECONDS - start))
  local result memory
  result=$(grep -E "^stress: [0-9]+ steps in" "$log" | tail -1 | sed 's/^stress: //')
  memory=$(grep -E "^device memory: " "$log" | tail -1 | sed 's/^device memory: //')
  case $rc in
    0) verdict stress "PASS: $result${memory:+; device memory $memory}; ${seconds} s" ;;
    124) verdict stress "TIMEOUT after ${check_timeout} s: $(tail -1 "$log")" ;;
    *) verdict stress "FAIL (exit $rc): $(grep -m1 'braid: error' "$log")" ;;
  esac
}

checks=("$@")
[ ${#checks[@]} -eq 0 ] && checks=(memcheck racecheck synccheck bench-memcheck stress)
for check in "${checks[@]}"; do
  case $check in
    memcheck) sanitize memcheck memcheck "--leak-check full" "$build/tests/braid_tests" --gtest_filter="$test_filter" ;;
    racecheck) sanitize racecheck racecheck "" "$build/tests/braid_tests" --gtest_filter="$test_filter" ;;
    synccheck) sanitize synccheck synccheck "" "$build/tests/braid_tests" --gtest_filter="$test_filter" ;;
    bench-memcheck)
      sanitize bench-memcheck memcheck "--leak-check full" "$build/braid" bench --preset llama-1b --layers 2 \
        -p 0 -n 4 -r 1 --policy cost --graph 1 ;;
    policies)
      for policy in $policies; do
        for tool in memcheck racecheck synccheck; do
          options=""
          [ "$tool" = memcheck ] && options="--leak-check full"
          sanitize "decode-$policy-$tool" "$tool" "$options" "$build/braid" bench --preset llama-1b --layers 2 \
            -p 0 -n 4 -r 1 --policy "$policy" --graph 1
        done
      done ;;
    stress) run_stress ;;
    *) verdict "$check" "unknown check (memcheck, racecheck, synccheck, bench-memcheck, policies, stress)" ;;
  esac
done
