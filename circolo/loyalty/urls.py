"""A member's rewards pages, under /c/<slug>/rewards/."""

from django.urls import URLPattern, path

from circolo.loyalty import dispute_views, referral_views, views

app_name = "loyalty"

urlpatterns: list[URLPattern] = [
    path("", views.rewards_home, name="rewards"),
    path("history/", views.history, name="history"),
    path("history/<int:movement_id>/dispute/", dispute_views.dispute_new, name="dispute"),
    path("disputes/", dispute_views.dispute_list, name="disputes"),
    path("redeem/<int:reward_id>/", views.redeem, name="redeem"),
    path("birthday/", views.birthday, name="birthday"),
    path("invite/<str:code>/", referral_views.invite, name="invite"),
    path("referrals/", referral_views.referrals_page, name="referrals"),
    path("ambassador/", referral_views.ambassador_page, name="ambassador"),
]
