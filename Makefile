# Shipyard: `make demo` runs the digits example end to end, `make test` runs the whole suite.
# Both set themselves up from a fresh clone: a virtualenv in .venv and Debian's PostgreSQL.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: setup system-deps demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# The CPU build of torch first, and a constraint so that nothing installed after it can
	# replace it (any other version is gigabytes of CUDA wheels here).
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -c .ci/constraints.txt -e '.[torch,dev]'
	$(PY) -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 'torch ' + torch.__version__ + ' replaced the pinned 2.13.0')"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP) system-deps

# PostgreSQL for the store tests (the suite starts its own server on 127.0.0.1), Chromium for
# the browser tests of the web UI, Prometheus (and promtool) for the exported alert rules.
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing Debian's postgresql"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi
	@if ! test -x /usr/bin/chromium; then \
	  echo "installing Debian's chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi
	@if ! test -x /usr/bin/promtool; then \
	  echo "installing Debian's prometheus"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	fi

demo: setup
	bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	mkdir -p .bench
	$(PY) benchmarks/tracking.py --json .bench/tracking.json
	$(PY) benchmarks/ui.py --json .bench/ui.json
	$(PY) benchmarks/jobs.py --json .bench/jobs.json
	$(PY) benchmarks/serving.py --json .bench/serving.json

lint: setup
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .bench .pytest_cache
