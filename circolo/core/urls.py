from django.urls import URLPattern, path

from circolo.core import views

app_name = "core"

urlpatterns: list[URLPattern] = [
    path("", views.workspace_list, name="workspace_list"),
    path("workspaces/new/", views.workspace_create_view, name="workspace_create"),
    path("invite/<str:token>/", views.invitation_accept_view, name="invitation_accept"),
    path("w/<slug:slug>/settings/", views.workspace_settings, name="workspace_settings"),
    path("w/<slug:slug>/settings/audit/", views.audit_log, name="audit_log"),
    path(
        "w/<slug:slug>/settings/team/<int:user_id>/role/",
        views.role_update,
        name="role_update",
    ),
    path(
        "w/<slug:slug>/settings/team/<int:user_id>/remove/",
        views.role_remove_view,
        name="role_remove",
    ),
    path(
        "w/<slug:slug>/settings/invitations/",
        views.invitation_create_view,
        name="invitation_create",
    ),
    path(
        "w/<slug:slug>/settings/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path(
        "w/<slug:slug>/settings/weights/<str:kind>/",
        views.kind_weight_update,
        name="kind_weight_update",
    ),
    path("w/<slug:slug>/settings/api-keys/", views.apikey_create_view, name="apikey_create"),
    path(
        "w/<slug:slug>/settings/api-keys/<int:key_id>/revoke/",
        views.apikey_revoke_view,
        name="apikey_revoke",
    ),
]
