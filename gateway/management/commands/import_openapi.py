"""`manage.py import_openapi FILE --upstream NAME [--prefix /api] [-o routes.yaml]
[--schemas NAME.json]`: one proxy route per operation of an upstream's
OpenAPI 3.0/3.1 document, each with `validate` from what the operation
declares (gateway/openapi_import.py). Printed as a YAML list to paste under
`routes:` (a comment above it says the upstream to add), or with `-o`
written as a whole routes file (version, the upstream, the routes);
operations that cannot be routes are listed on stderr. An unreadable or
invalid document is one `FILE: message` line and exit status 1. With
`--schemas`, the document's component schemas are written once into that
file (beside the routes file) and referenced, instead of inlined per route:
for large documents (GitHub's 1,300 operations).
"""

from __future__ import annotations

import json
import re
from argparse import ArgumentParser
from pathlib import Path
from typing import Any, NoReturn

import yaml
from django.core.management.base import BaseCommand

from gateway.openapi_import import OpenApiImportError, import_openapi

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: large documents in seconds
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}")


class Command(BaseCommand):
    help = "Print a routes file of proxy routes, with validation, from an OpenAPI 3.0/3.1 document."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE", help="the OpenAPI document (YAML or JSON)")
        parser.add_argument(
            "--upstream", required=True, help="the upstream's name in the routes file"
        )
        parser.add_argument("--prefix", default="", help="a path prefix for every route (/api)")
        parser.add_argument(
            "-o", "--output", metavar="ROUTES_FILE", help="write the routes file here"
        )
        parser.add_argument(
            "--schemas",
            metavar="FILE",
            help="write the component schemas into this file beside the routes file, referenced",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = Path(options["file"])
        upstream = options["upstream"]
        if not _NAME.fullmatch(upstream or ""):
            self._fail(f"--upstream {upstream!r}: a name of letters, digits, _ . : -")
        spec = self._read(source)
        try:
            imported = import_openapi(
                spec, upstream, prefix=options["prefix"], schemas_file=options["schemas"]
            )
        except OpenApiImportError as exc:
            self._fail(f"{source}: {exc}")
        routes = imported.document["routes"]
        info = spec.get("info")
        info = info if isinstance(info, dict) else {}
        origin = imported.document["upstreams"][upstream]["url"]
        header = (
            f"# {len(routes)} routes from {info.get('title', 'an OpenAPI document')} "
            f"{info.get('version', '')} (manage.py import_openapi {source.name}), for the\n"
            f'# upstream {upstream!r}: upstreams: {{{upstream}: {{url: "{origin}"}}}}\n'
        )
        for line in imported.skipped:
            self.stderr.write(f"skipped {line}")
        output = options["output"]
        if options["schemas"]:
            directory = Path(output).parent if output else Path.cwd()
            target = directory / options["schemas"]
            target.write_text(json.dumps({"$defs": imported.defs}, indent=1) + "\n")
            self.stderr.write(f"wrote {target}")
        if output:  # a whole routes file: version, the upstream, the routes
            text = "# Every key: docs/routes.md\n" + header + _dump(imported.document)
            Path(output).write_text(text)
            self.stderr.write(f"wrote {output} ({len(routes)} routes)")
        else:  # the list, to paste under `routes:`
            self.stdout.write(header + (_dump(routes) if routes else "[]\n"), ending="")

    def _read(self, source: Path) -> dict[str, Any]:
        try:
            with source.open("rb") as handle:
                spec = yaml.load(handle, Loader=_Loader)  # noqa: S506 (a safe loader)
        except OSError as exc:
            self._fail(f"{source}: cannot read it: {exc.strerror}")
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "not valid YAML or JSON"
            self._fail(f"{source}{line}: {problem}")
        if not isinstance(spec, dict):
            self._fail(f"{source}: not an OpenAPI document (expected a mapping at the top)")
        return spec

    def _fail(self, line: str) -> NoReturn:
        """One `FILE: message` line on stderr, exit status 1, no traceback."""
        self.stderr.write(line)
        raise SystemExit(1)


def _dump(value: Any) -> str:
    return str(yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100))
