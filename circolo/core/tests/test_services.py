"""Workspace, invitation and role services: validation, audit, last-owner protection."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circolo.core.models import AuditLog, Invitation, Role, Workspace, WorkspaceRole
from circolo.core.services import (
    INVITATION_TTL,
    WorkspaceError,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    role_remove,
    role_set,
    workspace_create,
    workspace_update,
)
from circolo.testing.factories import UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

GOOD = {"default_language": "it", "currency": "EUR", "time_zone": "Europe/Rome"}


def quick_user():
    """A user without a password hash: hashing dominates the property tests' run time."""
    n = get_user_model().objects.count()
    return get_user_model().objects.create(username=f"quick{n}", email=f"quick{n}@example.com")


def verified(user, email=None):
    EmailAddress.objects.create(user=user, email=email or user.email, verified=True, primary=True)
    return user


def actions(workspace):
    return list(
        AuditLog.objects.filter(workspace=workspace).order_by("id").values_list("action", flat=True)
    )


# --- workspace_create / workspace_update ---------------------------------------------------


def test_creator_becomes_owner_and_creation_is_audited() -> None:
    user = UserFactory()
    ws = workspace_create(owner=user, name="  Bottega  ", slug="Bottega-2", **GOOD)
    assert (ws.name, ws.slug, ws.currency, ws.time_zone) == (
        "Bottega",
        "bottega-2",
        "EUR",
        "Europe/Rome",
    )
    assert WorkspaceRole.objects.get(workspace=ws, user=user).role == Role.OWNER
    entry = AuditLog.objects.get(workspace=ws)
    assert (entry.action, entry.actor, entry.data["slug"]) == (
        "workspace.created",
        user,
        "bottega-2",
    )


@pytest.mark.parametrize(
    "slug", ["", "a", "-shop", "shop-", "shop_1", "shop 1", "négozio", "x" * 61, "a/b"]
)
def test_invalid_slug_is_refused_with_a_message(slug) -> None:
    with pytest.raises(WorkspaceError) as exc:
        workspace_create(owner=UserFactory(), name="Shop", slug=slug, **GOOD)
    assert "slug" in exc.value.errors
    assert not Workspace.objects.exists()


def test_duplicate_slug_is_refused(workspace) -> None:
    with pytest.raises(WorkspaceError) as exc:
        workspace_create(owner=UserFactory(), name="Other", slug="Bottega", **GOOD)
    assert "already taken" in exc.value.errors["slug"]
    assert Workspace.objects.count() == 1


@given(slug=st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_well_formed_free_slug_is_accepted(slug) -> None:
    Workspace.objects.filter(slug=slug).delete()
    ws = workspace_create(owner=quick_user(), name="Shop", slug=slug, **GOOD)
    assert ws.slug == slug


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", "EURO"),
        ("currency", "E1R"),
        ("currency", "XYZ"),
        ("currency", ""),
        ("time_zone", "Europe/Atlantis"),
        ("time_zone", "utc+1"),
        ("default_language", "fr"),
    ],
)
def test_bad_settings_are_refused_field_by_field(field, value) -> None:
    with pytest.raises(WorkspaceError) as exc:
        workspace_create(owner=UserFactory(), name="Shop", slug="shop", **{**GOOD, field: value})
    assert list(exc.value.errors) == [field]
    assert exc.value.errors[field]


def test_currency_is_normalised_to_upper_case() -> None:
    ws = workspace_create(
        owner=UserFactory(), name="Shop", slug="shop", **{**GOOD, "currency": "usd "}
    )
    assert ws.currency == "USD"


def test_empty_name_is_refused() -> None:
    with pytest.raises(WorkspaceError) as exc:
        workspace_create(owner=UserFactory(), name="   ", slug="shop", **GOOD)
    assert "name" in exc.value.errors


def test_update_records_what_changed(owner) -> None:
    ws = owner.workspace
    workspace_update(
        workspace=ws,
        actor=owner.user,
        name="Bottega Verde",
        default_language="es",
        currency="usd",
        time_zone="America/Mexico_City",
    )
    ws.refresh_from_db()
    assert (ws.default_language, ws.currency, ws.time_zone) == ("es", "USD", "America/Mexico_City")
    entry = AuditLog.objects.get(workspace=ws, action="workspace.updated")
    assert entry.data["currency"] == {"from": "EUR", "to": "USD"}
    assert "name" not in entry.data


