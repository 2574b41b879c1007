#!/usr/bin/env bash
# MCP tool-call benchmark, side by side on this machine, on loopback, against
# two peers:
#   devops-mcp   this project (`devops-mcp --dev ... up`, release build), bearer
#                key auth; four workloads (BENCH_DEVOPS_WORKLOADS):
#                  http-trivial     /mcp, `test_simple_text` {} (conformance fixtures)
#                  ws-trivial       /ws, the same tool
#                  http-get_context /mcp, `get_context` of a 20-item context
#                                   (each session creates its own first)
#                  ws-get_context   /ws, the same
#   devops-mcp-stateless  the same with `mcp.stateless` (JSON answers, no
#                sessions; not in the default list)
#   everything   @modelcontextprotocol/server-everything (TypeScript SDK,
#                Node), `node dist/index.js streamableHttp`, tool `echo`, over
#                Streamable HTTP (it serves no WebSocket)
#   python       official Python SDK `mcp` 1.x FastMCP, bench/peers/python_echo.py,
#                tool `echo`, over Streamable HTTP
# One server at a time; for each it measures
#   start-up  spawn -> first `initialize` answered 200 (polled every ~2 ms)
#   RSS       VmRSS idle, then holding N idle sessions (initialize +
#             notifications/initialized, then no traffic) -> KiB per session;
#             over HTTP, and for servers with ws- workloads over /ws too
#   load      mcp-load per workload at 1, 16 and 64 sessions, 10 s each after
#             2 s warm-up
# prints markdown tables and writes raw JSON lines to bench/results/latest.jsonl.
#
# Builds nothing: needs `cargo build --release -p devops-cli -p devops-mcp-load` first.
# Peers install idempotently into .tools/ (npm registry, PyPI).
#
# Environment (all optional):
#   CARGO_TARGET_DIR     default `target`
#   DEVOPS_MCP_BIN       default $CARGO_TARGET_DIR/release/devops-mcp
#   MCP_LOAD_BIN         default $CARGO_TARGET_DIR/release/mcp-load
#   BENCH_SERVERS        default "devops-mcp everything python"
#   BENCH_DEVOPS_WORKLOADS  default "http-trivial ws-trivial http-get_context ws-get_context"
#   BENCH_SESSIONS       default "1 16 64"      (mcp-load --sessions values)
#   BENCH_DURATION       default 10             (mcp-load --duration, s)
#   BENCH_WARMUP         default 2              (mcp-load --warmup, s)
#   BENCH_IDLE_SESSIONS  default 500            (sessions held for the RSS step)
#   BENCH_SKIP_LOAD=1    skip the mcp-load step (no mcp-load needed)
#   BENCH_PIN=1          pin the server to CPU 0 and the clients to CPU 1
#   BENCH_WRK=1          also drive each server's HTTP endpoint with wrk
#                        (bench/wrk/run.sh, the brief's load generator; Debian
#                        package `wrk`) at 64 sessions: trivial tool / `echo`
#   BENCH_WRK_ROUNDS     default 1: with BENCH_WRK=1, this many wrk rounds,
#                        the servers taking turns in each (a fresh start each);
#                        the report gives each round's ratio to each peer and
#                        their median, as this VM's speed drifts by tens of
#                        percent within minutes
#   EVERYTHING_VERSION   default 2026.8.31 (npm version of server-everything)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
root=$PWD

target=${CARGO_TARGET_DIR:-target}
devops_bin=${DEVOPS_MCP_BIN:-$target/release/devops-mcp}
load_bin=${MCP_LOAD_BIN:-$target/release/mcp-load}
servers=${BENCH_SERVERS:-devops-mcp everything python}
devops_workloads=${BENCH_DEVOPS_WORKLOADS:-http-trivial ws-trivial http-get_context ws-get_context}
load_sessions=${BENCH_SESSIONS:-1 16 64}
duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
idle_sessions=${BENCH_IDLE_SESSIONS:-500}
skip_load=${BENCH_SKIP_LOAD:-0}
wrk_rounds=${BENCH_WRK_ROUNDS:-1}
everything_version=${EVERYTHING_VERSION:-2026.8.31}
py_spec='mcp==1.30.0'

