# The two Quick start commands (`make demo`, `make test`) do all the set-up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup tools browser postgres redis nginx demo test lint down bench chaos

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# btcd, lnd, starknet-devnet and toxiproxy (harness/tools.py, built at once), and beside them the two Cairo
# compilers the artifact test uses: on a cold machine the builds overlap instead of adding up.
tools: setup
	@mkdir -p $(VENV)/logs; \
	echo "the Cairo compilers: checked or built in the background, progress in $(VENV)/logs/cairo-compilers.log"; \
	$(PY) harness/contracts/build.py --compilers > $(VENV)/logs/cairo-compilers.log 2>&1 & cairo=$$!; \
	$(PY) -m harness tools; rc=$$?; \
	if ! wait $$cairo; then echo "building the Cairo compilers failed:"; tail -20 $(VENV)/logs/cairo-compilers.log; exit 1; fi; \
	exit $$rc

# Headless Chromium from Debian for the browser tests (tests/web); Playwright drives it, never downloads one.
CHROMIUM ?= /usr/bin/chromium
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo )apt-get

browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "installing chromium with apt-get"; \
		$(APT_GET) update && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y --no-install-recommends chromium fonts-dejavu-core; \
	fi
	@$(CHROMIUM) --version

# PostgreSQL's server binaries from Debian for the storage tests (they start a throwaway cluster on loopback).
postgres:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing postgresql with apt-get"; \
		$(APT_GET) update && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y --no-install-recommends postgresql; \
	fi

# Redis and nginx from Debian for the scaled-out harness (`python -m harness up --api 3 --workers 2 --db postgres`):
# the harness runs its own redis-server and nginx with their own configs on free loopback ports. Should the
# packages' own services be started by apt (a machine with an init system), they are stopped again, so nothing
# is left listening on 6379 or 80: the harness never uses them.
REDIS_SERVER ?= /usr/bin/redis-server
NGINX ?= /usr/sbin/nginx
SERVICE_CTL := $(if $(filter 0,$(shell id -u)),,sudo )

redis:
	@if [ ! -x $(REDIS_SERVER) ]; then \
		echo "installing redis-server with apt-get"; \
		$(APT_GET) update && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y --no-install-recommends redis-server && \
		{ $(SERVICE_CTL)systemctl disable --now redis-server 2>/dev/null || $(SERVICE_CTL)service redis-server stop 2>/dev/null || true; }; \
	fi
	@$(REDIS_SERVER) --version

nginx:
	@if [ ! -x $(NGINX) ]; then \
		echo "installing nginx with apt-get"; \
		$(APT_GET) update && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y --no-install-recommends nginx && \
		{ $(SERVICE_CTL)systemctl disable --now nginx 2>/dev/null || $(SERVICE_CTL)service nginx stop 2>/dev/null || true; }; \
	fi
	@$(NGINX) -v

demo: tools
	$(PY) -m harness demo

# pytest exits 5 when it collected no test: that fails the suite too (a broken testpaths must not pass).
# The clock time as set-up and the checks end, and pytest's 25 slowest tests: a CI log says where the minutes went.
test: tools browser postgres redis nginx
	@echo "set-up and tools ready at $$(date -u +%T)"
	$(PY) -m ruff check .
	$(PY) -m mypy
	@echo "checks done at $$(date -u +%T)"
	$(PY) -m pytest --durations=25 $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .

down: setup
	$(PY) -m harness down

bench: tools
	$(PY) -m harness bench lightning
	$(PY) -m harness bench starknet
	$(PY) -m harness bench purchase
	$(PY) -m harness bench purchase --starknet-block-time 6 --payments 30 --concurrent 0
	$(PY) -m harness bench purchase --api 2 --workers 2 --db postgres --lanes 2 --payers 2
	$(PY) -m harness bench sweep

# Purchases from several payers while the service is SIGKILLed at random for 3 minutes, judged from outside:
# one process on SQLite, then 3 API instances behind nginx, 3 workers and 3 mint lanes on PostgreSQL.
chaos: tools
	$(PY) -m harness chaos --minutes 3
	$(PY) -m harness chaos --minutes 3 --api 3 --workers 3 --db postgres --lanes 3

# Research: JupyterLab over notebooks/ with the project's kernel, and every notebook at full N in one command
# (harness/lab.py). `make lab LAB_ARGS="--port 8899 --browser"`; `make research RESEARCH_ARGS="--no-network"`
# runs only the network-free notebooks, `RESEARCH_ARGS="--n 100"` all of them small.
.PHONY: lab research features
LAB_ARGS ?=
RESEARCH_ARGS ?=
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

lab: setup
	$(PY) -m harness.lab serve $(LAB_ARGS)

# Notebooks that drive the regtest network run on the one that is up, or on one brought up for them: tools.
research: tools
	$(PY) -m harness.lab research $(RESEARCH_ARGS) $(NOTEBOOKS)

# The BDD features with QA's reports: cucumber JSON (pytest-bdd) and a self-contained HTML page (pytest-html).
features: tools
	@mkdir -p reports
	$(PY) -m pytest features --cucumberjson=reports/features.json --html=reports/features.html --self-contained-html
