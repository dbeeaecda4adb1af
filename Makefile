# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
JS_INSTALLED := tests/js/node_modules/.installed
PAGE_INSTALLED := local_gateway/page/node_modules/.installed
# The browser the page test drives (tests/test_page.py): Debian's chromium, never one downloaded by a test tool.
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test validate lint clean build bench browser

$(INSTALLED): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(JS_INSTALLED): tests/js/package.json tests/js/package-lock.json
	cd tests/js && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The page at / (local_gateway/page.py) serves socket.io-client's browser bundle from here: pinned, no CDN.
$(PAGE_INSTALLED): local_gateway/page/package.json local_gateway/page/package-lock.json
	cd local_gateway/page && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Found, or installed as the other dependencies are (Debian's package, when root with apt-get); else stop and say.
browser:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "The page test needs Chromium at $(CHROMIUM): install Debian's 'chromium' package" \
			"(sudo apt-get install chromium) or pass CHROMIUM=/path/to/chromium." >&2; exit 1; \
	fi
	@test -x "$(CHROMIUM)" || { echo "$(CHROMIUM) is still missing after installing chromium" >&2; exit 1; }

run: $(INSTALLED) $(PAGE_INSTALLED)
	$(PY) -m local_gateway

# The benchmark (issue 5): gateway vs the in-memory baseline in bench/, plus ../shared/peer if present.
# BENCH_CLIENTS=10,100,300,1000 and the other knobs are described in bench/__main__.py.
BENCH_JS_INSTALLED := bench/node_modules/.installed

$(BENCH_JS_INSTALLED): bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	touch $@

bench: $(INSTALLED) $(BENCH_JS_INSTALLED)
	$(PY) -m bench

# ruff (lint and format check) and mypy, configured in pyproject.toml.
lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# REQUIRE_SAM_BUILD: the artifact tests fail, never skip, when the build is missing or stale.
# TEST_WORKERS: pytest-xdist processes, two per core by default (much of the suite waits on servers, timers and
# subprocesses: on 2 cores, 4 workers took 2 min 42 s where 2 took 3 min 31 s); a module's tests stay on one
# worker (loadscope), so each module's gateway starts once, and modules are handed out in the order conftest.py
# gives them (load tests first). TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= $(shell python3 -c 'import os; print(2 * (os.cpu_count() or 1))')
test: $(INSTALLED) $(JS_INSTALLED) $(PAGE_INSTALLED) $(BENCH_JS_INSTALLED) browser lint validate build
	REQUIRE_SAM_BUILD=1 CHROMIUM=$(CHROMIUM) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

# The SAM stack (issue 3). SAM CLI lives in a virtualenv of its own: it pins its own boto3 and friends.
SAM_VENV := .venv-sam
SAM_INSTALLED := $(SAM_VENV)/.installed
BUILD_DIR := .aws-sam/build
LAMBDA_DEPS := .aws-sam/deps
LAMBDA_PYTHON := 3.14
LAMBDA_PLATFORMS := manylinux2014_aarch64 manylinux_2_28_aarch64 manylinux_2_34_aarch64
LAMBDA_SOURCES := $(shell find handlers shared -name '*.py' -not -path '*/__pycache__/*')

$(SAM_INSTALLED): requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-sam.txt
	touch $@

# cfn-lint (no error, no warning) on the template and on what the SAM transform makes of it.
validate: $(INSTALLED) $(SAM_INSTALLED)
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/python tests/sam_transform.py template.yaml .aws-sam/transformed.json
	$(VENV)/bin/cfn-lint .aws-sam/transformed.json

build: $(BUILD_DIR)/template.yaml

$(BUILD_DIR)/template.yaml: $(SAM_INSTALLED) template.yaml requirements.txt requirements-auth.txt Makefile handlers shared $(LAMBDA_SOURCES)
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --build-in-source --build-dir $(BUILD_DIR) --template-file template.yaml
	touch $@

# What every function ships, called by `sam build` (Metadata: BuildMethod: makefile) with ARTIFACTS_DIR set:
# handlers/ and shared/ (no caches) and requirements.txt installed for Lambda's arm64 Python. Nothing else.
build-%Function: $(LAMBDA_DEPS)/site/.done
	mkdir -p "$(ARTIFACTS_DIR)"
	tar -cf - --exclude=__pycache__ --exclude='*.pyc' handlers shared | tar -xf - -C "$(ARTIFACTS_DIR)"
	cp -R $(LAMBDA_DEPS)/site/. "$(ARTIFACTS_DIR)/"
	rm -f "$(ARTIFACTS_DIR)/.done"

# $connect and $default (Socket.IO's namespace handshake) also ship requirements-auth.txt (the token checks):
# the other functions stay small.
build-ConnectFunction build-DefaultFunction: $(LAMBDA_DEPS)/site/.done $(LAMBDA_DEPS)/auth/.done
	mkdir -p "$(ARTIFACTS_DIR)"
	tar -cf - --exclude=__pycache__ --exclude='*.pyc' handlers shared | tar -xf - -C "$(ARTIFACTS_DIR)"
	cp -R $(LAMBDA_DEPS)/site/. $(LAMBDA_DEPS)/auth/. "$(ARTIFACTS_DIR)/"
	rm -f "$(ARTIFACTS_DIR)/.done"

PIP_FOR_LAMBDA = $(SAM_VENV)/bin/python -m pip install --quiet --no-compile --only-binary=:all: --implementation cp \
	--python-version $(LAMBDA_PYTHON) $(addprefix --platform ,$(LAMBDA_PLATFORMS))

$(LAMBDA_DEPS)/site/.done: requirements.txt Makefile $(SAM_INSTALLED)
	rm -rf $(LAMBDA_DEPS)/site
	$(PIP_FOR_LAMBDA) --target $(LAMBDA_DEPS)/site -r requirements.txt
	rm -rf $(LAMBDA_DEPS)/site/bin
	touch $@

$(LAMBDA_DEPS)/auth/.done: requirements-auth.txt requirements.txt Makefile $(SAM_INSTALLED)
	rm -rf $(LAMBDA_DEPS)/auth
	$(PIP_FOR_LAMBDA) --target $(LAMBDA_DEPS)/auth -r requirements-auth.txt
	rm -rf $(LAMBDA_DEPS)/auth/bin
	touch $@

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam tests/js/node_modules local_gateway/page/node_modules bench/node_modules .pytest_cache
