# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
JS_INSTALLED := tests/js/node_modules/.installed

.PHONY: run test validate lint clean bench

$(INSTALLED): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(JS_INSTALLED): tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(INSTALLED)
	$(PY) -m local_gateway

# The benchmark (issue 5): gateway vs the in-memory baseline in bench/, plus ../shared/peer if present.
# BENCH_CLIENTS=10,100,300,1000 and the other knobs are described in bench/__main__.py.
BENCH_JS_INSTALLED := bench/node_modules/.installed

$(BENCH_JS_INSTALLED): bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	touch $@

bench: $(INSTALLED) $(BENCH_JS_INSTALLED)
	$(PY) -m bench

test: $(INSTALLED) $(JS_INSTALLED) validate
	$(PY) -m pytest

validate: $(INSTALLED)
	$(VENV)/bin/cfn-lint template.yaml

clean:
	rm -rf $(VENV) tests/js/node_modules .pytest_cache
