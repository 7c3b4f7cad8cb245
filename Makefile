# cartera — the commands a newcomer needs. `make demo` and `make test` work on a fresh
# Debian machine with Python 3.11: they create .venv and install pinned versions first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# `make test` also installs the Spark extra (CI runs tests/spark); `make demo` does not need it.
SPARK_STAMP := $(VENV)/.installed-spark-stamp

# One persistent Dagster instance inside the project: runs from the CLI, the schedule and
# the sensor all show up in `make dev`.
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: help install demo test dev docs bench clean

help:
	@echo "make demo   set up, generate sample extracts and run them through the pipeline"
	@echo "make test   set up and run the whole test suite"
	@echo "make dev    open the Dagster UI (http://127.0.0.1:3000)"
	@echo "make docs   build the dbt docs site (lineage) under dbt_project/target"
	@echo "make bench  run the benchmarks (see benchmarks/README.md)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@mkdir -p $(DAGSTER_HOME)
	@touch $(STAMP)

install: $(STAMP)

$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]"
	@touch $(SPARK_STAMP)

demo: $(STAMP)
	$(BIN)/cartera demo

test: $(SPARK_STAMP)
	$(BIN)/python -m pytest

dev: $(STAMP)
	$(BIN)/cartera prepare
	$(BIN)/dagster dev -m orchestration.definitions -h 127.0.0.1 -p 3000

docs: $(STAMP)
	$(BIN)/cartera docs

# make bench ARGS="--scenario B5 --repeat 3" (the full set takes hours on 2 cores)
ARGS ?= --scenario all
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf data .dagster_home dbt_project/target dbt_project/logs dbt_project/macros/generated
