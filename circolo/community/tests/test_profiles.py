"""Profiles and product pages: what they show, and that they never show a private space."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from circolo.community.models import CommunityProfile
from circolo.community.profiles import ProfileError, profile_ensure, profile_update
from circolo.community.services import (
    answer_accept,
    member_for_user,
    reply_create,
    space_create,
    thread_create,
)
from circolo.testing.factories import MemberFactory, UserFactory
from circolo.testing.people_factories import MemberTagFactory

pytestmark = pytest.mark.django_db


def test_handles_are_unique_and_follow_the_name(workspace: Any) -> None:
    first = profile_ensure(MemberFactory(workspace=workspace, display_name="Giulia Rossi"))
    second = profile_ensure(MemberFactory(workspace=workspace, display_name="Giulia Rossi"))
    chinese = profile_ensure(MemberFactory(workspace=workspace, display_name="王芳"))
    nameless = profile_ensure(MemberFactory(workspace=workspace, display_name=""))
    assert (first.handle, second.handle) == ("giulia_rossi", "giulia_rossi2")
    assert chinese.handle == "王芳" and nameless.handle == "member"
    assert profile_ensure(first.member).pk == first.pk


def test_profile_update_checks_its_input(workspace: Any) -> None:
    giulia = MemberFactory(workspace=workspace, display_name="Giulia")
    luca = MemberFactory(workspace=workspace, display_name="Luca")
    profile_ensure(luca)
    with pytest.raises(ProfileError, match="already uses"):
        profile_update(member=giulia, handle="LUCA")
    for bad in ("due parole", "", "a" * 41, "<b>"):
        with pytest.raises(ProfileError):
            profile_update(member=giulia, handle=bad)
    with pytest.raises(ProfileError, match="at most"):
        profile_update(member=giulia, bio="x" * 1001)
    profile = profile_update(member=giulia, handle="@giu.lia", bio=" Ciao ", show_products=True)
    assert (profile.handle, profile.bio, profile.show_products) == ("giu.lia", "Ciao", True)


def test_profile_page_shows_only_what_the_viewer_may_read(workspace: Any) -> None:
    public = space_create(workspace=workspace, actor=None, name="Domande")
    vip = space_create(workspace=workspace, actor=None, name="VIP", visibility="segment",
                       segment={"tags": ["vip"]})  # fmt: skip
    giulia = MemberTagFactory(member=MemberFactory(workspace=workspace, display_name="Giulia"),
                              tag="vip").member  # fmt: skip
    asker = MemberFactory(workspace=workspace)
    question = thread_create(
        space=public, author=asker, title="Quanto caffè?", body="?", kind="question"
    )
    answer = reply_create(thread=question, author=giulia, body="Due cucchiai")
    answer_accept(thread=question, post=answer, actor=asker)
    thread_create(space=vip, author=giulia, title="Segreto dei VIP", body="shh")
    handle = profile_ensure(giulia).handle
    page = Client().get(f"/c/{workspace.slug}/u/{handle}/").content.decode()
    assert "Quanto caffè?" in page and "Segreto dei VIP" not in page
    assert 'id="profile-answers"' in page
    assert "Products owned" not in page  # not allowed by the member
    assert Client().get(f"/c/{workspace.slug}/u/nobody/").status_code == 404


def test_other_workspace_and_erased_members_have_no_profile(
    workspace: Any, other_workspace: Any
) -> None:
    member = MemberFactory(workspace=workspace, display_name="Giulia")
    handle = profile_ensure(member).handle
    assert Client().get(f"/c/{other_workspace.slug}/u/{handle}/").status_code == 404
    member.erased_at = member.created_at
    member.save()
    assert Client().get(f"/c/{workspace.slug}/u/{handle}/").status_code == 404


def test_edit_my_profile(workspace: Any) -> None:
    client = Client()
    user = UserFactory(email="giulia@example.com")
    client.force_login(user)
    url = f"/c/{workspace.slug}/me/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"handle": "due parole", "bio": ""})
    assert response.status_code == 400 and "no spaces" in response.content.decode()
    response = client.post(url, {"handle": "giulia", "bio": "Amo la moka", "show_products": "on"})
    assert response.status_code == 302 and response["Location"].endswith("/u/giulia/")
    member = member_for_user(workspace=workspace, user=user)
    assert CommunityProfile.objects.get(member=member).bio == "Amo la moka"
    own = client.get(f"/c/{workspace.slug}/u/giulia/").content.decode()
    assert "Edit my profile" in own and "No products bought" in own
    assert Client().get(url).status_code == 302  # signed out: to the sign-in page


def test_product_page_lists_readable_threads(workspace: Any) -> None:
    from circolo.testing.commerce import make_store

    store = make_store(workspace)
    from circolo.commerce.models import Product, ProductVariant

    product = Product.objects.create(
        workspace=workspace, store=store, external_id="1", title="Moka 3 tazze",
        titles={"it": "Moka da 3"},
    )  # fmt: skip
    for sku in ("MOKA-3", "MOKA-3-RED"):
        ProductVariant.objects.create(
            workspace=workspace, store=store, product=product, external_id=sku, sku=sku,
            currency="EUR",
        )  # fmt: skip
    public = space_create(workspace=workspace, actor=None, name="Domande")
    club = space_create(workspace=workspace, actor=None, name="Club", visibility="members")
    author = MemberFactory(workspace=workspace)
    thread_create(space=public, author=author, title="Guarnizione rossa", body="?",
                  skus=["MOKA-3-RED"])  # fmt: skip
    thread_create(space=club, author=author, title="Solo soci", body="?", skus=["MOKA-3"])
    thread_create(space=public, author=author, title="Altro", body="?", skus=["MOKA-33"])
    page = Client().get(f"/c/{workspace.slug}/products/MOKA-3/", HTTP_ACCEPT_LANGUAGE="it")
    text = page.content.decode()
    assert page.status_code == 200 and "Guarnizione rossa" in text
    assert "Solo soci" not in text and "Altro" not in text
    assert Client().get(f"/c/{workspace.slug}/products/NOPE/").status_code == 404


def test_quote_button_fills_the_reply_box(workspace: Any) -> None:
    space = space_create(workspace=workspace, actor=None, name="Domande")
    giulia = MemberFactory(workspace=workspace, display_name="Giulia")
    thread = thread_create(space=space, author=giulia, title="Moka", body="Riga uno\nRiga due")
    client = Client()
    client.force_login(UserFactory(email="luca@example.com"))
    page = client.get(f"/c/{workspace.slug}/t/{thread.pk}/").content.decode()
    assert "?quote=1#reply-title" in page
    page = client.get(f"/c/{workspace.slug}/t/{thread.pk}/?quote=1").content.decode()
    assert f"&gt; @giulia [#1](/c/{workspace.slug}/t/{thread.pk}/#post-1)" in page
    assert "&gt; Riga due" in page
    # A post that is not there quotes nothing.
    page = client.get(f"/c/{workspace.slug}/t/{thread.pk}/?quote=9").content.decode()
    assert "&gt; @giulia" not in page


def test_follow_button_on_profiles(workspace: Any) -> None:
    giulia = MemberFactory(workspace=workspace, display_name="Giulia")
    handle = profile_ensure(giulia).handle
    client = Client()
    client.force_login(UserFactory(email="luca@example.com"))
    page = client.get(f"/c/{workspace.slug}/u/{handle}/").content.decode()
    assert 'id="follow-member"' in page and "Follow @giulia" in page
    client.post(f"/c/{workspace.slug}/u/{handle}/follow/", {"action": "follow"})
    page = client.get(f"/c/{workspace.slug}/u/{handle}/").content.decode()
    assert "Following: stop" in page
    assert (
        'id="follow-member"'
        not in Client().get(f"/c/{workspace.slug}/u/{handle}/").content.decode()
    )
