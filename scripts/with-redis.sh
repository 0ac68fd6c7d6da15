#!/usr/bin/env bash
# Runs a command with a Redis for the tests that need one (the Redis cache backend).
#
# Usage: scripts/with-redis.sh COMMAND [ARGS...]
#
# Uses, in order: $RAG_TEST_REDIS_URL if set; a Redis already answering on 127.0.0.1:6379;
# otherwise starts `redis-server` on a free loopback port without persistence, exports
# RAG_TEST_REDIS_URL for the command, and stops the server afterwards.
set -euo pipefail

pong() { # host port
    (
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf 'PING\r\n' >&3
        line=""
        read -r -t 2 line <&3 || true
        [[ "$line" == +PONG* ]]
    ) 2>/dev/null
}

if [[ -n "${RAG_TEST_REDIS_URL:-}" ]] || pong 127.0.0.1 6379; then
    exec "$@"
fi
command -v redis-server >/dev/null ||
    { echo "with-redis: no Redis on 127.0.0.1:6379 and no redis-server to start (install Redis)" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
    --logfile '' >/dev/null &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do pong 127.0.0.1 "$port" && break; sleep 0.1; done
pong 127.0.0.1 "$port" || { echo "with-redis: redis-server did not start" >&2; exit 1; }
export RAG_TEST_REDIS_URL="redis://127.0.0.1:$port"
"$@"
