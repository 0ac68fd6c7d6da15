#!/usr/bin/env bash
# Runs a command with a local AWS emulator (moto) for the tests of the S3 and SQS backends.
#
# Usage: scripts/with-aws.sh COMMAND [ARGS...]
#
# Uses $RAG_TEST_AWS_ENDPOINT if set. Otherwise installs moto[server] into a virtualenv under
# .cache/moto (once; from PyPI), starts `moto_server` on a free loopback port, exports
# RAG_TEST_AWS_ENDPOINT=http://127.0.0.1:PORT for the command, and stops the server afterwards.
# Needs: python3 with venv and pip.
set -euo pipefail

if [[ -n "${RAG_TEST_AWS_ENDPOINT:-}" ]]; then
    exec "$@"
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RAG_MOTO_VENV:-$repo_root/.cache/moto}"
requirement="${RAG_MOTO_PACKAGE:-moto[server]==5.2.5}"

if [[ ! -x "$venv/bin/moto_server" ]]; then
    echo "with-aws: installing $requirement into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$requirement"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$(mktemp -t moto.XXXXXX.log)"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
endpoint="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$endpoint/moto-api/" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "with-aws: moto_server exited" >&2; exit 1; }
    sleep 0.1
done
curl -fsS -o /dev/null "$endpoint/moto-api/" ||
    { cat "$log" >&2; echo "with-aws: moto_server did not start on $endpoint" >&2; exit 1; }
export RAG_TEST_AWS_ENDPOINT="$endpoint"
"$@"
