"""Every setting of the gateway, read from the environment in this one place.

django-environ reads a `.env` file from the working directory when one exists;
real environment variables win over it. Nothing else in the project reads
`os.environ` for configuration (the routes file's `${VAR}` substitution aside,
which is part of that file's contract).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import environ

from config.env import (
    SettingError,
    read_address,
    read_bool,
    read_choice,
    read_duration,
    read_list,
    read_networks,
    read_number,
    read_size,
    read_text,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# A `.env` file in the working directory fills in variables that are not set.
environ.Env.read_env(Path.cwd() / ".env")


def _log_level(name: str, default: str) -> str:
    level = read_text(name, default).strip().upper() or default
    if not isinstance(logging.getLevelNamesMapping().get(level), int):
        known = "DEBUG, INFO, WARNING, ERROR, CRITICAL"
        raise SettingError(name, f"unknown level {level!r} (one of {known})")
    return level


# --- Django core -------------------------------------------------------------
# The gateway signs nothing (no sessions, no CSRF), but Django insists on a key.
SECRET_KEY = read_text("SECRET_KEY", "") or secrets.token_urlsafe(50)
DEBUG = read_bool("DEBUG", False)
# Behind Kubernetes the Host header is the pod IP or a Service name; "*" is the
# useful default. Probes (/healthz, /readyz) answer whatever the Host.
ALLOWED_HOSTS = read_list("ALLOWED_HOSTS", ["*"])

INSTALLED_APPS = ["gateway"]
# Only our own async-only middleware: Django's stock middleware runs on a thread
# under ASGI (see gateway/edge/middleware.py).
MIDDLEWARE = [
    "gateway.edge.middleware.EdgeMiddleware",  # Host check, X-Request-ID, the error net
    # A matched request runs its route's whole stack: CORS, auth, rate limit,
    # request hooks, the route's kind (composed at load: gateway/registry.py).
    "gateway.edge.middleware.RouteMiddleware",
]
ROOT_URLCONF = "config.urls"
DATABASES: dict[str, dict[str, str]] = {}
# The admin listener's dashboard page (gateway/templates/gateway/dashboard.html).
TEMPLATES: list[dict[str, object]] = [
    {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
]
USE_TZ = True
TIME_ZONE = "UTC"  # every timestamp the gateway logs is UTC
USE_I18N = False
APPEND_SLASH = False
# Request bodies are held by the handler in a spooled file: memory up to this
# size, then disk. Size limits per route are enforced as the body arrives.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = None
# Query strings with more fields than this are 400 on every route kind
# (gateway/edge/intake.py), as Django refuses them when it parses one.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- Gateway -----------------------------------------------------------------
ROUTES_FILE = Path(read_text("ROUTES_FILE", "routes.yaml") or "routes.yaml")
REDIS_URL = read_text("REDIS_URL", "").strip()
TRUSTED_PROXIES = read_networks("TRUSTED_PROXIES")
RATE_LIMIT_FAILURE_MODE = read_choice("RATE_LIMIT_FAILURE_MODE", "open", ("open", "closed"))
RELOAD = read_bool("RELOAD", True)
LOG_LEVEL = _log_level("LOG_LEVEL", "INFO")
LOG_FORMAT = read_choice("LOG_FORMAT", "json", ("json", "text"))
# Slow clients: complete request headers within this many seconds of connecting
# (or of a kept-alive request's first byte); request bodies get this much grace,
# then must keep arriving at 16 KiB/s on average. 408 otherwise.
CLIENT_HEADER_TIMEOUT = read_duration("CLIENT_HEADER_TIMEOUT", 10.0)
CLIENT_BODY_TIMEOUT = read_duration("CLIENT_BODY_TIMEOUT", 20.0)
# A client that takes nothing of its answer for this long is cut off, and what
# the answer held (memory budget, an upstream connection) is given back.
CLIENT_SEND_TIMEOUT = read_duration("CLIENT_SEND_TIMEOUT", 30.0)
# HTTP/2 on the client port beside HTTP/1.1 (gateway/edge/h2server.py): h2c
# with prior knowledge, and `h2` by ALPN when uvicorn serves TLS.
HTTP2 = read_bool("HTTP2", False)
# Request header names holding "_" are dropped before anything reads them
# (gateway/edge/intake.py): upstreams that fold "_" into "-" would take
# `X_Client_Id` for the identity header the gateway sets.
ALLOW_UNDERSCORE_HEADERS = read_bool("ALLOW_UNDERSCORE_HEADERS", False)
# The access log (one line per request on stdout) and the per-request metrics
# can be switched off; /metrics still answers (rate-limit, reload and circuit
# families keep counting).
ACCESS_LOG = read_bool("ACCESS_LOG", True)
METRICS = read_bool("METRICS", True)
# Limits against hostile clients (README "Limits"): a longer request line is
# 414, a larger header block 431, both refused as the bytes arrive.
MAX_REQUEST_LINE = read_size("MAX_REQUEST_LINE", 8 * 1024, minimum=64)
MAX_REQUEST_HEADERS = read_size("MAX_REQUEST_HEADERS", 64 * 1024, minimum=256)
# What aggregate routes may hold of backend bodies at once, counted as the
# parsed form costs; past it a backend fails with 503 (README "Limits").
MEMORY_BUDGET = read_size("MEMORY_BUDGET", 512 * 1024 * 1024, minimum=1024 * 1024)
# The admin listener (README "Operations"): /metrics, /config, probes; `off`
# for none. With a token, its paths (the probes aside) need a Bearer token.
ADMIN_ADDR = read_address("ADMIN_ADDR", "127.0.0.1:9901")
# Chosen by the operator: an address that cannot be bound stops the gateway.
# The default one, taken (a second gateway on one machine), only warns.
ADMIN_ADDR_CHOSEN = bool(os.environ.get("ADMIN_ADDR", "").strip())
ADMIN_TOKEN = read_text("ADMIN_TOKEN", "")
# Host names the admin listener answers besides its own address and
# `localhost` (421 otherwise: a DNS-rebinding page cannot read it). Django's
# ALLOWED_HOSTS patterns: `.example.com` for a domain and its subdomains.
ADMIN_HOSTS = tuple(h.lower() for h in read_list("ADMIN_HOSTS", []))
# OpenTelemetry export (README "Observability"): on when an OTLP endpoint is
# set. The SDK reads its OTEL_* variables itself; the ones it would silently
# replace with a default when wrong are checked here first.
TRACE_EXPORT = bool(
    read_text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    or read_text("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
) and not read_bool("OTEL_SDK_DISABLED", False)  # OpenTelemetry's switch for all of it
_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
OTEL_TRACES_SAMPLER = read_choice("OTEL_TRACES_SAMPLER", "parentbased_always_on", _SAMPLERS)
read_number("OTEL_TRACES_SAMPLER_ARG", minimum=0.0, maximum=1.0)
for _name in (
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
):
    read_number(_name, minimum=1, maximum=10_000_000, integer=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "gateway.observe.logs.JsonFormatter"},
        "text": {"()": "gateway.observe.logs.TextFormatter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Our problem+json responses already say what went wrong; Django's
        # per-response warnings would only duplicate them.
        "django.request": {"level": "ERROR"},
        # httpx logs every request at INFO: the access log covers that.
        "httpx": {"level": "WARNING"},
    },
}
