"""The Dockerfile, checked offline: hadolint, and its exact CMD run outside a
container against a stub upstream (issue 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.deploy.manifests import ROOT, dockerfile_cmd, dockerfile_value, tool
from tests.processes import Stub, start_process


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_image_properties() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM python:3.13-slim") == 2  # multi-stage, official slim image
    assert "requirements.lock" in text  # the same pins as make install
    uid = dockerfile_value("USER").split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000
    assert "PYTHONDONTWRITEBYTECODE=1" in text and "PYTHONUNBUFFERED=1" in text
    assert dockerfile_value("EXPOSE") == "8000"
    assert "RUN python manage.py check_routes" in text
    healthcheck = dockerfile_value("HEALTHCHECK")
    assert "curl" not in healthcheck and "wget" not in healthcheck
    cmd = dockerfile_cmd()
    for flag in ("--no-access-log", "--no-proxy-headers", "--timeout-graceful-shutdown"):
        assert flag in cmd
    assert cmd[cmd.index("--workers") + 1] == "1" and cmd[cmd.index("--lifespan") + 1] == "on"
    assert cmd[cmd.index("--loop") + 1] == "uvloop" and cmd[cmd.index("--http") + 1] == "httptools"
    ignored = (ROOT / ".dockerignore").read_text()
    assert ".venv" not in [line.strip() for line in ignored.splitlines()] or ignored.startswith("*")


def docker_env() -> dict[str, str]:
    """The runtime stage's ENV values that change how Python runs."""
    env: dict[str, str] = {}
    for token in dockerfile_value("ENV").split():
        name, _, value = token.partition("=")
        if name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "LOG_FORMAT"):
            env[name] = value
    return env


def test_the_exact_cmd_serves_and_stops_cleanly(stub: Stub, tmp_path: Path) -> None:
    cmd = dockerfile_cmd()
    port = free_port()
    cmd[cmd.index("--port") + 1] = str(port)
    assert cmd[0] == "uvicorn"
    args = [str(Path(sys.executable).parent / "uvicorn"), *cmd[1:]]
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "version: 1\nupstreams: {stub: {url: '" + stub.url + "'}}\n"
        "routes:\n  - {name: echo, path: /echo, backends: [{upstream: stub, path: /echo/docker, allow: [path]}]}\n"
    )
    env = {**docker_env(), "ROUTES_FILE": str(routes)}
    process = start_process(args, port, tmp_path / "gateway.log", env, ready_path="/readyz")
    try:
        assert httpx.get(process.url + "/readyz").status_code == 200
        assert httpx.get(process.url + "/echo").json() == {"path": "/echo/docker"}
        # The HEALTHCHECK, with the venv's python and this test's port.
        healthcheck = json.loads(dockerfile_value("HEALTHCHECK").split(" CMD ", 1)[1])
        assert healthcheck[0] == "python"
        probe = [sys.executable, *healthcheck[1:]]
        probe[-1] = probe[-1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        assert subprocess.run(probe, timeout=10, env={**os.environ}).returncode == 0
    finally:
        code = process.stop(signal.SIGTERM)
    assert code in (0, -signal.SIGTERM), process.output()
    assert "Traceback" not in process.output()
