from django.urls import URLPattern, path

from circolo.people import privacy_views, views

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

# Privacy: a member's export and erasure, and the workspace's privacy requests.
urlpatterns += [
    path("members/<int:member_id>/privacy/", privacy_views.member_privacy, name="member_privacy"),
    path(
        "members/<int:member_id>/privacy/export/",
        privacy_views.member_privacy_export,
        name="member_privacy_export",
    ),
    path(
        "members/<int:member_id>/privacy/erase/",
        privacy_views.member_erase_view,
        name="member_erase",
    ),
    path("privacy/requests/", privacy_views.data_request_list, name="data_request_list"),
    path(
        "privacy/requests/<int:request_id>/download/",
        privacy_views.data_request_download,
        name="data_request_download",
    ),
]
