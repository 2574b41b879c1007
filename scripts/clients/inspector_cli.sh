#!/usr/bin/env bash
# Real-client test: the official MCP Inspector's CLI mode over Streamable HTTP.
# Env: MCP_URL, MCP_KEY, INSPECTOR (path to the mcp-inspector bin; Node >= 22.19 on PATH).
# The inspector's exit codes: 0 ok, 1 error, 3 auth required, 4 unreachable, 5 tool error.
set -uo pipefail
url=${MCP_URL:-http://127.0.0.1:18080/mcp}
key=${MCP_KEY:?MCP_KEY is required}
inspector=${INSPECTOR:-$(dirname "$0")/../../.tools/inspector-2.12.0/node_modules/.bin/mcp-inspector}
# A throwaway HOME: the inspector keeps a catalog and secrets under ~/.mcp-inspector.
HOME=$(mktemp -d)
export HOME
trap 'rm -rf "$HOME"' EXIT
passed=0 failed=0

# expect NAME RC TEXT ARGS...: one inspector call with the key must exit RC
# and print TEXT (may be empty). --stored-auth-only: never start an
# interactive OAuth login (no TTY in CI); --format json: one JSON line on stdout.
expect() {
  local name=$1 want=$2 text=$3 out rc=0
  shift 3
  out=$(timeout 60 "$inspector" --cli "$url" --transport http --header "Authorization: Bearer $key" \
    --stored-auth-only --format json "$@" </dev/null 2>&1) || rc=$?
  if [ "$rc" -eq "$want" ] && [[ $out == *"$text"* ]]; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name: exit $rc, want $want${text:+ and $text}"; echo "${out:0:2000}"
  fi
}

expect "tools/list lists whoami" 0 '"name":"whoami"' --method tools/list
expect "tools/call whoami: tenant default" 0 '"tenant_name":"default"' --method tools/call --tool-name whoami
expect "tools/call get_context of a random UUID: tool error" 5 '' \
  --method tools/call --tool-name get_context --tool-arg "context_id=$(cat /proc/sys/kernel/random/uuid)"
key=dmcp_not_a_valid_key expect "a bad key: auth required" 3 '' --method tools/list

echo "inspector_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
