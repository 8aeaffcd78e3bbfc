# Sourced by the benchmark scripts: starting and stopping one release host on loopback.
#
#   start_host BIN DIR PORT PLUGINS_DIR   serves PLUGINS_DIR from BIN on 127.0.0.1:PORT with a
#                                         fresh SQLite database in DIR; sets `server` to its
#                                         pid once /healthz answers
#   stop_host                             stops it and waits for it

start_host() {
    local bin="$1" dir="$2" port="$3" plugins="$4"
    # `exec`: $! is the server itself, so `kill` stops it (not a subshell above it).
    (cd "$dir" && LUTETIA_LOG=warn exec "$bin" serve --bind "127.0.0.1:$port" \
        --database-url "sqlite://$dir/l.db" --plugins "$plugins" >"$dir/serve.out" 2>"$dir/serve.log") &
    server=$!
    for _ in $(seq 1 300); do
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.2
    done
    # The answers must come from this server, not from one left on the port.
    kill -0 "$server" 2>/dev/null || { echo "$bin did not start: $(cat "$dir/serve.log")" >&2; exit 1; }
}

stop_host() {
    [ -n "${server:-}" ] || return 0
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
}
