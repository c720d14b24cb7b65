"""The JSON Schema of the routes file (SPEC 3.15), for editors: completion
and checks while typing (`# yaml-language-server: $schema=...` at the top of
a routes file). `manage.py routes_schema` prints it; `routes.schema.json` in
the repository is that output, kept equal by a test.

Generated from the same declarations the readers take their keys from
(gateway/routes/keys.py: the core sections; the registered kinds' and
policies' sections, gateway/registry.py), so it knows exactly the keys the
loader knows. The loader stays the authority (it checks what a schema
cannot: upstream and provider names that exist, `{param}`s that the path
has, reference cycles, routes that collide). `${VAR}` is accepted wherever a
value may be, since it is replaced when the file loads.
"""

from __future__ import annotations

from typing import Any

from gateway.routes.document import document_section
from gateway.routes.vocabulary import Vocabulary

__all__ = ["routes_schema"]


def routes_schema(vocabulary: Vocabulary) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.com/gateway/routes.schema.json",
        "title": "Gateway routes file",
        "description": "Every key: docs/routes.md",
        **document_section(vocabulary).schema(),
    }
