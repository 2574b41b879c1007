# The two commands: `make run` and `make test`. See README.md.
SHELL := /bin/bash
CARGO ?= cargo
DATA_DIR ?= .data

.PHONY: run build lint test test-services-start test-services-stop nextest schemathesis fmt

## Build and start the whole fleet on embedded defaults (no external service).
run:
	$(CARGO) build -p devops-cli --bin devops-mcp
	$(CARGO) run -q -p devops-cli --bin devops-mcp -- --set data_dir=$(DATA_DIR) --set telemetry.log_format=text up

build:
	$(CARGO) build --workspace --all-targets

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Install and start PostgreSQL+pgvector, Redis and moto; lint; run every
## test against them; run schemathesis against the REST API; stop what it started.
test:
	bash scripts/test.sh
