"""The team's tier and badge pages: managers add, change and remove tiers, add badges and
give or take them back; analysts only look; members get 403 and outsiders 404."""

from __future__ import annotations

from typing import Any

import pytest

from circolo.core.models import AuditLog
from circolo.loyalty.badges import badges_ensure_defaults
from circolo.loyalty.models import Badge, MemberBadge, MemberTier, Program, Tier
from circolo.testing.factories import IdentityFactory, MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False


def tiers_url(workspace: Any) -> str:
    return f"/w/{workspace.slug}/loyalty/tiers/"


def badges_url(workspace: Any) -> str:
    return f"/w/{workspace.slug}/loyalty/badges/"


TIER = {
    "name": "Oro", "threshold": "500.50", "multiplier_percent": "150", "name_it": "Oro",
    "name_es": "", "name_zh_hans": "金", "perks": "Sconto compleanno", "free_shipping": "on",
}  # fmt: skip


# --------------------------------------------------------------------------- tiers


def test_owner_adds_edits_and_removes_a_tier(workspace, owner) -> None:
    page = owner.client.get(tiers_url(workspace))
    assert page.status_code == 200
    assert 'data-empty="tiers"' in page.content.decode()
    response = owner.client.post(tiers_url(workspace), TIER)
    tier = Tier.objects.get(workspace=workspace)
    assert response.status_code == 302 and response["Location"].endswith(f"#tier-{tier.pk}")
    assert (tier.threshold, tier.multiplier_percent, tier.free_shipping) == (50_050, 150, True)
    assert tier.names == {"it": "Oro", "zh-hans": "金"}
    member = MemberFactory(workspace=workspace)
    MemberTier.objects.create(member=member, workspace=workspace, tier=tier)
    text = owner.client.get(tiers_url(workspace)).content.decode()
    assert "EUR 500.50" in text and 'data-members="1"' in text

    edit = f"{tiers_url(workspace)}{tier.pk}/"
    assert owner.client.get(edit).status_code == 200
    response = owner.client.post(edit, {**TIER, "name": "Gold", "threshold": "600"})
    assert response.status_code == 302
    tier.refresh_from_db()
    assert (tier.name, tier.threshold) == ("Gold", 60_000)
    assert owner.client.post(edit, {"action": "delete"}).status_code == 302
    assert not Tier.objects.filter(workspace=workspace).exists()
    assert list(
        AuditLog.objects.filter(workspace=workspace, action__startswith="loyalty.")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["loyalty.tier_created", "loyalty.tier_updated", "loyalty.tier_deleted"]


def test_tier_form_errors_are_shown(workspace, owner) -> None:
    owner.client.post(tiers_url(workspace), TIER)
    cases = [
        ({**TIER, "multiplier_percent": "50"}, "multiplier_percent"),
        ({**TIER, "threshold": "-1"}, "threshold"),
        ({**TIER, "threshold": "1.234"}, "threshold"),
        ({**TIER, "name": ""}, "name"),
        ({**TIER, "name": "Argento"}, "threshold"),  # the same threshold as Oro
        ({**TIER, "name": "oro", "threshold": "1"}, "name"),  # the same name
    ]
    for data, field in cases:
        response = owner.client.post(tiers_url(workspace), data)
        assert response.status_code == 400, data
        form = response.context["form"]
        assert field in form.errors, (data, form.errors)
        assert "has-error" in response.content.decode()
    assert Tier.objects.filter(workspace=workspace).count() == 1


def test_points_basis_threshold_is_in_points(workspace, owner) -> None:
    Program.objects.create(workspace=workspace, tier_basis=Program.TierBasis.POINTS)
    response = owner.client.post(tiers_url(workspace), {**TIER, "threshold": "2500"})
    assert response.status_code == 302
    assert Tier.objects.get(workspace=workspace).threshold == 2500
    assert "2,500 points" in owner.client.get(tiers_url(workspace)).content.decode()


def test_tier_pages_permissions(workspace, other_workspace, analyst, member_user, outsider):
    tier = Tier.objects.create(workspace=workspace, name="Oro", threshold=1)
    foreign = Tier.objects.create(workspace=other_workspace, name="Other", threshold=1)
    edit = f"{tiers_url(workspace)}{tier.pk}/"
    page = analyst.client.get(tiers_url(workspace))
    assert page.status_code == 200 and 'id="tier-form"' not in page.content.decode()
    assert analyst.client.post(tiers_url(workspace), TIER).status_code == 403
    assert analyst.client.get(edit).status_code == 403
    assert analyst.client.post(edit, {"action": "delete"}).status_code == 403
    assert member_user.client.get(tiers_url(workspace)).status_code == 403
    assert outsider.client.get(tiers_url(workspace)).status_code == 404
    assert outsider.client.post(edit, {"action": "delete"}).status_code == 404
    # A tier of another workspace, asked for under this one.
    owner_of_other = outsider.client
    assert owner_of_other.get(f"{tiers_url(other_workspace)}{tier.pk}/").status_code == 404
    assert owner_of_other.get(f"{tiers_url(other_workspace)}{foreign.pk}/").status_code == 200
    assert Tier.objects.filter(pk=tier.pk).exists()


# --------------------------------------------------------------------------- badges


def test_badges_page_lists_defaults_and_creates_a_manual_badge(workspace, owner) -> None:
    page = owner.client.get(badges_url(workspace))
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count('<tr id="badge-') == 7 and "Top contributor" in text
    response = owner.client.post(
        badges_url(workspace),
        {"form": "create", "name": "Barista", "symbol": "☕", "enabled": "on", "name_it": ""},
    )
    made = Badge.objects.get(workspace=workspace, slug="barista")
    assert response.status_code == 302 and response["Location"].endswith(f"#badge-{made.pk}")
    assert made.rule == "manual" and made.enabled
    response = owner.client.post(
        badges_url(workspace), {"form": "create", "name": "barista", "symbol": "B"}
    )
    assert response.status_code == 400
    assert "name" in response.context["create_form"].errors


def test_grant_and_revoke_through_the_page(workspace, owner) -> None:
    badges_ensure_defaults(workspace_id=workspace.pk)
    ambassador = Badge.objects.get(workspace=workspace, slug="ambassador")
    member = MemberFactory(workspace=workspace)
    IdentityFactory(member=member, value="ada@example.com")
    grant = {"form": "grant", "badge": ambassador.pk, "member": "ada@example.com",
             "action": "grant", "note": "Grazie"}  # fmt: skip
    assert owner.client.post(badges_url(workspace), grant).status_code == 302
    holding = MemberBadge.objects.get(member=member, badge=ambassador)
    assert holding.note == "Grazie" and holding.granted_by == owner.user
    assert 'data-holders="1"' in owner.client.get(badges_url(workspace)).content.decode()

    again = owner.client.post(badges_url(workspace), grant)
    assert again.status_code == 400
    assert "member" in again.context["grant_form"].errors
    nobody = owner.client.post(badges_url(workspace), {**grant, "member": "nobody@example.com"})
    assert nobody.status_code == 400 and "member" in nobody.context["grant_form"].errors
    wrong = owner.client.post(badges_url(workspace), {**grant, "badge": "999999"})
    assert wrong.status_code == 400 and "badge" in wrong.context["grant_form"].errors

    revoke = {**grant, "member": str(member.pk), "action": "revoke"}
    assert owner.client.post(badges_url(workspace), revoke).status_code == 302
    assert not MemberBadge.objects.filter(member=member).exists()
    actions = AuditLog.objects.filter(workspace=workspace, action__startswith="loyalty.badge")
    assert sorted(actions.values_list("action", flat=True)) == [
        "loyalty.badge_granted",
        "loyalty.badge_revoked",
    ]


def test_badge_edit_page(workspace, owner) -> None:
    badges_ensure_defaults(workspace_id=workspace.pk)
    helpful = Badge.objects.get(workspace=workspace, slug="helpful-10")
    url = f"{badges_url(workspace)}{helpful.pk}/"
    page = owner.client.get(url)
    assert page.status_code == 200 and 'data-empty="holders"' in page.content.decode()
    data = {"name": "Helpful", "symbol": "H", "threshold": "5", "enabled": ""}
    assert owner.client.post(url, data).status_code == 302
    helpful.refresh_from_db()
    assert (helpful.threshold, helpful.enabled, helpful.symbol) == (5, False, "H")
    bad = owner.client.post(url, {**data, "threshold": "0"})
    assert bad.status_code == 400 and "threshold" in bad.context["form"].errors


def test_badge_pages_permissions(workspace, other_workspace, analyst, member_user, outsider):
    badges_ensure_defaults(workspace_id=workspace.pk)
    ambassador = Badge.objects.get(workspace=workspace, slug="ambassador")
    member = MemberFactory(workspace=workspace)
    grant = {"form": "grant", "badge": ambassador.pk, "member": str(member.pk),
             "action": "grant"}  # fmt: skip
    page = analyst.client.get(badges_url(workspace))
    assert page.status_code == 200 and 'id="grant-form"' not in page.content.decode()
    assert analyst.client.post(badges_url(workspace), grant).status_code == 403
    assert analyst.client.get(f"{badges_url(workspace)}{ambassador.pk}/").status_code == 403
    assert member_user.client.get(badges_url(workspace)).status_code == 403
    assert outsider.client.get(badges_url(workspace)).status_code == 404
    assert outsider.client.post(badges_url(workspace), grant).status_code == 404
    # Another workspace's owner cannot reach this workspace's badge through their own.
    assert outsider.client.get(f"{badges_url(other_workspace)}{ambassador.pk}/").status_code == 404
    # Nor give a badge to a member of this workspace from there.
    badges_ensure_defaults(workspace_id=other_workspace.pk)
    theirs = Badge.objects.get(workspace=other_workspace, slug="ambassador")
    response = outsider.client.post(badges_url(other_workspace), {**grant, "badge": theirs.pk})
    assert response.status_code == 400
    assert not MemberBadge.objects.exists()
