# `make test` is the README's test command; .ci/run calls it verbatim. It tests what ships:
# the sdist is built, the wheel is built from the sdist (`python -m build` does both), the wheel
# goes into a fresh virtualenv outside the source tree, and the suite runs from the unpacked
# sdist with that virtualenv's python: a file the sdist or the wheel leaves out fails the run.
PYTHON ?= python3
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' src/nodestatus/_version.py)
# Arguments for `make run`: the live node when a BIRD socket is found, else the bundled sample.
RUN_ARGS ?= status --sample-fallback -o wide
# Image tag of `make image` (deploy/daemonset.yaml names it).
IMAGE ?= localhost/nodestatus:$(VERSION)
# Virtualenvs and the unpacked sdist: outside the source tree, one place per checkout.
WORK ?= $(or $(TMPDIR),/tmp)/nodestatus-$(shell printf %s "$(CURDIR)" | md5sum | cut -c1-10)
TOOLS := $(WORK)/tools
TESTENV := $(WORK)/test-venv
RUNENV := $(WORK)/run-venv
SDIST_DIR := $(WORK)/sdist/nodestatus-$(VERSION)
# Shell expressions (the files exist only once `dist` has run).
WHEEL = "$$(ls "$(CURDIR)"/dist/nodestatus-$(VERSION)-*.whl)"
SDIST = "$(CURDIR)/dist/nodestatus-$(VERSION).tar.gz"

.NOTPARALLEL:
.PHONY: deps dist test run image clean

deps:
	bash scripts/install-system-deps.sh

$(TOOLS)/bin/pyproject-build:
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q 'build>=1.2'

# sdist, then the wheel built from the unpacked sdist (compiles both extensions).
dist: $(TOOLS)/bin/pyproject-build
	rm -rf dist
	$(TOOLS)/bin/pyproject-build --outdir dist .

test: deps dist
	rm -rf $(TESTENV) $(WORK)/sdist
	$(PYTHON) -m venv $(TESTENV)
	$(TESTENV)/bin/python -m pip install -q $(WHEEL)'[test]'
	mkdir -p $(WORK)/sdist && tar -xzf $(SDIST) -C $(WORK)/sdist
	cd $(SDIST_DIR) && CI=$${CI:-false} NODESTATUS_WHEEL=$(WHEEL) \
		$(TESTENV)/bin/python -m pytest tests
	cd $(SDIST_DIR) && $(TESTENV)/bin/python -m pytest benches --benchmark-disable -q

run: deps dist
	rm -rf $(RUNENV)
	$(PYTHON) -m venv $(RUNENV)
	$(RUNENV)/bin/python -m pip install -q $(WHEEL)'[agent]'
	$(RUNENV)/bin/nodestatus $(RUN_ARGS)

# A Debian image with the wheel: see image/build.sh (root, debootstrap + podman + buildah).
image: deps dist
	PYTHON=$(TOOLS)/bin/python bash image/build.sh --wheel $(WHEEL) --tag $(IMAGE)

clean:
	rm -rf dist build src/*.c src/*.html src/nodestatus/*.so src/*.egg-info $(WORK)
