"""The pre-async baseline for make bench: a Django sync view calling three
upstreams one after another, under gunicorn with 4 sync workers.

    PEER_UPSTREAMS=... gunicorn -w 4 bench.peers.syncview:application
"""

from __future__ import annotations

import httpx
from django.http import JsonResponse
from django.urls import path

from bench.peers import UPSTREAMS, configure_django

_client = httpx.Client(timeout=30, trust_env=False)


def aggregate(request: object, delay: int = 0) -> JsonResponse:
    prefix = f"/delay/{delay}" if delay else ""
    bodies = [
        _client.get(f"{base}{prefix}/users/{i}").json() for i, base in enumerate(UPSTREAMS, 1)
    ]
    return JsonResponse(dict(zip("abc", bodies, strict=False)))


def aggregate_slow(request: object) -> JsonResponse:
    return aggregate(request, delay=50)


configure_django(__name__)
urlpatterns = [path("fast3", aggregate), path("slow3", aggregate_slow)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
