PY ?= .venv/bin/python
export PATH := $(abspath .venv/bin):$(PATH)
PROTOS := $(sort $(wildcard proto/joblet/*/*.proto))

LOCK := requirements/ci.lock
LOCK_HEADER1 := \# CI's exact versions, within pyproject.toml's ranges: make lock writes it,
LOCK_HEADER2 := \# make lock-check (and tests/unit/test_packaging.py) fails when it no longer fits.

.PHONY: deps install demo proto proto-check lint typecheck test test-serial test-all bench clean dist lock lock-check ui-baselines ui-vendor

# Debian packages the daemon needs (tini, libseccomp2, ...); needs root.
deps:
	bash scripts/deps.sh

# The daemon, rnx and the test tools, at the lock's exact versions.
install:
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(LOCK) -e '.[daemon,dev]'

# Newest versions within pyproject.toml's ranges, from a fresh venv (needs the index).
lock:
	@tmp=$$(mktemp -d) && python3 -m venv $$tmp/venv \
	 && $$tmp/venv/bin/pip install -q -e '.[daemon,dev]' \
	 && { echo "$(LOCK_HEADER1)"; echo "$(LOCK_HEADER2)"; $$tmp/venv/bin/pip freeze --exclude-editable; } > $$tmp/lock \
	 && mv $$tmp/lock $(LOCK) && rm -rf $$tmp && echo "wrote $(LOCK)"

# Fails when the lock no longer satisfies pyproject.toml's ranges.
lock-check:
	$(PY) -m pytest -p no:cacheprovider -q tests/unit/test_packaging.py -k lock

# Sets up a root under /tmp/joblet-demo, starts the daemon, runs a job through rnx.
demo:
	bash scripts/demo.sh

proto:
	$(PY) -m grpc_tools.protoc -Iproto --python_out=src --grpc_python_out=src --mypy_out=src $(PROTOS)
	cp $(PROTOS) src/joblet/api/  # the wheel carries the contract next to its generated code

# Fails when the committed generated code differs from what the protos give.
proto-check:
	@tmp=$$(mktemp -d) && $(PY) -m grpc_tools.protoc -Iproto --python_out=$$tmp --grpc_python_out=$$tmp --mypy_out=$$tmp $(PROTOS) \
	 && for d in $$(cd $$tmp/joblet && ls); do diff -r -x __init__.py -x __pycache__ -x py.typed -x '*.proto' $$tmp/joblet/$$d src/joblet/$$d || exit 1; done \
	 && for p in $(PROTOS); do cmp $$p src/joblet/api/$$(basename $$p) || exit 1; done && echo "generated code is current"

lint:
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench

typecheck:
	$(PY) -m mypy src

# Two lanes at once (scripts/test-lanes.sh): the pure tests beside the ones
# that start daemons. `make test-serial` runs the same tests in one process.
test:
	PY=$(PY) bash scripts/test-lanes.sh

test-serial:
	$(PY) -m pytest -p no:cacheprovider

# Everything, the `slow` tests too (shipped runtimes built for real, 100 MB uploads).
test-all:
	PY=$(PY) bash scripts/test-lanes.sh -m ""

# New screenshot baselines of the web UI's pages (look at each before committing).
ui-baselines:
	JOBLET_UI_BASELINES=1 $(PY) -m pytest -p no:cacheprovider -q -m slow tests/integration/test_ui_screenshots.py

# The web UI's front-end files from the npm registry, at the versions pinned in the script.
ui-vendor:
	bash scripts/vendor_ui.sh

bench:
	$(PY) bench/run_all.py

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

dist:
	$(PY) -m pip wheel --no-deps -w dist .