tools=$root/.tools
peers_dir=$tools/bench-peers
py_venv=$tools/py-bench
everything_js=$peers_dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js
probe=(python3 "$root/bench/peers/mcp_probe.py")
results_dir=$root/bench/results
results=$results_dir/latest.jsonl

pin_server=() pin_client=()
if [ "${BENCH_PIN:-0}" = 1 ]; then
  pin_server=(taskset -c 0) pin_client=(taskset -c 1)
fi

# ---- prerequisites: release binaries (built elsewhere) ----
missing=()
case " $servers " in *" devops-mcp "* | *" devops-mcp-stateless "*) [ -x "$devops_bin" ] || missing+=("$devops_bin") ;; esac
[ "$skip_load" = 1 ] || [ -x "$load_bin" ] || missing+=("$load_bin")
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/run.sh: missing release binaries: ${missing[*]}" >&2
  echo "  build them first:  cargo build --release -p devops-cli -p devops-mcp-load" >&2
  echo "  (or BENCH_SKIP_LOAD=1 to skip the load step, DEVOPS_MCP_BIN=... to use another build)" >&2
  exit 1
fi
if [ "${BENCH_WRK:-0}" = 1 ] && ! command -v wrk >/dev/null; then
  echo "bench/run.sh: BENCH_WRK=1 needs wrk: apt-get install -y wrk" >&2
  exit 1
fi

# ---- peers: install idempotently ----
# venv DIR SPEC: a venv with SPEC; a stamp written after pip succeeds.
venv() {
  if [ "$(cat "$1/.installed" 2>/dev/null)" != "$2" ]; then
    python3 -m venv --clear "$1"
    "$1/bin/pip" install --quiet --disable-pip-version-check "$2"
    echo "$2" >"$1/.installed"
  fi
}
case " $servers " in *" everything "*)
  # Runs on the machine's Node 20 too; Node 22 is what the project's scripts use.
  # shellcheck source=scripts/lib/node.sh
  source scripts/lib/node.sh
  ensure_node22
  installed=$(jq -r .version "$peers_dir/node_modules/@modelcontextprotocol/server-everything/package.json" 2>/dev/null || true)
  if [ "$installed" != "$everything_version" ]; then
    echo "installing @modelcontextprotocol/server-everything@$everything_version into .tools/bench-peers" >&2
    npm install --silent --no-audit --no-fund --prefix "$peers_dir" \
      "@modelcontextprotocol/server-everything@$everything_version" >/dev/null
  fi
  ;;
esac
case " $servers " in *" python "*)
  if [ "$(cat "$py_venv/.installed" 2>/dev/null)" != "$py_spec" ]; then
    echo "installing $py_spec into .tools/py-bench" >&2
  fi
  venv "$py_venv" "$py_spec"
  ;;
esac

# ---- state and cleanup ----
# shellcheck source=scripts/lib/fleet.sh
source scripts/lib/fleet.sh # for free_port only; start_fleet runs the debug build
work=$(mktemp -d)
server_pid="" holder_pid="" probe_pid="" load_pid=""

