#!/usr/bin/env bash
# Property-based tests of the REST API against its own OpenAPI document:
# start `devops-mcp up` on embedded defaults in a scratch directory, take the
# bootstrap key it prints, and run schemathesis with every check (the few
# per-operation exceptions, each with its reason, are in schemathesis.toml).
# One worker: hypothesis parses lambdas' source with `ast`, and on Python
# 3.11 two threads doing that at once can fail with "AST constructor
# recursion depth mismatch" (cpython#106905), a runtime error of the tool.
set -euo pipefail
cd "$(dirname "$0")/.."

schemathesis=${DEVOPS_MCP_SCHEMATHESIS:-schemathesis}
# shellcheck source=lib/fleet.sh
source scripts/lib/fleet.sh
start_fleet
key=$FLEET_KEY
rest_port=$FLEET_REST_PORT

"$schemathesis" run "http://127.0.0.1:$rest_port/api/v1/openapi.json" \
  --header "Authorization: Bearer $key" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
  --seed 1 \
  --workers 1 \
  --no-color "$@"
