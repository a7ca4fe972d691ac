"""Routes of the ceiling project."""

from django.urls import path

from bench.ceiling import views

urlpatterns = [
    path("drf", views.StaticJsonView.as_view()),
    path("bare-order", views.BareOrderView.as_view()),
]
