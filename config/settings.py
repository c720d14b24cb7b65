"""Every setting of the gateway, read from the environment in this one place.

django-environ reads a `.env` file from the working directory when one exists;
real environment variables win over it. Nothing else in the project reads
`os.environ` for configuration (the routes file's `${VAR}` substitution aside,
which is part of that file's contract).
"""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(Path.cwd() / ".env")


def _parse_networks(raw: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in raw:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise environ.ImproperlyConfigured(
                f"TRUSTED_PROXIES: {item!r} is not an IP address or CIDR"
            ) from exc
    return tuple(networks)


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = str(env.str(name, default=default)).strip().lower()
    if value not in choices:
        raise environ.ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}")
    return value


# --- Django core -------------------------------------------------------------
# The gateway signs nothing (no sessions, no CSRF), but Django insists on a key.
SECRET_KEY = env.str("SECRET_KEY", default="") or secrets.token_urlsafe(50)
DEBUG = env.bool("DEBUG", default=False)
# Behind Kubernetes the Host header is the pod IP or a Service name; "*" is the
# useful default. Probes (/healthz, /readyz) answer whatever the Host.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])

INSTALLED_APPS = ["gateway"]
# Only our own async-only middleware: Django's stock middleware runs on a thread
# under ASGI (see gateway/middleware/__init__.py).
MIDDLEWARE = [
    "gateway.middleware.request_context.RequestContextMiddleware",  # request ID, client, errors
    "gateway.middleware.cors.CorsMiddleware",  # preflights answered before auth and limits
    "gateway.middleware.auth.AuthMiddleware",
    "gateway.middleware.ratelimit.RateLimitMiddleware",  # after auth: `client` keys are identities
]
ROOT_URLCONF = "config.urls"
DATABASES: dict[str, dict[str, str]] = {}
TEMPLATES: list[dict[str, object]] = []
USE_TZ = True
USE_I18N = False
APPEND_SLASH = False
# Request bodies are held by the handler in a spooled file: memory up to this
# size, then disk. Size limits per route are enforced as the body arrives.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = None

# --- Gateway -----------------------------------------------------------------
ROUTES_FILE = Path(env.str("ROUTES_FILE", default="routes.yaml"))
REDIS_URL = env.str("REDIS_URL", default="")
TRUSTED_PROXIES = _parse_networks(env.list("TRUSTED_PROXIES", default=[]))
RATE_LIMIT_FAILURE_MODE = _choice("RATE_LIMIT_FAILURE_MODE", "open", ("open", "closed"))
RELOAD = env.bool("RELOAD", default=True)
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = _choice("LOG_FORMAT", "json", ("json", "text"))
# Slow clients: complete request headers within this many seconds of connecting
# (or of a kept-alive request's first byte); request bodies get this much grace,
# then must keep arriving at 16 KiB/s on average. 408 otherwise.
CLIENT_HEADER_TIMEOUT = env.float("CLIENT_HEADER_TIMEOUT", default=10.0)
CLIENT_BODY_TIMEOUT = env.float("CLIENT_BODY_TIMEOUT", default=20.0)
# The access log (one line per request on stdout) and the per-request metrics
# can be switched off; /metrics still answers (rate-limit, reload and circuit
# families keep counting).
ACCESS_LOG = env.bool("ACCESS_LOG", default=True)
METRICS = env.bool("METRICS", default=True)
# Which transport carries upstream calls under httpx's API: "h1" (default: the
# gateway's own HTTP/1.1 client, measured fastest; README "Performance"), or,
# for comparison, "aiohttp" (aiohttp's pool), "httpx-aiohttp", "httpx".
UPSTREAM_TRANSPORT = _choice(
    "UPSTREAM_TRANSPORT", "h1", ("h1", "aiohttp", "httpx-aiohttp", "httpx")
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "gateway.logs.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
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
