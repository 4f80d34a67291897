"""Images in posts: uploading one, and serving the stored files."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .uploads import UploadError, image_markdown, upload_by_name, upload_image, upload_url
from .views import _viewer, _workspace


@require_POST
def upload_create(request: HttpRequest, slug: str) -> HttpResponse:
    """POST an image (field "image"); JSON {url, markdown} to paste into a post."""
    workspace = _workspace(slug)
    viewer = _viewer(request, workspace)
    if viewer is None:
        return JsonResponse({"detail": _("Sign in to upload images.")}, status=401)
    file = request.FILES.get("image")
    if file is None:
        return JsonResponse({"detail": _("Choose an image to upload.")}, status=400)
    try:
        upload = upload_image(member=viewer, file=file, name=file.name or "")
    except UploadError as error:
        return JsonResponse({"detail": error.message}, status=400)
    return JsonResponse(
        {"url": upload_url(upload, slug), "markdown": image_markdown(upload, slug)}, status=201
    )


def upload_serve(request: HttpRequest, slug: str, name: str) -> FileResponse:
    """A stored image. Names are content hashes, so the file never changes: cache it."""
    workspace = _workspace(slug)
    upload = upload_by_name(workspace_id=workspace.pk, name=name)
    if upload is None:
        raise Http404
    response = FileResponse(upload.file.open("rb"), content_type=upload.content_type)
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response
