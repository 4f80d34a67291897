from django.urls import URLResolver, path

from circolo.api.api import api

urlpatterns: list[URLResolver] = [
    path("v1/", api.urls),
]
