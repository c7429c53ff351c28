# Every target does its own set-up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
OUTPUTS ?= $(or $(GENRE_STYLE_OUTPUTS),$(CURDIR)/outputs)
# The store training logs to: $$MLFLOW_TRACKING_URI where set, else the local SQLite file.
STORE ?= $(or $(MLFLOW_TRACKING_URI),sqlite:///$(OUTPUTS)/mlflow.db)
ARTIFACTS ?= $(OUTPUTS)/mlartifacts

.PHONY: install demo test test-fast lint format ui data bench bench-scale clean

install: $(STAMP)

# torch==2.13.0 goes in first (a CPU wheel): a bare `torch` requirement would pull a multi-GB CUDA build.
# musicnn: encoder=musicnn's weights (read without TensorFlow); its metadata pins numpy<1.17 and tensorflow, neither
# needed here (it reads fine on numpy 2), hence --no-deps. tinysoundfont (data=rendered's synthesiser) and basic-pitch
# (its ONNX transcription model) likewise: their metadata pulls pyaudio and TensorFlow, neither used here.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps musicnn==0.1.0
	$(PY) -m pip install --quiet --no-deps tinysoundfont==0.3.7 basic-pitch==0.4.0
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m genre_style.train experiment=demo $(ARGS)

test: $(STAMP) lint
	$(PY) -m pytest $(ARGS)

# Unit tests (every config yaml composed and checked, models, data, metrics); Lightning fits, training loops,
# subprocesses, servers and in-process tests over ~1.5 s are `slow`. 367 tests, 47-51 s on a quiet 2-core machine
# (2026-12-07, docs/performance.md).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(ARGS)

# ruff (lint and format) on all the code, mypy (types) on the package: all run before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check genre_style tests benchmarks hydra_plugins
	$(VENV)/bin/ruff format --check genre_style tests benchmarks hydra_plugins
	$(VENV)/bin/mypy

# Rewrite the code in ruff's format (what `make lint` checks).
format: $(STAMP)
	$(VENV)/bin/ruff format genre_style tests benchmarks hydra_plugins

# GTZAN into outputs/data/gtzan (or $$GTZAN_ROOT); ARGS="--archive genres.tar.gz" uses a file you have.
data: $(STAMP)
	$(PY) -m genre_style.download $(ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks.bench_startup
	$(PY) -m benchmarks.bench_train
	$(PY) -m benchmarks.bench_preprocess
	$(PY) -m benchmarks.bench_e2e
	$(PY) -m benchmarks.bench_best
	$(PY) -m benchmarks.bench_gpu
	$(PY) -m benchmarks.bench_store

# The disk store from 1,000 to 20,000 synthetic songs (~45 min, ~4 GB under /tmp/genre-style-scale): not in `bench`.
bench-scale: $(STAMP)
	$(PY) -m benchmarks.bench_scale $(ARGS)

# MLflow's job runner (seven huey consumers for GenAI jobs, ~1.9 GB) is switched off: this project submits no jobs.
# A tracking server is its own UI: `make ui` then says so. Runs print links to the address served here. The store
# goes by environment (MLflow reads MLFLOW_BACKEND_STORE_URI), never on a command line: it may hold a password.
ui: export MLFLOW_BACKEND_STORE_URI = $(STORE)
ui: $(STAMP)
	@case "$$MLFLOW_BACKEND_STORE_URI" in http://*|https://*) echo "the store is a tracking server: its UI is its own address"; exit 0;; esac; \
	$(PY) -c "import os; from genre_style.tracking.mlflow_store import record_ui, ui_url; store = os.environ['MLFLOW_BACKEND_STORE_URI']; record_ui(store, 'http://$(HOST):$(PORT)', '$(OUTPUTS)'); print('Open the runs: ' + ui_url(store, 'http://$(HOST):$(PORT)'))" && \
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow ui --host $(HOST) --port $(PORT) --workers 1 \
		--default-artifact-root $(ARTIFACTS)

clean:
	rm -rf outputs/cache outputs/runs outputs/multirun
