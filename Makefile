# The commands the README and CI use. Everything runs in a project virtualenv (.venv) that
# `make install` creates from scratch, so a fresh machine needs only Python 3.11 and make.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install system-deps serve test lint format bench bench-load bench-startup bench-build bench-search fuzz soak soak-reload kill-worker mutate clean

$(BIN)/feedsvc: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/feedsvc

# The real clients and servers some tests drive (a browser, a feed reader, a web server), from
# Debian; without them those tests skip (and fail under CI). Needs root, as on CI.
SYSTEM_TOOLS := chromium chromium-driver nginx-light newsboat
system-deps:
	dpkg -s $(SYSTEM_TOOLS) >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_TOOLS))

serve: install
	$(BIN)/feedsvc serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Serving benchmark (not part of the tests): needs wrk; installs it from Debian when missing.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.serving $(BENCH_ARGS)

# Loading benchmark (about 10 minutes for the default sizes).
bench-load: install
	$(BIN)/python -m bench.loading $(BENCH_ARGS)

# The server as started: warm restart against a CSafeLoader loop, and memory per record from the
# PSS of its processes (bench/startup.py; 100,000 records, about 20 minutes the first time).
bench-startup: install
	$(BIN)/python -m bench.startup $(BENCH_ARGS)

# Build benchmark: a full static build of 10,000 records, then rebuilds into it (bench/build.py).
bench-build: install
	$(BIN)/python -m bench.build $(BENCH_ARGS)

# Search benchmark at 100,000 records (the first run writes and parses them: about 20 minutes;
# later runs reuse them: about 5); its flood needs wrk.
bench-search: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.search $(BENCH_ARGS)

# Coverage-guided fuzzing of the record parser (atheris) for FUZZ_SECONDS; the corpus starts
# from tests/data/ and seeds/, new inputs and any crash go to .fuzz/.
FUZZ_SECONDS ?= 600
fuzz: install
	$(BIN)/python -m pip install --quiet -e '.[test,fuzz]'
	mkdir -p .fuzz/corpus .fuzz/crashes
	$(BIN)/python fuzz/fuzz_records.py -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
		-rss_limit_mb=2048 -max_len=65536 -artifact_prefix=.fuzz/crashes/ -print_final_stats=1 -dict=fuzz/records.dict \
		.fuzz/corpus tests/data seeds

# Faults and load (bench/faults.py; results in bench/README.md): the production server under
# wrk at 64 connections across every feed URL for SOAK_SECONDS; FAULT_ARGS passes more options
# (--server gunicorn, --records N, --warmup S).
SOAK_SECONDS ?= 180
soak soak-reload kill-worker: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.faults $(subst soak-reload,reload,$(subst kill-worker,kill,$@)) \
		--seconds $(SOAK_SECONDS) $(FAULT_ARGS)

# Mutation testing (not part of the tests or CI; tests/mutate.py, results in tests/README.md):
# each scope's mutants against the tests that concern it. MUTATE_ARGS names scopes (urls,
# parsecache, repository, web, cache, versions, render, fingerprints, stories; default all) and options (--show prints each survivor's diff).
MUTATE_WORKERS ?= 1
mutate: install
	$(BIN)/python -m pip install --quiet -e '.[test,mutate]'
	$(BIN)/python -m tests.mutate --workers $(MUTATE_WORKERS) $(MUTATE_ARGS)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .mutate
