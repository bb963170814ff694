# Thin wrappers over the `autoresponder` CLI; `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo "$$HOME/.local/bin/uv")
RUN := $(UV) run --frozen

.PHONY: help setup run test lint train status eval review bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: ## Create both environments (app: Python 3.11+, engine: Python 3.10 with Rasa 3.6)
	@bash scripts/setup.sh

run: setup ## Start the whole stack (Redis, engine, app) and print its URLs; Ctrl-C stops it
	@$(RUN) autoresponder up

train: setup ## Train the model when it is missing or older than its data
	@$(RUN) autoresponder train

status: ## Show whether the running stack is healthy
	@$(RUN) autoresponder status

test: setup ## Install what the tests need, then run the whole suite against real Redis, Rasa and Chromium
	@bash scripts/browser.sh
	@bash scripts/mailserver.sh
	@bash scripts/loadbalancer.sh
	@cd engine && $(RUN) pytest
	@$(RUN) autoresponder train
	@$(RUN) pytest

eval: setup ## Evaluate the assistant (held-out NLU, conversation tests, sentiment); fails under target
	@$(RUN) autoresponder eval

review: setup ## Count the reviewed examples (console: Review) per intent, with the last before/after of `eval --before`
	@$(RUN) autoresponder review report

bench: setup ## Run the benchmarks (bench/bench_*.py) and print their tables
	@bash scripts/mailserver.sh
	@$(RUN) autoresponder train
	@$(RUN) python -m bench

lint: setup ## ruff, mypy (strict, tests and bench too) and the import rules (lint-imports)
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) mypy
	@$(RUN) lint-imports

clean: ## Remove trained models and runtime data (var/)
	rm -rf models var
