#!/usr/bin/env bash
# Repeat-view throughput of two bshare binaries side by side, alternating, so that both see the
# same machine: `bench/compare-views.sh OLD_BINARY NEW_BINARY [ROUNDS]`. Needs wrk, curl,
# python3 and taskset; the server runs on core 0, wrk on core 1. Prints req/s per run.
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${3:-3}
DOC=$(dirname "$0")/../tests/data/opencode-1.18.33-long.sharedata.json
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
run() { # binary label
    local dir port pid created id url g u
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    taskset -c 0 "$1" serve --bind "127.0.0.1:$port" --data-dir "$dir" --request-limit 100000000 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
    created=$(curl -s -X POST -H 'Content-Type: application/json' \
        -d "{\"sessionId\":\"ses_compare\",\"size\":$(stat -c %s "$DOC")}" "http://127.0.0.1:$port/api/share/presign")
    id=$(field shareId <<<"$created"); url=$(field presignedUrl <<<"$created")
    curl -s -X PUT -H 'Content-Type: application/json' --data-binary "@$DOC" "$url" >/dev/null
    curl -s "http://127.0.0.1:$port/share/$id" >/dev/null
    g=$(taskset -c 1 wrk -t1 -c32 -d6s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/share/$id" | awk '/Requests\/sec/{print $2}')
    u=$(taskset -c 1 wrk -t1 -c32 -d6s "http://127.0.0.1:$port/share/$id" | awk '/Requests\/sec/{print $2}')
    echo "$2 gzip=$g uncompressed=$u"
    kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir"
}
for _ in $(seq "$ROUNDS"); do
    run "$OLD" before
    run "$NEW" after
done
