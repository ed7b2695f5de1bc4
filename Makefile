# One task runner, mirrored by CI (.ci/run calls `make test`).
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: deps build demo test test-rust test-python python wheel wheel-check bench bench-scale bench-micro check fmt clippy clean

## Install missing Debian packages and the Python venv.
deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace --all-targets

## Generate a SQLite market, cache it, and query it.
demo: deps
	$(CARGO) build --release -p cheetah-cli
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop -q --release -m cheetah-py/Cargo.toml
	@scripts/demo.sh target/release/cheetah

## Every test: unit, property and database tests (SQLite, PostgreSQL, MariaDB), and Python.
test: deps test-rust test-python

# The database tests run the `cheetah` binary as a user would, so build it first.
test-rust:
	$(CARGO) build -p cheetah-cli
	$(CARGO) test --workspace --all-targets

## Build the `cheetah` Python package into .venv (debug build, shares the test build's crates).
python: deps
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop -q -m cheetah-py/Cargo.toml

## The self-contained wheel: dist/cheetah-<version>-cp39-abi3-manylinux_*_x86_64.whl.
wheel: deps
	@scripts/wheel.sh

## The wheel on a bare Debian root file system (debootstrap, chroot); not part of `make test`.
wheel-check: wheel
	@scripts/wheel-check.sh

test-python: python
	$(CARGO) build -p cheetah-cli
	cd cheetah-py && CHEETAH_BIN=$$($(CARGO) metadata --format-version 1 --no-deps | $(CURDIR)/$(PY) -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/cheetah \
		$(CURDIR)/$(PY) -m pytest -q tests

## Cheetah against its peers on the seeded 5,000-symbol, 10-year market, with PostgreSQL as the source.
# ArcticDB holds pandas below 3 in the bench venv; Cheetah's rows are measured again in a venv
# with the newest pandas, as a user's fresh install gets it, reading the same store.
BENCH_NEWEST := bench/venv-newest
bench: deps
	$(VENV)/bin/pip install -q -r benches/requirements.txt
	$(CARGO) build --release -p cheetah-cli -p cheetah-benches --bins
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop -q --release -m cheetah-py/Cargo.toml
	test -x $(BENCH_NEWEST)/bin/python || python3 -m venv $(BENCH_NEWEST)
	$(BENCH_NEWEST)/bin/pip install -q --upgrade pip pandas numpy pyarrow
	VIRTUAL_ENV=$(CURDIR)/$(BENCH_NEWEST) $(VENV)/bin/maturin develop -q --release -m cheetah-py/Cargo.toml
	# An editable install writes no bytecode where PYTHONDONTWRITEBYTECODE is set; pip compiles a
	# wheel's at install, so new-process figures are taken with it compiled.
	$(PY) -m compileall -q cheetah-py/python/cheetah
	$(PY) benches/compare.py --newest-python $(BENCH_NEWEST)/bin/python $(BENCH_ARGS)

## 10,000 cached fields: open, status, one new date, and reads of 4 against 50 fields.
bench-scale: deps
	$(CARGO) build --release -p cheetah-cli
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop -q --release -m cheetah-py/Cargo.toml
	$(PY) -m compileall -q cheetah-py/python/cheetah
	$(PY) benches/scale.py $(BENCH_ARGS)

## Criterion micro-benchmarks: the chunk codec and the assembler.
bench-micro:
	$(CARGO) bench -p cheetah-benches

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## What CI runs, plus formatting and lints.
check: deps fmt clippy test

clean:
	$(CARGO) clean
	rm -rf demo bench dist $(VENV)
