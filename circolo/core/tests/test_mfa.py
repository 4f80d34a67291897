"""Owners and managers must set up TOTP before they reach workspace pages or the session API.

Reusable pieces for other tests: `activate_totp(user)` (plain function), the fixture
`totp_for` (the same function, as a fixture) and the fixture `mfa_off` (enforcement off).
"""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.messages import get_messages
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from circolo.core.middleware import MfaRequiredMiddleware, needs_totp
from circolo.core.models import Role
from circolo.testing.factories import WorkspaceFactory, WorkspaceRoleFactory

pytestmark = pytest.mark.django_db

ACTIVATE = "/accounts/2fa/totp/activate/"


def activate_totp(user) -> Authenticator:
    """Give `user` an authenticator app, as if they had scanned the QR code."""
    return TOTP.activate(user, generate_totp_secret()).instance


@pytest.fixture
def totp_for():
    """Call with a user to give them a TOTP authenticator (MFA-required roles then pass)."""
    return activate_totp


@pytest.fixture
def mfa_off(settings):
    """Turn MFA enforcement off for the test (CIRCOLO_MFA_ENFORCE=false)."""
    settings.CIRCOLO_MFA_ENFORCE = False


def test_activation_url_is_allauths() -> None:
    assert reverse("mfa_activate_totp") == ACTIVATE


@pytest.mark.parametrize("persona", ["owner", "manager"])
def test_owner_or_manager_without_totp_is_sent_to_activation(request, persona) -> None:
    p = request.getfixturevalue(persona)
    response = p.client.get(reverse("core:workspace_settings", args=[p.workspace.slug]))
    assert response.status_code == 302
    assert response["Location"] == ACTIVATE
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("two-factor authentication" in text for text in texts)


@pytest.mark.parametrize("persona", ["owner", "manager"])
def test_owner_or_manager_with_totp_is_served(request, persona) -> None:
    p = request.getfixturevalue(persona)
    activate_totp(p.user)
    response = p.client.get(reverse("core:workspace_settings", args=[p.workspace.slug]))
    assert response.status_code == 200


@pytest.mark.parametrize("persona", ["analyst", "moderator", "member_user"])
def test_weaker_roles_without_totp_are_served(request, persona) -> None:
    p = request.getfixturevalue(persona)
    # The audit log is for owners and managers: weaker roles get the page's own 403,
    # not a detour to two-factor set-up.
    response = p.client.get(reverse("core:audit_log", args=[p.workspace.slug]))
    assert response.status_code == 403
    assert not needs_totp(user_id=p.user.pk)


def test_analyst_without_totp_reaches_a_page_they_may_see(analyst) -> None:
    response = analyst.client.get(reverse("insights:home", args=[analyst.workspace.slug]))
    assert response.status_code == 200


def test_an_owner_role_in_any_workspace_counts(analyst) -> None:
    WorkspaceRoleFactory(workspace=WorkspaceFactory(), user=analyst.user, role=Role.OWNER)
    response = analyst.client.get(reverse("insights:home", args=[analyst.workspace.slug]))
    assert response.status_code == 302
    assert response["Location"] == ACTIVATE


def test_session_api_is_covered_too(owner) -> None:
    response = owner.client.get("/api/v1/docs")
    assert response.status_code == 302
    assert response["Location"] == ACTIVATE


def test_api_calls_with_a_key_act_as_the_key_not_the_session(owner) -> None:
    response = owner.client.get("/api/v1/members", headers={"X-Api-Key": "ck_unknown_key"})
    assert response.status_code == 401
    response = owner.client.get("/api/v1/members", headers={"Authorization": "Bearer ck_x_y"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "path",
    ["/", "/accounts/email/", "/accounts/2fa/", "/accounts/password/change/", "/workspaces/new/"],
)
def test_account_and_mfa_pages_stay_reachable(owner, path) -> None:
    response = owner.client.get(path)
    assert response.status_code == 200, path


def test_activation_page_itself_is_not_redirected_in_a_loop(owner) -> None:
    response = owner.client.get(ACTIVATE)
    # allauth may first ask to confirm the password (reauthentication), never back to itself.
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert response["Location"] != ACTIVATE
        assert response["Location"].startswith("/accounts/")


def test_language_switch_and_logout_stay_reachable(owner) -> None:
    response = owner.client.post("/i18n/setlang/", {"language": "it", "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    response = owner.client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert response["Location"] != ACTIVATE


def test_htmx_requests_get_a_client_side_redirect(owner) -> None:
    response = owner.client.get(
        reverse("core:workspace_settings", args=[owner.workspace.slug]),
        headers={"HX-Request": "true"},
    )
    assert response["HX-Redirect"] == ACTIVATE


def test_enforcement_can_be_turned_off(owner, mfa_off) -> None:
    response = owner.client.get(reverse("core:workspace_settings", args=[owner.workspace.slug]))
    assert response.status_code == 200


def test_required_roles_come_from_settings(owner, settings) -> None:
    settings.CIRCOLO_MFA_REQUIRED_ROLES = ["manager"]
    assert not needs_totp(user_id=owner.user.pk)
    settings.CIRCOLO_MFA_REQUIRED_ROLES = []
    assert not needs_totp(user_id=owner.user.pk)


def test_middleware_passes_anonymous_and_unprotected_requests(owner) -> None:
    from django.contrib.auth.models import AnonymousUser

    served = []

    def get_response(request):
        served.append(request.path)
        return HttpResponse("ok")

    middleware = MfaRequiredMiddleware(get_response)
    anonymous = RequestFactory().get("/w/bottega/")
    anonymous.user = AnonymousUser()
    assert middleware(anonymous).status_code == 200
    static = RequestFactory().get("/static/circolo/app.css")
    static.user = owner.user
    assert middleware(static).status_code == 200
    assert served == ["/w/bottega/", "/static/circolo/app.css"]


def test_one_query_decides(owner, django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        assert needs_totp(user_id=owner.user.pk)
    activate_totp(owner.user)
    with django_assert_num_queries(1):
        assert not needs_totp(user_id=owner.user.pk)
