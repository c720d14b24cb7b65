"""Render the kustomize trees offline and check the properties a production
deployment of the gateway needs. Each check returns the problems it found, so
tests can also prove that a broken manifest is caught."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

type Doc = dict[str, Any]


def tool(name: str) -> str:
    """A tool pinned in requirements-dev.lock (in the venv), else from PATH."""
    pinned = BIN / name
    if pinned.exists():
        return str(pinned)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} is needed: make install (it is pinned in requirements-dev.lock)"
        )
    return found


def render(tree: str) -> list[Doc]:
    out = subprocess.run(
        [tool("kubectl"), "kustomize", str(ROOT / tree)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind}/{name}")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: continuations joined, comments skipped."""
    logical, current = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(" ", 1)[0], text.split(" ", 1)[1]) for text in logical]


def dockerfile_value(instruction: str) -> str:
    """The arguments of the last such instruction (the runtime stage's)."""
    values = [args for name, args in dockerfile_instructions() if name == instruction]
    if not values:
        raise AssertionError(f"Dockerfile has no {instruction}")
    return values[-1]


def dockerfile_cmd() -> list[str]:
    return list(json.loads(dockerfile_value("CMD")))


def cmd_option(cmd: list[str], option: str) -> str:
    return cmd[cmd.index(option) + 1]


