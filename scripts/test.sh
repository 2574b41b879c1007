#!/usr/bin/env bash
# `make test`: start the real back ends on loopback, lint, run the whole test
# suite against them, fuzz the REST API with schemathesis, and stop what was
# started, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
bash scripts/test-services.sh install
trap 'bash scripts/test-services.sh stop >/dev/null 2>&1 || true' EXIT
bash scripts/test-services.sh start >/dev/null
# shellcheck disable=SC1091
source .test-services/env
# Under make test a missing service fails its tests instead of skipping them.
export DEVOPS_MCP_REQUIRE_SERVICES=1

make lint
# The end-to-end tests start the real binaries, so build them first.
cargo build --workspace --bins
cargo nextest run --workspace --profile ci --no-fail-fast 2>&1 | tee .test-services/nextest.log
bash scripts/schemathesis.sh
# The official MCP conformance suite, through real transport and auth.
bash scripts/conformance.sh 0.1.16
bash scripts/conformance.sh 0.2.0-alpha.12 --spec-version 2025-11-25
bash scripts/conformance.sh 0.2.0-alpha.12 --spec-version 2026-07-28
# Real clients: Python SDK 2.x over HTTP, 1.x over WebSocket, the Inspector CLI.
bash scripts/clients.sh
echo "make test finished in $(( $(date +%s) - started ))s"
# Repeat the test runner's verdict last, where CI reads it.
grep -E '^ +Summary ' .test-services/nextest.log | tail -n1
