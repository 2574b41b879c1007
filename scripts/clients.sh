#!/usr/bin/env bash
# Runs real MCP clients against `devops-mcp up` (production settings: no --dev,
# no fixtures), through the real transports and API-key authentication:
#   scripts/clients/sdk2_http.py       Python SDK mcp 2.x `Client`, Streamable HTTP
#   scripts/clients/sdk1_websocket.py  Python SDK mcp 1.x `ClientSession`, WebSocket
#   scripts/clients/inspector_cli.sh   MCP Inspector --cli, Streamable HTTP
# Clients install idempotently into .tools/ from PyPI and npm (Node >= 22 from npm too).
# Each client prints `name: N passed, M failed`; the last line sums them.
set -euo pipefail
cd "$(dirname "$0")/.."

mcp2='mcp==2.3.0'
mcp1='mcp[ws]==1.30.0' # the ws extra brings `websockets`, which 1.x's websocket_client needs
inspector_version=2.12.0
tools=$PWD/.tools
inspector_dir=$tools/inspector-$inspector_version

# venv DIR SPEC: a venv with SPEC installed. A stamp holding SPEC is written only
# after pip succeeds, so a half-done or outdated venv is rebuilt, not trusted.
venv() {
  if [ "$(cat "$1/.installed" 2>/dev/null)" != "$2" ]; then
    python3 -m venv --clear "$1"
    "$1/bin/pip" install --quiet --disable-pip-version-check "$2"
    echo "$2" >"$1/.installed"
  fi
}
venv "$tools/py-mcp2" "$mcp2"
venv "$tools/py-mcp1" "$mcp1"
# The inspector needs Node >= 22.19, for its install scripts as for running it.
# shellcheck source=lib/node.sh
source scripts/lib/node.sh
ensure_node22
if [ ! -x "$inspector_dir/node_modules/.bin/mcp-inspector" ]; then
  npm install --silent --no-audit --no-fund --prefix "$inspector_dir" "@modelcontextprotocol/inspector@$inspector_version" >/dev/null
fi

# shellcheck source=lib/fleet.sh
source scripts/lib/fleet.sh
start_fleet
key=$FLEET_KEY
mcp_port=$FLEET_MCP_PORT

export MCP_URL="http://127.0.0.1:$mcp_port/mcp" MCP_WS_URL="ws://127.0.0.1:$mcp_port/ws" MCP_KEY="$key"
export INSPECTOR="$inspector_dir/node_modules/.bin/mcp-inspector"
passed=0 failed=0
# client NAME CMD...: run one client and add its `N passed, M failed` line to the totals;
# a client that exits non-zero without counting a failure (a crash) counts as one.
client() {
  local name=$1 out rc=0 counts p=0 f=1
  shift
  echo "== $name"
  out=$(timeout 300 "$@" </dev/null 2>&1) || rc=$? # a hung client fails, not the run
  echo "$out"
  counts=$(echo "$out" | grep -oE '[0-9]+ passed, [0-9]+ failed$' | tail -n1 || true)
  if [ -n "$counts" ]; then
    read -r p _ f _ <<<"${counts//,/}"
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)) failed=$((failed + f))
}
client sdk2_http "$tools/py-mcp2/bin/python" scripts/clients/sdk2_http.py
client sdk1_websocket "$tools/py-mcp1/bin/python" scripts/clients/sdk1_websocket.py
client inspector_cli bash scripts/clients/inspector_cli.sh

echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
