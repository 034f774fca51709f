# The two commands a new user needs: `make demo` and `make test`. Everything else is for developers.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_VERSION := 0.13.9
HOST ?= 127.0.0.1
PORT ?= 3000
DEMO_N ?= 20000
DEMO_SEED ?= 7
DEMO := models/demo

export BENTOML_DO_NOT_TRACK := True
export MPLBACKEND := Agg

.PHONY: demo test lint bytecode bench bento lock venv venv-test venv-bench system-test-deps bench-deps drop-pyspark-build clean help

help:
	@echo "make demo   simulate a cohort, train, register the champion, serve on $(HOST):$(PORT)"
	@echo "            (prints a key per role, made for that run, and each role's calls)"
	@echo "make test   install what the tests need (Chromium too) and run the whole suite"
	@echo "make bench  run the benchmarks against EconML, CausalML, FastAPI (slow)"
	@echo "make bento  build the service as a bento (then bentoml containerize, see README)"
	@echo "make lock   re-resolve requirements/*.lock from pyproject.toml"

$(UV):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# One stamp per lock file: an install is redone only when its lock or pyproject changes.
# --compile-bytecode: the installed packages' .pyc are written once, at install. Without them a
# Python that may not write bytecode (PYTHONDONTWRITEBYTECODE=1, as in many containers, this
# machine's and CI's among them) compiles mlflow, pandas, bentoml... from source in every process:
# 4.8 of the 8.5 s of `recommender serve --check`, paid again by each CLI call, server worker and
# Spark worker.
$(VENV)/.runtime: requirements/runtime.lock pyproject.toml | $(UV)
	$(UV) pip install --quiet --compile-bytecode -p $(BIN)/python -r requirements/runtime.lock
	$(UV) pip install --quiet -p $(BIN)/python --no-deps -e .
	@touch $@
$(VENV)/.test: requirements/test.lock pyproject.toml | $(UV)
	$(UV) pip install --quiet --compile-bytecode -p $(BIN)/python -r requirements/test.lock
	$(UV) pip install --quiet -p $(BIN)/python --no-deps -e .
	@$(MAKE) --no-print-directory drop-pyspark-build
	@touch $@ $(VENV)/.runtime
$(VENV)/.bench: requirements/bench.lock pyproject.toml | $(UV)
	$(UV) pip install --quiet --compile-bytecode -p $(BIN)/python -r requirements/bench.lock
	$(UV) pip install --quiet -p $(BIN)/python --no-deps -e .
	@$(MAKE) --no-print-directory drop-pyspark-build
	@touch $@ $(VENV)/.test $(VENV)/.runtime

# pyspark ships only as a source distribution. A registry that answers without cache
# validators (as this machine's does) makes uv build it afresh for every new environment and
# keep every build in its cache, 1.4 GB each: a few dozen fresh clones filled the disk and
# CI stopped with "No space left on device". Once installed, the build is dropped from the
# cache (the installed copy in .venv is not touched). A cache another uv process is using is
# left as it is, with a message, rather than failing the install.
drop-pyspark-build: | $(UV)
	@$(UV) cache clean --quiet pyspark 2>/dev/null \
	  || echo "uv's cache is in use; pyspark's build stays in it (uv cache clean pyspark frees it)"

venv: $(VENV)/.runtime
venv-test: $(VENV)/.test
venv-bench: $(VENV)/.bench

# The browser tests drive Debian's Chromium through its matching chromedriver, the Spark
# batch-scoring tests need a Java runtime, and the store tests start a throwaway PostgreSQL
# cluster (tests/pg_cluster.py) from Debian's server binaries, and the load generator's tests
# drive wrk; all from Debian's packages, nothing downloaded at run time.
system-test-deps:
	@need=""; \
	command -v chromium >/dev/null || need="$$need chromium"; \
	command -v chromedriver >/dev/null || need="$$need chromium-driver"; \
	command -v java >/dev/null || need="$$need default-jre-headless"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$$need postgresql"; \
	command -v wrk >/dev/null || need="$$need wrk"; \
	command -v nginx >/dev/null || need="$$need nginx-light"; \
	if [ -z "$$need" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	echo "installing Debian packages for the browser, Spark and proxy tests:$$need"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$need >/dev/null && $$SUDO apt-get clean

