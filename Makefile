# FlashSale - one Makefile contract. `make demo` and `make test` do all their own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
BUILD     := tests/flashsale_dev/build
PYTHON311 := $(shell command -v python3.11 || command -v python3)
CACHE     ?= $(or $(FLASHSALE_CACHE),$(HOME)/.cache/flashsale)
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help setup setup-system setup-python setup-kafka setup-cluster lint fmt test test-unit \
        test-integration test-cluster up down env demo bench bench-dataplane bench-operator clean images

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: setup-system setup-python setup-kafka setup-cluster images ## install everything (idempotent; fast when warm)

setup-system: ## Debian packages: redis, postgresql, prometheus, openssl, wrk, nginx, runc, CNI plugins, iptables (no daemons started)
	@bash $(BUILD)/setup-system.sh

setup-python: $(VENV)/.installed ## the Python venv: the product with its dev tools, and the local platform (both editable)
$(VENV)/.installed: pyproject.toml tests/pyproject.toml
	@test -x $(PY) || $(PYTHON311) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]' -e ./tests
	@touch $@

setup-kafka: ## Apache Kafka broker jars from Maven Central, cached outside the repo
	@bash $(BUILD)/fetch-kafka.sh

setup-cluster: ## build the control plane, kubelet, kube-proxy, containerd, etcd, kwok, helm, coredns into the cache
	@bash $(BUILD)/build-cluster-tools.sh

images: setup-system setup-python setup-kafka ## FlashSale's OCI images (product, kafka, pause) into the cache, by content (docs/images.md)
	@FLASHSALE_CACHE=$(CACHE) $(PY) -m flashsale_dev.image_build

lint: setup-python ## ruff (lint + format check), mypy and the layering's import-linter contracts
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports --no-logo

fmt: setup-python ## apply ruff's fixes and formatting
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

test: setup lint ## lint, then every test tier (unit, integration, cluster, e2e) on real components
	@$(VENV)/bin/pytest $(PYTEST_ARGS)

test-unit: setup-python ## pure tests only, no servers
	@$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

test-integration: setup ## tests against the real middleware
	@$(VENV)/bin/pytest -m integration $(PYTEST_ARGS)

test-cluster: setup ## tests against the real Kubernetes control plane
	@$(VENV)/bin/pytest -m cluster $(PYTEST_ARGS)

up: setup ## start the local platform (middleware + cluster) in the background; prints exports
	@$(PY) -m flashsale_dev.cli up

down: ## stop what `make up` started and remove its state
	@test -x $(PY) && $(PY) -m flashsale_dev.cli down || true

env: ## print the export lines of the running platform
	@$(PY) -m flashsale_dev.cli env

demo: setup ## run a whole sale end to end on a fresh local platform
	@$(PY) -m flashsale_dev.demo

bench: bench-dataplane bench-operator ## every benchmark part, merged into bench/results.json and docs/benchmarks.md
	@$(PY) -m bench.merge bench/out/dataplane.json bench/out/operator.json \
		--results bench/results.json --docs docs/benchmarks.md

bench-dataplane: setup-system setup-python setup-kafka ## the sale's data plane alone (BENCH_ARGS=--quick: short runs)
	@$(PY) -m bench.dataplane --out bench/out/dataplane.json $(BENCH_ARGS)

bench-operator: setup-system setup-python setup-kafka setup-cluster ## the operator alone: start-flag skew over 20 sales, pause delay, backlog-to-scale-up (beside KEDA+HPA computed), apply-to-Ready
	@$(PY) -m bench.operator --out bench/out/operator.json $(BENCH_ARGS)

clean: down ## remove the venv and caches inside the repo (not the tool cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache *.egg-info tests/*.egg-info