def test_update_without_changes_writes_nothing(owner) -> None:
    ws = owner.workspace
    workspace_update(
        workspace=ws,
        actor=owner.user,
        name=ws.name,
        default_language=ws.default_language,
        currency=ws.currency,
        time_zone=ws.time_zone,
    )
    assert actions(ws) == []


def test_update_refuses_bad_input_and_keeps_the_old_values(owner) -> None:
    ws = owner.workspace
    with pytest.raises(WorkspaceError) as exc:
        workspace_update(
            workspace=ws,
            actor=owner.user,
            name="New",
            default_language="en",
            currency="EU",
            time_zone="Nowhere/City",
        )
    assert set(exc.value.errors) == {"currency", "time_zone"}
    ws.refresh_from_db()
    assert ws.name == "Bottega Verde"


@pytest.mark.parametrize("persona", ["moderator", "analyst", "member_user", "outsider"])
def test_update_needs_the_settings_permission(request, persona, workspace) -> None:
    user = request.getfixturevalue(persona).user
    with pytest.raises(PermissionDenied):
        workspace_update(
            workspace=workspace,
            actor=user,
            name="Hacked",
            default_language="en",
            currency="EUR",
            time_zone="UTC",
        )


# --- invitations -----------------------------------------------------------------------------


def test_invitation_stores_only_a_hash_and_mails_the_link(owner, settings) -> None:
    settings.SITE_URL = "https://circolo.example"
    before = timezone.now()
    invitation, token = invitation_create(
        workspace=owner.workspace,
        email=" New.Person@Example.com ",
        role=Role.MODERATOR,
        invited_by=owner.user,
    )
    assert invitation.email == "new.person@example.com"
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not Invitation.objects.filter(token_hash=token).exists()
    assert len(token) >= 40
    assert before + INVITATION_TTL <= invitation.expires_at <= timezone.now() + INVITATION_TTL
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.com"]
    assert "Bottega Verde" in message.subject
    assert f"https://circolo.example/invite/{token}/" in message.body
    entry = AuditLog.objects.get(workspace=owner.workspace, action="invitation.created")
    assert entry.data["role"] == "moderator"
    assert token not in str(entry.data)


def test_invitation_mail_is_written_in_the_workspace_language(owner, monkeypatch) -> None:
    from circolo.core import services

    languages = []
    real_render = services.render_to_string

    def recording_render(*args, **kwargs):
        languages.append(translation.get_language())
        return real_render(*args, **kwargs)

    monkeypatch.setattr(services, "render_to_string", recording_render)
    ws = owner.workspace
    ws.default_language = "zh-hans"
    ws.save()
    with translation.override("es"):
        invitation_create(
            workspace=ws, email="a@example.com", role=Role.ANALYST, invited_by=owner.user
        )
        assert translation.get_language() == "es"
    assert languages == ["zh-hans", "zh-hans"]
    assert re.search(r"/invite/[\w-]+/", mail.outbox[0].body)


def test_a_manager_cannot_invite_an_owner(manager) -> None:
    with pytest.raises(WorkspaceError) as exc:
        invitation_create(
            workspace=manager.workspace,
            email="boss@example.com",
            role=Role.OWNER,
            invited_by=manager.user,
        )
    assert "above your own" in exc.value.errors["role"]
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_a_manager_may_invite_a_manager(manager) -> None:
    invitation, _ = invitation_create(
        workspace=manager.workspace,
        email="peer@example.com",
        role=Role.MANAGER,
        invited_by=manager.user,
    )
    assert invitation.role == Role.MANAGER


@pytest.mark.parametrize("persona", ["moderator", "analyst", "member_user", "outsider"])
def test_only_team_managers_invite(request, persona, workspace) -> None:
    user = request.getfixturevalue(persona).user
    with pytest.raises(PermissionDenied):
        invitation_create(
            workspace=workspace, email="x@example.com", role=Role.MEMBER, invited_by=user
        )


@pytest.mark.parametrize(
    ("email", "role"), [("not-an-email", "analyst"), ("a@example.com", "boss")]
)
def test_bad_invitation_input(owner, email, role) -> None:
    with pytest.raises(WorkspaceError):
        invitation_create(workspace=owner.workspace, email=email, role=role, invited_by=owner.user)
    assert not Invitation.objects.exists()