# The bench extra is installed too: the differential test against EconML and the benchmark
# smoke test need the anchors. They stay out of the runtime dependencies.
# Doctests of the library first (Alembic's env.py runs only inside Alembic, so not imported);
# then the suite on both cores (the server, PostgreSQL and Spark tests wait on I/O much of the time).
# Each run lists its 40 slowest steps, so that where the suite's time goes is read from any CI log.
test: $(VENV)/.bench system-test-deps lint bytecode
	$(BIN)/python -m pytest --doctest-modules recommender -q --ignore=recommender/service/migrations
	$(BIN)/python -m pytest -n 2 --durations=40

# The project's own modules compiled too, at each run (the editable install leaves them as
# source, and a Python that may not write bytecode compiles them again in every process: each
# CLI call, each server and its workers, each Spark worker). A .pyc older than its source is
# never used, so an edit made after this only costs that file's compile again.
bytecode: | $(UV)
	@$(BIN)/python -m compileall -q -j 0 recommender pipelines bench tests >/dev/null

# Lint and format check (configured in pyproject.toml's [tool.ruff]).
lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The address is checked first: a port in use is said before the cohort is simulated and the
# model trained, not after.
demo: $(VENV)/.runtime bytecode
	@$(BIN)/recommender serve --host $(HOST) --port $(PORT) --check
	@mkdir -p $(DEMO)
	$(BIN)/recommender simulate --scenario default --n $(DEMO_N) --seed $(DEMO_SEED) --assignment rct --out $(DEMO)/cohort.parquet
	$(BIN)/recommender validate $(DEMO)/cohort.parquet --training
	$(BIN)/recommender train --config configs/train.yaml --data $(DEMO)/cohort.parquet --if-changed
	$(BIN)/recommender serve --host $(HOST) --port $(PORT) --print-example

# The service benchmark's load generator is wrk, Debian's package (a C client that leaves the
# shared cores to the server it measures).
bench-deps:
	@command -v wrk >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	echo "installing Debian's wrk, the load generator of bench/service.py"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null

bench: $(VENV)/.bench bench-deps
	$(BIN)/python -m bench.simulate
	$(BIN)/python -m bench.learners --n 20000 --assignment rct
	$(BIN)/python -m bench.learners --n 20000 --assignment observational
	$(BIN)/python -m bench.learners --n 100000 --assignment rct
	$(BIN)/python -m bench.learners --n 100000 --assignment observational
	$(BIN)/python -m bench.ihdp
	$(BIN)/python -m bench.coverage
	$(BIN)/python -m bench.service
	$(BIN)/python -m bench.batch --n 200000 --repeats 3

# Exact versions with hashes; an existing lock's versions are kept unless pyproject needs others.
# runtime: core + serve + postgres (what `make demo` and the bento install); test adds the test
# tools, Spark and ruff; bench adds the benchmark anchors.
LOCK := $(UV) pip compile -q --python-version 3.11 --generate-hashes pyproject.toml
# The service as a bento (bentofile.yaml), in BentoML's home under models/; then for an image:
#   BENTOML_HOME=models/bentoml .venv/bin/bentoml containerize burnout_recommender:latest
bento: $(VENV)/.runtime
	BENTOML_HOME=models/bentoml $(BIN)/bentoml build

lock: | $(UV)
	$(LOCK) --extra serve --extra postgres -o requirements/runtime.lock
	$(LOCK) --extra serve --extra postgres --extra test --extra spark --extra lint -o requirements/test.lock
	$(LOCK) --extra serve --extra postgres --extra test --extra spark --extra lint --extra bench -o requirements/bench.lock

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
