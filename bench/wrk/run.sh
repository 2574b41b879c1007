#!/usr/bin/env bash
# Drives a running MCP server's Streamable HTTP endpoint with wrk (the load
# generator the design brief's targets were measured with): opens SESSIONS
# sessions with curl, then POSTs `tools/call` for DURATION seconds over
# SESSIONS connections. Prints calls/s, p50 and p99, non-2xx answers, and,
# given the server's PID, the server's CPU time per call.
#   bench/wrk/run.sh URL [PID]
# Environment: WRK_KEY, WRK_TOOL, WRK_ARGS (see mcp_call.lua), SESSIONS
# (default 64), THREADS (default 1), DURATION (default 10).
# Needs wrk (Debian package `wrk`) and curl.
set -euo pipefail
url=$1 pid=${2:-}
sessions=${SESSIONS:-64} threads=${THREADS:-1} duration=${DURATION:-10}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
auth=()
[ -n "${WRK_KEY:-}" ] && auth=(-H "Authorization: Bearer $WRK_KEY")
post() { # SESSION-HEADER-ARGS... BODY -> response headers on stdout
  curl -sS -D - -o /dev/null -X POST "$url" "${auth[@]}" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' "$@"
}
for _ in $(seq 1 "$sessions"); do
  id=$(post -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}' |
    tr -d '\r' | awk 'tolower($1) == "mcp-session-id:" { print $2 }')
  [ -n "$id" ] || { echo "bench/wrk/run.sh: initialize gave no session id" >&2; exit 1; }
  post -H "Mcp-Session-Id: $id" -H 'Mcp-Protocol-Version: 2025-06-18' \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
  echo "$id"
done >"$work/sessions"
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
[ -n "$pid" ] && before=$(cpu "$pid")
WRK_SESSIONS=$work/sessions wrk -t"$threads" -c"$sessions" -d"${duration}s" --latency \
  -s "$here/mcp_call.lua" "$url" >"$work/wrk.out"
[ -n "$pid" ] && after=$(cpu "$pid")
calls=$(awk '/requests in/ { print $1 }' "$work/wrk.out")
line="calls/s $(awk '/Requests\/sec/ { print $2 }' "$work/wrk.out")"
line+="  p50 $(awk '$1 == "50%" { print $2 }' "$work/wrk.out")  p99 $(awk '$1 == "99%" { print $2 }' "$work/wrk.out")"
line+="  non-2xx $(awk '/Non-2xx/ { print $NF }' "$work/wrk.out" | grep . || echo 0)"
if [ -n "$pid" ]; then
  ticks=$(getconf CLK_TCK)
  line+="  server CPU µs/call $(( (after - before) * 1000000 / ticks / calls ))"
fi
echo "$line"