def test_inviting_someone_already_on_the_team_is_refused(owner, analyst) -> None:
    with pytest.raises(WorkspaceError) as exc:
        invitation_create(
            workspace=owner.workspace,
            email="ANALYST@bottega.test",
            role=Role.MANAGER,
            invited_by=owner.user,
        )
    assert "already" in exc.value.errors["email"]


def test_a_new_invitation_withdraws_the_previous_one(owner) -> None:
    first, first_token = invitation_create(
        workspace=owner.workspace, email="a@example.com", role=Role.ANALYST, invited_by=owner.user
    )
    invitation_create(
        workspace=owner.workspace, email="a@example.com", role=Role.MODERATOR, invited_by=owner.user
    )
    first.refresh_from_db()
    assert first.revoked_at is not None
    user = verified(UserFactory(email="a@example.com"))
    with pytest.raises(WorkspaceError) as exc:
        invitation_accept(token=first_token, user=user)
    assert "withdrawn" in exc.value.errors["token"]


def test_accepting_joins_with_the_invited_role(owner) -> None:
    invitation, token = invitation_create(
        workspace=owner.workspace,
        email="new@example.com",
        role=Role.MODERATOR,
        invited_by=owner.user,
    )
    user = verified(UserFactory(email="other-login@example.com"), email="NEW@example.com")
    membership = invitation_accept(token=token, user=user)
    assert (membership.workspace, membership.role) == (owner.workspace, Role.MODERATOR)
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None
    assert actions(owner.workspace)[-1] == "invitation.accepted"
    with pytest.raises(WorkspaceError) as exc:
        invitation_accept(token=token, user=user)
    assert "already been used" in exc.value.errors["token"]


def test_an_expired_invitation_cannot_be_accepted(owner) -> None:
    invitation, token = invitation_create(
        workspace=owner.workspace,
        email="late@example.com",
        role=Role.ANALYST,
        invited_by=owner.user,
    )
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    user = verified(UserFactory(email="late@example.com"))
    with pytest.raises(WorkspaceError) as exc:
        invitation_accept(token=token, user=user)
    assert "expired" in exc.value.errors["token"]
    assert not WorkspaceRole.objects.filter(user=user).exists()


def test_the_wrong_or_unverified_email_cannot_accept(owner) -> None:
    _, token = invitation_create(
        workspace=owner.workspace,
        email="right@example.com",
        role=Role.ANALYST,
        invited_by=owner.user,
    )
    wrong = verified(UserFactory(email="wrong@example.com"))
    with pytest.raises(WorkspaceError) as exc:
        invitation_accept(token=token, user=wrong)
    assert "right@example.com" in exc.value.errors["email"]
    unverified = UserFactory(email="right@example.com")
    EmailAddress.objects.create(user=unverified, email="right@example.com", verified=False)
    with pytest.raises(WorkspaceError):
        invitation_accept(token=token, user=unverified)
    assert WorkspaceRole.objects.filter(workspace=owner.workspace).count() == 1


def test_an_unknown_token_is_refused(owner) -> None:
    with pytest.raises(WorkspaceError) as exc:
        invitation_accept(token="made-up", user=verified(UserFactory()))
    assert "not valid" in exc.value.errors["token"]


def test_accepting_never_lowers_an_existing_role(owner, manager) -> None:
    _, token = invitation_create(
        workspace=owner.workspace, email="x@example.com", role=Role.MEMBER, invited_by=owner.user
    )
    verified(manager.user, email="x@example.com")
    assert invitation_accept(token=token, user=manager.user).role == Role.MANAGER


def test_revoking_stops_the_link_and_is_audited(owner) -> None:
    invitation, token = invitation_create(
        workspace=owner.workspace, email="r@example.com", role=Role.ANALYST, invited_by=owner.user
    )
    invitation_revoke(invitation=invitation, actor=owner.user)
    assert "invitation.revoked" in actions(owner.workspace)
    with pytest.raises(WorkspaceError):
        invitation_revoke(invitation=invitation, actor=owner.user)
    with pytest.raises(WorkspaceError):
        invitation_accept(token=token, user=verified(UserFactory(email="r@example.com")))


# --- roles -------------------------------------------------------------------------------------


def test_role_change_is_audited(owner, analyst) -> None:
    role_set(workspace=owner.workspace, user=analyst.user, role=Role.MODERATOR, actor=owner.user)
    entry = AuditLog.objects.get(workspace=owner.workspace, action="role.changed")
    assert entry.data == {"user": "analyst@bottega.test", "from": "analyst", "to": "moderator"}
    assert entry.actor == owner.user


