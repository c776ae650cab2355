# cedx — one entry point for set-up, generation, checks, tests, demo and benchmarks.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv test check generate demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[server,fast]' -r requirements-dev.txt
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

check: $(STAMP)
	$(PY) -m ruff check sdk/cedx generator tests bench

generate: $(STAMP)
	$(PY) -m generator

demo: $(STAMP)
	$(PY) -m cedx.demo

bench: $(STAMP)
	$(PY) bench/trust.py

clean:
	rm -rf $(VENV) build dist *.egg-info
