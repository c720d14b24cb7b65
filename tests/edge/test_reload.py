"""The reload check itself (gateway/edge/reload.py); tests/integration/test_operations.py
drives real file changes through a real process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import serving
from gateway.assembly import build_gateway
from gateway.edge.reload import Reloader, file_digest
from gateway.registry import parse_routes_file
from gateway.runtime import Runtime

ROUTES = "version: 1\nupstreams: {{u: {{url: 'http://u'}}}}\nroutes:\n  - {{name: {name}, path: /{name}, backends: [{{upstream: u, path: /x}}]}}\n"


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    previous = serving.current()
    yield Runtime(redis_url="", failure_mode="open")
    serving.install(previous)


async def test_reload_only_on_a_real_change(tmp_path: Path, runtime: Runtime) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.format(name="a"))
    reloader = Reloader(path, runtime, file_digest(path.read_bytes()))
    assert not await reloader.check()  # nothing changed
    path.write_text(ROUTES.format(name="a"))  # same bytes, new mtime
    assert not await reloader.check()
    path.write_text(ROUTES.format(name="bb"))
    assert await reloader.check()
    gateway = serving.current()
    assert gateway is not None and [r.name for r in gateway.table.routes] == ["bb"]


async def test_invalid_or_missing_file_changes_nothing(
    tmp_path: Path, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.format(name="a"))
    reloader = Reloader(path, runtime, file_digest(path.read_bytes()))
    serving.install(None)
    path.write_text("version: 1\nroutes: [oops\n")
    assert not await reloader.check()
    assert serving.current() is None
    assert f"{path}:3: YAML syntax error" in caplog.text
    caplog.clear()
    path.unlink()
    assert not await reloader.check()
    assert (
        "routes file cannot be read" in caplog.text
        and "previous config keeps serving" in caplog.text
    )
    caplog.clear()
    assert not await reloader.check()  # still gone: said once, not every second
    assert caplog.text == ""


async def test_a_change_before_the_first_check_is_not_missed(
    tmp_path: Path, runtime: Runtime
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.format(name="a"))
    loaded = file_digest(path.read_bytes())  # what start-up parsed
    path.write_text(ROUTES.format(name="late"))  # changed before the reloader started
    reloader = Reloader(path, runtime, loaded)
    assert await reloader.check()
    gateway = serving.current()
    assert gateway is not None and [r.name for r in gateway.table.routes] == ["late"]


async def test_a_changed_schema_file_reloads_the_routes_that_use_it(
    tmp_path: Path, runtime: Runtime
) -> None:
    """A `$ref`'d JSON Schema is part of the config: a ConfigMap update that
    changes only it is a reload, and a broken one is refused like a broken file."""
    from gateway.policies import validate

    schema = tmp_path / "order.json"
    schema.write_text('{"type": "object", "required": ["a"]}')
    path = tmp_path / "routes.yaml"
    path.write_text(
        "version: 1\nroutes:\n  - name: r\n    path: /r\n    methods: [POST]\n"
        "    validate: {body: {$ref: order.json}}\n    static: {body: 1}\n"
    )
    table = parse_routes_file(path.read_bytes(), str(path))
    assert table.files == {str(schema)}
    serving.install(build_gateway(table, runtime))
    reloader = Reloader(path, runtime, file_digest(path.read_bytes()))
    assert not await reloader.check()  # the first look: nothing changed since start-up

    def required() -> object:
        gateway = serving.current()
        assert gateway is not None
        rules = validate.OPTION.of(gateway.table.routes[0])
        assert rules is not None and rules.body is not None
        return rules.body.inlined["required"]

    schema.write_text('{"type": "object", "required": ["b"]}')
    assert await reloader.check()
    assert required() == ["b"]
    schema.write_text('{"type": "nonsense"}')
    assert not await reloader.check()  # refused: the last good config keeps serving
    assert required() == ["b"]


async def test_a_configmap_swap_that_changes_only_a_schema_reloads(
    tmp_path: Path, runtime: Runtime
) -> None:
    """kubelet's layout: every key a symlink through ..data to a versioned
    directory; an update swaps ..data. Schemas are read through the links."""
    import os

    from gateway.policies import validate

    routes = (
        "version: 1\nroutes:\n  - name: r\n    path: /r\n    methods: [POST]\n"
        "    validate: {body: {$ref: order.json}}\n    static: {body: 1}\n"
    )
    for version, field in (("..v1", "a"), ("..v2", "b")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "routes.yaml").write_text(routes)
        (tmp_path / version / "order.json").write_text(f'{{"required": ["{field}"]}}')
    os.symlink("..v1", tmp_path / "..data")
    for name in ("routes.yaml", "order.json"):
        os.symlink(f"..data/{name}", tmp_path / name)
    path = tmp_path / "routes.yaml"
    table = parse_routes_file(path.read_bytes(), str(path))
    assert table.files == {str(tmp_path / "order.json")}  # the link, not its target
    serving.install(build_gateway(table, runtime))
    reloader = Reloader(path, runtime, file_digest(path.read_bytes()))
    assert not await reloader.check()
    os.symlink("..v2", tmp_path / "..data_tmp")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")  # the atomic swap
    assert await reloader.check()  # routes.yaml's bytes are the same; order.json's are not
    gateway = serving.current()
    assert gateway is not None
    rules = validate.OPTION.of(gateway.table.routes[0])
    assert rules is not None and rules.body is not None
    assert rules.body.inlined["required"] == ["b"]


async def test_a_schema_changed_before_the_first_check_is_not_missed(
    tmp_path: Path, runtime: Runtime
) -> None:
    schema = tmp_path / "order.json"
    schema.write_text('{"required": ["a"]}')
    path = tmp_path / "routes.yaml"
    path.write_text(
        "version: 1\nroutes:\n  - name: r\n    path: /r\n    methods: [POST]\n"
        "    validate: {body: {$ref: order.json}}\n    static: {body: 1}\n"
    )
    table = parse_routes_file(path.read_bytes(), str(path))  # start-up's load
    serving.install(build_gateway(table, runtime))
    schema.write_text('{"required": ["late"]}')  # changed before the reloader's first look
    reloader = Reloader(path, runtime, file_digest(path.read_bytes()))
    assert await reloader.check()
