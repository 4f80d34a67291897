"""The team's spaces page: managers create spaces (with clear errors), moderators and
analysts see the list only, outsiders get 404."""

from __future__ import annotations

from typing import Any

import pytest

from circolo.community.models import Space

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_mfa(settings: Any) -> None:
    settings.CIRCOLO_MFA_ENFORCE = False


def url(workspace: Any) -> str:
    return f"/w/{workspace.slug}/community/spaces/"


def test_empty_page_then_a_manager_creates_spaces(manager, workspace) -> None:
    page = manager.client.get(url(workspace)).content.decode()
    assert 'data-empty="spaces"' in page and "New space" in page
    response = manager.client.post(
        url(workspace),
        {"name": "Domande sulla moka", "language": "it", "visibility": "public"},
    )
    assert response.status_code == 302
    space = Space.objects.get(workspace=workspace)
    assert (space.slug, space.language) == ("domande-sulla-moka", "it")
    response = manager.client.post(
        url(workspace),
        {
            "name": "Owners",
            "visibility": "segment",
            "segment_skus": "MOKA-3, MOKA-6",
            "parent": str(space.pk),
        },
    )
    assert response.status_code == 302
    owners = Space.objects.get(workspace=workspace, slug="owners")
    assert owners.segment == {"tags": [], "skus": ["MOKA-3", "MOKA-6"]}
    assert owners.parent == space
    page = manager.client.get(url(workspace)).content.decode()
    assert "MOKA-3, MOKA-6" in page


def test_errors_name_the_field(manager, workspace) -> None:
    response = manager.client.post(url(workspace), {"name": "VIP", "visibility": "segment"})
    assert response.status_code == 400
    assert "Name the tags or products" in response.content.decode()
    assert not Space.objects.exists()


def test_moderators_read_only_and_outsiders_404(moderator, outsider, workspace) -> None:
    assert moderator.client.get(url(workspace)).status_code == 200
    assert "New space" not in moderator.client.get(url(workspace)).content.decode()
    response = moderator.client.post(url(workspace), {"name": "X", "visibility": "public"})
    assert response.status_code == 403
    assert outsider.client.get(url(workspace)).status_code == 404
    assert not Space.objects.exists()
