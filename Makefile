PY ?= .venv/bin/python
export PATH := $(abspath .venv/bin):$(PATH)
PROTOS := $(sort $(wildcard proto/joblet/*/*.proto))

.PHONY: deps install demo proto proto-check lint typecheck test bench clean dist

# Debian packages the daemon needs (tini, libseccomp2, ...); needs root.
deps:
	bash scripts/deps.sh

install:
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'

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

test:
	$(PY) -m pytest -p no:cacheprovider

bench:
	$(PY) bench/run_all.py

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

dist:
	$(PY) -m pip wheel --no-deps -w dist .
