"""Store pages and the member orders panel; included by circolo/urls.py under w/<slug>/."""

from django.urls import URLPattern, URLResolver, include, path

from circolo.commerce import views

app_name = "commerce"

urlpatterns: list[URLPattern | URLResolver] = [
    path("stores/", views.store_list, name="store_list"),
    path("stores/connect/", views.store_connect, name="store_connect"),
    path("stores/connect/<slug:platform>/", views.store_new, name="store_new"),
    path("stores/<int:store_id>/", views.store_health_view, name="store_health"),
    path("stores/<int:store_id>/setup/", views.store_setup, name="store_setup"),
    path(
        "stores/<int:store_id>/test-delivery/",
        views.store_test_delivery,
        name="store_test_delivery",
    ),
    path("stores/<int:store_id>/sync/", views.store_sync_view, name="store_sync"),
    path(
        "stores/<int:store_id>/deliveries/<int:delivery_id>/replay/",
        views.delivery_replay_view,
        name="delivery_replay",
    ),
    path("stores/<int:store_id>/edit/", views.store_edit, name="store_edit"),
    path("stores/<int:store_id>/secret/", views.store_secret_rotate, name="store_secret"),
    path("stores/<int:store_id>/status/", views.store_status, name="store_status"),
    path("stores/<int:store_id>/imports/", include("circolo.commerce.import_urls")),
    path("members/<int:member_id>/orders/", views.member_orders_view, name="member_orders"),
]
