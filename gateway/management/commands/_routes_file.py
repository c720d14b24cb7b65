"""What the routes-file commands share: the optional PATH argument and
loading it, every problem printed as PATH:LINE: message and exit 1."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import OutputWrapper

from gateway.registry import load_route_table
from gateway.routes import RoutesFileError
from gateway.routes.model import RouteTable

__all__ = ["add_path_argument", "load_or_exit"]


def add_path_argument(parser: ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        metavar="ROUTES_FILE",
        help="the routes file to read (default: the ROUTES_FILE setting, routes.yaml)",
    )


def load_or_exit(options: dict[str, Any], out: OutputWrapper) -> tuple[str, RouteTable]:
    path = options["path"] or str(settings.ROUTES_FILE)
    try:
        return path, load_route_table(path)
    except RoutesFileError as exc:
        for line in exc.lines():
            out.write(line)
        raise SystemExit(1) from None
