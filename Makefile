# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
JS_INSTALLED := tests/js/node_modules/.installed

.PHONY: run test validate lint clean

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

test: $(INSTALLED) $(JS_INSTALLED) validate
	$(PY) -m pytest

validate: $(INSTALLED)
	$(VENV)/bin/cfn-lint template.yaml

clean:
	rm -rf $(VENV) tests/js/node_modules .pytest_cache
