"""Images in posts: accepted by what they are, cleaned of metadata, resized, served safely."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image, PngImagePlugin

from circolo.community.models import Post, Upload
from circolo.community.services import space_create, thread_create
from circolo.community.uploads import MAX_SIDE, UploadError, upload_image
from circolo.testing.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

GPS_IFD = 0x8825


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def jpeg_with_exif(size: tuple[int, int] = (40, 30), orientation: int = 1) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0112] = orientation
    exif[GPS_IFD] = {1: "N", 2: (45.0, 27.0, 50.0), 3: "E", 4: (9.0, 11.0, 23.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), comment=b"my home")
    return out.getvalue()


def stored(upload: Upload) -> Image.Image:
    with upload.file.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image


def test_exif_and_comments_are_removed(workspace: Any) -> None:
    member = MemberFactory(workspace=workspace)
    upload = upload_image(member=member, file=io.BytesIO(jpeg_with_exif()), name="me.jpg")
    image = stored(upload)
    assert image.format == "JPEG"
    assert len(image.getexif()) == 0
    assert "exif" not in image.info and "comment" not in image.info
    with upload.file.open("rb") as handle:
        raw = handle.read()
    assert b"SecretCam" not in raw and b"my home" not in raw
    assert upload.content_type == "image/jpeg" and upload.size == len(raw)


def test_png_text_chunks_are_removed(workspace: Any) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Giulia Rossi, via Roma 1")
    out = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 0, 128)).save(out, "PNG", pnginfo=info)
    upload = upload_image(
        member=MemberFactory(workspace=workspace), file=io.BytesIO(out.getvalue())
    )
    image = stored(upload)
    assert image.format == "PNG" and image.mode == "RGBA"
    assert "Author" not in image.info


def test_turned_upright_and_resized(workspace: Any) -> None:
    # Orientation 6: the camera was turned; the stored picture is rotated to stand upright.
    data = jpeg_with_exif(size=(4000, 2000), orientation=6)
    upload = upload_image(member=MemberFactory(workspace=workspace), file=io.BytesIO(data))
    assert (upload.width, upload.height) == (MAX_SIDE // 2, MAX_SIDE)
    assert stored(upload).size == (MAX_SIDE // 2, MAX_SIDE)


def test_gif_keeps_its_first_frame_as_png(workspace: Any) -> None:
    frames = [Image.new("P", (8, 8), colour) for colour in (1, 2)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    upload = upload_image(
        member=MemberFactory(workspace=workspace), file=io.BytesIO(out.getvalue())
    )
    assert upload.extension == "png" and stored(upload).format == "PNG"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<html><script>alert(1)</script></html>", "not an image"),
        (b"%PDF-1.4 not an image", "not an image"),
        (b"GIF89a" + b"\x00" * 20, "not an image"),
    ],
)
def test_what_is_not_an_image_is_refused(workspace: Any, data: bytes, message: str) -> None:
    with pytest.raises(UploadError) as error:
        upload_image(member=MemberFactory(workspace=workspace), file=io.BytesIO(data))
    assert message in error.value.message or "damaged" in error.value.message
    assert not Upload.objects.exists()


def test_truncated_image_is_refused(workspace: Any) -> None:
    data = jpeg_with_exif(size=(300, 300))
    with pytest.raises(UploadError):
        upload_image(member=MemberFactory(workspace=workspace), file=io.BytesIO(data[:400]))


def test_oversized_file_and_pixel_bomb_are_refused(workspace: Any, settings: Any) -> None:
    member = MemberFactory(workspace=workspace)
    settings.CIRCOLO_UPLOAD_MAX_BYTES = 1000
    with pytest.raises(UploadError, match="at most"):
        upload_image(member=member, file=io.BytesIO(jpeg_with_exif(size=(400, 400)) * 3))
    settings.CIRCOLO_UPLOAD_MAX_BYTES = 8 * 1024 * 1024
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # tiny file, 400 megapixels
    assert len(bomb.getvalue()) < 1_000_000
    with pytest.raises(UploadError, match="pixels"):
        upload_image(member=member, file=io.BytesIO(bomb.getvalue()))


def test_the_same_picture_is_stored_once_per_workspace(
    workspace: Any, other_workspace: Any
) -> None:
    data = jpeg_with_exif()
    first = upload_image(member=MemberFactory(workspace=workspace), file=io.BytesIO(data))
    again = upload_image(member=MemberFactory(workspace=workspace), file=io.BytesIO(data))
    elsewhere = upload_image(member=MemberFactory(workspace=other_workspace), file=io.BytesIO(data))
    assert again.pk == first.pk and elsewhere.pk != first.pk


def signed_in(email: str) -> Client:
    client = Client()
    client.force_login(UserFactory(email=email))
    return client


def test_upload_endpoint_and_serving(workspace: Any, other_workspace: Any) -> None:
    client = signed_in("giulia@example.com")
    file = SimpleUploadedFile("moka.jpg", jpeg_with_exif(), content_type="image/jpeg")
    response = client.post(f"/c/{workspace.slug}/uploads/", {"image": file})
    assert response.status_code == 201
    body = response.json()
    assert body["markdown"].startswith("![moka](") and body["url"] in body["markdown"]
    served = Client().get(body["url"])
    assert served.status_code == 200
    assert served["Content-Type"] == "image/jpeg"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served["Content-Security-Policy"]
    assert b"SecretCam" not in b"".join(served.streaming_content)
    # Another workspace's address for the same name is not found.
    name = body["url"].rsplit("/", 1)[1]
    assert Client().get(f"/c/{other_workspace.slug}/uploads/{name}").status_code == 404
    assert Client().get(f"/c/{workspace.slug}/uploads/../../etc/passwd").status_code == 404


def test_upload_endpoint_refusals(workspace: Any) -> None:
    file = SimpleUploadedFile("x.jpg", jpeg_with_exif(), content_type="image/jpeg")
    assert Client().post(f"/c/{workspace.slug}/uploads/", {"image": file}).status_code == 401
    client = signed_in("giulia@example.com")
    assert client.post(f"/c/{workspace.slug}/uploads/", {}).status_code == 400
    fake = SimpleUploadedFile("x.jpg", b"<svg onload=alert(1)>", content_type="image/jpeg")
    response = client.post(f"/c/{workspace.slug}/uploads/", {"image": fake})
    assert response.status_code == 400 and "not an image" in response.json()["detail"]


def test_reply_with_an_image_shows_it(workspace: Any) -> None:
    space = space_create(workspace=workspace, actor=None, name="Foto")
    author = MemberFactory(workspace=workspace)
    thread = thread_create(space=space, author=author, title="La mia moka", body="Ecco")
    client = signed_in("luca@example.com")
    file = SimpleUploadedFile("tazza.png", _png(), content_type="image/png")
    response = client.post(
        f"/c/{workspace.slug}/t/{thread.pk}/reply/", {"body": "La mia tazza", "image": file}
    )
    assert response.status_code == 302
    post = Post.objects.get(thread=thread, number=2)
    assert "![tazza](" in post.body and '<img src="/c/bottega/uploads/' in post.html
    page = client.get(f"/c/{workspace.slug}/t/{thread.pk}/")
    assert 'enctype="multipart/form-data"' in page.content.decode()


def test_reply_with_a_bad_image_keeps_the_text(workspace: Any) -> None:
    space = space_create(workspace=workspace, actor=None, name="Foto")
    thread = thread_create(
        space=space, author=MemberFactory(workspace=workspace), title="Moka", body="Ecco"
    )
    client = signed_in("luca@example.com")
    bad = SimpleUploadedFile("x.png", b"not a picture", content_type="image/png")
    response = client.post(
        f"/c/{workspace.slug}/t/{thread.pk}/reply/", {"body": "Testo salvato", "image": bad}
    )
    assert response.status_code == 400
    assert "not an image" in response.content.decode()
    assert "Testo salvato" in response.content.decode()
    assert not Post.objects.filter(thread=thread, number=2).exists()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (12, 12), (0, 120, 0)).save(out, "PNG")
    return out.getvalue()
