"""The lean ASGI handler and the middleware stack (gateway/handler.py).

The handler subclasses Django's ASGIHandler and relies on some of its
internals; these tests fail loudly if a Django upgrade moves them."""

from __future__ import annotations

import inspect
import logging

import pytest
from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from gateway.edge.handler import GatewayHandler


def test_django_internals_the_handler_relies_on() -> None:
    assert inspect.iscoroutinefunction(ASGIHandler.send_response)
    assert "receive" in inspect.signature(ASGIHandler.read_body).parameters
    assert hasattr(BaseHandler, "load_middleware")
    handler = GatewayHandler()
    assert inspect.iscoroutinefunction(handler._middleware_chain)  # loaded in async mode


def test_middleware_is_our_own_and_async_only() -> None:
    for path in settings.MIDDLEWARE:
        assert path.startswith("gateway."), path
        cls = import_string(path)
        assert not issubclass(cls, MiddlewareMixin), path
        assert cls.async_capable is True, path
        assert cls.sync_capable is False, path


def test_no_handler_is_adapted_to_sync(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="django.request"), settings_debug():
        GatewayHandler()
    assert not [r for r in caplog.records if "adapted" in r.getMessage()]


def test_request_signal_receivers_are_gone() -> None:
    GatewayHandler()
    assert signals.request_started.receivers == []
    assert signals.request_finished.receivers == []


class settings_debug:
    def __enter__(self) -> None:
        self.previous = settings.DEBUG
        settings.DEBUG = True

    def __exit__(self, *exc: object) -> None:
        settings.DEBUG = self.previous
