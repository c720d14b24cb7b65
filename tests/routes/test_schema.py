"""The routes file's JSON Schema (gateway/routes/schema.py) and the loader
agree: what the loader takes, the schema takes; every key the loader does not
know, the schema rejects; the committed routes.schema.json is the command's
output."""

from __future__ import annotations

import json
import subprocess
import textwrap

import jsonschema
import pytest
import yaml

from gateway.registry import parse_route_table, routes_schema
from gateway.routes import RoutesFileError
from tests.processes import PYTHON, ROOT

VALIDATOR = jsonschema.Draft202012Validator(routes_schema())

HEAD = """\
version: 1
upstreams:
  u: {url: "http://u.svc:8080", timeout: 2s, retries: {attempts: 2, backoff: 50ms},
      circuit_breaker: {failures: 5, cooldown: 30s}, headers: {X-Static: a}}
auth:
  keys: {type: api_key, keys: [{id: a, key: k}, {id: b, sha256: abababababababababababababababababababababababababababababababab}], query_param: api_key}
  jwt: {type: jwt, algorithms: [HS256], secret: s3cret-s3cret-s3cret-s3cret-s3cret, require_exp: true}
"""

VALID = {
    "aggregate": """
settings: {timeout: 3s, max_body_size: 2MiB, forward_headers: [Accept-Language]}
routes:
  - name: a
    path: /a/{id}
    auth: [keys, jwt]
    rate_limit: {limit: 10, window: 1m, key: "header:X-Tenant"}
    cache: {ttl: 5s}
    stream: true
    summary: A
    tags: [x]
    backends:
      - {upstream: u, path: "/x/{id}", key: x, required: false, allow: [a.b], rename: {a: b}}
      - {upstream: u, path: "/y/{x.a}", key: y, method: POST, name: why}
""",
    "proxy": """
routes:
  - {name: p, path: "/p/{rest:path}", methods: [GET, POST], proxy: {upstream: u, path: "/{rest}", idle_timeout: 5m}}
""",
    "websocket": """
routes:
  - name: w
    path: /w
    websocket: {upstream: u, path: /ws, subprotocols: [chat.v1], max_message_size: 64KiB, idle_timeout: 1m}
""",
    "cors and env": """
routes:
  - name: e
    path: /e
    timeout: "${ROUTE_TIMEOUT:-2s}"
    cors: {allow_origins: ["https://a.example"], max_age: 10m}
    backends: [{upstream: u, path: /e}]
""",
}

# Each: a fragment the loader refuses; the schema must refuse it too.
INVALID = {
    "unknown top-level key": "colour: blue\nroutes: []\n",
    "unknown settings key": "settings: {timout: 2s}\nroutes: []\n",
    "unknown upstream key": "upstreams: {v: {url: 'http://v', timout: 2s}}\nroutes: []\n",
    "upstream without url": "upstreams: {v: {timeout: 2s}}\nroutes: []\n",
    "unknown provider key": "auth: {k2: {type: api_key, keys: [{id: a, key: b}], colour: red}}\nroutes: []\n",
    "unknown provider type": "auth: {k2: {type: saml, keys: []}}\nroutes: []\n",
    "key with neither key nor sha256": "auth: {k2: {type: api_key, keys: [{id: a}]}}\nroutes: []\n",
    "a digest that is not sha256": "auth: {k2: {type: api_key, keys: [{id: a, sha256: abc}]}}\nroutes: []\n",
    "unknown route key": "routes: [{name: a, path: /a, colour: red, backends: [{upstream: u, path: /x}]}]\n",
    "two kinds": "routes: [{name: a, path: /a, backends: [{upstream: u, path: /x}], proxy: {upstream: u, path: /x}}]\n",
    "no kind": "routes: [{name: a, path: /a}]\n",
    "unknown backend key": "routes: [{name: a, path: /a, backends: [{upstream: u, path: /x, colour: red}]}]\n",
    "unknown proxy key": "routes: [{name: a, path: /a, proxy: {upstream: u, path: /x, colour: red}}]\n",
    "unknown websocket key": "routes: [{name: a, path: /a, websocket: {upstream: u, path: /x, colour: red}}]\n",
    "stream on a proxy": "routes: [{name: a, path: /a, stream: true, proxy: {upstream: u, path: /x}}]\n",
    "cache on a websocket": "routes: [{name: a, path: /a, cache: {ttl: 1s}, websocket: {upstream: u, path: /x}}]\n",
    "response hook on a proxy": "routes: [{name: a, path: /a, hooks: {response: ['m:f']}, proxy: {upstream: u, path: /x}}]\n",
    "unknown hook stage": "hooks: {after: ['m:f']}\nroutes: []\n",
    "bad duration": "routes: [{name: a, path: /a, timeout: soon, backends: [{upstream: u, path: /x}]}]\n",
    "bad size": "routes: [{name: a, path: /a, max_body_size: lots, backends: [{upstream: u, path: /x}]}]\n",
    "bad rate-limit key": "routes: [{name: a, path: /a, rate_limit: {limit: 1, window: 1s, key: who}, backends: [{upstream: u, path: /x}]}]\n",
    "backend method": "routes: [{name: a, path: /a, backends: [{upstream: u, path: /x, method: PUT}]}]\n",
    "path without a slash": "routes: [{name: a, path: a, backends: [{upstream: u, path: /x}]}]\n",
}


def document(fragment: str) -> str:
    return HEAD + textwrap.dedent(fragment)


@pytest.mark.parametrize("name", VALID)
def test_what_the_loader_takes_the_schema_takes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = document(VALID[name])
    parse_route_table(text, "r.yaml")
    assert list(VALIDATOR.iter_errors(yaml.safe_load(text))) == []


@pytest.mark.parametrize("name", INVALID)
def test_what_the_loader_refuses_the_schema_refuses(name: str) -> None:
    text = document(INVALID[name])
    with pytest.raises(RoutesFileError):
        parse_route_table(text, "r.yaml")
    assert list(VALIDATOR.iter_errors(yaml.safe_load(text))) != [], name


@pytest.mark.parametrize(
    "path", ["routes.yaml", "k8s/base/routes.yaml", "k8s/overlays/staging/routes.yaml"]
)
def test_the_shipped_routes_files_validate(path: str) -> None:
    assert list(VALIDATOR.iter_errors(yaml.safe_load((ROOT / path).read_text()))) == []


def test_the_committed_schema_is_the_commands_output() -> None:
    printed = subprocess.run(
        [PYTHON, "manage.py", "routes_schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert json.loads(printed) == routes_schema()
    assert json.loads((ROOT / "routes.schema.json").read_text()) == routes_schema()
    jsonschema.Draft202012Validator.check_schema(routes_schema())
    first = (ROOT / "routes.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=./routes.schema.json"
