"""`manage.py check_routes [PATH]`: validate a routes file (SPEC 2).

Valid: one summary line, exit 0. Invalid: every problem as `PATH:LINE: message`,
exit 1. Never a traceback.
"""

from __future__ import annotations

from argparse import ArgumentParser
from collections import Counter
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from gateway.routes import RoutesFileError, load_route_table
from gateway.routes.model import Aggregate, Proxy, WebSocket

_KIND_NAMES = {Aggregate: "aggregate", Proxy: "proxy", WebSocket: "websocket"}


class Command(BaseCommand):
    help = "Validate a routes file: print a summary, or every problem as PATH:LINE: message."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", nargs="?", help="the routes file (default: ROUTES_FILE)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["path"] or str(settings.ROUTES_FILE)
        try:
            table = load_route_table(path)
        except RoutesFileError as exc:
            for line in exc.lines():
                self.stdout.write(line)
            raise SystemExit(1) from None
        kinds = Counter(_KIND_NAMES[type(r.kind)] for r in table.routes)
        counts = ", ".join(f"{kinds[name]} {name}" for name in _KIND_NAMES.values() if kinds[name])
        self.stdout.write(
            f"{path}: OK: {len(table.routes)} routes ({counts or 'none'}), "
            f"{len(table.upstreams)} upstreams, {len(table.auth)} auth providers"
        )
