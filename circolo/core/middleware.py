"""Two-factor authentication is required of the roles that can change a workspace."""

from __future__ import annotations

from collections.abc import Callable

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from circolo.core.models import WorkspaceRole

# Workspace pages and the session side of the API. Accounts, MFA, sign-out, static files and
# the language switch live elsewhere, so whoever is asked to set up MFA can still do it.
PROTECTED_PREFIXES = ("/w/", "/api/")


def carries_api_key(request: HttpRequest) -> bool:
    """A request authenticated by an API key acts as the key, not as the signed-in person."""
    return bool(
        request.headers.get("X-Api-Key")
        or request.headers.get("Authorization", "").startswith("Bearer ")
    )


def needs_totp(*, user_id: int) -> bool:
    """True when the user holds a role that requires TOTP in some workspace and has none."""
    required = settings.CIRCOLO_MFA_REQUIRED_ROLES
    if not required:
        return False
    has_totp = Authenticator.objects.filter(
        user_id=OuterRef("user_id"), type=Authenticator.Type.TOTP
    )
    return (
        WorkspaceRole.objects.filter(user_id=user_id, role__in=required)
        .filter(~Exists(has_totp))
        .exists()
    )


class MfaRequiredMiddleware:
    """Send owners and managers without an authenticator app to allauth's TOTP activation.

    One query per protected request; turned off with CIRCOLO_MFA_ENFORCE=false for local work.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.CIRCOLO_MFA_ENFORCE
            and request.path.startswith(PROTECTED_PREFIXES)
            and request.user.is_authenticated
            and not carries_api_key(request)
            and needs_totp(user_id=request.user.pk)
        ):
            messages.warning(
                request,
                _(
                    "Owners and managers must protect their account with two-factor"
                    " authentication. Set up an authenticator app to continue."
                ),
            )
            target = reverse("mfa_activate_totp")
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(target)
            return HttpResponseRedirect(target)
        return self.get_response(request)
