"""Workspace pages for every persona: outsiders get 404, weaker roles 403, bad input a message."""

from __future__ import annotations

import datetime as dt

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from circolo.activity.models import KindWeight
from circolo.core.apikeys import apikey_authenticate, apikey_create
from circolo.core.audit import audit_record
from circolo.core.models import ApiKey, AuditLog, Invitation, Role, Workspace, WorkspaceRole
from circolo.core.services import invitation_create
from circolo.core.tests.test_mfa import activate_totp
from circolo.testing.factories import UserFactory

pytestmark = pytest.mark.django_db

PERSONAS = ["owner", "manager", "moderator", "analyst", "member_user", "outsider"]
# Expected status of a settings-area page for each persona.
SETTINGS_ACCESS = {
    "owner": 200,
    "manager": 200,
    "moderator": 403,
    "analyst": 403,
    "member_user": 403,
    "outsider": 404,
}
HX = {"HX-Request": "true"}


@pytest.fixture
def persona(request, workspace):
    """Fetch a persona by fixture name, with TOTP set up when its role requires it."""

    def get(name):
        p = request.getfixturevalue(name)
        if p.role in (Role.OWNER, Role.MANAGER):
            activate_totp(p.user)
        return p

    return get


def settings_url(slug="bottega"):
    return reverse("core:workspace_settings", args=[slug])


# --- landing page and workspace list ---------------------------------------------------------


