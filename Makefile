# Set-up and entry points. Each target creates its own environment from scratch if needed:
# a venv in .venv, PyTorch pinned to the CPU wheel (torch==2.13.0, never the CUDA stack),
# medsr with its sample-data extras, and the Debian InVesalius head CT when apt is available.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null && echo sudo)
DEMO_DIR ?= demo-output

.PHONY: setup sample-data demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,samples,onnx,eval]"
	touch $@

# The InVesalius head CT volume comes from Debian; the pydicom-data images from PyPI (above).
sample-data:
	@if [ -f /usr/share/doc/invesalius-examples/examples/Cranium.inv3 ]; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get install -y -q invesalius-examples >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q invesalius-examples >/dev/null); \
	else echo "apt-get not found: the invesalius-head-ct sample will be unavailable"; fi

demo: setup sample-data
	rm -rf $(DEMO_DIR)
	$(BIN)/medsr data list
	$(BIN)/medsr info sample:invesalius-head-ct
	$(BIN)/medsr degrade --task ldct-x4 sample:invesalius-head-ct --slice 80 -o $(DEMO_DIR)/ldct-x4
	$(BIN)/medsr degrade --task xray-x4 sample:xray-chest-rg1 -o $(DEMO_DIR)/xray-x4
	@echo "Demo written to $(DEMO_DIR)/: open the *_strip.png pictures."

test: setup sample-data
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: setup sample-data
	$(BIN)/python benchmarks/physics.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
