# Two commands matter: `make run` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PORT_BASE ?= 9001
UVICORN_FLAGS := --loop uvloop --http httptools --no-access-log --no-server-header --timeout-graceful-shutdown 9

.PHONY: bench-tools help install run test lint typecheck pytest bench lock clean browser

help:
	@echo "make run     create .venv, install, start the gateway on routes.yaml with demo upstreams"
	@echo "make test    lint (ruff), type-check (mypy) and run the tests (pytest)"
	@echo "make install .venv with the development pins too (pytest, mypy, ruff): make run has only the runtime's"
	@echo "make bench   wrk benchmarks against stub upstreams (needs wrk: apt-get install wrk)"

# The venv is (re)built when the lock files change. PYTHON=... picks the interpreter.
# `make run` needs only the runtime pins; tests, linters and the bench add the rest.
$(VENV)/.runtime: requirements.lock pyproject.toml
	@python=$$(scripts/find-python) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] not in ((3,13),(3,12)))' 2>/dev/null; then \
		rm -rf $(VENV); echo "creating $(VENV) with $$python"; "$$python" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

$(VENV)/.installed: $(VENV)/.runtime requirements-dev.lock
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@touch $@

install: $(VENV)/.installed

# Ctrl-C stops the gateway and the demo upstreams alike.
run: $(VENV)/.runtime
	@trap 'kill $$demo 2>/dev/null; wait $$demo 2>/dev/null' EXIT INT TERM; \
	$(PY) -m gateway.demo --host 127.0.0.1 --port-base $(DEMO_PORT_BASE) & demo=$$!; \
	sleep 1; kill -0 $$demo 2>/dev/null || exit 1; \
	echo "demo upstreams on 127.0.0.1:$(DEMO_PORT_BASE)-$$(($(DEMO_PORT_BASE)+4)); gateway on http://$(HOST):$(PORT) (HTTP/1.1 and HTTP/2)"; \
	echo "try: curl -s http://$(HOST):$(PORT)/api/users/1/dashboard"; \
	echo "     curl -sN -H 'Accept: text/event-stream' http://$(HOST):$(PORT)/api/users/1/overview"; \
	echo "     $(PY) -m websockets ws://$(HOST):$(PORT)/ws/echo"; \
	echo "dashboard: http://127.0.0.1:9901/  (admin listener: /metrics, /config, /events)"; \
	USERS_URL=http://127.0.0.1:$(DEMO_PORT_BASE) ORDERS_URL=http://127.0.0.1:$$(($(DEMO_PORT_BASE)+1)) \
	BILLING_URL=http://127.0.0.1:$$(($(DEMO_PORT_BASE)+2)) LIVE_URL=http://127.0.0.1:$$(($(DEMO_PORT_BASE)+3)) \
	GREETER_URL=http://127.0.0.1:$$(($(DEMO_PORT_BASE)+4)) HTTP2=$${HTTP2:-on} \
	LOG_FORMAT=$${LOG_FORMAT:-text} $(VENV)/bin/uvicorn config.asgi:application --host $(HOST) --port $(PORT) $(UVICORN_FLAGS)

lint: install
	$(VENV)/bin/ruff format --check gateway config tests bench examples manage.py
	$(VENV)/bin/ruff check gateway config tests bench examples manage.py

typecheck: install
	$(VENV)/bin/mypy

pytest: install browser
	$(VENV)/bin/pytest -n 2 --dist loadscope --cov --cov-report=term

# Two tests need programs Debian packages: the dashboard's runs in headless
# Chromium, the docs' commands run in zsh as well as bash. Installed here when
# missing (as root, as CI runs, or with sudo that asks no password).
browser:
	@missing=; command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="chromium"; \
	command -v zsh >/dev/null 2>&1 || missing="$$missing zsh"; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "missing:$$missing and no root: the tests that need them will be skipped (apt-get install$$missing)"; exit 0; fi; \
	echo "installing$$missing (apt-get) for the browser and shell tests"; \
	$$sudo apt-get install -y -q $$missing >/dev/null 2>&1 || \
	{ $$sudo apt-get update -q >/dev/null && $$sudo apt-get install -y -q $$missing >/dev/null; } || \
	echo "could not install$$missing: the tests that need them will be skipped"

test: lint typecheck pytest

bench: install bench-tools
	$(PY) -m bench

# make bench drives the load with wrk (HTTP/1.1) and h2load (HTTP/2, Debian's
# nghttp2-client): installed here when missing (as root, or with sudo that asks
# no password); otherwise the bench says which is missing.
bench-tools:
	@missing=; command -v wrk >/dev/null 2>&1 || missing="wrk"; \
	command -v h2load >/dev/null 2>&1 || missing="$$missing nghttp2-client"; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "missing:$$missing (apt-get install$$missing)"; exit 0; fi; \
	echo "installing$$missing (apt-get) for make bench"; \
	$$sudo apt-get install -y -q $$missing >/dev/null 2>&1 || \
	{ $$sudo apt-get update -q >/dev/null && $$sudo apt-get install -y -q $$missing >/dev/null; } || \
	echo "could not install$$missing"

# Re-pin every dependency (needs network): runtime first, then dev on top.
lock:
	@python=$$(scripts/find-python) || exit 1; rm -rf build/lock && "$$python" -m venv build/lock && \
	build/lock/bin/pip install --quiet -e . && build/lock/bin/pip freeze --exclude-editable > requirements.lock.new && \
	build/lock/bin/pip install --quiet -e '.[dev]' && build/lock/bin/pip freeze --exclude-editable > build/all.txt && \
	{ echo "-r requirements.lock"; comm -13 <(sort requirements.lock.new) <(sort build/all.txt); } > requirements-dev.lock && \
	mv requirements.lock.new requirements.lock && echo "pins updated: review git diff"

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