def test_anonymous_visitors_get_the_landing_page(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("account_login") in body
    assert reverse("account_signup") in body


def test_the_list_shows_each_workspace_with_the_role(persona, workspace, other_workspace) -> None:
    p = persona("analyst")
    WorkspaceRole.objects.create(workspace=other_workspace, user=p.user, role=Role.MEMBER)
    response = p.client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Bottega Verde" in body and "Elsewhere Shop" in body
    assert "Analyst" in body and "Member" in body
    assert reverse("insights:home", args=["bottega"]) in body
    # An analyst has no settings link; a member has no dashboard link.
    assert settings_url() not in body
    assert 'href="/w/elsewhere/"' not in body
    assert reverse("core:workspace_create") in body


def test_a_single_workspace_is_listed_not_redirected(persona) -> None:
    p = persona("owner")
    response = p.client.get("/")
    assert response.status_code == 200
    assert settings_url() in response.content.decode()


def test_the_list_has_an_empty_state(db) -> None:
    client = Client()
    client.force_login(UserFactory())
    response = client.get("/")
    assert "not in any workspace yet" in response.content.decode()


def test_the_list_does_not_grow_queries_with_workspaces(
    persona, django_assert_max_num_queries
) -> None:
    p = persona("analyst")
    for n in range(5):
        ws = Workspace.objects.create(name=f"Shop {n}", slug=f"shop-{n}")
        WorkspaceRole.objects.create(workspace=ws, user=p.user, role=Role.ANALYST)
    with django_assert_max_num_queries(6):
        p.client.get("/")


# --- create ------------------------------------------------------------------------------------


def test_creating_a_workspace_makes_the_creator_owner(db) -> None:
    user = UserFactory()
    activate_totp(user)
    client = Client()
    client.force_login(user)
    assert client.get(reverse("core:workspace_create")).status_code == 200
    response = client.post(
        reverse("core:workspace_create"),
        {
            "name": "Casa Nova",
            "slug": "casa-nova",
            "default_language": "it",
            "currency": "eur",
            "time_zone": "Europe/Rome",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == settings_url("casa-nova")
    ws = Workspace.objects.get(slug="casa-nova")
    assert WorkspaceRole.objects.get(workspace=ws, user=user).role == Role.OWNER
    assert ws.currency == "EUR"
    assert client.get(response["Location"]).status_code == 200


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("slug", "Not A Slug!", "lower-case letters"),
        ("slug", "bottega", "already taken"),
        ("currency", "EURO", "three-letter"),
        ("currency", "ABC", "not an ISO 4217"),
        ("time_zone", "Mars/Olympus", "valid choice"),
    ],
)
def test_create_with_bad_input_shows_the_error(workspace, field, value, message) -> None:
    client = Client()
    client.force_login(UserFactory())
    data = {
        "name": "Shop",
        "slug": "shop",
        "default_language": "en",
        "currency": "EUR",
        "time_zone": "UTC",
        field: value,
    }
    response = client.post(reverse("core:workspace_create"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Workspace.objects.count() == 1


def test_create_needs_a_signed_in_user(client) -> None:
    response = client.get(reverse("core:workspace_create"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


# --- settings page: access --------------------------------------------------------------------


@pytest.mark.parametrize("name", PERSONAS)
def test_settings_page_access(persona, name) -> None:
    p = persona(name)
    response = p.client.get(settings_url())
    assert response.status_code == SETTINGS_ACCESS[name]


@pytest.mark.parametrize("name", PERSONAS)
def test_audit_log_access(persona, name) -> None:
    p = persona(name)
    response = p.client.get(reverse("core:audit_log", args=["bottega"]))
    assert response.status_code == SETTINGS_ACCESS[name]


def test_settings_page_needs_sign_in(client, workspace) -> None:
    response = client.get(settings_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_unknown_workspace_is_404(persona) -> None:
    p = persona("owner")
    assert p.client.get(settings_url("nowhere")).status_code == 404


def test_settings_page_shows_every_section(persona, analyst) -> None:
    p = persona("owner")
    body = p.client.get(settings_url()).content.decode()
    for anchor in (
        'id="general"',
        'id="team"',
        'id="invitations"',
        'id="weights"',
        'id="api-keys"',
    ):
        assert anchor in body
    assert "analyst@bottega.test" in body
    assert reverse("core:kind_weight_update", args=["bottega", "post"]) in body
    assert "No pending invitations." in body
    assert "No API keys yet." in body


def test_settings_page_query_count_is_bounded(persona, django_assert_max_num_queries) -> None:
    p = persona("owner")
    for n in range(5):
        invitation_create(
            workspace=p.workspace, email=f"p{n}@example.com", role=Role.ANALYST, invited_by=p.user
        )
        apikey_create(
            workspace=p.workspace, name=f"key {n}", scopes=["members:read"], created_by=p.user
        )
    with django_assert_max_num_queries(14):
        assert p.client.get(settings_url()).status_code == 200


# --- general settings -------------------------------------------------------------------------


def test_saving_settings_updates_and_audits(persona) -> None:
    p = persona("manager")
    response = p.client.post(
        settings_url(),
        {
            "name": "Bottega Rossa",
            "default_language": "es",
            "currency": "usd",
            "time_zone": "Asia/Shanghai",
        },
    )
    assert response.status_code == 302
    ws = Workspace.objects.get(slug="bottega")
    assert (ws.name, ws.currency, ws.time_zone) == ("Bottega Rossa", "USD", "Asia/Shanghai")
    assert AuditLog.objects.filter(workspace=ws, action="workspace.updated", actor=p.user).exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("currency", "12", "three-letter"),
        ("currency", "QQQ", "not an ISO 4217"),
        ("time_zone", "Europe/Nowhere", "valid choice"),
        ("name", "", "required"),
    ],
)
def test_saving_bad_settings_shows_the_error(persona, field, value, message) -> None:
    p = persona("owner")
    data = {"name": "Bottega", "default_language": "en", "currency": "EUR", "time_zone": "UTC"}
    response = p.client.post(settings_url(), {**data, field: value})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Workspace.objects.get(slug="bottega").name == "Bottega Verde"


@pytest.mark.parametrize("name", ["moderator", "analyst", "member_user", "outsider"])
def test_weaker_roles_cannot_save_settings(persona, name) -> None:
    p = persona(name)
    response = p.client.post(
        settings_url(),
        {"name": "Hacked", "default_language": "en", "currency": "EUR", "time_zone": "UTC"},
    )
    assert response.status_code == SETTINGS_ACCESS[name]
    assert Workspace.objects.get(slug="bottega").name == "Bottega Verde"


# --- team ---------------------------------------------------------------------------------------


def test_changing_a_role(persona, analyst) -> None:
    p = persona("owner")
    response = p.client.post(
        reverse("core:role_update", args=["bottega", analyst.user.pk]), {"role": "moderator"}
    )
    assert response.status_code == 302
    assert WorkspaceRole.objects.get(user=analyst.user).role == Role.MODERATOR
    assert AuditLog.objects.filter(action="role.changed").count() == 1


def test_the_last_owner_is_protected_on_the_page(persona) -> None:
    p = persona("owner")
    response = p.client.post(
        reverse("core:role_update", args=["bottega", p.user.pk]), {"role": "analyst"}, follow=True
    )
    assert "at least one owner" in response.content.decode()
    assert WorkspaceRole.objects.get(user=p.user).role == Role.OWNER
    response = p.client.post(reverse("core:role_remove", args=["bottega", p.user.pk]), follow=True)
    assert "at least one owner" in response.content.decode()
    assert WorkspaceRole.objects.filter(user=p.user).exists()


def test_a_manager_cannot_demote_an_owner_on_the_page(persona, owner) -> None:
    p = persona("manager")
    response = p.client.post(
        reverse("core:role_update", args=["bottega", owner.user.pk]),
        {"role": "analyst"},
        follow=True,
    )
    assert "ranks above you" in response.content.decode()
    assert WorkspaceRole.objects.get(user=owner.user).role == Role.OWNER


def test_removing_someone(persona, moderator) -> None:
    p = persona("owner")
    response = p.client.post(reverse("core:role_remove", args=["bottega", moderator.user.pk]))
    assert response.status_code == 302
    assert not WorkspaceRole.objects.filter(user=moderator.user).exists()
    assert AuditLog.objects.filter(action="role.removed", actor=p.user).exists()


def test_htmx_removal_reloads_the_page(persona, moderator) -> None:
    p = persona("owner")
    response = p.client.post(
        reverse("core:role_remove", args=["bottega", moderator.user.pk]), headers=HX
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(settings_url())


def test_team_endpoints_refuse_people_outside_the_workspace(persona, outsider) -> None:
    p = persona("owner")
    url = reverse("core:role_update", args=["bottega", outsider.user.pk])
    assert p.client.post(url, {"role": "analyst"}).status_code == 404
    assert not WorkspaceRole.objects.filter(user=outsider.user, workspace__slug="bottega").exists()


@pytest.mark.parametrize("name", PERSONAS)
def test_team_endpoints_access(persona, name, analyst) -> None:
    p = persona(name)
    update = p.client.post(
        reverse("core:role_update", args=["bottega", analyst.user.pk]), {"role": "member"}
    )
    expected = {200: 302}.get(SETTINGS_ACCESS[name], SETTINGS_ACCESS[name])
    assert update.status_code == expected
    if expected != 302:
        assert WorkspaceRole.objects.get(user=analyst.user).role == Role.ANALYST


def test_team_endpoints_only_accept_post(persona, analyst) -> None:
    p = persona("owner")
    assert (
        p.client.get(reverse("core:role_remove", args=["bottega", analyst.user.pk])).status_code
        == 405
    )


# --- invitations ------------------------------------------------------------------------------


def test_inviting_from_the_page_sends_mail(persona) -> None:
    p = persona("manager")
    response = p.client.post(
        reverse("core:invitation_create", args=["bottega"]),
        {"email": "friend@example.com", "role": "moderator"},
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get(email="friend@example.com")
    assert invitation.role == Role.MODERATOR
    assert len(mail.outbox) == 1
    body = p.client.get(settings_url()).content.decode()
    assert "friend@example.com" in body


def test_inviting_above_your_own_role_is_refused(persona) -> None:
    p = persona("manager")
    response = p.client.post(
        reverse("core:invitation_create", args=["bottega"]),
        {"email": "boss@example.com", "role": "owner"},
    )
    assert response.status_code == 400
    assert "above your own" in response.content.decode()
    assert not Invitation.objects.exists()


def test_inviting_with_a_bad_email_is_refused(persona) -> None:
    p = persona("owner")
    response = p.client.post(
        reverse("core:invitation_create", args=["bottega"]), {"email": "nope", "role": "analyst"}
    )
    assert response.status_code == 400
    assert "valid email" in response.content.decode()


@pytest.mark.parametrize("name", PERSONAS)
def test_invitation_endpoints_access(persona, name) -> None:
    p = persona(name)
    response = p.client.post(
        reverse("core:invitation_create", args=["bottega"]),
        {"email": "someone@example.com", "role": "member"},
    )
    expected = {200: 302}.get(SETTINGS_ACCESS[name], SETTINGS_ACCESS[name])
    assert response.status_code == expected
    assert Invitation.objects.exists() == (expected == 302)


def test_revoking_an_invitation_plain_and_htmx(persona) -> None:
    p = persona("owner")
    first, _ = invitation_create(
        workspace=p.workspace, email="a@example.com", role=Role.ANALYST, invited_by=p.user
    )
    second, _ = invitation_create(
        workspace=p.workspace, email="b@example.com", role=Role.ANALYST, invited_by=p.user
    )
    response = p.client.post(reverse("core:invitation_revoke", args=["bottega", first.pk]))
    assert response.status_code == 302
    response = p.client.post(
        reverse("core:invitation_revoke", args=["bottega", second.pk]), headers=HX
    )
    assert response.status_code == 200
    assert f'id="invitation-{second.pk}"' in response.content.decode()
    assert "withdrawn" in response.content.decode()
    assert Invitation.objects.filter(revoked_at__isnull=False).count() == 2
    assert AuditLog.objects.filter(action="invitation.revoked").count() == 2


def test_revoking_another_workspaces_invitation_is_404(persona, outsider) -> None:
    p = persona("owner")
    activate_totp(outsider.user)
    foreign, _ = invitation_create(
        workspace=outsider.workspace,
        email="x@example.com",
        role=Role.ANALYST,
        invited_by=outsider.user,
    )
    response = p.client.post(reverse("core:invitation_revoke", args=["bottega", foreign.pk]))
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


# --- accepting an invitation ------------------------------------------------------------------


@pytest.fixture
def invitation_token(persona):
    p = persona("owner")
    _, token = invitation_create(
        workspace=p.workspace, email="new@example.com", role=Role.ANALYST, invited_by=p.user
    )
    return token


def _signed_in(email, verified=True):
    user = UserFactory(email=email)
    EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
    client = Client()
    client.force_login(user)
    return user, client


def test_anonymous_visitor_sees_the_invitation_and_sign_in_links(client, invitation_token) -> None:
    response = client.get(reverse("core:invitation_accept", args=[invitation_token]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Bottega Verde" in body and "new@example.com" in body
    assert reverse("account_signup") + "?next=" in body
    response = client.post(reverse("core:invitation_accept", args=[invitation_token]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_the_invited_person_accepts(invitation_token) -> None:
    user, client = _signed_in("new@example.com")
    url = reverse("core:invitation_accept", args=[invitation_token])
    assert client.get(url).status_code == 200
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("insights:home", args=["bottega"])
    assert WorkspaceRole.objects.get(user=user).role == Role.ANALYST
    again = client.get(url)
    assert again.status_code == 410
    assert "already been used" in again.content.decode()


def test_the_wrong_email_cannot_accept(invitation_token) -> None:
    user, client = _signed_in("someone-else@example.com")
    url = reverse("core:invitation_accept", args=[invitation_token])
    assert "new@example.com" in client.get(url).content.decode()
    response = client.post(url)
    assert response.status_code == 400
    assert "sent to new@example.com" in response.content.decode()
    assert not WorkspaceRole.objects.filter(user=user).exists()


def test_an_expired_invitation_page(invitation_token) -> None:
    Invitation.objects.update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    user, client = _signed_in("new@example.com")
    url = reverse("core:invitation_accept", args=[invitation_token])
    response = client.get(url)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert client.post(url).status_code == 410
    assert not WorkspaceRole.objects.filter(user=user).exists()


def test_an_unknown_token_is_404(client, workspace) -> None:
    response = client.get(reverse("core:invitation_accept", args=["not-a-real-token"]))
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


# --- activity weights -------------------------------------------------------------------------


def test_saving_a_weight_plain(persona) -> None:
    p = persona("owner")
    response = p.client.post(
        reverse("core:kind_weight_update", args=["bottega", "review"]), {"weight": "12"}
    )
    assert response.status_code == 302
    assert KindWeight.objects.get(workspace=p.workspace, kind="review").weight == 12
    assert AuditLog.objects.filter(action="activity.kind_weight_set").exists()


def test_saving_a_weight_inline_with_htmx(persona) -> None:
    p = persona("manager")
    response = p.client.post(
        reverse("core:kind_weight_update", args=["bottega", "post"]), {"weight": "7"}, headers=HX
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith('<tr id="weight-post"')
    assert 'value="7"' in body and "Saved" in body


@pytest.mark.parametrize("weight", ["-1", "1001", "many", ""])
def test_a_bad_weight_is_refused(persona, weight) -> None:
    p = persona("owner")
    response = p.client.post(
        reverse("core:kind_weight_update", args=["bottega", "post"]), {"weight": weight}, headers=HX
    )
    assert response.status_code == 200
    assert 'class="errorlist"' in response.content.decode()
    assert not KindWeight.objects.exists()


def test_an_unknown_kind_is_404(persona) -> None:
    p = persona("owner")
    response = p.client.post(
        reverse("core:kind_weight_update", args=["bottega", "teleport"]), {"weight": "3"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize("name", PERSONAS)
def test_weight_endpoint_access(persona, name) -> None:
    p = persona(name)
    response = p.client.post(
        reverse("core:kind_weight_update", args=["bottega", "post"]), {"weight": "9"}
    )
    expected = {200: 302}.get(SETTINGS_ACCESS[name], SETTINGS_ACCESS[name])
    assert response.status_code == expected
    assert KindWeight.objects.filter(workspace__slug="bottega").exists() == (expected == 302)


# --- API keys ---------------------------------------------------------------------------------


def test_creating_an_api_key_shows_it_once(persona) -> None:
    p = persona("owner")
    response = p.client.post(
        reverse("core:apikey_create", args=["bottega"]),
        {"name": "Shopify sync", "scopes": ["members:read", "activities:write"]},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    raw = response.context["new_api_key_raw"]
    assert raw.startswith("ck_") and raw in response.content.decode()
    key = apikey_authenticate(raw)
    assert key is not None and key.workspace == p.workspace
    assert raw not in p.client.get(settings_url()).content.decode()


def test_an_api_key_needs_a_name_and_a_scope(persona) -> None:
    p = persona("owner")
    response = p.client.post(reverse("core:apikey_create", args=["bottega"]), {"name": ""})
    assert response.status_code == 400
    assert not ApiKey.objects.exists()


def test_revoking_an_api_key_plain_and_htmx(persona) -> None:
    p = persona("manager")
    first, _ = apikey_create(
        workspace=p.workspace, name="one", scopes=["members:read"], created_by=p.user
    )
    second, raw = apikey_create(
        workspace=p.workspace, name="two", scopes=["members:read"], created_by=p.user
    )
    assert (
        p.client.post(reverse("core:apikey_revoke", args=["bottega", first.pk])).status_code == 302
    )
    response = p.client.post(reverse("core:apikey_revoke", args=["bottega", second.pk]), headers=HX)
    assert response.status_code == 200
    assert "revoked" in response.content.decode()
    assert apikey_authenticate(raw) is None
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 0


def test_revoking_another_workspaces_key_is_404(persona, other_workspace) -> None:
    p = persona("owner")
    foreign, raw = apikey_create(
        workspace=other_workspace, name="theirs", scopes=["members:read"], created_by=None
    )
    response = p.client.post(reverse("core:apikey_revoke", args=["bottega", foreign.pk]))
    assert response.status_code == 404
    assert apikey_authenticate(raw) is not None


@pytest.mark.parametrize("name", PERSONAS)
def test_api_key_endpoint_access(persona, name) -> None:
    p = persona(name)
    response = p.client.post(
        reverse("core:apikey_create", args=["bottega"]), {"name": "k", "scopes": ["members:read"]}
    )
    assert response.status_code == SETTINGS_ACCESS[name]
    assert ApiKey.objects.exists() == (SETTINGS_ACCESS[name] == 200)


# --- audit log --------------------------------------------------------------------------------


def test_audit_log_lists_entries_newest_first_and_paginates(persona) -> None:
    p = persona("owner")
    for n in range(60):
        audit_record(workspace=p.workspace, actor=p.user, action="test.entry", data={"n": n})
    audit_record(workspace=p.workspace, actor=None, action="role.changed", data={"from": "a"})
    url = reverse("core:audit_log", args=["bottega"])
    first = p.client.get(url)
    body = first.content.decode()
    assert "Role changed" in body and "system" in body
    assert len(first.context["rows"]) == 50
    second = p.client.get(url, {"page": 2})
    assert len(second.context["rows"]) == 11
    assert "n: 0" in second.content.decode()


def test_audit_log_shows_only_this_workspace(persona, other_workspace) -> None:
    p = persona("owner")
    audit_record(workspace=other_workspace, actor=None, action="secret.elsewhere")
    body = p.client.get(reverse("core:audit_log", args=["bottega"])).content.decode()
    assert "secret.elsewhere" not in body
    assert "Nothing has been recorded yet." in body
