from django.urls import URLPattern, path

from circolo.people import views

app_name = "people"

urlpatterns: list[URLPattern] = [
    path("members/", views.member_list_view, name="member_list"),
    path("members/export.csv", views.member_export, name="member_export"),
    path("members/<int:member_id>/", views.member_detail, name="member_detail"),
    path("members/<int:member_id>/edit/", views.member_edit_view, name="member_edit"),
    path("members/<int:member_id>/tags/add/", views.member_tag_add_view, name="member_tag_add"),
    path(
        "members/<int:member_id>/tags/remove/",
        views.member_tag_remove_view,
        name="member_tag_remove",
    ),
    path(
        "members/<int:member_id>/suggestions/<int:suggestion_id>/accept/",
        views.suggestion_accept,
        name="suggestion_accept",
    ),
    path(
        "members/<int:member_id>/suggestions/<int:suggestion_id>/reject/",
        views.suggestion_reject,
        name="suggestion_reject",
    ),
    path(
        "members/<int:member_id>/merges/<int:record_id>/undo/",
        views.merge_undo_view,
        name="merge_undo",
    ),
]
