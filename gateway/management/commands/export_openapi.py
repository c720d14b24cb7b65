"""`manage.py export_openapi [PATH]`: print the OpenAPI 3.1 document of the
routed API (SPEC 2, 3.15); the client port serves the same at
/_gateway/openapi.json."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

import orjson
from django.core.management.base import BaseCommand

from gateway.management.commands._routes_file import add_path_argument, load_or_exit
from gateway.routes.openapi import openapi_document


class Command(BaseCommand):
    help = "Print the OpenAPI 3.1 document of the routes file's API."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_path_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        _, table = load_or_exit(options, self.stderr)
        self.stdout.write(
            orjson.dumps(openapi_document(table), option=orjson.OPT_INDENT_2).decode()
        )
