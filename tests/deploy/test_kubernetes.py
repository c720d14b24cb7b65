"""The kustomize base and overlays, validated offline (issue 5)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import (
    ROOT,
    Doc,
    check_gateway_deployment,
    check_redis_wiring,
    check_scaling,
    find,
    render,
    tool,
)

TREES = [
    "k8s/base",
    "k8s/overlays/production",
    "k8s/overlays/staging",
    "k8s/overlays/canary",
    "k8s/overlays/grpc",
]


@pytest.fixture(scope="module", params=TREES)
def docs(request: pytest.FixtureRequest) -> list[Doc]:
    return render(request.param)


@pytest.fixture(scope="module")
def base() -> list[Doc]:
    return render("k8s/base")


def validate(docs: list[Doc], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    return subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", str(rendered)],
        capture_output=True,
        text=True,
    )


def test_every_object_validates_against_the_kubernetes_schemas(
    docs: list[Doc], tmp_path: Path
) -> None:
    result = validate(docs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {d["kind"] for d in docs} >= {
        "Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
    }  # fmt: skip


def test_strict_validation_can_fail(base: list[Doc], tmp_path: Path) -> None:
    broken = copy.deepcopy(base)
    find(broken, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0][
        "readinessProbes"
    ] = {}
    assert validate(broken, tmp_path).returncode != 0


def test_gateway_deployment(docs: list[Doc]) -> None:
    assert check_gateway_deployment(docs) == []


def test_redis_wiring(docs: list[Doc]) -> None:
    assert check_redis_wiring(docs) == []


def test_scaling(docs: list[Doc]) -> None:
    assert check_scaling(docs) == []


def test_base_values(base: list[Doc]) -> None:
    # the HPA owns the replica count: a count in the Deployment would reset it
    assert "replicas" not in find(base, "Deployment", "gateway")["spec"]
    assert (
        find(base, "ConfigMap", "gateway-routes")["metadata"]["name"] == "gateway-routes"
    )  # no hash suffix


def test_overlay_customises(base: list[Doc]) -> None:
    production = render("k8s/overlays/production")
    deployment = find(production, "Deployment", "gateway")
    assert deployment["metadata"]["namespace"] == "gateway"
    assert "replicas" not in deployment["spec"]
    assert find(production, "Namespace", "gateway")["metadata"]["name"] == "gateway"
    ingress = find(production, "Ingress", "gateway")["spec"]
    (rule,) = ingress["rules"]
    backends = [p["backend"]["service"] for p in rule["http"]["paths"]]
    service = find(production, "Service", "gateway")["spec"]
    assert backends == [{"name": "gateway", "port": {"name": "http"}}]
    # the Ingress reaches the client port only; the admin port is the monitoring namespace's
    assert [p["targetPort"] for p in service["ports"]] == ["http", "admin"]
    admin = find(production, "NetworkPolicy", "gateway-admin")["spec"]
    client_rule, admin_rule = admin["ingress"]
    assert client_rule == {"ports": [{"protocol": "TCP", "port": "http"}]}
    assert admin_rule["ports"] == [{"protocol": "TCP", "port": "admin"}]
    assert admin_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9901" and annotations["prometheus.io/scrape"]
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example.com/platform/gateway:1.0.0"
    )
    assert find(production, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] == 4


def mutate(docs: list[Doc], change) -> list[Doc]:  # type: ignore[no-untyped-def]
    broken = copy.deepcopy(docs)
    change(find(broken, "Deployment", "gateway")["spec"]["template"]["spec"])
    return broken


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda pod: pod["containers"][0].pop("readinessProbe"), "no readinessProbe"),
        (lambda pod: pod["containers"][0].pop("livenessProbe"), "no livenessProbe"),
        (
            lambda pod: pod["containers"][0]["readinessProbe"]["httpGet"].update(path="/ready"),
            "readinessProbe points at",
        ),
        (
            lambda pod: pod["containers"][0]["volumeMounts"][0].update(subPath="routes.yaml"),
            "subPath",
        ),
        (lambda pod: pod["containers"][0]["ports"][0].update(containerPort=8080), "container port"),
        (lambda pod: pod["securityContext"].update(runAsUser=0), "non-root"),
        (
            lambda pod: pod["containers"][0]["securityContext"].update(
                readOnlyRootFilesystem=False
            ),
            "writable",
        ),
        (lambda pod: pod.update(terminationGracePeriodSeconds=15), "terminationGracePeriodSeconds"),
        (lambda pod: pod["containers"][0].pop("lifecycle"), "preStop"),
        (lambda pod: pod["volumes"].pop(), "/tmp"),
    ],
)
def test_checks_catch_a_broken_deployment(base: list[Doc], change, complaint: str) -> None:  # type: ignore[no-untyped-def]
    problems = check_gateway_deployment(mutate(base, change))
    assert any(complaint in p for p in problems), problems


def test_checks_catch_broken_redis_wiring(base: list[Doc]) -> None:
    broken = copy.deepcopy(base)
    env = find(broken, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]["env"]
    next(e for e in env if e["name"] == "REDIS_URL")["value"] = "redis://gateway-redis:6380/0"
    find(broken, "NetworkPolicy", "gateway-redis")["spec"]["ingress"][0]["from"] = [
        {"podSelector": {"matchLabels": {}}}
    ]
    problems = check_redis_wiring(broken)
    assert any("6380" in p for p in problems) and any(
        "more than the gateway" in p for p in problems
    )
    assert any("does not carry" in p for p in problems)  # the URL lost its password too
    unpersisted = copy.deepcopy(base)
    redis = find(unpersisted, "StatefulSet", "gateway-redis")
    del redis["spec"]["volumeClaimTemplates"]
    (server,) = redis["spec"]["template"]["spec"]["containers"]
    server["args"] = [a for a in server["args"] if a != "$(REDIS_PASSWORD)"]
    problems = check_redis_wiring(unpersisted)
    assert any("no password" in p for p in problems)
    assert any("append-only" in p for p in problems)


def test_cluster_routes_file_passes_check_routes() -> None:
    assert_routes_check("k8s/base/routes.yaml")


def test_configmap_holds_the_cluster_routes_file(base: list[Doc]) -> None:
    data = find(base, "ConfigMap", "gateway-routes")["data"]["routes.yaml"]
    assert data == (ROOT / "k8s/base/routes.yaml").read_text()


def assert_routes_check(path: str) -> None:
    """`manage.py check_routes` accepts the file (its ${...} given)."""
    checked = subprocess.run(
        [sys.executable, "manage.py", "check_routes", path],
        cwd=ROOT,
        env={**os.environ, "ACME_API_KEY_SHA256": "0" * 64},
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_staging_overlay_serves_routes_of_its_own(tmp_path: Path) -> None:
    staging = render("k8s/overlays/staging")
    assert find(staging, "Namespace", "gateway-staging")
    assert {d["metadata"].get("namespace") for d in staging if d["kind"] != "Namespace"} == {
        "gateway-staging"
    }
    routes = find(staging, "ConfigMap", "gateway-routes")["data"]["routes.yaml"]
    assert routes == (ROOT / "k8s/overlays/staging/routes.yaml").read_text()
    assert (
        "orders-raw" in routes and "orders-raw" not in (ROOT / "k8s/base/routes.yaml").read_text()
    )
    assert "replicas" not in find(staging, "Deployment", "gateway")["spec"]
    assert_routes_check("k8s/overlays/staging/routes.yaml")


def test_the_canary_overlay_splits_orders_between_two_deployments() -> None:
    canary = render("k8s/overlays/canary")
    stable, trial = (
        find(canary, "Deployment", "orders-stable"),
        find(canary, "Deployment", "orders-canary"),
    )
    assert stable["spec"]["template"]["metadata"]["labels"]["track"] == "stable"
    assert trial["spec"]["template"]["metadata"]["labels"]["track"] == "canary"
    for track in ("stable", "canary"):
        service = find(canary, "Service", f"orders-{track}")
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": "orders", "track": track}
    routes = yaml.safe_load(find(canary, "ConfigMap", "gateway-routes")["data"]["routes.yaml"])
    targets = routes["upstreams"]["orders"]["targets"]
    assert [t["name"] for t in targets] == ["stable", "canary"]
    assert [t["url"].split("//")[1].split(".")[0] for t in targets] == [
        "orders-stable",
        "orders-canary",
    ]
    assert_routes_check("k8s/overlays/canary/routes.yaml")


def test_the_grpc_overlay_serves_http2_behind_a_grpc_ingress() -> None:
    grpc = render("k8s/overlays/grpc")
    container = find(grpc, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "HTTP2", "value": "on"} in container["env"]
    port = find(grpc, "Service", "gateway")["spec"]["ports"][0]
    assert port["name"] == "http" and port["appProtocol"] == "kubernetes.io/h2c"
    ingress = find(grpc, "Ingress", "gateway-grpc")
    assert (
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    )
    assert ingress["spec"]["tls"][0]["hosts"] == ["grpc.example.com"]
    routes = yaml.safe_load(find(grpc, "ConfigMap", "gateway-routes")["data"]["routes.yaml"])
    assert routes["routes"][0]["grpc"] == {"upstream": "users-grpc", "service": "users.v1.Users"}
    assert_routes_check("k8s/overlays/grpc/routes.yaml")