stop_pid() { # PID: TERM, up to 10 s, then KILL; reaps it
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$load_pid"
  stop_pid "$holder_pid"
  stop_pid "$probe_pid"
  stop_pid "$server_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
emit() { echo "$1" >>"$results"; } # one JSON line

# start_server NAME: starts it on a free loopback port, waits until `initialize`
# succeeds; sets server_pid, port, url, headers, workloads, startup_ms, version.
start_server() {
  local name=$1 log key_log=() cmd=() ready
  port=$(free_port)
  url=http://127.0.0.1:$port/mcp
  log=$work/$name.log
  rm -f "$log" # the probe reads the key from it, so an earlier start's must go
  headers=()
  case $name in
    devops-mcp | devops-mcp-stateless)
      # A fresh store each start, which prints its bootstrap key.
      rm -rf "$work/devops-data"
      mkdir -p "$work/devops-data"
      cmd=("$devops_bin" --dev --set "data_dir=$work/devops-data" --set mcp.conformance_fixtures=true
        --set "services.mcp_server.listen=127.0.0.1:$port")
      [ "$name" = devops-mcp ] || cmd+=(--set mcp.stateless=true)
      local service
      for service in rest_api worker indexer pr_manager reviewer; do
        cmd+=(--set "services.$service.listen=127.0.0.1:$(free_port)")
      done
      cmd+=(up)
      key_log=(--key-log "$log")
      workloads=$devops_workloads
      version=$("$devops_bin" --version 2>/dev/null | head -n1 || echo unknown)
      ;;
    everything)
      cmd=(env "PORT=$port" node --import "$root/bench/peers/loopback-listen.mjs" "$everything_js" streamableHttp)
      workloads=http-echo
      version="server-everything $everything_version, node $(node --version)"
      ;;
    python)
      cmd=("$py_venv/bin/python" "$root/bench/peers/python_echo.py" "$port")
      workloads=http-echo
      version="python mcp $("$py_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))'), $("$py_venv/bin/python" --version)"
      ;;
    *) echo "unknown server: $name" >&2; return 1 ;;
  esac

  # The probe starts polling before the spawn, so its own start-up is not counted.
  rm -f "$work/started"
  "${probe[@]}" wait-ready --url "$url" "${key_log[@]}" --started "$work/started" --timeout 60 >"$work/ready.json" &
  probe_pid=$!
  for _ in $(seq 1 500); do [ -e "$work/started" ] && break; sleep 0.01; done
  local t0=$EPOCHREALTIME
  "${pin_server[@]}" "${cmd[@]}" >"$log" 2>&1 </dev/null &
  server_pid=$!
  if ! wait "$probe_pid"; then
    probe_pid=
    echo "$name did not become ready; its log:" >&2
    tail -n 30 "$log" >&2
    return 1
  fi
  probe_pid=
  ready=$(cat "$work/ready.json")
  startup_ms=$(jq -n --argjson r "$ready" --argjson t0 "$t0" '(($r.ready_at - $t0) * 10000 | round) / 10')
  local key
  key=$(jq -r '.key // empty' <<<"$ready")
  [ -z "$key" ] || headers=("Authorization: Bearer $key")
}

# hold_sessions N: opens N idle sessions and keeps them while RSS is read;
# sets rss_sessions and hold_json.
hold_sessions() {
  local n=$1 hdr=() h
  for h in "${headers[@]}"; do hdr+=(--header "$h"); done
  rm -f "$work/hold.json"
  "${pin_client[@]}" "${probe[@]}" hold --url "$url" "${hdr[@]}" --sessions "$n" \
    --ready-file "$work/hold.json" --hold-timeout 300 &
  holder_pid=$!
  for _ in $(seq 1 2400); do # at most 240 s to open them
    [ -e "$work/hold.json" ] && break
    kill -0 "$holder_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -e "$work/hold.json" ]; then
    echo "opening $n sessions did not finish" >&2
    stop_pid "$holder_pid"; holder_pid=
    hold_json='{"opened":0,"errors":-1}' rss_sessions=0
    return 0
  fi
  hold_json=$(cat "$work/hold.json")
  sleep 2 # let allocations settle
  rss_sessions=$(rss_kib "$server_pid")
  stop_pid "$holder_pid" # DELETEs the sessions on its way out
  holder_pid=
}

