# mipeaks: `make book` (set up + build the companion book on the embedded model), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mipeaks-installed
export TOKENIZERS_PARALLELISM := false
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup test test-unit test-notebooks book book-cached reproduce benchmarks clean-book

setup: $(STAMP)

# Re-runs only when the dependency files change; a set-up machine starts in seconds.
$(STAMP): pyproject.toml requirements-nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests $(PYTEST_ARGS)
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then $(MAKE) --no-print-directory test-notebooks; fi

test-notebooks: setup
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(PY) -m pytest -q -p no:cacheprovider --nbval-lax \
		--nbval-sanitize-with notebooks/sanitize.cfg notebooks/*.ipynb

book: setup
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(VENV)/bin/jupyter-book build . --toc book/_toc.yml -W --keep-going

benchmarks: setup
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bench_mi.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bench_capture.py

clean-book:
	rm -rf _build
