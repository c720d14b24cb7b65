# syntax=docker/dockerfile:1
# The gateway as one uvicorn worker per container; scale with replicas.

# --- build: dependencies into a venv, from the same pinned lock as `make install`
FROM python:3.13-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --no-deps -r /tmp/requirements.lock

# --- runtime: the venv, the code, a non-root user
FROM python:3.13-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROUTES_FILE=/etc/gateway/routes.yaml \
    LOG_FORMAT=json
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home --home-dir /app --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY manage.py routes.yaml ./
COPY config ./config
COPY gateway ./gateway
# Refuse to build an image whose bundled routes file is invalid.
RUN python manage.py check_routes /app/routes.yaml
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# One worker, uvloop and httptools; no uvicorn access log (the gateway writes
# its own), no uvicorn proxy-header rewriting (TRUSTED_PROXIES decides client
# addresses), and 9 s of graceful shutdown: inside `docker stop`'s 10 s, and
# (after the pod's 10 s preStop pause, when it already gets no new requests)
# well inside Kubernetes' 40 s grace period. WebSockets and event streams are
# closed at once on SIGTERM (clients reconnect elsewhere); requests finish.
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "1", "--lifespan", "on", "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-proxy-headers", "--no-server-header", "--timeout-graceful-shutdown", "9", "--timeout-keep-alive", "75", "--backlog", "4096"]
