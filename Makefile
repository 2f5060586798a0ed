PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test clean

# One virtual environment for the demo and the tests, rebuilt when pyproject.toml changes.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[job,test]'
	touch $@

demo: $(INSTALLED)
	$(BIN)/python -m job.demo

test: $(INSTALLED)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .demo
