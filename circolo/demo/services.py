"""The demo workspace and the two logins a newcomer uses to look around.

The owner login has a verified email and an authenticator app already activated (owners must
use two-factor): its secret and otpauth URI are printed so that it can be added to any app,
and `circolo demo --totp-code` prints the current code. The analyst login needs no second
factor, for a quick look.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from allauth.mfa.utils import decrypt
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from circolo.core.models import Role, Workspace
from circolo.core.services import role_set, workspace_create
from circolo.demo import texts

OWNER_EMAIL = "demo@circolo.local"
ANALYST_EMAIL = "demo-analyst@circolo.local"
TOTP_PERIOD = 30  # seconds; allauth's default (MFA_TOTP_PERIOD)
# Letters and digits that cannot be mistaken for one another when typed from a terminal.
_UNAMBIGUOUS = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str
    totp_secret: str = ""  # base32, empty when the login has no authenticator
    totp_uri: str = ""


def _password() -> str:
    groups = ["".join(secrets.choice(_UNAMBIGUOUS) for _ in range(4)) for _ in range(4)]
    return "-".join(groups)


def _user_with_password(email: str) -> tuple[Any, str]:
    """The user for `email` (created when new) with a fresh password and a verified email."""
    user_model = get_user_model()
    user = user_model.objects.filter(email__iexact=email).first()
    if user is None:
        user = user_model(username=email, email=email)
    password = _password()
    user.set_password(password)
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user, password


def demo_owner_ensure() -> tuple[Any, DemoLogin]:
    """Create or refresh the owner login: new password, verified email, authenticator app.

    An authenticator activated earlier is kept, so an app that already holds it keeps working.
    """
    with transaction.atomic():
        user, password = _user_with_password(OWNER_EMAIL)
        authenticator = Authenticator.objects.filter(
            user=user, type=Authenticator.Type.TOTP
        ).first()
        if authenticator is None:
            secret = generate_totp_secret()
            TOTP.activate(user, secret)
        else:
            secret = decrypt(authenticator.data["secret"])
    uri = get_mfa_adapter().build_totp_url(user, secret)
    return user, DemoLogin(
        email=OWNER_EMAIL, password=password, role=Role.OWNER, totp_secret=secret, totp_uri=uri
    )


def demo_totp_code(*, secret: str, at: float | None = None) -> tuple[str, int]:
    """The authenticator code for `secret` now (or at `at`) and the seconds it stays valid."""
    moment = timezone.now().timestamp() if at is None else at
    counter = int(moment // TOTP_PERIOD)
    remaining = TOTP_PERIOD - int(moment % TOTP_PERIOD)
    return format_hotp_value(hotp_value(secret, counter)), remaining


def demo_owner_totp_secret() -> str | None:
    """The demo owner's authenticator secret, or None before `circolo demo` created it."""
    authenticator = Authenticator.objects.filter(
        user__email__iexact=OWNER_EMAIL, type=Authenticator.Type.TOTP
    ).first()
    return decrypt(authenticator.data["secret"]) if authenticator is not None else None


def demo_workspace_prepare(*, owner: Any, reset: bool = False) -> tuple[Workspace, bool]:
    """The demo store's workspace, created when missing (after wiping it with `reset`).

    Returns (workspace, created).
    """
    existing = Workspace.objects.filter(slug=texts.STORE_SLUG).first()
    if existing is not None and reset:
        with transaction.atomic():
            existing.delete()
        existing = None
    if existing is not None:
        if not existing.roles.filter(user=owner, role=Role.OWNER).exists():
            role_set(workspace=existing, user=owner, role=Role.OWNER, actor=None)
        return existing, False
    workspace = workspace_create(
        owner=owner,
        name=texts.STORE_NAME,
        slug=texts.STORE_SLUG,
        default_language=texts.STORE_LANGUAGE,
        currency=texts.STORE_CURRENCY,
        time_zone=texts.STORE_TIME_ZONE,
    )
    return workspace, True


def demo_analyst_ensure(*, workspace: Workspace) -> DemoLogin:
    """Create or refresh the analyst login (new password, verified email, analyst role)."""
    with transaction.atomic():
        user, password = _user_with_password(ANALYST_EMAIL)
        role_set(workspace=workspace, user=user, role=Role.ANALYST, actor=None)
    return DemoLogin(email=ANALYST_EMAIL, password=password, role=Role.ANALYST)
