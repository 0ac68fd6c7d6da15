#!/usr/bin/env bash
# Checks the container image definition and the Kubernetes manifests without a cluster, and
# exits non-zero on any finding:
#
#   1. renders every overlay (k8s/overlays/*) with `kubectl kustomize` into
#      target/k8s-rendered/<overlay>.yaml (a failed render is a finding);
#   2. checkov (kubernetes framework) on the rendered manifests: what is deployed, after
#      the overlays' patches and replacements, not the base's placeholders;
#   3. checkov (dockerfile framework) and hadolint on docker/Dockerfile.
#
# Findings are fixed, or skipped inline with the reason where they are: a
# `checkov.io/skipN: CKV_K8S_xx=reason` annotation on the resource, a
# `#checkov:skip=CKV_DOCKER_x:reason` or `# hadolint ignore=DLxxxx` comment (with the reason
# on the line above) in the Dockerfile. Every skip is listed at the end with its reason.
#
# Usage: scripts/check-k8s.sh
# Environment: RAG_DEPLOY_TOOLS names a directory whose bin/ already holds checkov and
# hadolint (default: the one scripts/deploy-tools.sh installs and prints);
# RAG_K8S_RENDERED the output directory (default target/k8s-rendered).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
status=0
fail() {
    echo "check-k8s: FAILED: $*" >&2
    status=1
}

if [[ -n "${RAG_DEPLOY_TOOLS:-}" ]]; then
    tools="$RAG_DEPLOY_TOOLS"
else
    tools="$(scripts/deploy-tools.sh)" ||
        { echo "check-k8s: scripts/deploy-tools.sh failed to install the validators" >&2; exit 1; }
fi
PATH="$tools/bin:$PATH"
export PATH
for tool in checkov hadolint; do
    [[ -x "$tools/bin/$tool" ]] ||
        { echo "check-k8s: $tool is missing from $tools/bin (scripts/deploy-tools.sh)" >&2; exit 1; }
done
command -v kubectl >/dev/null ||
    { echo "check-k8s: kubectl is not installed (its built-in kustomize renders the overlays)" >&2; exit 1; }

# -------------------------------------------------------------------------- 1. render
out="${RAG_K8S_RENDERED:-$root/target/k8s-rendered}"
rm -rf "$out"
mkdir -p "$out"
overlays=()
for dir in k8s/overlays/*/; do
    name="$(basename "$dir")"
    overlays+=("$name")
    if kubectl kustomize "$dir" >"$out/$name.yaml" 2>"$out/$name.err"; then
        rm -f "$out/$name.err"
        echo "check-k8s: rendered $name: $(grep -c '^kind:' "$out/$name.yaml") resources -> ${out#"$root"/}/$name.yaml"
        grep '^kind:' "$out/$name.yaml" | sort | uniq -c | sed 's/^/    /'
    else
        cat "$out/$name.err" >&2
        fail "kubectl kustomize $dir"
    fi
done
[[ ${#overlays[@]} -gt 0 ]] || fail "no overlay under k8s/overlays"

# ------------------------------------------------------------------- 2, 3. validators
# --skip-download: no calls to the vendor's API (offline, and the results do not depend on
# it); --quiet: failed checks only, with the totals.
checkov_flags=(--compact --quiet --skip-download --output cli)

echo "check-k8s: checkov on the rendered manifests"
checkov --directory "$out" --framework kubernetes "${checkov_flags[@]}" ||
    fail "checkov found problems in the rendered manifests"

echo "check-k8s: checkov on docker/Dockerfile"
checkov --file docker/Dockerfile --framework dockerfile "${checkov_flags[@]}" ||
    fail "checkov found problems in docker/Dockerfile"

echo "check-k8s: hadolint on docker/Dockerfile"
if hadolint docker/Dockerfile; then
    echo "hadolint: no findings"
else
    fail "hadolint found problems in docker/Dockerfile"
fi

# ------------------------------------------------------------------------ the skips
# Every skip with its reason, from checkov's JSON report (one line per check and reason,
# with the resources it covers), and the Dockerfile's hadolint ignores.
echo "check-k8s: inline skips"
list_skips() { # <label> <checkov args...>
    local label="$1"
    shift
    checkov "$@" --skip-download --output json 2>/dev/null | "$tools/bin/python" -c '
import collections, json, sys
reports = json.load(sys.stdin)
reports = reports if isinstance(reports, list) else [reports]
skips = collections.defaultdict(set)
unexplained = 0
for report in reports:
    for check in report.get("results", {}).get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        if not reason.strip():
            unexplained += 1
            reason = "(NO REASON GIVEN)"
        skips[(check["check_id"], reason.strip())].add(check["resource"].rstrip("."))
for (check_id, reason), resources in sorted(skips.items()):
    print(f"    {check_id} on {len(resources)} resource(s) ({sys.argv[1]}): {reason}")
    print("        " + ", ".join(sorted(resources)))
sys.exit(1 if unexplained else 0)
' "$label"
}
list_skips kubernetes --directory "$out" --framework kubernetes || fail "a checkov skip of the manifests without a reason (or no report)"
list_skips dockerfile --file docker/Dockerfile --framework dockerfile || fail "a checkov skip of the Dockerfile without a reason (or no report)"
# A hadolint ignore and its reason (the comment lines above it).
grep -n -B3 '^# hadolint ignore=' docker/Dockerfile | grep -v checkov | sed 's/^/    hadolint docker\/Dockerfile:/' || true

if [[ $status -eq 0 ]]; then
    echo "check-k8s: OK (${overlays[*]}; docker/Dockerfile)"
fi
exit $status
