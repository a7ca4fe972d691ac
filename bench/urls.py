from django.urls import path

from bench import views

urlpatterns = [
    path("drf", views.StaticProductView.as_view()),
]
