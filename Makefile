# Two jobs, each sets itself up on a fresh machine (see README "Quick start").
#   make demo  - install, compile the quadruped example, run it in onnxruntime, check parity,
#                drive the project's MuJoCo quadruped with it and check parity along that run
#   make test  - install, lint, type-check, run the test suite (also without torch) and the
#                old-onnxruntime check
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A second venv without torch: what a user with an ONNX actor has.
NOTORCH ?= .venv-notorch
NOTORCH_STAMP := $(NOTORCH)/.installed

.PHONY: demo test lint setup clean

setup: $(STAMP)

# torch is pinned to the CPU build the machines carry; any other version pulls CUDA wheels.
# rsl_rl (extra `rl`, for the tests of real rsl_rl policies) goes in with torch and its pin on the
# same command, so that it can never move torch; a venv without torch never gets it.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,torch,rl,sim]" torch==2.13.0
	touch $(STAMP)

$(NOTORCH_STAMP): pyproject.toml
	python3 -m venv $(NOTORCH)
	$(NOTORCH)/bin/python -m pip install --quiet --upgrade pip
	$(NOTORCH)/bin/python -m pip install --quiet -e ".[dev,sim]"
	@if $(NOTORCH)/bin/python -c "import torch" 2>/dev/null; then \
		echo "torch was installed into $(NOTORCH); it must stay without it"; exit 1; fi
	touch $(NOTORCH_STAMP)

demo: $(STAMP)
	mkdir -p build
	$(BIN)/exploy-dsl compile examples/quadruped.py -o build/quadruped.onnx
	$(BIN)/exploy-dsl run build/quadruped.onnx --ticks 8
	$(BIN)/exploy-dsl check build/quadruped.onnx examples/quadruped.py
	$(BIN)/exploy-dsl sim build/quadruped.onnx examples/robots/quadruped.xml --keyframe crouch \
		--record-trace build/sim.npz --plot build/sim.png
	$(BIN)/exploy-dsl check build/quadruped.onnx examples/quadruped.py --trace build/sim.npz

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy exploy_dsl compiler

# The suite runs first without torch (tests that need it skip; only failures are listed), then
# the compat lines run --target onnxruntime==1.16 / ==1.15 files under onnxruntime 1.16.3 and
# 1.15.1 (own venvs in build/compat/, no torch) and compare them with today's onnxruntime; they
# skip only offline. The full suite runs last so its summary closes the output.
test: lint $(NOTORCH_STAMP)
	$(NOTORCH)/bin/python -m pytest -q -rfE -p no:cacheprovider
	$(PY) tests/compat/old_onnxruntime.py --onnxruntime 1.16.3
	$(PY) tests/compat/old_onnxruntime.py --onnxruntime 1.15.1
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) $(NOTORCH) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