# hold_ws_sessions N: the same over /ws (one connection per session), with
# mcp-load; sets rss_ws_sessions and ws_opened.
hold_ws_sessions() {
  local n=$1 hdr=() h
  for h in "${headers[@]}"; do hdr+=(--header "$h"); done
  : >"$work/hold-ws.out"
  "${pin_client[@]}" "$load_bin" --url "ws://127.0.0.1:$port/ws" "${hdr[@]}" --tool none --sessions "$n" \
    --duration 0 --warmup 300 >"$work/hold-ws.out" 2>"$work/hold-ws.err" </dev/null &
  holder_pid=$!
  for _ in $(seq 1 2400); do
    [ -s "$work/hold-ws.out" ] && break
    kill -0 "$holder_pid" 2>/dev/null || break
    sleep 0.1
  done
  ws_opened=$(jq -r '.opened // 0' "$work/hold-ws.out" 2>/dev/null || echo 0)
  [ "$ws_opened" -gt 0 ] || echo "opening $n WebSocket sessions failed: $(tail -n3 "$work/hold-ws.err")" >&2
  sleep 2 # let allocations settle
  rss_ws_sessions=$(rss_kib "$server_pid")
  stop_pid "$holder_pid"
  holder_pid=
}

# run_load NAME WORKLOAD N: one mcp-load run; appends its JSON line (or an
# error line). WORKLOAD is TRANSPORT-TOOL: http (/mcp) or ws (/ws), then
# trivial (test_simple_text), echo or get_context (a 20-item context per session).
run_load() {
  local name=$1 workload=$2 n=$3 hdr=() h line target tool args=() label
  for h in "${headers[@]}"; do hdr+=(--header "$h"); done
  case ${workload%%-*} in
    http) target=$url ;;
    ws) target=ws://127.0.0.1:$port/ws ;;
    *) echo "unknown transport in workload $workload" >&2; return 1 ;;
  esac
  case ${workload#*-} in
    trivial) tool=test_simple_text args=(--arguments '{}') ;;
    echo) tool=echo args=(--arguments '{"message":"hello"}') ;;
    get_context) tool=get_context args=(--arguments '{"context_id":"{context_id}","limit":20}' --context-items 20) ;;
    *) echo "unknown tool in workload $workload" >&2; return 1 ;;
  esac
  label=$(jq -nc --arg s "$name" --arg w "$workload" --arg t "$tool" \
    '{server: $s, kind: "load", workload: $w, transport: ($w | split("-")[0]), tool: $t}')
  # In the background, so that a signal to this script is handled at once.
  timeout $((duration + warmup + 60)) "${pin_client[@]}" "$load_bin" --url "$target" "${hdr[@]}" \
    --tool "$tool" "${args[@]}" --sessions "$n" --duration "$duration" --warmup "$warmup" \
    >"$work/load.out" 2>"$work/load.err" </dev/null &
  load_pid=$!
  wait "$load_pid" || true
  load_pid=""
  line=$(grep -E '^\{' "$work/load.out" | tail -n1 || true)
  if [ -n "$line" ] && jq -e . >/dev/null 2>&1 <<<"$line"; then
    emit "$(jq -c --argjson l "$label" '$l + .' <<<"$line")"
  else
    echo "mcp-load failed against $name ($workload) at $n sessions: $(tail -n3 "$work/load.err")" >&2
    emit "$(jq -nc --argjson l "$label" --argjson n "$n" --arg e "$(tail -n3 "$work/load.err")" \
      '$l + {sessions: $n, failed: true, error: $e}')"
  fi
}

