# Every target sets up what it needs: a fresh machine only needs python3 and make.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PG_BIN  := $(firstword $(wildcard /usr/lib/postgresql/*/bin))

.PHONY: demo test lint bench system-deps clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24" "setuptools>=75" wheel
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Debian packages the tests use: a real PostgreSQL server for the SQL ingest test.
system-deps:
	@if [ -z "$(PG_BIN)" ]; then \
	  echo "installing PostgreSQL from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

demo: $(STAMP)
	$(VENV)/bin/kubecycle run

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) system-deps lint
	$(VENV)/bin/pytest -q -ra

bench: $(STAMP)
	$(PY) bench/pipeline.py

clean:
	rm -rf .kubecycle build dist *.egg-info
