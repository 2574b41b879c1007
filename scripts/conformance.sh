#!/usr/bin/env bash
# Runs the official MCP conformance suite against `devops-mcp up` with the
# fixture toolset on, through the real transport and authentication.
#   scripts/conformance.sh [VERSION] [extra conformance arguments]
# VERSION defaults to 0.1.16. Node >= 22 comes from the npm registry into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-0.1.16}
shift || true
suite_dir=$PWD/.tools/conformance-$version
# shellcheck source=lib/node.sh
source scripts/lib/node.sh
ensure_node22
if [ ! -x "$suite_dir/node_modules/.bin/conformance" ]; then
  npm install --silent --no-audit --no-fund --prefix "$suite_dir" "@modelcontextprotocol/conformance@$version" >/dev/null
fi

# shellcheck source=lib/fleet.sh
source scripts/lib/fleet.sh
start_fleet --dev --set mcp.conformance_fixtures=true
key=$FLEET_KEY
mcp_port=$FLEET_MCP_PORT

MCP_CONFORMANCE_BEARER=$key CONFORMANCE_DIR="$suite_dir/node_modules/@modelcontextprotocol/conformance" \
NODE_OPTIONS="--import $PWD/scripts/conformance/inject-auth.mjs" \
  "$suite_dir/node_modules/.bin/conformance" server --url "http://127.0.0.1:$mcp_port/mcp" --suite all "$@"
