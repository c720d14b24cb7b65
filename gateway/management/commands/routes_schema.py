"""`manage.py routes_schema`: print the JSON Schema of the routes file (SPEC 2).

`routes.schema.json` in the repository is this output; editors that speak
the yaml-language-server protocol use it through the comment at the top of
`routes.yaml`."""

from __future__ import annotations

from typing import Any

import orjson
from django.core.management.base import BaseCommand

from gateway.registry import routes_schema


class Command(BaseCommand):
    help = "Print the JSON Schema of the routes file."
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        text = orjson.dumps(routes_schema(), option=orjson.OPT_INDENT_2).decode()
        self.stdout.write(text)
