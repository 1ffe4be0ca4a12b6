# pretrain-lessons — every target does its own set-up and skips what is already done.
#   make lab    set up, fetch the data, open JupyterLab on notebooks/
#   make test   set up, fetch the data, run the whole test suite (unit tests + every notebook at smoke scale)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ALLOW_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
export PRETRAIN_LESSONS_HOME := $(CURDIR)

.PHONY: setup data browser lab test test-fast course bench doctor clean grade

# The virtual environment, with the package (editable) and every other package at the version it was tested with
# (constraints.txt pins the whole tested environment, pip and setuptools included).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the course into $(VENV) (first time: a few minutes)…"
	@start=$$(date +%s); \
	$(PY) -m pip install --quiet -c constraints.txt pip setuptools && \
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]' && \
	echo "Installed in $$(( $$(date +%s) - start )) s."
	@touch $(STAMP)

setup: $(STAMP)

# Data: verified against data/manifest.json; fast when everything is already in place.
data: $(STAMP)
	@$(PY) -m pretrain_lessons.data fetch

lab: data
	@echo "Starting JupyterLab on notebooks/ — open the URL printed below (it holds the access token)."
	$(VENV)/bin/jupyter lab notebooks/ $(ALLOW_ROOT) --ServerApp.root_dir=notebooks

# The real-browser test needs Debian's chromium (Playwright comes from pip and never downloads a browser).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the browser test…"; \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)) \
		|| echo "Could not install chromium: the browser test will be skipped (it says why)."; \
	else echo "No /usr/bin/chromium and not root: the browser test will be skipped (install: sudo apt-get install chromium)."; fi

test: data browser
	PRETRAIN_LESSONS_SCALE=smoke PRETRAIN_LESSONS_PROGRESS=off $(PY) -m pytest --durations=15

# Unit tests only (no notebooks), for quick iterations.
test-fast: data
	PRETRAIN_LESSONS_SCALE=smoke $(PY) -m pytest tests -p no:nbval -o addopts=""

# Every notebook at the default scale (cpu without a GPU) into out/course/, then reports/course.md.
course: data
	$(PY) -m pretrain_lessons.report

# Measured comparisons (seed loop vs course loop, loop overhead, fit vs Trainer) into reports/bench.md.
bench: data
	$(PY) benchmarks/bench.py

# Grade a class: make grade SUBMISSIONS=submissions/ GRADES=grades/ [SCALE=smoke] (see README, "For teachers").
SUBMISSIONS ?= submissions
GRADES ?= grades
SCALE ?= smoke
grade: data
	$(PY) -m pretrain_lessons.classroom grade $(SUBMISSIONS) --out $(GRADES) --scale $(SCALE)

doctor: $(STAMP)
	@$(PY) -c "from pretrain_lessons.device import print_doctor; print_doctor()"

clean:
	rm -rf .pytest_cache notebooks/.ipynb_checkpoints
