PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
IMAGE ?= mindspore-finetune:dev
# Extra flags for `python3 -m image.build`, e.g. BUILD_FLAGS="--base-image NAME" or "--mindspore-version 2.9.0".
BUILD_FLAGS ?=

SCAN_VENV := .venv-scan
SCANNER := $(SCAN_VENV)/bin/checkov
SOURCES := contract job launcher mindspore_hub charts image bench examples tests

.PHONY: demo test test-fast lint image image-test bench-torch-venv clean

# One virtual environment for the demo and the tests, rebuilt when pyproject.toml changes.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[job,test]'
	touch $@

demo: $(INSTALLED)
	$(BIN)/python -m job.demo

# The report page's browser test drives Debian's chromium, headless (installed as root when missing).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then \
		echo "error: the browser tests need Debian's chromium: apt-get install chromium" >&2; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium > /dev/null

# The policy scanner (checkov) pins many libraries of its own: it gets a virtual environment of its own.
$(SCANNER):
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet checkov==3.3.30

# PyTorch for bench/zoo.py's comparison (5.5 GB): a virtual environment of its own, never in $(VENV).
TORCH_VENV := .venv-torch
bench-torch-venv:
	python3 -m venv $(TORCH_VENV) && $(TORCH_VENV)/bin/pip install torch==2.14.1 torchvision==0.29.1

# Lint, format check, types, and the generated chart files up to date.
lint: $(INSTALLED)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy
	$(BIN)/mypy --python-version 3.10 launcher contract
	$(BIN)/python -m charts.generate --check

# The container tests (tests/image) need built images: `make image-test` runs them. One pytest worker per core:
# much of a test's time is single-threaded (imports, graph compilation, process start-up).
test: $(INSTALLED) $(SCANNER) $(CHROMIUM) lint
	$(BIN)/python -m pytest --ignore=tests/image -n auto --durations=15

# The edit-test loop: everything that trains nothing and starts no heavy tool (under a minute).
test-fast: $(INSTALLED) $(CHROMIUM)
	$(BIN)/python -m pytest --ignore=tests/image -m "not slow" -q -n auto

# The CPU image with podman or docker (standard library Python only: no virtual environment needed).
image:
	$(PYTHON) -m image.build --image $(IMAGE) $(BUILD_FLAGS)

# The CPU and GPU images (on a local stand-in base when the public one cannot be pulled), then the tests
# that run them under the pod's security context.
image-test: $(INSTALLED)
	$(PYTHON) -m image.build --image $(IMAGE) --device cpu --device gpu --standin auto $(BUILD_FLAGS)
	$(BIN)/python -m pytest tests/image --image $(IMAGE)

clean:
	rm -rf $(VENV) $(SCAN_VENV) $(TORCH_VENV) .demo build
