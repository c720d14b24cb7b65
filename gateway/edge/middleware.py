"""The gateway's middleware: async-only, small, one concern each.

Django's stock middleware (and anything built on `MiddlewareMixin`) runs its
hooks on a thread under ASGI; none of it is used. Each class here sets
`async_capable = True`, `sync_capable = False` and marks itself a coroutine
function, so Django calls it directly on the event loop. None of them raises:
exceptions become problem+json where they happen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase

__all__ = ["AsyncMiddleware", "GetResponse"]

type GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class AsyncMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError
