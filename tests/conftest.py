"""Shared test helpers."""

from __future__ import annotations

import textwrap

from gateway.config import RouteTable, parse_route_table


def table(yaml_text: str) -> RouteTable:
    """Parse a routes file written inline (dedented)."""
    return parse_route_table(textwrap.dedent(yaml_text))
