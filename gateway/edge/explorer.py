"""/_gateway/docs: an API explorer for the routed API, on the client port.

Swagger UI, from the drf-spectacular-sidecar package (its distribution files,
kept current by that package), over /_gateway/openapi.json; "try it out"
calls this gateway, same origin. Everything comes from this listener: the
page, Swagger UI's script and style, and the few lines that start it
(gateway/static/gateway/explorer.js). So the page's policy admits no inline
script or style and nothing from elsewhere (`script-src 'self'`), may not be
framed, and its files are read once, then kept in memory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from django.http import HttpResponse
from django.template.loader import render_to_string

from gateway.errors import problem_response

__all__ = ["POLICY", "explorer_asset", "explorer_page"]

POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
_SWAGGER = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
_OURS = {"explorer.js": Path(__file__).resolve().parent.parent / "static" / "gateway"}
_CACHE: dict[str, bytes] = {}


def _guard(response: HttpResponse) -> HttpResponse:
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def explorer_page() -> HttpResponse:
    if "" not in _CACHE:
        _CACHE[""] = render_to_string("gateway/apidocs.html", {"title": "Gateway"}).encode()
    response = HttpResponse(_CACHE[""], content_type="text/html; charset=utf-8")
    response.headers["Content-Length"] = str(len(_CACHE[""]))
    return _guard(response)


def _read(name: str) -> bytes | None:
    if name in _OURS:
        return (_OURS[name] / name).read_bytes()
    if name in _SWAGGER:
        dist = resources.files("drf_spectacular_sidecar") / "static" / "drf_spectacular_sidecar"
        return (dist / "swagger-ui-dist" / name).read_bytes()
    return None


def explorer_asset(name: str, request_id: str) -> HttpResponse:
    content = _CACHE.get(name)
    if content is None:
        content = _read(name)
        if content is None:
            return problem_response(404, "no such file", request_id=request_id)
        _CACHE[name] = content
    response = HttpResponse(content, content_type=_TYPES[Path(name).suffix])
    response.headers["Content-Length"] = str(len(content))
    response.headers["Cache-Control"] = "public, max-age=3600"
    return _guard(response)
