SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

DEV_PG_PORT ?= 54329
ARGS ?= ./...
FUZZTIME ?= 30s
GO ?= go
BIN := bin/fieldtrack
PG := scripts/pg.sh
# The version / reports: the checkout's git description (the toolchain's build info when this is empty).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)

.PHONY: help run build clean test test-citus fuzz generate verify lint bench docs-ui db-start db-stop db-reset db-url

help: ## List targets
	@echo "Usage: make <target> [DEV_PG_PORT=$(DEV_PG_PORT)] [ARGS='$(ARGS)']"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: build ## Run the API: dev cluster (unless DATABASE_URL is set), migrate, seed, serve on PORT (8080)
	@DEV_PG_PORT=$(DEV_PG_PORT) scripts/run.sh

build: ## Build bin/fieldtrack
	@mkdir -p $(dir $(BIN))
	$(GO) build -ldflags "-X github.com/fieldtrack/fieldtrack/internal/telemetry.version=$(VERSION)" -o $(BIN) ./cmd/fieldtrack

clean: ## Remove bin/
	rm -rf bin/

test: ## Run go test -race against a throwaway cluster (ARGS='-run TestX ./internal/httpapi/')
	@scripts/test.sh $(ARGS)

test-citus: ## Run the Citus tests on a throwaway coordinator and two workers (Citus installed first: README)
	@scripts/pg.sh ensure-packages
	@scripts/citus.sh test $(CITUS_TEST_ARGS)

fuzz: ## Run each fuzz target for FUZZTIME (30s), one after another; no database (make fuzz FUZZTIME=5m)
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

generate: ## Regenerate sqlc code (installs sqlc v1.31.1 when missing)
	@scripts/sqlc.sh generate

verify: ## sqlc diff, gofmt -l on tracked files, go vet
	@scripts/verify.sh

lint: verify ## Alias of verify

docs-ui: ## Vendor Swagger UI (swagger-ui-dist, pinned) into internal/httpapi/docs for GET /docs
	@scripts/docs-ui.sh

bench: ## Run the benchmarks against raw Postgres baselines (scripts/bench.sh)
	@scripts/bench.sh

db-start: ## Start the dev PostgreSQL cluster on DEV_PG_PORT (created on first use)
	@$(PG) ensure-packages
	@dir="$$($(PG) devdir)"; $(PG) start "$$dir" $(DEV_PG_PORT)
	@$(PG) url $(DEV_PG_PORT)

db-stop: ## Stop the dev cluster
	@dir="$$($(PG) devdir)"; $(PG) stop "$$dir"

db-reset: ## Stop the dev cluster and delete its data directory
	@dir="$$($(PG) devdir)"; $(PG) remove "$$dir"

db-url: ## Print the dev DATABASE_URL
	@$(PG) url $(DEV_PG_PORT)
