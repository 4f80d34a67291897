from django.urls import URLPattern, path

from circolo.insights import views

app_name = "insights"

urlpatterns: list[URLPattern] = [
    path("", views.home, name="home"),
]
