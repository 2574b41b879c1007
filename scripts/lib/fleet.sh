# Sourced by the scripts that test a running fleet: starts `devops-mcp up`
# on free loopback ports with a throwaway data directory, waits until it is
# ready, and sets FLEET_KEY (the bootstrap key), FLEET_MCP_PORT and
# FLEET_REST_PORT. The fleet is stopped when the calling script exits.
#   start_fleet [extra devops-mcp arguments]

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_fleet() {
  local target=${CARGO_TARGET_DIR:-target} service
  FLEET_DATA=$(mktemp -d)
  FLEET_MCP_PORT=$(free_port)
  FLEET_REST_PORT=$(free_port)
  local log="$FLEET_DATA/up.log"
  local args=(--set "data_dir=$FLEET_DATA" --set "services.mcp_server.listen=127.0.0.1:$FLEET_MCP_PORT"
    --set "services.rest_api.listen=127.0.0.1:$FLEET_REST_PORT")
  for service in worker indexer pr_manager reviewer; do
    args+=(--set "services.$service.listen=127.0.0.1:$(free_port)")
  done
  "$target/debug/devops-mcp" "$@" "${args[@]}" up >"$log" 2>&1 </dev/null &
  FLEET_PID=$!
  trap stop_fleet EXIT
  FLEET_KEY=
  for _ in $(seq 1 150); do
    FLEET_KEY=$(grep -oE 'dmcp_[a-z0-9]{12}_[A-Za-z0-9]{40}' "$log" | head -n1 || true)
    if [ -n "$FLEET_KEY" ] && curl -fsS "http://127.0.0.1:$FLEET_MCP_PORT/readyz" >/dev/null 2>&1 \
      && curl -fsS "http://127.0.0.1:$FLEET_REST_PORT/readyz" >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$FLEET_PID" 2>/dev/null || { echo "devops-mcp up exited:"; cat "$log"; return 1; }
    sleep 0.2
  done
  echo "devops-mcp up did not become ready:"; cat "$log"; return 1
}

stop_fleet() {
  kill -TERM "$FLEET_PID" 2>/dev/null || true
  wait "$FLEET_PID" 2>/dev/null || true
  rm -rf "$FLEET_DATA"
}
