"""`manage.py export_openapi [ROUTES_FILE] [-o FILE]`: the OpenAPI 3.1
document of the API a routes file describes (SPEC 2, 3.15), printed or
written to FILE; the client port serves the same at /_gateway/openapi.json.
The positional argument is the routes file read, never the output."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand

from gateway.management.commands._routes_file import add_path_argument, load_or_exit
from gateway.registry import openapi_document


class Command(BaseCommand):
    help = "Print the OpenAPI 3.1 document of the routes file's API."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_path_argument(parser)
        parser.add_argument(
            "-o", "--output", metavar="FILE", help="write the document here instead of printing it"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        _, table = load_or_exit(options, self.stderr)
        text = orjson.dumps(openapi_document(table), option=orjson.OPT_INDENT_2).decode()
        if options["output"]:
            Path(options["output"]).write_text(text + "\n")
            self.stderr.write(f"wrote {options['output']}")
        else:
            self.stdout.write(text)
