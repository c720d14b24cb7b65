"""`manage.py export_openapi [PATH]`: print the OpenAPI 3.1 document of the
routed API (SPEC 2, 3.15); the client port serves the same at
/_gateway/openapi.json."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

import orjson
from django.conf import settings
from django.core.management.base import BaseCommand

from gateway.routes import RoutesFileError, load_route_table
from gateway.routes.openapi import openapi_document


class Command(BaseCommand):
    help = "Print the OpenAPI 3.1 document of the routes file's API."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", nargs="?", help="the routes file (default: ROUTES_FILE)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["path"] or str(settings.ROUTES_FILE)
        try:
            table = load_route_table(path)
        except RoutesFileError as exc:
            for line in exc.lines():
                self.stderr.write(line)
            raise SystemExit(1) from None
        self.stdout.write(
            orjson.dumps(openapi_document(table), option=orjson.OPT_INDENT_2).decode()
        )
