"""URLs: the operational endpoints, then every other path to the route view."""

from django.urls import path, re_path

from gateway import views

urlpatterns = [
    path("healthz", views.healthz),
    path("readyz", views.readyz),
    path("metrics", views.metrics),
    re_path(r"", views.route_view),
]
