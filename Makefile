# Two entry points: `make demo` (set up, then doctor + a short training) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CUDA build of TensorFlow where nvidia-smi lists a GPU, the CPU build elsewhere.
TF_EXTRA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)

.PHONY: install demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[$(TF_EXTRA),test]"
	touch $@

install: $(VENV)/.installed

demo: install
	-$(BIN)/redline doctor
	$(BIN)/redline demo

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) src/*.egg-info
