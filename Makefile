# Set-up and entry points. Each target creates its own environment from scratch if needed:
# a venv in .venv, PyTorch pinned to the CPU wheel (torch==2.13.0, never the CUDA stack),
# medsr with its sample-data extras, and the Debian InVesalius head CT when apt is available.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null && echo sudo)
DEMO_DIR ?= demo-output

.PHONY: setup sample-data browser dicom-tools pacs-server demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,samples,onnx,eval,web,e2e,pacs]"
	touch $@

# The InVesalius head CT volume comes from Debian; the pydicom-data images from PyPI (above).
sample-data:
	@if [ -f /usr/share/doc/invesalius-examples/examples/Cranium.inv3 ]; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get install -y -q invesalius-examples >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q invesalius-examples >/dev/null); \
	else echo "apt-get not found: the invesalius-head-ct sample will be unavailable"; fi

# Debian's Chromium for the web page's end-to-end test (Playwright drives it; no download).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null); \
	else echo "apt-get not found: the browser test will fail (MEDSR_REQUIRE_E2E=1)"; fi

# Debian's dicom3tools for dciodvfy, the DICOM validator the derived-DICOM tests run.
dicom-tools:
	@if command -v dciodvfy >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get install -y -q dicom3tools >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q dicom3tools >/dev/null); \
	else echo "apt-get not found: the dciodvfy tests will fail (MEDSR_REQUIRE_DCIODVFY=1)"; fi

# Debian's Orthanc and its DICOMweb plugin for the `medsr pacs` tests; the tests start their
# own Orthanc on free loopback ports (the Debian service need not run).
pacs-server:
	@if [ -x /usr/sbin/Orthanc ] && dpkg -s orthanc-dicomweb >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get install -y -q orthanc orthanc-dicomweb >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q >/dev/null && \
		 $(SUDO) apt-get install -y -q orthanc orthanc-dicomweb >/dev/null); \
	else echo "apt-get not found: the PACS tests will fail (MEDSR_REQUIRE_PACS=1)"; fi

demo: setup sample-data
	rm -rf $(DEMO_DIR)
	$(BIN)/medsr demo -o $(DEMO_DIR)

test: setup sample-data browser dicom-tools pacs-server
	MEDSR_REQUIRE_E2E=1 MEDSR_REQUIRE_DCIODVFY=1 MEDSR_REQUIRE_PACS=1 $(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup sample-data
	$(BIN)/python benchmarks/physics.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