def check_gateway_deployment(docs: list[Doc]) -> list[str]:
    problems: list[str] = []
    deployment = find(docs, "Deployment", "gateway")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "gateway"]
    cmd = dockerfile_cmd()
    port = int(cmd_option(cmd, "--port"))
    exposed = int(dockerfile_value("EXPOSE"))
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if ports.get("http") != port or port != exposed:
        problems.append(
            f"container port {ports.get('http')} vs CMD --port {port} vs EXPOSE {exposed}"
        )
    paths = {"/healthz", "/readyz"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container.get(probe)
        if not check or "httpGet" not in check:
            problems.append(f"no {probe}")
            continue
        if check["httpGet"]["path"] not in paths or check["httpGet"]["port"] not in ("http", port):
            problems.append(f"{probe} points at {check['httpGet']}")
    if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        problems.append("readiness must use /readyz")
    if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        problems.append("liveness must use /healthz (a Redis outage must not restart pods)")
    user = dockerfile_value("USER").split(":")[0]
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    if (
        not security.get("runAsNonRoot")
        or security.get("runAsUser") in (None, 0)
        or str(security.get("runAsUser")) != user
    ):
        problems.append(f"must run as the image's non-root uid {user}: {security}")
    if container.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
        problems.append("privilege escalation allowed")
    if container.get("securityContext", {}).get("capabilities", {}).get("drop") != ["ALL"]:
        problems.append("capabilities not all dropped")
    if pod.get("securityContext", {}).get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("no RuntimeDefault seccomp profile")
    if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
        problems.append("root filesystem is writable")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    tmp = mounts.get("/tmp")
    if tmp is None or "emptyDir" not in volumes.get(tmp["name"], {}):
        problems.append("/tmp is not an emptyDir (request bodies spool there)")
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    routes_file = Path(env.get("ROUTES_FILE") or "/app/routes.yaml")
    mount = mounts.get(str(routes_file.parent))
    if mount is None:
        problems.append(f"nothing mounted at {routes_file.parent}")
    else:
        if "subPath" in mount or "subPathExpr" in mount:
            problems.append("the routes ConfigMap is mounted with subPath: it would never update")
        config = volumes.get(mount["name"], {}).get("configMap", {}).get("name")
        configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
        if config not in configmaps or routes_file.name not in configmaps[config].get("data", {}):
            problems.append(f"{routes_file} does not come from a rendered ConfigMap ({config})")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    graceful = int(cmd_option(cmd, "--timeout-graceful-shutdown"))
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if pre_stop is None:
        problems.append("no preStop pause: endpoints would still route to a terminating pod")
        pause = 0
    else:
        pause = int(
            pre_stop.get("sleep", {}).get("seconds")
            or shlex.split(" ".join(pre_stop["exec"]["command"]))[-1]
        )
    if grace <= pause + graceful:
        problems.append(
            f"terminationGracePeriodSeconds {grace} <= preStop {pause} + uvicorn graceful {graceful}"
        )
    rolling = spec.get("strategy", {}).get("rollingUpdate", {})
    if (
        spec.get("strategy", {}).get("type") != "RollingUpdate"
        or rolling.get("maxUnavailable") != 0
    ):
        problems.append("rolling updates must keep every replica (maxUnavailable 0)")
    resources = container.get("resources", {})
    if not resources.get("requests") or not resources.get("limits"):
        problems.append("requests and limits are required")
    return problems


def check_redis_wiring(docs: list[Doc]) -> list[str]:
    problems: list[str] = []
    gateway = find(docs, "Deployment", "gateway")["spec"]["template"]
    (container,) = gateway["spec"]["containers"]
    env = {e["name"]: e for e in container.get("env", [])}
    url = (env.get("REDIS_URL") or {}).get("value") or ""
    host_port = url.removeprefix("redis://").split("/")[0].rpartition("@")[2]
    host, _, port = host_port.partition(":")
    service = find(docs, "Service", host.split(".")[0])
    if int(port or 6379) not in [p["port"] for p in service["spec"]["ports"]]:
        problems.append(f"REDIS_URL port {port} is not a port of Service {host}")
    redis = find(docs, "StatefulSet", service["metadata"]["name"])
    redis_pods = redis["spec"]["template"]["metadata"]["labels"]
    # Both sides read the password from the same Secret, and the URL carries it.
    (server,) = redis["spec"]["template"]["spec"]["containers"]
    secret_of = {
        e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in server.get("env", [])
    }
    if "$(REDIS_PASSWORD)" not in server["args"] or not secret_of.get("REDIS_PASSWORD"):
        problems.append("Redis requires no password from a Secret")
    gateway_secret = (env.get("REDIS_PASSWORD") or {}).get("valueFrom", {}).get("secretKeyRef")
    if gateway_secret != secret_of.get("REDIS_PASSWORD") or ":$(REDIS_PASSWORD)@" not in url:
        problems.append("the gateway's REDIS_URL does not carry Redis's password")
    if "yes" not in server["args"] or not redis["spec"].get("volumeClaimTemplates"):
        problems.append("Redis keeps no append-only file on a volume (quotas would be lost)")
    if any(redis_pods.get(k) != v for k, v in service["spec"]["selector"].items()):
        problems.append("the Redis Service selects no Redis pod")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    guarding = [
        p
        for p in policies
        if all(redis_pods.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items())
    ]
    if not guarding:
        problems.append("no NetworkPolicy guards Redis")
    gateway_labels = gateway["metadata"]["labels"]
    for policy in guarding:
        for rule in policy["spec"].get("ingress", []):
            for source in rule.get("from", [{}]):
                labels = source.get("podSelector", {}).get("matchLabels")
                # Only a pod selector naming every gateway label admits the gateway alone.
                if set(source) != {"podSelector"} or labels != gateway_labels:
                    problems.append(
                        f"NetworkPolicy lets more than the gateway reach Redis: {source}"
                    )
    return problems


def check_scaling(docs: list[Doc]) -> list[str]:
    problems: list[str] = []
    pods = find(docs, "Deployment", "gateway")["spec"]["template"]["metadata"]["labels"]
    hpa = find(docs, "HorizontalPodAutoscaler", "gateway")["spec"]
    if hpa.get("minReplicas", 1) < 2 or hpa["metrics"][0]["resource"]["name"] != "cpu":
        problems.append("the HPA must scale on CPU with at least 2 replicas")
    pdb = find(docs, "PodDisruptionBudget", "gateway")["spec"]
    if any(pods.get(k) != v for k, v in pdb["selector"]["matchLabels"].items()):
        problems.append("the PodDisruptionBudget selects no gateway pod")
    service = find(docs, "Service", "gateway")["spec"]
    if any(pods.get(k) != v for k, v in service["selector"].items()):
        problems.append("the gateway Service selects no gateway pod")
    return problems
