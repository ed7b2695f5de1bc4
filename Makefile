# One task runner, mirrored by CI (.ci/run calls `make test`).
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: deps build demo test test-rust check fmt clippy clean

## Install missing Debian packages and the Python venv.
deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace --all-targets

## Generate a SQLite market, cache it, and query it.
demo: deps
	$(CARGO) build --release -p cheetah-cli
	@scripts/demo.sh target/release/cheetah

## Every test: unit, property and database tests (SQLite, PostgreSQL, MariaDB).
test: deps test-rust

# The database tests run the `cheetah` binary as a user would, so build it first.
test-rust:
	$(CARGO) build -p cheetah-cli
	$(CARGO) test --workspace --all-targets

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## What CI runs, plus formatting and lints.
check: deps fmt clippy test

clean:
	$(CARGO) clean
	rm -rf demo $(VENV)
