#!/usr/bin/env python
"""Django's command-line utility: `python manage.py check_routes [PATH]`."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:  # a bad setting: say which, no traceback
        text = str(exc)
        sys.stderr.write((text if text.startswith("setting ") else f"setting: {text}") + "\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
