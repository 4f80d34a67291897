"""The community's sign-in page offers email and the configured social accounts; a new
member lands on the welcome thread."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from circolo.community.models import CommunityProfile
from circolo.community.services import space_create, thread_create
from circolo.core.models import Role, WorkspaceRole
from circolo.testing.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_join_page_offers_email_and_configured_providers(workspace: Any, settings: Any) -> None:
    page = Client().get(f"/c/{workspace.slug}/join/").content.decode()
    assert "/accounts/signup/?next=/c/bottega/welcome/" in page
    assert "provider-google" not in page
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {"APPS": [{"client_id": "id-123", "secret": "s", "key": ""}]}
    }
    page = Client().get(f"/c/{workspace.slug}/join/?next=/c/bottega/t/1/").content.decode()
    assert "provider-google" in page and "Continue with Google" in page
    assert "next=/c/bottega/welcome/%3Fnext%3D/c/bottega/t/1/" in page
    # An address on another site is not followed.
    page = Client().get(f"/c/{workspace.slug}/join/?next=https://evil.test/").content.decode()
    assert "welcome/%3Fnext%3Dhttps" not in page and 'next=/c/bottega/welcome/"' in page
    assert Client().get("/c/nowhere/join/").status_code == 404


def test_welcome_joins_and_lands_on_the_welcome_thread(workspace: Any) -> None:
    space = space_create(workspace=workspace, actor=None, name="Benvenuti")
    club = space_create(workspace=workspace, actor=None, name="VIP", visibility="segment",
                        segment={"tags": ["vip"]})  # fmt: skip
    team = MemberFactory(workspace=workspace)
    welcome = thread_create(space=space, author=team, title="Benvenuti!", body="Presentati",
                            tags=["welcome"])  # fmt: skip
    MemberFactory(workspace=workspace)
    client = Client()
    user = UserFactory(email="nuova@example.com")
    client.force_login(user)
    response = client.get(f"/c/{workspace.slug}/welcome/")
    assert response.status_code == 302
    assert response["Location"] == f"/c/{workspace.slug}/t/{welcome.pk}/"
    assert WorkspaceRole.objects.get(workspace=workspace, user=user).role == Role.MEMBER
    assert CommunityProfile.objects.filter(member__user=user).exists()
    # Where the member was heading wins; a private welcome thread is not used.
    response = client.get(f"/c/{workspace.slug}/welcome/?next=/c/{workspace.slug}/")
    assert response["Location"] == f"/c/{workspace.slug}/"
    welcome.space = club
    welcome.save()
    assert client.get(f"/c/{workspace.slug}/welcome/")["Location"] == f"/c/{workspace.slug}/"
    assert client.get(f"/c/{workspace.slug}/join/")["Location"] == f"/c/{workspace.slug}/welcome/"


def test_welcome_needs_a_sign_in(workspace: Any) -> None:
    response = Client().get(f"/c/{workspace.slug}/welcome/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
