"""The team's loyalty pages, under /w/<slug>/loyalty/."""

from django.urls import URLPattern, path

from circolo.loyalty import (
    dispute_views,
    referral_staff_views,
    reward_views,
    rule_views,
    staff_views,
    tier_views,
)

app_name = "loyalty_staff"

urlpatterns: list[URLPattern] = [
    path("loyalty/", staff_views.program_home, name="home"),
    path("loyalty/rules/", rule_views.rules_page, name="rules"),
    path("loyalty/settings/", rule_views.settings_page, name="settings"),
    path("loyalty/rewards/", reward_views.reward_list, name="rewards"),
    path("loyalty/rewards/<int:reward_id>/", reward_views.reward_edit, name="reward_edit"),
    path("loyalty/finance/", staff_views.finance, name="finance"),
    path("loyalty/disputes/", dispute_views.staff_disputes, name="disputes"),
    path(
        "loyalty/disputes/<int:dispute_id>/",
        dispute_views.staff_dispute_resolve,
        name="dispute_resolve",
    ),
    path("loyalty/tiers/", tier_views.tier_list, name="tiers"),
    path("loyalty/tiers/<int:tier_id>/", tier_views.tier_edit, name="tier_edit"),
    path("loyalty/badges/", tier_views.badge_list, name="badges"),
    path("loyalty/badges/<int:badge_id>/", tier_views.badge_edit, name="badge_edit"),
    path("loyalty/referrals/", referral_staff_views.referral_list, name="referrals"),
    path("loyalty/ambassadors/", referral_staff_views.ambassador_list, name="ambassadors"),
]
