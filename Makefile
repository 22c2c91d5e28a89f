# Entry points: `make bench` (set up, then doctor + the bench on the default workload), `make test` (everything)
# and `make check` (the fast part of the suite, for the edit-test loop).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CUDA build of TensorFlow where nvidia-smi lists a GPU, the CPU build elsewhere.
TF_EXTRA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)

.PHONY: install bench test check clean chromium

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[$(TF_EXTRA),test]"
	touch $@

install: $(VENV)/.installed

bench: install
	-$(BIN)/redline doctor
	$(BIN)/redline bench --quick --repeats 3 mlp

# The report test screenshots a page in headless Chromium: installed here where apt-get can, else that test skips.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	 { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	   { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
	     { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; }; }; } || \
	 echo "Chromium could not be installed: the HTML report screenshot test will be skipped"

# One worker per CPU core (pytest-xdist), each test file on one worker so module-scoped fixtures are shared.
PYTEST := $(BIN)/python -m pytest -q -n auto --dist loadfile

test: install chromium
	$(PYTEST)

# The edit-test loop: pure and fake-machine tests, plus one real trial each of tune, launch, diagnose and data.
check: install
	$(PYTEST) -m "not slow"

clean:
	rm -rf $(VENV) src/*.egg-info
