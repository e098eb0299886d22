# Two jobs, each sets itself up on a fresh machine (see README "Quick start").
#   make demo  - install, compile the quadruped example, run it in onnxruntime, check parity
#   make test  - install, lint, type-check, run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint setup clean

setup: $(STAMP)

# torch is pinned to the CPU build the machines carry; any other version pulls CUDA wheels.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,torch]"
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p build
	$(BIN)/exploy-dsl compile examples/quadruped.py -o build/quadruped.onnx
	$(BIN)/exploy-dsl run build/quadruped.onnx --ticks 8

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy exploy_dsl compiler

test: lint
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
