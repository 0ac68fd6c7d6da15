#!/usr/bin/env python3
"""Splits a rendered kustomization (`kubectl kustomize` output) by scope, for cd.yml.

Usage: split-manifests.py RENDERED OUT_DIR CLUSTER_KIND...

Writes OUT_DIR/namespaced.yaml (what the environment's deploy role may apply: its EKS access
is admin of the environment's namespace only) and OUT_DIR/cluster.yaml (the Namespace,
StorageClass and other cluster-scoped objects, which a cluster administrator applies once),
and prints one line per Deployment and StatefulSet, `<namespace> <kind>/<name>`, for the
rollout wait. CLUSTER_KIND are the cluster-scoped kinds the API server reports
(`kubectl api-resources --namespaced=false`).

Standard library only: kustomize writes one object per document, separated by `---` lines,
with `kind:` and `metadata:` at the top level, so the fields needed here are read from the
text without a YAML parser.
"""

import re
import sys
from pathlib import Path


def field(doc: str, pattern: str) -> str | None:
    match = re.search(pattern, doc, re.MULTILINE)
    return match.group(1).strip("'\"") if match else None


def metadata(doc: str, key: str) -> str | None:
    block = re.search(r"^metadata:\n((?:[ ].*\n?)*)", doc, re.MULTILINE)
    if not block:
        return None
    return field(block.group(1), rf"^  {key}: (\S+)\s*$")


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    rendered = Path(sys.argv[1]).read_text(encoding="utf-8")
    out = Path(sys.argv[2])
    cluster_kinds = set(sys.argv[3:])
    namespaced, cluster = [], []
    for doc in re.split(r"^---[ \t]*$\n?", rendered, flags=re.MULTILINE):
        if not doc.strip():
            continue
        kind = field(doc, r"^kind: (\S+)\s*$")
        if kind is None:
            print(f"split-manifests: a document without kind:\n{doc}", file=sys.stderr)
            return 1
        (cluster if kind in cluster_kinds else namespaced).append(doc.rstrip("\n") + "\n")
        if kind in ("Deployment", "StatefulSet"):
            namespace = metadata(doc, "namespace") or "default"
            print(f"{namespace} {kind.lower()}/{metadata(doc, 'name')}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "namespaced.yaml").write_text("---\n".join(namespaced), encoding="utf-8")
    (out / "cluster.yaml").write_text("---\n".join(cluster), encoding="utf-8")
    print(
        f"split-manifests: {len(namespaced)} namespaced objects, {len(cluster)} cluster-scoped",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
