from django.urls import path

from bench import views

urlpatterns = [
    path("drf", views.StaticProductView.as_view()),
    path("bare-order", views.BareOrderView.as_view()),
]
