# `make test` is the README's test command; .ci/run calls it verbatim.
PYTHON ?= python
# Arguments for `make run`: the live node when a BIRD socket is found, else the bundled sample.
RUN_ARGS ?= status --sample-fallback -o wide

.NOTPARALLEL:
.PHONY: deps build test run

deps:
	bash scripts/install-system-deps.sh
	$(PYTHON) -m pip install -e '.[test]' 'Cython>=3.0' 'setuptools>=64'  # build_ext needs them too

build:
	$(PYTHON) setup.py build_ext --inplace

test: deps build
	CI=$${CI:-false} $(PYTHON) -m pytest tests
	$(PYTHON) -m pytest benches --benchmark-disable -q

run: deps build
	$(PYTHON) -m nodestatus $(RUN_ARGS)
