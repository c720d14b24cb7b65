"""ASGI entry: `uvicorn config.asgi:application`.

Loads settings and the routes file before uvicorn listens: a bad setting or an
invalid routes file prints its problems on stderr and exits non-zero.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from gateway.edge.boot import build_application

application = build_application()
