"""URLs: the operational endpoints, then every other path to the route view."""

from django.urls import path, re_path

from gateway.edge import views

urlpatterns = [
    # First, so that routed paths (nearly all traffic) match at the first try.
    re_path(r"^(?!(?:healthz|readyz|metrics)$|_gateway/)", views.no_route),
    path("healthz", views.healthz),
    path("readyz", views.readyz),
    path("metrics", views.not_on_this_port),  # the admin listener serves it
    path("_gateway/openapi.json", views.openapi_json),
    path("_gateway/docs", views.api_docs),
    path("_gateway/docs/<str:name>", views.api_docs_asset),
]
