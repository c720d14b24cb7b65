"""`manage.py import_openapi` on real public documents a PyPI package ships
(GitHub's REST API, Stripe's, the Petstore in 3.0 and 3.1: see
tests/fixtures/openapi_docs.py): the output loads (`check_routes`), and a
gateway serving it validates requests as the document says (SPEC 3.19)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.fixtures.openapi_docs import openapi_documents
from tests.integration.conftest import GatewayFactory
from tests.processes import Stub, manage

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.fixture(scope="module")
def docs() -> dict[str, Path]:
    return openapi_documents()


def operations(document: Path) -> int:
    """The document's operations (a 3.1 path item may be a $ref to components)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(document.read_text(), Loader=loader)
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    count = 0
    for item in spec["paths"].values():
        if "$ref" in item:
            item = spec["components"]["pathItems"][item["$ref"].rsplit("/", 1)[1]]
        count += sum(1 for method in item if method in methods)
    return count


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("petstore-3.0", []),
        ("petstore-3.1", ["--prefix", "/shop"]),
    ],
)
def test_the_output_loads(
    docs: dict[str, Path], tmp_path: Path, name: str, extra: list[str]
) -> None:
    routes = tmp_path / "routes.yaml"
    made = manage("import_openapi", str(docs[name]), "--upstream", "api", "-o", str(routes), *extra)
    assert made.returncode == 0, made.stderr
    table = yaml.load(routes.read_text(), Loader=_LOADER)
    skipped = [line for line in made.stderr.splitlines() if line.startswith("skipped ")]
    assert len(table["routes"]) + len(skipped) == operations(docs[name])
    assert len(table["routes"]) >= 0.9 * operations(docs[name])
    checked = manage("check_routes", str(routes))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK" in checked.stdout + checked.stderr


def test_the_printed_list_pasted_under_routes_loads(docs: dict[str, Path], tmp_path: Path) -> None:
    """SPEC 3.19: the output is a list to paste under `routes:`; with the
    upstream it names, it passes check_routes."""
    made = manage(
        "import_openapi", str(docs["petstore-3.1"]), "--upstream", "pets", "--prefix", "/shop"
    )
    assert made.returncode == 0, made.stderr
    assert 'upstreams: {pets: {url: "${PETS_URL:-http://petstore.swagger.io}"}}' in made.stdout
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "version: 1\nupstreams:\n  pets: {url: http://127.0.0.1:9}\nroutes:\n" + made.stdout
    )
    checked = manage("check_routes", str(routes))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    indented = "".join("  " + line for line in made.stdout.splitlines(keepends=True))
    routes.write_text(
        "version: 1\nupstreams:\n  pets: {url: http://127.0.0.1:9}\nroutes:\n" + indented
    )
    assert manage("check_routes", str(routes)).returncode == 0


def test_the_petstore_routes(docs: dict[str, Path]) -> None:
    made = manage(
        "import_openapi", str(docs["petstore-3.1"]), "--upstream", "pets", "--prefix", "/shop"
    )
    listed = yaml.safe_load(made.stdout)
    assert isinstance(listed, list)
    by_name = {r["name"]: r for r in listed}
    listing = by_name["listPets"]
    assert listing["path"] == "/shop/pets"
    assert listing["methods"] == ["GET"]
    assert listing["proxy"] == {"upstream": "pets", "path": "/v1/pets"}  # the server's path
    assert listing["validate"]["query"]["properties"]["limit"]["type"] == "integer"
    shown = by_name["showPetById"]
    assert shown["path"] == "/shop/pets/{petId}"
    assert shown["validate"]["params"]["required"] == ["petId"]


def test_githubs_api_imports_loads_and_validates_as_the_document_says(
    docs: dict[str, Path], start_gateway: GatewayFactory, stub: Stub, tmp_path: Path
) -> None:
    """1,300 operations: components written once (--schemas), the file
    loads, and a gateway serving it checks requests as GitHub documents them."""
    routes = tmp_path / "routes.yaml"
    made = manage(
        "import_openapi",
        str(docs["github"]),
        "--upstream",
        "github",
        "-o",
        str(routes),
        "--schemas",
        "github.schemas.json",
    )
    assert made.returncode == 0, made.stderr
    skipped = [line for line in made.stderr.splitlines() if line.startswith("skipped ")]
    table = yaml.load(routes.read_text(), Loader=_LOADER)
    assert len(table["routes"]) + len(skipped) == operations(docs["github"])
    assert len(table["routes"]) >= 1000
    schemas = (tmp_path / "github.schemas.json").read_text()
    gw = start_gateway(
        routes.read_text(), files={"github.schemas.json": schemas}, GITHUB_URL=stub.url
    )  # it starts: the file loads
    refused = gw.request("POST", "/markdown", json={"mode": "gfm"})  # `text` is required
    assert refused.status_code == 400
    problem = refused.json()
    assert problem["type"] == "urn:gateway:problem:request-invalid"
    assert problem["errors"][0]["location"] == "body"
    assert "text" in problem["errors"][0]["message"]
    bad_mode = gw.request("POST", "/markdown", json={"text": "hi", "mode": "html"})
    assert bad_mode.status_code == 400
    assert bad_mode.json()["errors"][0]["pointer"] == "/mode"
    before = stub.count("/markdown")
    passed = gw.request("POST", "/markdown", json={"text": "Hello **world**"})
    assert passed.status_code == 404  # the stub's answer: the request reached it
    assert stub.count("/markdown") == before + 1
    paged = gw.get("/gists/public", params={"per_page": "many"})  # integer in the document
    assert paged.status_code == 400
    assert paged.json()["errors"][0]["pointer"] == "/per_page"
    document = gw.get("/_gateway/openapi.json").json()
    assert "400" in document["paths"]["/markdown"]["post"]["responses"]


def test_stripes_api_imports_and_loads(docs: dict[str, Path], tmp_path: Path) -> None:
    """Stripe's bodies are forms: routes without body checks, query checks kept."""
    routes = tmp_path / "routes.yaml"
    made = manage("import_openapi", str(docs["stripe"]), "--upstream", "stripe", "-o", str(routes))
    assert made.returncode == 0, made.stderr
    text = routes.read_text()
    assert text.count("\n- name: ") == operations(docs["stripe"])
    assert "body:" not in text
    checked = manage("check_routes", str(routes))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_what_is_not_openapi_3_is_a_clear_error(tmp_path: Path) -> None:
    swagger = tmp_path / "swagger.json"
    swagger.write_text(json.dumps({"swagger": "2.0", "paths": {}}))
    made = manage("import_openapi", str(swagger), "--upstream", "old")
    assert made.returncode == 1
    assert made.stderr.startswith(f"{swagger}: not an OpenAPI 3.0 or 3.1 document")
    assert "Traceback" not in made.stderr
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"openapi": "3.1.0", "paths": ["not", "a", "mapping"]}))
    made = manage("import_openapi", str(odd), "--upstream", "x")
    assert made.returncode == 1
    assert made.stderr.startswith(f"{odd}: paths: expected a mapping")
    made = manage("import_openapi", str(tmp_path / "missing.yaml"), "--upstream", "x")
    assert made.returncode == 1
    assert "cannot read it" in made.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("openapi: 3.1.0\npaths: [\n")
    made = manage("import_openapi", str(broken), "--upstream", "x")
    assert made.returncode != 0
    assert f"{broken}:" in made.stderr
    assert "Traceback" not in made.stderr
