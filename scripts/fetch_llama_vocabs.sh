#!/usr/bin/env bash
# Fetches more of llama.cpp's tokenizer test vocabularies (ggml-vocab-NAME.gguf with its
# .inp / .out vectors, ~30 MB) into the model cache the tests read, for the pre-tokenizers
# the fixtures do not cover (tests/tokenizer_more_vocabs_test.cpp):
#   ${BRAID_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/braid}/llama-vocabs/
# They are data files of llama.cpp's repository (models/), which the llama-cpp-python sdist
# on PyPI vendors: pip downloads the pinned sdist (76 MB) and only these files are taken
# out of it; nothing of llama.cpp is built or kept. Idempotent: present files are left
# alone. Needs python3 + pip and network access to PyPI.
set -euo pipefail

sdist_spec=llama-cpp-python==0.3.36
sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
names=(deepseek-llm deepseek-coder falcon starcoder refact command-r mpt qwen35 phi-3)

dir="${BRAID_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/braid}/llama-vocabs"
fail() { echo "fetch_llama_vocabs.sh: $*" >&2; exit 1; }

missing=0
for n in "${names[@]}"; do
  for ext in gguf gguf.inp gguf.out; do [ -f "$dir/ggml-vocab-$n.$ext" ] || missing=1; done
done
if [ "$missing" = 0 ]; then
  echo "$dir: present"
  exit 0
fi

mkdir -p "$dir" || fail "cannot create $dir (set BRAID_MODELS to a writable folder)"
tmp="$(mktemp -d "$dir/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "downloading $sdist_spec (sdist) from PyPI"
python3 -m pip download --quiet --no-deps --no-binary :all: "$sdist_spec" -d "$tmp" ||
  fail "pip download $sdist_spec failed (no network to PyPI?)"
sdist=("$tmp"/llama_cpp_python-*.tar.gz)
[ -f "${sdist[0]}" ] || fail "pip download did not leave an sdist in $tmp"
[ "$(sha256sum "${sdist[0]}" | cut -d' ' -f1)" = "$sha256" ] || fail "${sdist[0]} has an unexpected sha256"

python3 - "${sdist[0]}" "$tmp" "${names[@]}" <<'PY' || fail "cannot extract the vocabularies"
import sys, tarfile
sdist, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
wanted = {f"ggml-vocab-{n}.gguf{ext}" for n in names for ext in ("", ".inp", ".out")}
with tarfile.open(sdist) as tar:
    for member in tar.getmembers():
        base = member.name.rsplit("/", 1)[-1]
        if "/vendor/llama.cpp/models/" in member.name and base in wanted and member.isfile():
            with tar.extractfile(member) as src, open(f"{out}/{base}", "wb") as dst:
                dst.write(src.read())
            wanted.discard(base)
if wanted:
    sys.exit(f"not in the sdist: {sorted(wanted)}")
PY
for n in "${names[@]}"; do
  for ext in gguf gguf.inp gguf.out; do mv -f "$tmp/ggml-vocab-$n.$ext" "$dir/"; done
done
echo "$dir: fetched ${#names[@]} vocabularies"