# run_wrk NAME ROUND: one bench/wrk/run.sh run at 64 sessions over
# Streamable HTTP, of the trivial tool or `echo`; appends its JSON line (or
# an error line).
run_wrk() {
  local name=$1 round=$2 tool=echo args='{"message":"hello"}' key="" line label
  case $name in devops-mcp*) tool=test_simple_text args='{}' ;; esac
  echo "   wrk: 64 sessions, $duration s (round $round)" >&2
  [ ${#headers[@]} -eq 0 ] || key=${headers[0]#Authorization: Bearer }
  label=$(jq -nc --arg s "$name" --arg t "$tool" --argjson r "$round" \
    '{server: $s, kind: "wrk", round: $r, transport: "http", tool: $t}')
  if line=$(WRK_JSON=1 WRK_KEY=$key WRK_TOOL=$tool WRK_ARGS=$args SESSIONS=64 DURATION=$duration \
    "${pin_client[@]}" bash "$root/bench/wrk/run.sh" "$url" "$server_pid" 2>"$work/wrk.err"); then
    emit "$(jq -c --argjson l "$label" '$l + .' <<<"$line")"
  else
    echo "wrk failed against $name: $(tail -n3 "$work/wrk.err")" >&2
    emit "$(jq -nc --argjson l "$label" --arg e "$(tail -n3 "$work/wrk.err")" '$l + {failed: true, error: $e}')"
  fi
}

# ---- run ----
mkdir -p "$results_dir"
: >"$results"
emit "$(jq -nc --arg date "$(date -u +%FT%TZ)" --arg rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" --argjson cpus "$(nproc)" \
  --arg servers "$servers" --arg sessions "$load_sessions" --argjson duration "$duration" --argjson warmup "$warmup" \
  --argjson idle "$idle_sessions" --argjson pinned "$([ ${#pin_server[@]} -gt 0 ] && echo true || echo false)" \
  --argjson skip "$([ "$skip_load" = 1 ] && echo true || echo false)" --arg bin "$devops_bin" \
  '{kind: "meta", date: $date, git_rev: $rev, cpu: $cpu, cpus: $cpus, servers: $servers, load_sessions: $sessions,
    duration_s: $duration, warmup_s: $warmup, idle_sessions: $idle, pinned: $pinned, load_skipped: $skip,
    devops_mcp_bin: $bin}')"

for name in $servers; do
  echo "== $name" >&2
  if ! start_server "$name"; then
    emit "$(jq -nc --arg s "$name" '{server: $s, kind: "resources", failed: true}')"
    stop_pid "$server_pid"; server_pid=
    continue
  fi
  echo "   ready in $startup_ms ms ($url, pid $server_pid, workloads: $workloads)" >&2
  sleep 1
  rss_idle=$(rss_kib "$server_pid")
  hold_sessions "$idle_sessions"
  echo "   RSS idle $rss_idle KiB, with $(jq -r .opened <<<"$hold_json") sessions $rss_sessions KiB" >&2
  ws_opened=0 rss_ws_sessions=null rss_ws_idle=null
  case " $workloads " in *" ws-"*)
    sleep 2
    rss_ws_idle=$(rss_kib "$server_pid")
    hold_ws_sessions "$idle_sessions"
    echo "   RSS before $rss_ws_idle KiB, with $ws_opened WebSocket sessions $rss_ws_sessions KiB" >&2
    ;;
  esac
  rss_after=null
  if [ "$skip_load" != 1 ]; then
    for workload in $workloads; do
      for n in $load_sessions; do
        echo "   $workload: mcp-load --sessions $n --duration $duration --warmup $warmup" >&2
        run_load "$name" "$workload" "$n"
      done
    done
    rss_after=$(rss_kib "$server_pid")
  fi
  if [ "${BENCH_WRK:-0}" = 1 ]; then
    run_wrk "$name" 1
  fi
  emit "$(jq -nc --arg s "$name" --arg v "$version" --argjson st "$startup_ms" --argjson idle "$rss_idle" \
    --argjson held "$rss_sessions" --argjson hold "$hold_json" --argjson after "$rss_after" \
    --argjson ws_opened "$ws_opened" --argjson ws_held "$rss_ws_sessions" --argjson ws_before "$rss_ws_idle" \
    '{server: $s, kind: "resources", version: $v, startup_ms: $st, rss_idle_kib: $idle,
      idle_sessions_opened: $hold.opened, idle_session_errors: $hold.errors, idle_sessions_open_ms: $hold.open_ms,
      rss_with_sessions_kib: $held,
      kib_per_session: (if $hold.opened > 0 then ((($held - $idle) / $hold.opened) * 10 | round) / 10 else null end),
      ws_sessions_opened: $ws_opened, rss_with_ws_sessions_kib: $ws_held,
      kib_per_ws_session: (if $ws_opened > 0 then ((($ws_held - $ws_before) / $ws_opened) * 10 | round) / 10 else null end),
      rss_after_load_kib: $after}')"
  stop_pid "$server_pid"
  server_pid=
done

