# cedx — one entry point for set-up, generation, checks, tests, demo and benchmarks.
# 一个入口：安装、生成、检查、测试、演示与基准测试。
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv test check generate demo inspect bench docs-check clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt tools/package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[server,fast,async]' -r requirements-dev.txt
	# Spectral and Redocly, pinned by tools/package-lock.json (make check lints the spec with them)
	@if command -v npm >/dev/null 2>&1; then cd tools && npm ci --no-audit --no-fund --loglevel=error; \
	 else echo "npm not found: install Node.js >= 20.19 for the spec linters of make check (.ci/run does)"; fi
	touch $(STAMP)

## make test: the whole suite (unit, spec, interoperability with the OpenSSL command line)
test: $(STAMP)
	$(PY) -m pytest

## make check: generated files fresh (also from a tree without generated code: tests/generator),
## XSD and JSON Schemas agree, lint clean; tests/spec also runs the third-party tools on the spec
## (Spectral, Redocly, openapi-python-client, datamodel-code-generator)
check: $(STAMP)
	$(PY) -m generator check
	$(PY) -m cedx.inspect.catalogue --check docs/inspection.md
	$(PY) -m ruff check sdk/cedx generator tests bench
	$(PY) -m mypy  # strict; pyproject [tool.mypy] lists files and the packages not yet strict-clean
	$(PY) -m pytest -q tests/spec tests/generator

## make generate: regenerate everything derived from spec/ (the generator reads spec/ and
## templates/ only, never its own output), then the inspection catalogue from the inspector
generate: $(STAMP)
	$(PY) -m generator generate
	$(PY) -m cedx.inspect.catalogue docs/inspection.md

## make demo: the end-to-end job on the embedded specification
demo: $(STAMP)
	$(PY) -m cedx.demo

## make inspect: inspect the reference platform and source; reports under build/inspection/
inspect: $(STAMP)
	$(PY) -m cedx.inspect.local build/inspection

## make bench: every figure of issue 14 beside an anchor measured in the same run, with its ratio;
## HJ 212 bridge figures
## (one script per figure, shared helpers in bench/common.py; PostgreSQL via CEDX_TEST_POSTGRES_URL)
bench: $(STAMP)
	$(PY) bench/trust.py
	$(PY) bench/canonical.py
	$(PY) bench/imports.py
	$(PY) bench/reporting.py
	$(PY) bench/report_stages.py
	$(PY) bench/parse_forms.py
	$(PY) bench/validation.py
	$(PY) bench/pull.py
	$(PY) bench/xmlpaths.py
	$(PY) bench/hj212.py

## make docs-check: the HTML reference in headless Chromium (desktop and phone screenshots in
## build/docs-check/), plus its static checks (no remote assets, search, language switch)
docs-check: $(STAMP)
	$(PY) tests/docs/check_html.py build/docs-check

clean:
	rm -rf $(VENV) build dist *.egg-info
