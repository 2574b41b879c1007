#!/usr/bin/env bash
# Property-based tests of the REST API against its own OpenAPI document:
# start `devops-mcp up` on embedded defaults in a scratch directory, take the
# bootstrap key it prints, and run schemathesis with every check.
set -euo pipefail
cd "$(dirname "$0")/.."

schemathesis=${DEVOPS_MCP_SCHEMATHESIS:-schemathesis}
target=${CARGO_TARGET_DIR:-target}
data=$(mktemp -d)
log="$data/up.log"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rest_port=$(free_port)
args=(--set "data_dir=$data" --set "services.rest_api.listen=127.0.0.1:$rest_port")
for service in mcp_server worker indexer pr_manager reviewer; do
  args+=(--set "services.$service.listen=127.0.0.1:$(free_port)")
done

"$target/debug/devops-mcp" "${args[@]}" up >"$log" 2>&1 &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

for _ in $(seq 1 150); do
  key=$(grep -oE 'dmcp_[a-z0-9]{12}_[A-Za-z0-9]{40}' "$log" | head -n1 || true)
  if [ -n "$key" ] && curl -fsS "http://127.0.0.1:$rest_port/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "devops-mcp up exited:"; cat "$log"; exit 1; }
  sleep 0.2
done
[ -n "${key:-}" ] || { echo "no bootstrap key in the output of devops-mcp up:"; cat "$log"; exit 1; }

"$schemathesis" run "http://127.0.0.1:$rest_port/api/v1/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks all \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
  --seed 1 \
  --workers 2 \
  --no-color
