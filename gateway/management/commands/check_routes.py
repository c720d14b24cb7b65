"""`manage.py check_routes [PATH]`: validate a routes file (SPEC 2).

Valid: one summary line, exit 0. Invalid: every problem as `PATH:LINE: message`,
exit 1. Never a traceback.
"""

from __future__ import annotations

from argparse import ArgumentParser
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand

from gateway.management.commands._routes_file import add_path_argument, load_or_exit
from gateway.policies.auth import providers_of
from gateway.registry import KINDS


class Command(BaseCommand):
    help = "Validate a routes file: print a summary, or every problem as PATH:LINE: message."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_path_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        path, table = load_or_exit(options, self.stdout)
        kinds = Counter(r.kind_name for r in table.routes)
        counts = ", ".join(f"{kinds[k.name]} {k.name}" for k in KINDS if kinds[k.name])
        self.stdout.write(
            f"{path}: OK: {len(table.routes)} routes ({counts or 'none'}), "
            f"{len(table.upstreams)} upstreams, {len(providers_of(table))} auth providers"
        )
