# archiver: the two commands are `make run` (capture the bundled seeds, index, replay) and
# `make test` (set everything up and pass the whole suite; .ci/run calls exactly this).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
SITE_PORT ?= 8765
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run demo test lint setup setup-test browser services clean

run: setup  ## capture seeds/, index, and replay at http://127.0.0.1:$(PORT)/
	$(BIN)/archiver init
	@# exit status 1 means some seeds failed (listed above; still replayable as feed copies when
	@# their seed document carried the article); anything above 1 is a real failure (README: Exit status)
	$(BIN)/archiver capture seeds/ -c news; status=$$?; [ $$status -le 1 ]
	$(BIN)/archiver export -c news -o collections/news/export.csv
	$(BIN)/archiver replay -c news --port $(PORT)

demo: setup  ## capture the bundled news site over loopback, then replay it
	$(BIN)/archiver demo --port $(PORT) --site-port $(SITE_PORT)

test: setup-test browser services lint  ## everything the suite needs, then the suite
	$(BIN)/pytest

lint: setup-test
	$(BIN)/ruff check archiver tests
	$(BIN)/mypy archiver

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

browser:  ## Debian's Chromium (and CJK fonts) for the replay tests
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk; }

services:  ## Debian's redis-server for tests/test_redis_index.py (the tests start and stop their own)
	@command -v redis-server >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends redis-server; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (bench/README.md): `make bench` runs them all (about 55 min, cluster included); one of them, small:
# `make bench BENCH_ARGS="capture --quick"`. Results go to bench/.data/results/latest.md.
.PHONY: bench
bench: setup-test
	$(BIN)/python bench/run.py $(BENCH_ARGS)
