"""Reference peers for make bench: what the gateway is measured against."""

from __future__ import annotations

import os

import django
from django.conf import settings

__all__ = ["UPSTREAMS", "configure_django"]

UPSTREAMS = os.environ.get("PEER_UPSTREAMS", "").split(",")


def configure_django(urlconf: str) -> None:
    """The smallest Django a peer view needs: no apps, middleware or database."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=urlconf,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
    )
    django.setup()
