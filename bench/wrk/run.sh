#!/usr/bin/env bash
# Drives a running MCP server's Streamable HTTP endpoint with wrk (the load
# generator the design brief's targets were measured with): opens SESSIONS
# sessions with curl, then POSTs `tools/call` for DURATION seconds over
# SESSIONS connections. Prints calls/s, p50 and p99, non-2xx answers, and,
# given the server's PID, the server's CPU time per call.
#   bench/wrk/run.sh URL [PID]
# Environment: WRK_KEY, WRK_TOOL, WRK_ARGS (see mcp_call.lua), SESSIONS
# (default 64), THREADS (default 1), DURATION (default 10), WRK_JSON=1 (print
# one JSON object instead, as bench/run.sh records it).
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
per_sec=$(awk '/Requests\/sec/ { print $2 }' "$work/wrk.out")
p50=$(awk '$1 == "50%" { print $2 }' "$work/wrk.out")
p99=$(awk '$1 == "99%" { print $2 }' "$work/wrk.out")
non_2xx=$(awk '/Non-2xx/ { print $NF }' "$work/wrk.out" | grep . || echo 0)
cpu_us=
[ -n "$pid" ] && cpu_us=$(((after - before) * 1000000 / $(getconf CLK_TCK) / calls))
if [ "${WRK_JSON:-0}" = 1 ]; then
  ms() { # wrk's "1.23ms" / "456.00us" / "1.07s" -> milliseconds
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/) n *= 1000; print n }'
  }
  jq -nc --argjson calls "$calls" --argjson per_sec "$per_sec" --argjson p50 "$(ms "$p50")" \
    --argjson p99 "$(ms "$p99")" --argjson non_2xx "$non_2xx" --argjson sessions "$sessions" \
    --arg cpu "$cpu_us" '{sessions: $sessions, calls: $calls, calls_per_sec: $per_sec, p50_ms: $p50, p99_ms: $p99,
      non_2xx: $non_2xx, server_cpu_us_per_call: (if $cpu == "" then null else ($cpu | tonumber) end)}'
else
  line="calls/s $per_sec  p50 $p50  p99 $p99  non-2xx $non_2xx"
  [ -n "$cpu_us" ] && line+="  server CPU µs/call $cpu_us"
  echo "$line"
fi
