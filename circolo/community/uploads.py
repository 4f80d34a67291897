"""Images members add to their posts.

An upload is checked by what it is, not by what it claims: Pillow must recognise it as one
of the accepted formats, within a size and pixel budget (so a small file that decodes to a
huge image is refused). It is then turned upright, resized to fit the largest size the
community shows, and re-encoded from its pixels alone, so no metadata (EXIF location,
camera serials, comments) survives. Files are named by the hash of what is stored.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from circolo.people.models import Member

from .models import Upload
from .services import CommunityError

# The longest side an image keeps; larger ones are scaled down.
MAX_SIDE = 1600
# Decoded pixels accepted at most (a 64-megapixel photo), whatever the file's size.
MAX_PIXELS = 64_000_000
# Formats accepted, and the format each is stored in: animations keep their first frame.
FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "GIF": "PNG"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class UploadError(CommunityError):
    def __init__(self, message: str) -> None:
        super().__init__("image", message)


def max_bytes() -> int:
    return int(getattr(settings, "CIRCOLO_UPLOAD_MAX_BYTES", 8 * 1024 * 1024))


def _decode(data: bytes) -> tuple[Image.Image, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
            kind = probe.format or ""
            if kind not in FORMATS:
                raise UploadError(_("Upload a JPEG, PNG, WebP or GIF image."))
            if probe.width * probe.height > MAX_PIXELS:
                raise UploadError(_("This image has too many pixels; upload a smaller one."))
            probe.verify()  # a truncated or corrupt file fails here
            image = Image.open(io.BytesIO(data))
            image.load()
        except UnidentifiedImageError:
            raise UploadError(_("This file is not an image we can read.")) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError(_("This image has too many pixels; upload a smaller one.")) from None
        except (OSError, SyntaxError, ValueError) as error:
            if isinstance(error, UploadError):
                raise
            raise UploadError(_("This image is damaged or incomplete.")) from None
    return image, kind


def _clean(image: Image.Image, kind: str) -> tuple[bytes, str]:
    """The image upright, scaled to MAX_SIDE and re-encoded with no metadata."""
    image = ImageOps.exif_transpose(image) or image
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    target = FORMATS[kind]
    if target == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif target in ("PNG", "WEBP") and image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA")
    # A fresh image holds the pixels only: nothing of the original's info dict is carried.
    pixels = Image.new(image.mode, image.size)
    pixels.paste(image)
    out = io.BytesIO()
    if target == "JPEG":
        pixels.save(out, "JPEG", quality=85, optimize=True)
    elif target == "WEBP":
        pixels.save(out, "WEBP", quality=85)
    else:
        pixels.save(out, "PNG", optimize=True)
    return out.getvalue(), target


def upload_image(*, member: Member, file: IO[bytes], name: str = "") -> Upload:
    """Store an image for `member`'s posts, cleaned as the module says; the same picture
    uploaded twice in a workspace is stored once."""
    limit = max_bytes()
    data = file.read(limit + 1)
    if not data:
        raise UploadError(_("The file is empty."))
    if len(data) > limit:
        raise UploadError(
            _("An image has at most %(limit)s MB.") % {"limit": f"{limit / 1024 / 1024:g}"}
        )
    image, kind = _decode(data)
    cleaned, stored_as = _clean(image, kind)
    digest = hashlib.sha256(cleaned).hexdigest()
    existing = Upload.objects.filter(workspace_id=member.workspace_id, sha256=digest).first()
    if existing is not None:
        return existing
    width, height = Image.open(io.BytesIO(cleaned)).size
    upload = Upload(
        workspace_id=member.workspace_id,
        member=member,
        sha256=digest,
        extension=EXTENSIONS[stored_as],
        content_type=CONTENT_TYPES[stored_as],
        width=width,
        height=height,
        size=len(cleaned),
        original_name=str(name)[:200],
    )
    try:
        with transaction.atomic():
            upload.file.save(f"{digest}.{upload.extension}", ContentFile(cleaned), save=False)
            upload.save()
    except IntegrityError:
        # The same picture arrived twice at once: the other request stored it.
        return Upload.objects.get(workspace_id=member.workspace_id, sha256=digest)
    return upload


def upload_by_name(*, workspace_id: int, name: str) -> Upload | None:
    """The upload a post's image address names ("<sha256>.<ext>"), in this workspace."""
    digest, _dot, extension = name.partition(".")
    if len(digest) != 64 or extension not in EXTENSIONS.values():
        return None
    return Upload.objects.filter(
        workspace_id=workspace_id, sha256=digest, extension=extension
    ).first()


def upload_url(upload: Upload, slug: str) -> str:
    return reverse("community:upload", args=[slug, f"{upload.sha256}.{upload.extension}"])


def image_markdown(upload: Upload, slug: str) -> str:
    alt = (upload.original_name.rsplit(".", 1)[0] or "image").replace("]", "").replace("[", "")
    return f"![{alt[:80]}]({upload_url(upload, slug)})"


def attach_image(request: HttpRequest, member: Member, body: str) -> str:
    """The body with the form's uploaded image (field "image") added at its end, if any.
    Raises UploadError when the file is refused."""
    file = request.FILES.get("image")
    if file is None:
        return body
    upload = upload_image(member=member, file=file, name=file.name or "")
    slug = request.resolver_match.kwargs["slug"] if request.resolver_match else ""
    return f"{body.rstrip()}\n\n{image_markdown(upload, slug)}\n"
