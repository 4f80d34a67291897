from django.urls import path

from . import event_views, safety_views, staff_views, team_views

app_name = "community_staff"

urlpatterns = [
    path("community/spaces/", staff_views.space_list, name="space_list"),
    path("community/moderation/", staff_views.moderation_queue, name="moderation"),
    path("community/watched-words/", safety_views.watched_words, name="watched_words"),
    path(
        "community/watched-words/<int:word_id>/delete/",
        safety_views.watched_word_delete,
        name="watched_word_delete",
    ),
    path(
        "community/members/<int:member_id>/",
        safety_views.member_safety,
        name="member_safety",
    ),
    path("community/events/", event_views.staff_event_list, name="event_list"),
    path("community/events/<int:event_id>/", event_views.staff_event_detail, name="event_detail"),
    path("community/events/<int:event_id>/edit/", event_views.staff_event_edit, name="event_edit"),
    path(
        "community/events/<int:event_id>/cancel/",
        event_views.staff_event_cancel,
        name="event_cancel",
    ),
    path(
        "community/events/<int:event_id>/check-in/",
        event_views.staff_event_check_in,
        name="event_check_in",
    ),
    path("community/calendar/", team_views.calendar_view, name="calendar"),
]
