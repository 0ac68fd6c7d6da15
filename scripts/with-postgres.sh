#!/usr/bin/env bash
# Runs a command with a PostgreSQL for the tests that need one (the PostgreSQL feedback store).
#
# Usage: scripts/with-postgres.sh COMMAND [ARGS...]
#
# Uses, in order: $RAG_TEST_POSTGRES_URL if set; a PostgreSQL already answering on
# 127.0.0.1:5432 (as user postgres, else root, else $USER, trusted without a password);
# otherwise starts a throwaway cluster (initdb + postgres, from PATH, /usr/lib/postgresql/*/bin,
# or the PyPI package pgserver installed into .cache/pgserver) in a temporary directory on a free loopback port, exports
# RAG_TEST_POSTGRES_URL for the command, and stops and removes the cluster afterwards.
# Tests isolate themselves in schemas of their own, so a shared server is fine.
set -euo pipefail

if [[ -n "${RAG_TEST_POSTGRES_URL:-}" ]]; then
    exec "$@"
fi

# Answers: pg_isready when installed, else whether the port accepts a TCP connection.
answers() { # host port
    if command -v pg_isready >/dev/null; then
        pg_isready -q -h "$1" -p "$2" -t 2
    else
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
    fi
}

# The first of the candidate URLs that a query succeeds on (needs psql), else the first.
pick_url() { # host port
    local user url
    for user in postgres root "${USER:-}"; do
        [[ -n "$user" ]] || continue
        url="postgres://$user@$1:$2/postgres"
        if ! command -v psql >/dev/null; then
            echo "$url"
            return 0
        fi
        if psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
            echo "$url"
            return 0
        fi
    done
    return 1
}

if answers 127.0.0.1 5432; then
    if url=$(pick_url 127.0.0.1 5432); then
        export RAG_TEST_POSTGRES_URL="$url"
        exec "$@"
    fi
    echo "with-postgres: PostgreSQL answers on 127.0.0.1:5432 but lets in none of postgres," \
        "root, ${USER:-\$USER} without a password; set RAG_TEST_POSTGRES_URL" >&2
    exit 1
fi

bindir=""
if command -v initdb >/dev/null && command -v postgres >/dev/null; then
    bindir="$(dirname "$(command -v initdb)")"
else
    # The newest installed major version first.
    while read -r candidate; do
        if [[ -x "$candidate/initdb" && -x "$candidate/postgres" ]]; then
            bindir="$candidate"
            break
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
fi
if [[ -z "$bindir" ]]; then
    # No PostgreSQL installed: the PyPI package pgserver carries its binaries (~11 MB).
    root="$(cd "$(dirname "$0")/.." && pwd)"
    target="${RAG_PGSERVER_DIR:-$root/.cache/pgserver}"
    if [[ ! -x "$target/pgserver/pginstall/bin/postgres" ]]; then
        echo "with-postgres: installing PostgreSQL binaries from PyPI (pgserver==0.1.4) into $target" >&2
        python3 -m pip install --quiet --no-deps --target "$target" pgserver==0.1.4 >&2 || true
    fi
    if [[ -x "$target/pgserver/pginstall/bin/postgres" ]]; then
        bindir="$target/pgserver/pginstall/bin"
    fi
fi
if [[ -z "$bindir" ]]; then
    echo "with-postgres: no PostgreSQL on 127.0.0.1:5432 and no initdb/postgres to start one." >&2
    echo "  Install it (Debian/Ubuntu: apt-get install postgresql;" \
        "macOS: brew install postgresql)," >&2
    echo "  or point RAG_TEST_POSTGRES_URL at a server (postgres://user@host:port/db)." >&2
    exit 1
fi

# initdb and postgres refuse to run as root: use the postgres account for the cluster then.
run_as=()
if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 ||
        { echo "with-postgres: running as root, and no postgres user to run the server" >&2
          exit 1; }
    run_as=(runuser -u postgres --)
fi

dir="$(mktemp -d -t rag-postgres.XXXXXX)"
[[ ${#run_as[@]} -eq 0 ]] || chown postgres "$dir"
server=""
cleanup() {
    if [[ -n "$server" ]]; then
        # SIGINT is a fast shutdown. Signal the postmaster itself (its pid file's first line):
        # $server may be runuser, which need not pass the signal on.
        pid="$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)"
        kill -INT "${pid:-$server}" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

"${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
    --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; echo "with-postgres: initdb failed" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# No durability needed: fsync off. The socket directory is the temporary one, not /run.
"${run_as[@]}" "$bindir/postgres" -D "$dir/data" -h 127.0.0.1 -p "$port" -k "$dir" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off >"$dir/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    answers 127.0.0.1 "$port" && break
    kill -0 "$server" 2>/dev/null ||
        { cat "$dir/server.log" >&2; echo "with-postgres: postgres exited" >&2; exit 1; }
    sleep 0.1
done
answers 127.0.0.1 "$port" ||
    { cat "$dir/server.log" >&2; echo "with-postgres: postgres did not start (port $port)" >&2
      exit 1; }
export RAG_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
"$@"