# The further wrk rounds: each server afresh, taking turns.
if [ "${BENCH_WRK:-0}" = 1 ]; then
  for round in $(seq 2 "$wrk_rounds"); do
    for name in $servers; do
      echo "== $name, wrk round $round" >&2
      if start_server "$name"; then
        sleep 1
        run_wrk "$name" "$round"
      else
        emit "$(jq -nc --arg s "$name" --argjson r "$round" \
          '{server: $s, kind: "wrk", round: $r, transport: "http", tool: "-", failed: true, error: "did not start"}')"
      fi
      stop_pid "$server_pid"
      server_pid=
    done
  done
fi

# ---- report ----
echo
echo "MCP tool-call benchmark, $(jq -r 'select(.kind == "meta") | "\(.date), \(.cpus) CPUs (\(.cpu)), rev \(.git_rev)\(if .pinned then ", server pinned to CPU 0, clients to CPU 1" else "" end)"' "$results")"
echo
echo "| server | version | start-up ms | RSS idle MiB | RSS + $idle_sessions idle sessions MiB | KiB / session | KiB / WebSocket session | RSS after load MiB |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
jq -r 'select(.kind == "resources") |
  def mib: if . == null then "n/a" else ((. / 1024 * 10 | round) / 10 | tostring) end;
  if .failed then "| \(.server) | failed to start | | | | | | |"
  else "| \(.server) | \(.version) | \(.startup_ms) | \(.rss_idle_kib | mib) | \(.rss_with_sessions_kib | mib) (\(.idle_sessions_opened) opened) | \(.kib_per_session // "n/a") | \(.kib_per_ws_session // "n/a") | \(.rss_after_load_kib | mib) |" end' "$results"
echo
if [ "$skip_load" = 1 ]; then
  echo "(load step skipped: BENCH_SKIP_LOAD=1)"
else
  echo "| server | transport | tool | sessions | calls/s | p50 ms | p99 ms | calls | errors |"
  echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  jq -r 'select(.kind == "load") |
    if .failed then "| \(.server) | \(.transport) | \(.tool) | \(.sessions) | failed | | | | |"
    else "| \(.server) | \(.transport) | \(.tool) | \(.sessions) | \(.calls_per_sec | . * 10 | round / 10) | \(.p50_ms) | \(.p99_ms) | \(.calls) | \(.errors) |" end' "$results"
fi
if [ "${BENCH_WRK:-0}" = 1 ]; then
  echo
  echo "| server (wrk, HTTP) | round | tool | sessions | calls/s | p50 ms | p99 ms | non-2xx | server CPU µs per call |"
  echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  jq -r 'select(.kind == "wrk") |
    if .failed then "| \(.server) | \(.round) | \(.tool) | 64 | failed | | | | |"
    else "| \(.server) | \(.round) | \(.tool) | \(.sessions) | \(.calls_per_sec | . * 10 | round / 10) | \(.p50_ms) | \(.p99_ms) | \(.non_2xx) | \(.server_cpu_us_per_call // "n/a") |" end' "$results"
  # devops-mcp's calls/s over each peer's in the same round, then the median.
  jq -rs 'def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
            else (.[length / 2 - 1] + .[length / 2]) / 2 end;
          def r1: . * 10 | round / 10;
    [.[] | select(.kind == "wrk" and (.failed | not))] as $runs
    | ($runs | map(select(.server == "devops-mcp")) | map({key: (.round | tostring), value: .calls_per_sec}) | from_entries) as $ours
    | [$runs[] | select(.server | startswith("devops-mcp") | not) | select($ours[.round | tostring] != null)
       | {peer: .server, round, ratio: ($ours[.round | tostring] / .calls_per_sec)}]
    | group_by(.peer)[]
    | "devops-mcp / \(.[0].peer) under wrk: median \(map(.ratio) | median | r1)x over \(length) round(s) (\(sort_by(.round) | map(.ratio | r1 | tostring + "x") | join(", ")))"' "$results" | sed '1s/^/\n/'
fi
echo
echo "raw: bench/results/latest.jsonl"
