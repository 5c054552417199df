# The README's two commands: `make demo` (set up, then train the default CNN on MNIST)
# and `make test` (set up, then run the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.actscope-installed

.PHONY: setup demo test lint bench

setup: $(STAMP)

# --system-site-packages lets a torch the user already has (a CUDA or ROCm build) be used as is.
$(STAMP): pyproject.toml Makefile scripts/ensure_torch.py
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) scripts/ensure_torch.py
	$(PY) -m pip install -q -e ".[dev,digits,metrics,tensorboard,lightning,transformers]"
	touch $(STAMP)

# The data: $ACTSCOPE_DATA if set, else ../shared/data/mnist beside the repo if it exists, else
# the user cache dir, downloading the four files there (checksummed) when they are missing.
MNIST_DIR ?= $(if $(ACTSCOPE_DATA),,$(wildcard ../shared/data/mnist))
DEMO_DATA := $(if $(ACTSCOPE_DATA),,$(if $(MNIST_DIR),--data $(MNIST_DIR),--download))

demo: setup
	$(PY) -m actscope fit --out runs/demo --overwrite $(DEMO_DATA)

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check src tests benchmarks examples

bench: setup
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/telemetry.py
	$(PY) benchmarks/norms.py
	$(PY) benchmarks/watch.py
	$(PY) benchmarks/lightning.py
	$(PY) benchmarks/transformers.py
	$(PY) benchmarks/gpu_check.py
	$(PY) benchmarks/zoo.py
