from django.urls import path

from . import staff_views

app_name = "community_staff"

urlpatterns = [
    path("community/spaces/", staff_views.space_list, name="space_list"),
]