def test_the_last_owner_cannot_be_demoted_or_removed(owner) -> None:
    with pytest.raises(WorkspaceError) as exc:
        role_set(workspace=owner.workspace, user=owner.user, role=Role.MANAGER, actor=owner.user)
    assert "at least one owner" in exc.value.errors["role"]
    with pytest.raises(WorkspaceError):
        role_remove(workspace=owner.workspace, user=owner.user, actor=owner.user)
    assert WorkspaceRole.objects.get(user=owner.user).role == Role.OWNER
    assert actions(owner.workspace) == []


def test_an_owner_may_step_down_once_there_is_another(owner) -> None:
    other = UserFactory()
    role_set(workspace=owner.workspace, user=other, role=Role.OWNER, actor=owner.user)
    role_set(workspace=owner.workspace, user=owner.user, role=Role.MANAGER, actor=owner.user)
    assert (
        WorkspaceRole.objects.get(workspace=owner.workspace, user=owner.user).role == Role.MANAGER
    )
    with pytest.raises(WorkspaceError):
        role_remove(workspace=owner.workspace, user=other, actor=other)


def test_a_manager_cannot_touch_an_owner_or_grant_ownership(owner, manager, analyst) -> None:
    with pytest.raises(WorkspaceError):
        role_set(workspace=owner.workspace, user=owner.user, role=Role.MANAGER, actor=manager.user)
    with pytest.raises(WorkspaceError):
        role_set(workspace=owner.workspace, user=analyst.user, role=Role.OWNER, actor=manager.user)
    with pytest.raises(WorkspaceError):
        role_remove(workspace=owner.workspace, user=owner.user, actor=manager.user)
    role_set(workspace=owner.workspace, user=analyst.user, role=Role.MANAGER, actor=manager.user)


def test_weaker_roles_cannot_change_the_team(moderator, analyst) -> None:
    with pytest.raises(PermissionDenied):
        role_set(
            workspace=moderator.workspace, user=analyst.user, role=Role.MEMBER, actor=moderator.user
        )
    with pytest.raises(PermissionDenied):
        role_remove(workspace=moderator.workspace, user=analyst.user, actor=moderator.user)


def test_anyone_may_leave_and_removal_is_audited(owner, analyst, moderator) -> None:
    role_remove(workspace=owner.workspace, user=analyst.user, actor=analyst.user)
    role_remove(workspace=owner.workspace, user=moderator.user, actor=owner.user)
    assert not WorkspaceRole.objects.filter(user__in=[analyst.user, moderator.user]).exists()
    assert actions(owner.workspace) == ["role.removed", "role.removed"]
    with pytest.raises(WorkspaceError):
        role_remove(workspace=owner.workspace, user=moderator.user, actor=owner.user)


def test_the_system_actor_adds_people() -> None:
    ws = WorkspaceFactory()
    user = UserFactory()
    membership = role_set(workspace=ws, user=user, role=Role.OWNER, actor=None)
    assert membership.role == Role.OWNER
    entry = AuditLog.objects.get(workspace=ws)
    assert (entry.action, entry.actor) == ("role.added", None)


def test_an_unknown_role_is_refused(owner, analyst) -> None:
    with pytest.raises(WorkspaceError):
        role_set(workspace=owner.workspace, user=analyst.user, role="king", actor=owner.user)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "remove"]),
        st.integers(min_value=0, max_value=3),  # target
        st.integers(min_value=0, max_value=3),  # actor
        st.sampled_from(Role.values),
    ),
    max_size=12,
)


@given(ops=OPS)
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_workspace_always_keeps_an_owner(ops) -> None:
    """Whatever the sequence of role changes and removals, at least one owner remains."""
    users = [quick_user() for _ in range(4)]
    ws = workspace_create(
        owner=users[0], name="Prop", slug=f"prop-{Workspace.objects.count()}", **GOOD
    )
    for op, target, actor, role in ops:
        if not WorkspaceRole.objects.filter(workspace=ws, user=users[actor]).exists():
            continue
        try:
            if op == "set":
                role_set(workspace=ws, user=users[target], role=role, actor=users[actor])
            else:
                role_remove(workspace=ws, user=users[target], actor=users[actor])
        except (WorkspaceError, PermissionDenied):
            pass
        assert WorkspaceRole.objects.filter(workspace=ws, role=Role.OWNER).exists()
