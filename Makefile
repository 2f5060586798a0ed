PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
IMAGE ?= mindspore-finetune:dev
# Extra flags for `python3 -m image.build`, e.g. BUILD_FLAGS="--base-image NAME" or "--mindspore-version 2.9.0".
BUILD_FLAGS ?=

.PHONY: demo test image image-test clean

# One virtual environment for the demo and the tests, rebuilt when pyproject.toml changes.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[job,test]'
	touch $@

demo: $(INSTALLED)
	$(BIN)/python -m job.demo

# The container tests (tests/image) need built images: `make image-test` runs them.
test: $(INSTALLED)
	$(BIN)/python -m pytest --ignore=tests/image

# The CPU image with podman or docker (standard library Python only: no virtual environment needed).
image:
	$(PYTHON) -m image.build --image $(IMAGE) $(BUILD_FLAGS)

# The CPU and GPU images (on a local stand-in base when the public one cannot be pulled), then the tests
# that run them under the pod's security context.
image-test: $(INSTALLED)
	$(PYTHON) -m image.build --image $(IMAGE) --device cpu --device gpu --standin auto $(BUILD_FLAGS)
	$(BIN)/python -m pytest tests/image --image $(IMAGE)

clean:
	rm -rf $(VENV) .demo build
