"""The Django app. Loading the routes file is the ASGI entry's job (config/asgi.py),
so that management commands such as `check_routes` work on any file, valid or not."""

from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    default = True
