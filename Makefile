# Each target creates .venv when missing and installs what it needs, so a fresh clone needs only
# `make demo` or `make test`. torch/torchvision are pinned to the builds on this machine's disk.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test test-slow bench lint toy-model clean

$(PY):
	python3 -m venv $(VENV)

$(VENV)/.torch: | $(PY)
	$(PIP) install $(TORCH)
	touch $@

# FAISS comes as an extra (faiss-cpu here; a GPU machine can use ".[faiss-gpu]" instead).
$(VENV)/.core: pyproject.toml Makefile $(VENV)/.torch
	$(PIP) install $(TORCH) -e ".[faiss-cpu]"
	touch $@

# The tests cover every extra: the service (serve) and the Ray cluster (ray) included.
$(VENV)/.dev: pyproject.toml Makefile $(VENV)/.core
	$(PIP) install $(TORCH) -e ".[dev,metrics,faiss-cpu,serve,ray]"
	touch $@

demo: $(VENV)/.core
	$(PY) -m zsvl.cli demo

test: $(VENV)/.dev
	$(PY) -m pytest -q

test-slow: $(VENV)/.dev
	$(PY) -m pytest -q -m slow

bench: $(VENV)/.dev
	$(PY) benchmarks/run_all.py

lint: $(VENV)/.dev
	$(PY) -m ruff check zsvl tests benchmarks examples
	$(PY) -m ruff format --check zsvl tests benchmarks examples
	$(PY) -m mypy zsvl

# Re-train the shipped tiny CLIP (about 15 minutes on 2 cores); the result is committed.
toy-model: $(VENV)/.core
	$(PY) -m zsvl.toy.train

clean:
	rm -rf $(VENV) build dist *.egg-info
