# mipeaks: `make book` (set up + build the companion book on the embedded model), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mipeaks-installed
export TOKENIZERS_PARALLELISM := false
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup test test-unit test-notebooks book book-cached reproduce screenshot benchmarks clean-book

setup: $(STAMP)

# Re-runs only when the dependency files change; a set-up machine starts in seconds.
# Byte-code is compiled once here, on every core (pip would do it on one), skipping test suites and
# the transformers architectures no preset uses: where PYTHONDONTWRITEBYTECODE is set, a module left
# uncompiled is compiled again by every process that imports it. Like pip, it passes over files this
# Python cannot compile (torch ships Python 3.12-only test helpers).
NO_PYC := site-packages/.*/tests?/|site-packages/transformers/models/(?!(auto|encoder_decoder|llama|qwen2|qwen3)/)
$(STAMP): pyproject.toml requirements-nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -e '.[dev]'
	$(PY) -m pip install -q --no-compile --no-deps -r requirements-nodeps.txt
	$(PY) -m compileall -q -j 0 -x '$(NO_PYC)' $$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))') >/dev/null || true
	@touch $(STAMP)

# Tests run in TEST_WORKERS processes (pytest-xdist; 1 = in-process), each with an equal share of the cores.
TEST_WORKERS ?= 2
TEST_THREADS ?= $(shell n=$$(( $$(nproc 2>/dev/null || echo 2) / $(TEST_WORKERS) )); echo $$(( n > 0 ? n : 1 )))
XDIST = $(if $(filter 1,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS))

# Unit tests and nbval (re-execute the notebooks, compare the cells marked NBVAL_CHECK_OUTPUT) in one
# session of TEST_WORKERS processes: a test file or a notebook (one kernel) stays on one worker, long
# ones first (tests/conftest.py), so neither half waits for the other's last item.
NBVAL := --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg
test: setup
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg OMP_NUM_THREADS=$(TEST_THREADS) $(PY) -m pytest -q -p no:cacheprovider $(XDIST) \
		$(if $(filter 1,$(TEST_WORKERS)),,--dist loadscope --no-loadscope-reorder) tests $(NBVAL) \
		$(wildcard notebooks/*.ipynb) --durations=25 $(PYTEST_ARGS)

test-unit: setup
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=$(TEST_THREADS) $(PY) -m pytest -q $(XDIST) \
		$(if $(filter 1,$(TEST_WORKERS)),,--dist worksteal) tests $(PYTEST_ARGS)

# nbval alone (one notebook: NOTEBOOKS=notebooks/05_error_bounds.ipynb).
NOTEBOOKS ?= notebooks/*.ipynb
test-notebooks: setup
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg OMP_NUM_THREADS=$(TEST_THREADS) $(PY) -m pytest -q -p no:cacheprovider \
		$(XDIST) $(if $(filter 1,$(TEST_WORKERS)),,--dist loadscope) $(NBVAL) $(NOTEBOOKS)

# Execute every chapter on the embedded model and build _build/html. Execution is cached
# (_build/.jupyter_cache): a rebuild re-executes only the chapters whose code changed.
book: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/jupyter-book build . --toc book/_toc.yml -W --keep-going

# Build _build/html from the committed notebook outputs, executing nothing (no model needed).
book-cached: setup
	HF_HUB_OFFLINE=1 $(PY) scripts/build_book.py --html _build/html

# GPU path: every chapter with notebooks/params/$(PRESET).yaml, then a book from those results
# (_build/presets/$(PRESET)/html). Options: REPRODUCE_ARGS="--only 05_error_bounds --keep-going".
PRESET ?= cpu-smoke
reproduce: setup
	$(PY) -m mipeaks reproduce $(PRESET) $(REPRODUCE_ARGS)

# Headless-Chromium PNG of one built page (needs chromium; not part of CI).
PAGE ?= _build/html/notebooks/05_error_bounds.html
screenshot:
	scripts/screenshot.sh $(PAGE) _build/screenshot.png

benchmarks: setup
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bench_mi.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/bench_capture.py

clean-book:
	rm -rf _build
