#!/usr/bin/env bash
# The deployment's validators, one after the other (each exits non-zero on any finding):
# scripts/check-k8s.sh (needs kubectl), scripts/check-terraform.sh (needs terraform) and
# scripts/check-workflows.sh. The validators themselves come from PyPI
# (scripts/deploy-tools.sh). A check whose tool is not installed is skipped with a note,
# except in CI (CI=true), where that is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
run() { # tool script
    if ! command -v "$1" >/dev/null; then
        if [[ "${CI:-}" == "true" ]]; then
            echo "check-deploy: $1 is not installed, which CI needs for $2" >&2
            status=1
        else
            echo "check-deploy: skipping $2 ($1 is not installed)"
        fi
        return
    fi
    "$2" || status=1
}
run kubectl scripts/check-k8s.sh
run terraform scripts/check-terraform.sh
run python3 scripts/check-workflows.sh
exit "$status"
