"""Workspaces, team roles and invitations: every write here is validated, atomic and audited."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import zoneinfo
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from circolo.core.audit import audit_record
from circolo.core.models import Invitation, Role, Workspace, WorkspaceRole
from circolo.core.permissions import ROLE_RANK, Perm, can_grant, has_perm, role_of

INVITATION_TTL = dt.timedelta(days=7)
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,58}[a-z0-9]$")
NAME_MAX = 120

# Active ISO 4217 currency codes (funds, precious metals and test codes left out: a store
# does not price in them). ANG stays accepted during its replacement by XCG.
ISO_4217_CODES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER
    ZAR ZMW ZWG
    """.split()  # noqa: SIM905 (a word list reads better than 170 quoted strings)
)


class WorkspaceError(ValueError):
    """A rejected change, with a readable message per field (`errors`: field -> message)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def token_hash(token: str) -> str:
    """The stored form of an invitation token (the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _language_codes() -> set[str]:
    return {code for code, _label in settings.LANGUAGES}


def _validate_settings(
    *, name: str, default_language: str, currency: str, time_zone: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Normalise and check the editable settings; returns (clean values, errors)."""
    errors: dict[str, str] = {}
    clean = {
        "name": name.strip(),
        "default_language": default_language.strip(),
        "currency": currency.strip().upper(),
        "time_zone": time_zone.strip(),
    }
    if not clean["name"]:
        errors["name"] = _("Enter a name.")
    elif len(clean["name"]) > NAME_MAX:
        errors["name"] = _("Use at most %(max)d characters.") % {"max": NAME_MAX}
    if clean["default_language"] not in _language_codes():
        errors["default_language"] = _("Choose one of the available languages.")
    if not re.fullmatch(r"[A-Z]{3}", clean["currency"]):
        errors["currency"] = _("Use a three-letter ISO 4217 currency code, such as EUR or USD.")
    elif clean["currency"] not in ISO_4217_CODES:
        errors["currency"] = _("%(code)s is not an ISO 4217 currency code.") % {
            "code": clean["currency"]
        }
    if clean["time_zone"] not in zoneinfo.available_timezones():
        errors["time_zone"] = _("Choose a time zone from the list, such as Europe/Rome.")
    return clean, errors


def _validate_slug(slug: str) -> tuple[str, str | None]:
    clean = slug.strip().lower()
    if not SLUG_RE.fullmatch(clean):
        return clean, _(
            "Use 2 to 60 lower-case letters, digits and hyphens, starting and ending with a"
            " letter or digit."
        )
    if Workspace.objects.filter(slug=clean).exists():
        return clean, _("The address %(slug)s is already taken.") % {"slug": clean}
    return clean, None


def workspace_create(
    *,
    owner: Any,
    name: str,
    slug: str,
    default_language: str = "en",
    currency: str = "EUR",
    time_zone: str = "UTC",
) -> Workspace:
    """Create a workspace with `owner` as its first owner; raises WorkspaceError on bad input."""
    clean, errors = _validate_settings(
        name=name, default_language=default_language, currency=currency, time_zone=time_zone
    )
    clean_slug, slug_error = _validate_slug(slug)
    if slug_error:
        errors["slug"] = slug_error
    if errors:
        raise WorkspaceError(errors)
    try:
        with transaction.atomic():
            workspace = Workspace.objects.create(slug=clean_slug, **clean)
            WorkspaceRole.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
            audit_record(
                workspace=workspace,
                actor=owner,
                action="workspace.created",
                target=workspace,
                data={"slug": clean_slug, **clean},
            )
    except IntegrityError as exc:
        # Two people racing for one address: the unique index decides, the loser hears why.
        raise WorkspaceError(
            {"slug": _("The address %(slug)s is already taken.") % {"slug": clean_slug}}
        ) from exc
    _forget_roles(owner)
    return workspace


def workspace_update(
    *,
    workspace: Workspace,
    actor: Any,
    name: str,
    default_language: str,
    currency: str,
    time_zone: str,
) -> Workspace:
    """Change name, default language, currency and time zone; audited with the changed fields."""
    _require(actor=actor, workspace=workspace, perm=Perm.MANAGE_SETTINGS)
    clean, errors = _validate_settings(
        name=name, default_language=default_language, currency=currency, time_zone=time_zone
    )
    if errors:
        raise WorkspaceError(errors)
    changes = {
        field: {"from": getattr(workspace, field), "to": value}
        for field, value in clean.items()
        if getattr(workspace, field) != value
    }
    if not changes:
        return workspace
    with transaction.atomic():
        for field, value in clean.items():
            setattr(workspace, field, value)
        workspace.save(update_fields=list(changes))
        audit_record(
            workspace=workspace,
            actor=actor,
            action="workspace.updated",
            target=workspace,
            data=changes,
        )
    return workspace


def invitation_create(
    *, workspace: Workspace, email: str, role: str, invited_by: Any
) -> tuple[Invitation, str]:
    """Invite `email` to `role` and mail the accept link; returns (invitation, raw token).

    Only the token's SHA-256 is stored; the link expires after seven days. An earlier pending
    invitation for the same address is withdrawn, so only the newest link works.
    """
    granter_role = _require(actor=invited_by, workspace=workspace, perm=Perm.MANAGE_TEAM)
    errors: dict[str, str] = {}
    clean_email = email.strip().lower()
    try:
        validate_email(clean_email)
    except ValidationError:
        errors["email"] = _("Enter a valid email address.")
    if role not in Role.values:
        errors["role"] = _("Choose one of the roles.")
    elif granter_role is not None and not can_grant(granter_role=granter_role, role=role):
        errors["role"] = _("You cannot invite someone to a role above your own.")
    if (
        "email" not in errors
        and WorkspaceRole.objects.filter(
            workspace=workspace, user__email__iexact=clean_email
        ).exists()
    ):
        errors["email"] = _("%(email)s is already in this workspace.") % {"email": clean_email}
    if errors:
        raise WorkspaceError(errors)

    token = secrets.token_urlsafe(32)
    now = timezone.now()
    # The mail is sent inside the transaction: if it cannot be sent, no invitation is left
    # behind that nobody received.
    with transaction.atomic():
        superseded = list(
            Invitation.objects.select_for_update()
            .filter(
                workspace=workspace,
                email=clean_email,
                accepted_at__isnull=True,
                revoked_at__isnull=True,
            )
            .values_list("pk", flat=True)
        )
        if superseded:
            Invitation.objects.filter(pk__in=superseded).update(revoked_at=now)
        invitation = Invitation.objects.create(
            workspace=workspace,
            email=clean_email,
            role=role,
            token_hash=token_hash(token),
            invited_by=invited_by if getattr(invited_by, "is_authenticated", False) else None,
            expires_at=now + INVITATION_TTL,
        )
        audit_record(
            workspace=workspace,
            actor=invited_by,
            action="invitation.created",
            target=invitation,
            data={"email": clean_email, "role": role, "superseded": superseded},
        )
        _send_invitation(invitation=invitation, token=token, invited_by=invited_by)
    return invitation, token


def _send_invitation(*, invitation: Invitation, token: str, invited_by: Any) -> None:
    workspace = invitation.workspace
    link = settings.SITE_URL.rstrip("/") + reverse("core:invitation_accept", args=[token])
    inviter = getattr(invited_by, "email", "") or ""
    with translation.override(workspace.default_language):
        context = {
            "workspace": workspace,
            "invitation": invitation,
            "role_label": Role(invitation.role).label,
            "link": link,
            "inviter": inviter,
            "expires_at": invitation.expires_at,
        }
        subject = render_to_string("core/email/invitation_subject.txt", context).strip()
        body = render_to_string("core/email/invitation_message.txt", context)
    send_mail(
        subject=" ".join(subject.split()),
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )


def invitation_find(*, token: str) -> Invitation | None:
    """The invitation a token belongs to (any state), or None for an unknown token."""
    if not token or len(token) > 200:
        return None
    return (
        Invitation.objects.select_related("workspace").filter(token_hash=token_hash(token)).first()
    )


def invitation_problem(*, invitation: Invitation | None, now: dt.datetime | None = None) -> str:
    """Why the invitation cannot be accepted now ("" when it can)."""
    if invitation is None:
        return _("This invitation link is not valid. Ask for a new invitation.")
    if invitation.revoked_at is not None:
        return _("This invitation was withdrawn. Ask for a new invitation.")
    if invitation.accepted_at is not None:
        return _("This invitation has already been used.")
    if invitation.expires_at <= (now or timezone.now()):
        return _("This invitation has expired. Ask for a new invitation.")
    return ""


def user_has_verified_email(*, user: Any, email: str) -> bool:
    """True when `email` is one of the user's verified addresses."""
    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


def invitation_accept(*, token: str, user: Any) -> WorkspaceRole:
    """Join the workspace with the invited role; the user's verified email must match.

    Someone already on the team keeps the higher of their role and the invited one.
    """
    with transaction.atomic():
        found = invitation_find(token=token)
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("workspace")
            .get(pk=found.pk)
            if found is not None
            else None
        )
        problem = invitation_problem(invitation=invitation)
        if problem or invitation is None:
            raise WorkspaceError({"token": problem})
        if not user_has_verified_email(user=user, email=invitation.email):
            raise WorkspaceError(
                {
                    "email": _(
                        "This invitation was sent to %(email)s. Sign in with that address, or"
                        " add and verify it in your account, to accept it."
                    )
                    % {"email": invitation.email}
                }
            )
        workspace = invitation.workspace
        existing = (
            WorkspaceRole.objects.select_for_update().filter(workspace=workspace, user=user).first()
        )
        previous = existing.role if existing is not None else None
        if existing is None:
            membership = WorkspaceRole.objects.create(
                workspace=workspace, user=user, role=invitation.role
            )
        else:
            membership = existing
            if ROLE_RANK[Role(invitation.role)] > ROLE_RANK[Role(existing.role)]:
                membership.role = invitation.role
                membership.save(update_fields=["role"])
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        audit_record(
            workspace=workspace,
            actor=user,
            action="invitation.accepted",
            target=invitation,
            data={"email": invitation.email, "role": membership.role, "previous_role": previous},
        )
    _forget_roles(user)
    return membership


def invitation_revoke(*, invitation: Invitation, actor: Any) -> Invitation:
    """Withdraw a pending invitation so its link stops working."""
    _require(actor=actor, workspace=invitation.workspace, perm=Perm.MANAGE_TEAM)
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(
            pk=invitation.pk, workspace=invitation.workspace
        )
        if locked.accepted_at is not None:
            raise WorkspaceError({"invitation": _("This invitation has already been used.")})
        if locked.revoked_at is not None:
            raise WorkspaceError({"invitation": _("This invitation was already withdrawn.")})
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_record(
            workspace=locked.workspace,
            actor=actor,
            action="invitation.revoked",
            target=locked,
            data={"email": locked.email, "role": locked.role},
        )
    invitation.revoked_at = locked.revoked_at
    return invitation


def role_set(*, workspace: Workspace, user: Any, role: str, actor: Any) -> WorkspaceRole:
    """Give `user` the `role` (adding them when new); never demotes the last owner.

    `actor` None is the system (demo, commands); a person needs the team permission, cannot
    grant above their own role, and cannot change someone who ranks above them.
    """
    if role not in Role.values:
        raise WorkspaceError({"role": _("Choose one of the roles.")})
    actor_role = _require(actor=actor, workspace=workspace, perm=Perm.MANAGE_TEAM)
    with transaction.atomic():
        current = (
            WorkspaceRole.objects.select_for_update().filter(workspace=workspace, user=user).first()
        )
        previous = current.role if current is not None else None
        if actor_role is not None:
            if not can_grant(granter_role=actor_role, role=role):
                raise WorkspaceError({"role": _("You cannot give a role above your own.")})
            if previous is not None and not can_grant(granter_role=actor_role, role=previous):
                raise WorkspaceError(
                    {"role": _("You cannot change the role of someone who ranks above you.")}
                )
        if previous == role and current is not None:
            return current
        if previous == Role.OWNER:
            _keep_an_owner(workspace=workspace, leaving_user=user)
        if current is None:
            current = WorkspaceRole.objects.create(workspace=workspace, user=user, role=role)
        else:
            current.role = role
            current.save(update_fields=["role"])
        audit_record(
            workspace=workspace,
            actor=actor,
            action="role.changed" if previous is not None else "role.added",
            target=current,
            data={"user": getattr(user, "email", str(user.pk)), "from": previous, "to": role},
        )
    _forget_roles(user)
    return current


def role_remove(*, workspace: Workspace, user: Any, actor: Any) -> None:
    """Take `user` off the team; never removes the last owner. Anyone may leave by themselves."""
    leaving_by_self = actor is not None and getattr(actor, "pk", None) == user.pk
    actor_role = (
        role_of(user=actor, workspace=workspace)
        if leaving_by_self
        else _require(actor=actor, workspace=workspace, perm=Perm.MANAGE_TEAM)
    )
    with transaction.atomic():
        current = (
            WorkspaceRole.objects.select_for_update().filter(workspace=workspace, user=user).first()
        )
        if current is None:
            raise WorkspaceError({"user": _("This person is not in the workspace.")})
        if (
            not leaving_by_self
            and actor_role is not None
            and not can_grant(granter_role=actor_role, role=current.role)
        ):
            raise WorkspaceError({"user": _("You cannot remove someone who ranks above you.")})
        if current.role == Role.OWNER:
            _keep_an_owner(workspace=workspace, leaving_user=user)
        audit_record(
            workspace=workspace,
            actor=actor,
            action="role.removed",
            target=current,
            data={"user": getattr(user, "email", str(user.pk)), "role": current.role},
        )
        current.delete()
    _forget_roles(user)


def _keep_an_owner(*, workspace: Workspace, leaving_user: Any) -> None:
    # Locking every owner row serialises two owners demoting each other at the same time.
    owners = list(
        WorkspaceRole.objects.select_for_update()
        .filter(workspace=workspace, role=Role.OWNER)
        .values_list("user_id", flat=True)
    )
    if [uid for uid in owners if uid != leaving_user.pk] == []:
        raise WorkspaceError(
            {"role": _("A workspace needs at least one owner: make someone else owner first.")}
        )


def _require(*, actor: Any, workspace: Workspace, perm: Perm) -> str | None:
    """The actor's role when they hold `perm` (None for the system actor); else PermissionDenied."""
    if actor is None:
        return None
    if not has_perm(user=actor, workspace=workspace, perm=perm):
        raise PermissionDenied(perm.value)
    return role_of(user=actor, workspace=workspace)


def _forget_roles(user: Any) -> None:
    """Drop the per-request role cache that core.permissions keeps on the user object."""
    if user is not None:
        user.__dict__.pop("_circolo_roles", None)
