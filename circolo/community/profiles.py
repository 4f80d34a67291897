"""Community profiles: each member's handle, bio and settings, made on first use."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from circolo.people.models import Member

from .models import CommunityProfile

HANDLE_MAX = 40
BIO_MAX = 1000
# What may follow "@" in a post: letters of any script, digits, "_", "-" and ".".
HANDLE_PATTERN = r"[\w][\w.-]{0,38}[\w]|[\w]"
HANDLE_RE = re.compile(rf"^(?:{HANDLE_PATTERN})$")


class ProfileError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _handle_base(member: Member) -> str:
    name = member.display_name or ""
    base = slugify(name, allow_unicode=True).replace("-", "_")[: HANDLE_MAX - 6].strip("_.-")
    return base or "member"


def profile_ensure(member: Member) -> CommunityProfile:
    """The member's profile, made with a free handle derived from their name if missing."""
    try:
        return member.community
    except CommunityProfile.DoesNotExist:
        pass
    base = _handle_base(member)
    taken = set(
        CommunityProfile.objects.filter(
            workspace_id=member.workspace_id, handle__startswith=base
        ).values_list("handle", flat=True)
    )
    candidates = [base] + [f"{base}{n}" for n in range(2, len(taken) + 3)]
    for handle in candidates:
        if handle in taken:
            continue
        try:
            with transaction.atomic():
                profile = CommunityProfile.objects.create(
                    workspace_id=member.workspace_id, member=member, handle=handle
                )
        except IntegrityError:
            existing = CommunityProfile.objects.filter(member=member).first()
            if existing is not None:
                member.community = existing
                return existing
            continue  # someone took the handle meanwhile: the next one
        member.community = profile
        return profile
    raise ProfileError("handle", _("No free handle could be found."))


def profile_update(
    *,
    member: Member,
    handle: str | None = None,
    bio: str | None = None,
    show_products: bool | None = None,
    digest: str | None = None,
) -> CommunityProfile:
    """Change what the member shows about themselves and how often they are mailed."""
    profile = profile_ensure(member)
    fields: list[str] = []
    if handle is not None:
        handle = handle.strip().lstrip("@")
        if not HANDLE_RE.match(handle):
            raise ProfileError(
                "handle",
                _("A handle has 1 to 40 letters, digits, '_', '-' or '.', and no spaces."),
            )
        clash = (
            CommunityProfile.objects.filter(workspace_id=member.workspace_id, handle__iexact=handle)
            .exclude(pk=profile.pk)
            .exists()
        )
        if clash:
            raise ProfileError("handle", _("Another member already uses this handle."))
        profile.handle = handle
        fields.append("handle")
    if bio is not None:
        bio = bio.strip()
        if len(bio) > BIO_MAX:
            raise ProfileError(
                "bio", _("A bio has at most %(limit)d characters.") % {"limit": BIO_MAX}
            )
        profile.bio = bio
        fields.append("bio")
    if show_products is not None:
        profile.show_products = show_products
        fields.append("show_products")
    if digest is not None:
        if digest not in CommunityProfile.Digest.values:
            raise ProfileError("digest", _("Choose how often to get a digest."))
        profile.digest = digest
        fields.append("digest")
    if fields:
        profile.save(update_fields=fields)
    return profile
