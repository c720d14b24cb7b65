"""examples/routes/: the worked example of every route policy loads as shipped
(its schema files beside it), and each policy is on the route it shows."""

from __future__ import annotations

from gateway.policies import compress, ip, plans, validate
from gateway.registry import load_route_table
from gateway.routes.model import Proxy
from tests.processes import ROOT

EXAMPLE = ROOT / "examples" / "routes" / "policies.yaml"


def test_the_policies_example_loads_with_every_policy_where_it_says() -> None:
    table = load_route_table(EXAMPLE)
    routes = {route.name: route for route in table.routes}
    assert set(plans.plans_of(table)) == {"free", "pro"}
    assert plans.OPTION.default(table.settings) == "free"
    created = validate.OPTION.of(routes["create-order"])
    assert created is not None and created.body is not None and created.response is not None
    assert not created.body.validator.is_valid({"customer": "c", "items": [{"sku": "x"}]})
    assert created.body.validator.is_valid(
        {"customer": "c", "items": [{"sku": "AB-1", "quantity": 2}]}
    )
    office = ip.OPTION.of(routes["reports"])
    assert office is not None and len(office.allow) == 2
    assert ip.OPTION.of(routes["orders-v1"]) is None  # ip: null
    assert compress.OPTION.of(routes["orders-v1"]) is None  # compress: null
    reports = compress.OPTION.of(routes["reports"])
    assert reports is not None and reports.algorithms == ("gzip",)
    default = compress.OPTION.of(routes["order"])
    assert default is not None and default.algorithms == ("zstd", "gzip")  # settings.compress


def test_the_traffic_example_loads_with_targets_a_canary_and_a_mirror() -> None:
    table = load_route_table(ROOT / "examples" / "routes" / "traffic.yaml")
    catalog = table.upstreams["catalog"]
    assert [(t.name, t.weight) for t in catalog.targets] == [
        ("catalog-1", 10),
        ("catalog-2", 10),
        ("canary", 1),
    ]
    assert catalog.sticky == "header:x-user" and catalog.override_header == "x-canary"
    assert catalog.outlier.consecutive_failures == 3 and catalog.outlier.max_ejection == 300
    assert catalog.health_check is not None and catalog.health_check.healthy == 2
    routes = {route.name: route for route in table.routes}
    products = routes["products"].kind
    assert isinstance(products, Proxy) and products.mirror is not None
    assert products.mirror.compare and products.mirror.ignore == (
        ("generated_at",),
        ("items", "updated_at"),
    )
