#!/usr/bin/env bash
# The web app in a real browser: starts the embedded system (target/debug/ragctl up, with the
# sample documents) on a free port with a fresh data directory, waits for /health/ready, runs
# web-tests/ (playwright-core driving Debian's headless Chromium at /usr/bin/chromium) and
# stops the system, whatever happened. Screenshots go to target/web-screenshots/.
#
# Without Chromium: in CI (CI=true) it is installed with apt-get; elsewhere the test is
# skipped with a note (exit 0). Build first (`make web-test` does): cargo build -p rag-ctl.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

chromium=/usr/bin/chromium
ragctl=${RAGCTL:-$root/target/debug/ragctl}
shots=$root/target/web-screenshots
export RAG_MODEL_DIR=${RAG_MODEL_DIR:-$root/.cache/models/all-minilm-l6-v2}

if [[ ! -x $chromium ]]; then
    if [[ "${CI:-}" == "true" ]]; then
        echo "web-test: installing chromium (CI)"
        sudo=""
        [[ $(id -u) -ne 0 ]] && sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver
    else
        echo "web-test: skipped: chromium not installed (apt-get install chromium)"
        exit 0
    fi
fi
command -v node >/dev/null || { echo "web-test: node is not installed" >&2; exit 1; }
[[ -x $ragctl ]] || { echo "web-test: $ragctl is missing; build it: cargo build -p rag-ctl" >&2; exit 1; }
[[ -f $RAG_MODEL_DIR/model.safetensors ]] \
    || { echo "web-test: no model in $RAG_MODEL_DIR; run: make models" >&2; exit 1; }

# playwright-core only: it never downloads a browser; the flag makes sure of it.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd web-tests && npm ci --no-audit --no-fund --loglevel=error)

port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
data=$(mktemp -d "${TMPDIR:-/tmp}/rag-web-test.XXXXXX")
log=$root/target/web-test-ragctl.log
mkdir -p "$shots"
rm -f "$shots"/*.png

pid=""
stop() {
    status=$?
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$data"
    if [[ $status -ne 0 ]]; then
        echo "web-test: FAILED (exit $status); the system's log: $log" >&2
        tail -n 30 "$log" >&2 || true
    fi
    exit "$status"
}
trap stop EXIT INT TERM

# With API keys, as a gateway anywhere but on one machine runs: the app must ask for a key.
keys=$data/api-keys.toml
api_key=$("$ragctl" keys create --file "$keys" --id web-test --tenant default --scopes admin --json \
    | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.parse(s).key))")

echo "web-test: starting the system on 127.0.0.1:$port with API keys (data in $data)"
RAG__GATEWAY__AUTH__MODE=api_keys RAG__GATEWAY__AUTH__KEYS_FILE=$keys \
    "$ragctl" up --data-dir "$data" --listen "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!

base="http://127.0.0.1:$port"
for i in $(seq 1 300); do
    if curl -fsS -o /dev/null "$base/health/ready" 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || { echo "web-test: the system exited while starting" >&2; exit 1; }
    if [[ $i -eq 300 ]]; then echo "web-test: not ready after 150 s" >&2; exit 1; fi
    sleep 0.5
done
echo "web-test: ready"

cd web-tests
node --test sse.test.js
API_KEY=$api_key BASE_URL=$base SCREENSHOT_DIR=$shots CHROMIUM=$chromium node web.test.js
echo "web-test: screenshots in ${shots#"$root"/}:"
ls -1 "$shots"
