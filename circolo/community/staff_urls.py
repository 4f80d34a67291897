from django.urls import path

from . import staff_views

app_name = "community_staff"

urlpatterns = [
    path("community/spaces/", staff_views.space_list, name="space_list"),
    path("community/moderation/", staff_views.moderation_queue, name="moderation"),
]
