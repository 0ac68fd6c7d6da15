#!/usr/bin/env bash
# Runs the five services as five processes with the cluster backends, on one machine:
# S3 and SQS on the local AWS emulator (moto), the vectors in the Qdrant stand-in process
# and the embeddings from the Bedrock (Titan V2) stand-in process (neither Qdrant nor Bedrock
# can run here; rag-standins speaks their wire formats), the cache in Redis. The BM25 index and the catalog stay on a data directory the processes
# share (the retriever opens the index read-only).
#
# Usage (inside scripts/with-redis.sh scripts/with-aws.sh, as the Makefile runs it):
#   scripts/cluster.sh up      start everything, print the URL, run until Ctrl-C
#   scripts/cluster.sh test    start everything, run the end-to-end test against it, stop
#
# Needs the binaries built (`cargo build --workspace --all-targets`) and the model fetched.
set -euo pipefail

mode="${1:-}"
[[ "$mode" == up || "$mode" == test ]] || { echo "usage: $0 up|test" >&2; exit 2; }
: "${RAG_TEST_AWS_ENDPOINT:?run inside scripts/with-aws.sh}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$repo_root/target}/debug"
for b in gateway router retriever embedder ingest-worker ragctl qdrant-standin bedrock-standin; do
    [[ -x "$bin/$b" ]] || { echo "cluster: $bin/$b is missing: run cargo build --workspace --all-targets" >&2; exit 1; }
done

run_dir="$(mktemp -d -t rag-cluster.XXXXXX)"
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ "${keep_logs:-0}" == 1 ]]; then
        echo "cluster: logs kept in $run_dir" >&2
    else
        rm -rf "$run_dir"
    fi
}
trap stop EXIT

read -r gateway router retriever embedder documents qdrant bedrock < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
run="$(date +%s)-$$"
config="$run_dir/cluster.toml"
cat >"$config" <<TOML
data_dir = "$run_dir/data"

[aws]
region = "us-east-1"
endpoint_url = "$RAG_TEST_AWS_ENDPOINT"
credentials = "emulator"

[object_store]
kind = "s3"
bucket = "documents-$run"
force_path_style = true

[queues]
documents = "documents-$run"
chunks = "chunks-$run"
wait_ms = 1000

[queues.backend]
kind = "sqs"
create_missing = true

[vector_store]
kind = "qdrant"
url = "http://127.0.0.1:$qdrant"
collection = "chunks-$run"

[embedding]
kind = "bedrock"
dimensions = 256
endpoint_url = "http://127.0.0.1:$bedrock"

# Answers from Nova Lite (light tier) and Nova Pro (strong tier) through Converse /
# ConverseStream on the Bedrock stand-in.
[generation.light]
kind = "bedrock"
model_id = "amazon.nova-lite-v1:0"
endpoint_url = "http://127.0.0.1:$bedrock"

[generation.strong]
kind = "bedrock"
model_id = "amazon.nova-pro-v1:0"
endpoint_url = "http://127.0.0.1:$bedrock"

[cache.backend]
kind = "redis"
url = "${RAG_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
key_prefix = "rag-cluster-$run:"

[gateway]
listen = "127.0.0.1:$gateway"
router_url = "http://127.0.0.1:$router"
documents_url = "http://127.0.0.1:$documents"

[router]
# The answerer's thresholds are dense similarities calibrated for a model (the defaults for
# all-MiniLM-L6-v2); the stand-in's word-hash vectors score lower than a real model's. With
# Titan, calibrate them on an evaluation (ragctl eval).
min_relevance = 0.05
confident_relevance = 0.1
listen = "127.0.0.1:$router"
retriever_url = "http://127.0.0.1:$retriever"
embedder_url = "http://127.0.0.1:$embedder"

[retriever]
listen = "127.0.0.1:$retriever"
embedder_url = "http://127.0.0.1:$embedder"

[embedder]
listen = "127.0.0.1:$embedder"

[ingest]
listen = "127.0.0.1:$documents"
TOML
export RAG_CONFIG="$config"

started_ms=$(date +%s%3N)
"$bin/qdrant-standin" "127.0.0.1:$qdrant" >"$run_dir/qdrant-standin.log" 2>&1 &
pids+=($!)
"$bin/bedrock-standin" "127.0.0.1:$bedrock" >"$run_dir/bedrock-standin.log" 2>&1 &
pids+=($!)
"$bin/ragctl" aws-setup
for service in ingest-worker embedder retriever router gateway; do
    if [[ "$service" == retriever ]]; then
        RAG__KEYWORD_INDEX__READ_ONLY=true "$bin/$service" >"$run_dir/$service.log" 2>&1 &
    else
        "$bin/$service" >"$run_dir/$service.log" 2>&1 &
    fi
    pids+=($!)
done

url="http://127.0.0.1:$gateway"
for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$url/health/ready" 2>/dev/null && break
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { keep_logs=1; echo "cluster: a process exited during start-up; see $run_dir" >&2; tail -n 20 "$run_dir"/*.log >&2; exit 1; }
    done
    sleep 0.2
done
curl -fsS -o /dev/null "$url/health/ready" || { keep_logs=1; echo "cluster: not ready; see $run_dir" >&2; exit 1; }
echo "cluster: five processes ready at $url in $(( $(date +%s%3N) - started_ms )) ms (logs in $run_dir)"

if [[ "$mode" == up ]]; then
    echo "cluster: Ctrl-C stops it"
    wait
else
    cd "$repo_root"
    RAG_CLUSTER_URL="$url" "${CARGO:-cargo}" test --workspace --test cluster_processes -- --ignored --nocapture ||
        { keep_logs=1; exit 1; }
fi
