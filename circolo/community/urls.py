from django.urls import path

from . import draft_views, profile_views, upload_views, views

app_name = "community"

urlpatterns = [
    path("", views.community_home, name="home"),
    path("s/<slug:space_slug>/", views.space_detail, name="space"),
    path("s/<slug:space_slug>/new/", views.thread_new, name="thread_new"),
    path("t/<int:thread_id>/", views.thread_detail, name="thread"),
    path("t/<int:thread_id>/reply/", views.reply_post, name="reply"),
    path("p/<int:post_id>/react/", views.post_react, name="react"),
    path("p/<int:post_id>/accept/", views.post_accept, name="accept"),
    path("p/<int:post_id>/flag/", views.post_flag_view, name="flag"),
    path("p/<int:post_id>/edit/", views.post_edit_view, name="edit"),
    path("uploads/", upload_views.upload_create, name="upload_new"),
    path("drafts/", draft_views.draft_view, name="draft"),
    path("u/<str:handle>/", profile_views.profile_view, name="profile"),
    path("me/", profile_views.profile_edit, name="profile_edit"),
    path("products/<str:sku>/", profile_views.product_threads, name="product"),
    path("uploads/<str:name>", upload_views.upload_serve, name="upload"),
]
