"""The base of the gateway's middleware: async-only, so Django calls it on the
event loop and never through a thread (gateway/middleware/__init__.py)."""

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
