from django.urls import path

from . import (
    draft_views,
    event_views,
    feeds,
    join_views,
    notification_views,
    profile_views,
    search_views,
    team_views,
    upload_views,
    views,
)

app_name = "community"

urlpatterns = [
    path("", views.community_home, name="home"),
    path("search/", search_views.search_view, name="search"),
    path("s/<slug:space_slug>/", views.space_detail, name="space"),
    path("s/<slug:space_slug>/new/", views.thread_new, name="thread_new"),
    path("t/<int:thread_id>/", views.thread_detail, name="thread"),
    path("t/<int:thread_id>/reply/", views.reply_post, name="reply"),
    path("t/<int:thread_id>/read/", views.thread_read, name="read"),
    path("t/<int:thread_id>/manage/", team_views.thread_manage_view, name="thread_manage"),
    path("p/<int:post_id>/react/", views.post_react, name="react"),
    path("p/<int:post_id>/accept/", views.post_accept, name="accept"),
    path("p/<int:post_id>/flag/", views.post_flag_view, name="flag"),
    path("p/<int:post_id>/edit/", views.post_edit_view, name="edit"),
    path("uploads/", upload_views.upload_create, name="upload_new"),
    path("events/", event_views.events_list, name="events"),
    path("events/<int:event_id>/", event_views.event_detail, name="event"),
    path("events/<int:event_id>/rsvp/", event_views.event_rsvp, name="event_rsvp"),
    path("events/<int:event_id>/event.ics", event_views.event_ics_view, name="event_ics"),
    path("polls/<int:poll_id>/vote/", event_views.poll_vote_view, name="poll_vote"),
    path("polls/<int:poll_id>/close/", event_views.poll_close_view, name="poll_close"),
    path("drafts/", draft_views.draft_view, name="draft"),
    path("notifications/", notification_views.notifications_list, name="notifications"),
    path(
        "notifications/read/", notification_views.notifications_read_all, name="notifications_read"
    ),
    path(
        "notifications/settings/",
        notification_views.notification_settings,
        name="notification_settings",
    ),
    path(
        "notifications/<int:notification_id>/",
        notification_views.notification_open,
        name="notification",
    ),
    path(
        "notifications/unsubscribe/<str:token>/",
        notification_views.unsubscribe,
        name="unsubscribe",
    ),
    path("bookmarks/", notification_views.bookmarks_list, name="bookmarks"),
    path("t/<int:thread_id>/follow/", notification_views.follow_thread, name="follow_thread"),
    path("s/<slug:space_slug>/follow/", notification_views.follow_space, name="follow_space"),
    path("u/<str:handle>/follow/", notification_views.follow_member, name="follow_member"),
    path("p/<int:post_id>/bookmark/", notification_views.post_bookmark, name="bookmark"),
    path("u/<str:handle>/", profile_views.profile_view, name="profile"),
    path("me/", profile_views.profile_edit, name="profile_edit"),
    path("join/", join_views.join_view, name="join"),
    path("feed/", feeds.ThreadsFeed(), name="feed"),
    path("s/<slug:space_slug>/feed/", feeds.ThreadsFeed(), name="space_feed"),
    path("welcome/", join_views.welcome_view, name="welcome"),
    path("products/<str:sku>/", profile_views.product_threads, name="product"),
    path("uploads/<str:name>", upload_views.upload_serve, name="upload"),
]
