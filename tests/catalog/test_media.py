"""Product media: uploads judged by their bytes, stored through the storage API, thumbnails
made after commit, URLs in the payloads; bad files are 400 problems and leave nothing."""

from __future__ import annotations

import random
import re
import struct
import zlib
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DataError, IntegrityError
from PIL import Image
from rest_framework.test import APIClient

from apps.catalog import media as media_services
from apps.catalog.exceptions import ImageTooLarge, ImageTooManyPixels, InvalidImage
from apps.catalog.models import Product, ProductMedia
from apps.users.models import User
from ecommerce.api.permissions import Role
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.asserts import assert_invalid, assert_problem
from tests.catalog.factories import make_product
from tests.users.factories import UserFactory

PRODUCTS = "/api/products"
STORED_NAME = re.compile(r"products/(\d+)/[0-9a-f]{32}\.(jpg|png|webp|gif)")


# --- Images made by Pillow, and broken ones -----------------------------------------------------


def image_bytes(
    kind: str = "PNG",
    size: tuple[int, int] = (40, 30),
    mode: str = "RGB",
    *,
    noise: bool = False,
    colour: Any = "teal",
    **options: Any,
) -> bytes:
    """A real image; with `noise`, random pixels (so a JPEG is large and cut mid-scan)."""
    if noise:  # the same bytes every run; made whole, not pixel by pixel in Python
        pixels = random.Random(7).randbytes(size[0] * size[1] * len(mode))
        image = Image.frombytes(mode, size, pixels)
    else:
        image = Image.new(mode, size, colour)
    buffer = BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header (with a valid CRC) claims `width` x `height` pixels."""
    data = bytearray(image_bytes("PNG", (1, 1)))
    struct.pack_into(">II", data, 16, width, height)  # IHDR data starts at byte 16
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>"
)


def upload(data: bytes, name: str = "photo.png", content_type: str = "image/png") -> Any:
    return SimpleUploadedFile(name, data, content_type=content_type)


# --- Fixtures -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Every test stores into a MEDIA_ROOT of its own."""
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    return root


def stored_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def manager() -> User:
    return UserFactory(roles=[Role.CATALOG_MANAGER])


@pytest.fixture
def manager_client(client_for: Callable[[Any], APIClient], manager: User) -> APIClient:
    return client_for(manager)


@pytest.fixture
def tee() -> Product:
    return make_product(sku="tee", stock=3)


def post_image(client: APIClient, sku: str, data: dict[str, Any]) -> Any:
    return client.post(f"{PRODUCTS}/{sku}/media", data, format="multipart")


def assert_nothing_stored(root: Path) -> None:
    assert stored_files(root) == []
    assert not ProductMedia.objects.exists()
    assert not OutboxMessage.objects.filter(topic=media_services.MEDIA_ADDED).exists()


# --- add_media ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_image_is_stored_under_a_random_name_and_its_thumbnails_are_requested(
    tee: Product, media_root: Path, manager: User
) -> None:
    data = image_bytes("PNG", (40, 30))

    media = media_services.add_media(
        product=tee, upload=upload(data, "../../etc/passwd.png"), alt="Front", actor=manager
    )

    media.refresh_from_db()
    assert STORED_NAME.fullmatch(media.image.name)
    assert media.image.name.startswith(f"products/{tee.pk}/")
    assert (media_root / media.image.name).read_bytes() == data
    assert (media.content_type, media.width, media.height, media.size_bytes) == (
        "image/png",
        40,
        30,
        len(data),
    )
    assert (media.alt, media.sort_order, media.thumbnails) == ("Front", 0, {})
    assert stored_files(media_root) == [media.image.name]
    messages = OutboxMessage.objects.filter(topic=media_services.MEDIA_ADDED)
    assert [(m.task_name, m.payload) for m in messages] == [
        (media_services.MAKE_THUMBNAILS_TASK, {"media_id": media.pk})
    ]


@pytest.mark.django_db
def test_the_type_comes_from_the_bytes_not_the_name_or_the_claimed_content_type(
    tee: Product,
) -> None:
    jpeg = image_bytes("JPEG", (20, 10))

    media = media_services.add_media(product=tee, upload=upload(jpeg, "shot.png", "image/png"))

    assert media.content_type == "image/jpeg"
    assert media.image.name.endswith(".jpg")


@pytest.mark.django_db
def test_images_join_the_end_of_the_gallery(tee: Product) -> None:
    orders = [
        media_services.add_media(product=tee, upload=upload(image_bytes())).sort_order
        for _ in range(3)
    ]

    assert orders == [0, 1, 2]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"just some text, no image at all", InvalidImage),
        (HTML, InvalidImage),
        (SVG, InvalidImage),
        (b"", InvalidImage),
        (image_bytes("JPEG", (300, 300), noise=True)[:6000], InvalidImage),
        (image_bytes("JPEG", (300, 300), noise=True, progressive=True)[:-100], InvalidImage),
        (image_bytes("PNG", (300, 300), noise=True)[:-200], InvalidImage),
        (image_bytes("BMP", (10, 10)), InvalidImage),  # a real image of a type not taken
        (image_bytes("TIFF", (10, 10)), InvalidImage),
        (png_claiming(50_000, 50_000), ImageTooManyPixels),
    ],
    ids=[
        "text",
        "html",
        "svg",
        "empty",
        "truncated-jpeg",
        "truncated-progressive-jpeg",
        "truncated-png",
        "bmp",
        "tiff",
        "bomb",
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_stored(
    tee: Product, media_root: Path, data: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        media_services.add_media(product=tee, upload=upload(data))

    assert_nothing_stored(media_root)


@pytest.mark.django_db
def test_the_byte_cap_is_counted_while_reading(
    tee: Product, media_root: Path, settings: Any
) -> None:
    settings.MEDIA_MAX_BYTES = 1000
    data = image_bytes("PNG", (100, 100), noise=True)
    assert len(data) > 1000

    class Unsized(BytesIO):
        """A stream that claims no size: only reading it tells."""

    with pytest.raises(ImageTooLarge) as refused:
        media_services.add_media(product=tee, upload=Unsized(data))

    assert refused.value.extra == {"max_bytes": 1000}
    assert_nothing_stored(media_root)


@pytest.mark.django_db
def test_the_pixel_cap_is_read_from_the_header(
    tee: Product, media_root: Path, settings: Any
) -> None:
    settings.MEDIA_MAX_PIXELS = 1000

    with pytest.raises(ImageTooManyPixels):
        media_services.add_media(product=tee, upload=upload(image_bytes("PNG", (40, 30))))

    assert_nothing_stored(media_root)


@pytest.mark.django_db
def test_a_failed_row_write_deletes_the_stored_file(tee: Product, media_root: Path) -> None:
    """The file is stored first; the INSERT fails (alt longer than its column): no file."""
    with pytest.raises(DataError):
        media_services.add_media(product=tee, upload=upload(image_bytes()), alt="x" * 300)

    assert_nothing_stored(media_root)


@pytest.mark.django_db(transaction=True)
def test_a_commit_refused_by_the_database_deletes_the_stored_file(media_root: Path) -> None:
    """The foreign key is checked at COMMIT (deferred): a product that does not exist."""
    ghost = Product(pk=987_654_321, name="ghost")

    with pytest.raises(IntegrityError):
        media_services.add_media(product=ghost, upload=upload(image_bytes()))

    assert_nothing_stored(media_root)


@pytest.mark.django_db
def test_a_storage_that_cannot_write_leaves_no_row(
    tee: Product, settings: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where MEDIA_ROOT should be")
    settings.MEDIA_ROOT = blocker

    with pytest.raises(OSError, match="not-a-directory"):
        media_services.add_media(product=tee, upload=upload(image_bytes()))

    assert not ProductMedia.objects.exists()
    assert not OutboxMessage.objects.filter(topic=media_services.MEDIA_ADDED).exists()


# --- Thumbnails ---------------------------------------------------------------------------------


def thumbnail_sizes(root: Path, media: ProductMedia) -> dict[str, tuple[str, tuple[int, int]]]:
    found = {}
    for size, name in media.thumbnails.items():
        with Image.open(root / name) as image:
            found[size] = (str(image.format), image.size)
    return found


@pytest.mark.django_db
def test_thumbnails_are_made_in_the_fixed_sizes_and_recorded(
    tee: Product, media_root: Path
) -> None:
    media = media_services.add_media(product=tee, upload=upload(image_bytes("JPEG", (1200, 800))))

    media_services.make_thumbnails(media_id=media.pk)

    media.refresh_from_db()
    stem = media.image.name.removesuffix(".jpg")
    assert media.thumbnails == {
        "160": f"{stem}_160.webp",
        "480": f"{stem}_480.webp",
        "960": f"{stem}_960.webp",
    }
    assert thumbnail_sizes(media_root, media) == {
        "160": ("WEBP", (160, 107)),
        "480": ("WEBP", (480, 320)),
        "960": ("WEBP", (960, 640)),
    }
    assert stored_files(media_root) == sorted([media.image.name, *media.thumbnails.values()])


@pytest.mark.django_db
def test_thumbnails_never_enlarge_and_keep_transparency(tee: Product, media_root: Path) -> None:
    media = media_services.add_media(
        product=tee,
        upload=upload(image_bytes("PNG", (120, 60), mode="RGBA", colour=(0, 128, 128, 90))),
    )

    media_services.make_thumbnails(media_id=media.pk)

    media.refresh_from_db()
    assert {size: dims for size, (_, dims) in thumbnail_sizes(media_root, media).items()} == {
        "160": (120, 60),
        "480": (120, 60),
        "960": (120, 60),
    }
    with Image.open(media_root / media.thumbnails["160"]) as thumbnail:
        assert thumbnail.mode == "RGBA"


@pytest.mark.django_db
def test_making_thumbnails_again_changes_nothing(tee: Product, media_root: Path) -> None:
    media = media_services.add_media(product=tee, upload=upload(image_bytes("GIF", (500, 500))))
    media_services.make_thumbnails(media_id=media.pk)
    media.refresh_from_db()
    before = {name: (media_root / name).stat().st_mtime_ns for name in stored_files(media_root)}

    again = media_services.make_thumbnails(media_id=media.pk)

    assert again is not None
    assert again.thumbnails == media.thumbnails
    assert {
        name: (media_root / name).stat().st_mtime_ns for name in stored_files(media_root)
    } == before


@pytest.mark.django_db
def test_files_left_by_a_run_that_died_are_replaced_not_duplicated(
    tee: Product, media_root: Path
) -> None:
    media = media_services.add_media(product=tee, upload=upload(image_bytes("WEBP", (600, 300))))
    leftover = media_root / media_services.thumbnail_name(media.image.name, 480)
    leftover.write_bytes(b"half a thumbnail")

    media_services.make_thumbnails(media_id=media.pk)

    media.refresh_from_db()
    assert media.thumbnails["480"] == media_services.thumbnail_name(media.image.name, 480)
    with Image.open(leftover) as thumbnail:
        assert thumbnail.size == (480, 240)
    assert len(stored_files(media_root)) == 4


@pytest.mark.django_db
def test_a_deleted_image_needs_no_thumbnails(tee: Product, media_root: Path) -> None:
    media = media_services.add_media(product=tee, upload=upload(image_bytes()))
    ProductMedia.objects.filter(pk=media.pk).delete()

    assert media_services.make_thumbnails(media_id=media.pk) is None
    assert stored_files(media_root) == [media.image.name]  # delete_media would remove it


# --- The API ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "content_type", "extension"),
    [
        ("JPEG", "image/jpeg", "jpg"),
        ("PNG", "image/png", "png"),
        ("WEBP", "image/webp", "webp"),
        ("GIF", "image/gif", "gif"),
    ],
)
def test_a_manager_uploads_an_image(
    manager_client: APIClient,
    tee: Product,
    media_root: Path,
    kind: str,
    content_type: str,
    extension: str,
) -> None:
    data = image_bytes(kind, (64, 48))

    response = post_image(
        manager_client, "tee", {"image": upload(data, "x.bin", "text/plain"), "alt": "Front"}
    )

    assert response.status_code == 201, response.content
    media = ProductMedia.objects.get()
    assert response.json() == {
        "id": media.pk,
        "url": f"/media/{media.image.name}",
        "alt": "Front",
        "width": 64,
        "height": 48,
        "thumbnails": {},
    }
    assert response["Location"] == f"/api/products/tee/media/{media.pk}/"
    assert media.image.name.endswith(f".{extension}")
    assert media.content_type == content_type
    assert (media_root / media.image.name).read_bytes() == data


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "name", "code", "extra"),
    [
        (b"plain text", "notes.png", "invalid_image", ()),
        (HTML, "page.png", "invalid_image", ()),
        (SVG, "logo.png", "invalid_image", ()),
        (image_bytes("JPEG", (300, 300), noise=True)[:6000], "cut.jpg", "invalid_image", ()),
        (png_claiming(50_000, 50_000), "bomb.png", "image_too_many_pixels", ("max_pixels",)),
    ],
    ids=["text", "html", "svg", "truncated-jpeg", "bomb"],
)
def test_a_bad_upload_is_a_400_problem_and_leaves_nothing(
    manager_client: APIClient,
    tee: Product,
    media_root: Path,
    data: bytes,
    name: str,
    code: str,
    extra: tuple[str, ...],
) -> None:
    response = post_image(manager_client, "tee", {"image": upload(data, name)})

    assert_problem(response, 400, code, extra=extra)
    assert_nothing_stored(media_root)


@pytest.mark.django_db
@pytest.mark.parametrize("form_cap", [None, 100], ids=["counted-while-read", "announced"])
def test_a_too_large_upload_is_refused(
    manager_client: APIClient,
    tee: Product,
    media_root: Path,
    settings: Any,
    form_cap: int | None,
) -> None:
    """Over the cap as the bytes arrive; or, when the request announces more than the cap
    plus the form fields' own cap, before any of it is read."""
    settings.MEDIA_MAX_BYTES = 2000
    if form_cap is not None:
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = form_cap
    data = image_bytes("PNG", (100, 100), noise=True)

    response = post_image(manager_client, "tee", {"image": upload(data)})

    body = assert_problem(response, 400, "image_too_large", extra=("max_bytes",))
    assert body["max_bytes"] == 2000
    assert_nothing_stored(media_root)


@pytest.mark.django_db
def test_form_fields_over_the_body_cap_are_a_413(
    manager_client: APIClient, tee: Product, media_root: Path, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    response = post_image(manager_client, "tee", {"image": upload(image_bytes()), "alt": "a" * 200})

    assert_problem(response, 413, "payload_too_large")
    assert_nothing_stored(media_root)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [{"alt": "no file"}, {"image": "not a file, a text field"}, {"image": upload(b"", "e.png")}],
    ids=["missing", "text-field", "empty-file"],
)
def test_an_upload_without_a_file_is_a_validation_problem(
    manager_client: APIClient, tee: Product, media_root: Path, data: dict[str, Any]
) -> None:
    assert_invalid(post_image(manager_client, "tee", data), "#/image")
    assert_nothing_stored(media_root)


@pytest.mark.django_db
def test_alt_text_is_bounded(manager_client: APIClient, tee: Product, media_root: Path) -> None:
    response = post_image(manager_client, "tee", {"image": upload(image_bytes()), "alt": "a" * 256})

    assert_invalid(response, "#/alt")
    assert_nothing_stored(media_root)


@pytest.mark.django_db
def test_a_json_body_is_not_an_upload(manager_client: APIClient, tee: Product) -> None:
    response = manager_client.post(f"{PRODUCTS}/tee/media", {"image": "x"}, format="json")

    assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.django_db
def test_a_malformed_multipart_body_is_a_400(manager_client: APIClient, tee: Product) -> None:
    response = manager_client.generic(
        "POST",
        f"{PRODUCTS}/tee/media",
        b"--xyz\r\nContent-Disposition: form-data; name=image; filename=a.png\r\n\r\n",
        content_type="multipart/form-data",  # no boundary
    )

    assert_problem(response, 400, "parse_error")


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "status"), [("anonymous", 401), (Role.CUSTOMER, 403)])
def test_only_catalog_managers_upload(
    api_client: APIClient,
    client_for: Callable[[Any], APIClient],
    tee: Product,
    media_root: Path,
    kind: Any,
    status: int,
) -> None:
    client = api_client if kind == "anonymous" else client_for(UserFactory(roles=[kind]))

    response = post_image(client, "tee", {"image": upload(image_bytes())})

    assert response.status_code == status
    assert_nothing_stored(media_root)


@pytest.mark.django_db
def test_an_unknown_product_is_a_404(manager_client: APIClient, media_root: Path) -> None:
    response = post_image(manager_client, "nope", {"image": upload(image_bytes())})

    assert_problem(response, 404, "product_not_found", extra=("products",))
    assert_nothing_stored(media_root)


@pytest.mark.django_db
def test_a_manager_changes_alt_text_and_order(manager_client: APIClient, tee: Product) -> None:
    first, second = (
        media_services.add_media(product=tee, upload=upload(image_bytes())) for _ in range(2)
    )

    response = manager_client.patch(
        f"{PRODUCTS}/tee/media/{second.pk}", {"alt": "Back", "sort_order": 0}, format="json"
    )
    manager_client.patch(f"{PRODUCTS}/tee/media/{first.pk}", {"sort_order": 5}, format="json")

    assert response.status_code == 200
    assert response.json()["alt"] == "Back"
    detail = manager_client.get(f"{PRODUCTS}/tee").json()
    assert [(m["id"], m["alt"]) for m in detail["media"]] == [(second.pk, "Back"), (first.pk, "")]


@pytest.mark.django_db
def test_media_of_another_product_is_not_found(manager_client: APIClient, tee: Product) -> None:
    other = make_product(sku="mug")
    media = media_services.add_media(product=other, upload=upload(image_bytes()))

    for response in (
        manager_client.delete(f"{PRODUCTS}/tee/media/{media.pk}"),
        manager_client.patch(f"{PRODUCTS}/tee/media/{media.pk}", {"alt": "x"}, format="json"),
        manager_client.delete(f"{PRODUCTS}/tee/media/99999999999999999999"),
    ):
        assert response.status_code == 404
    assert ProductMedia.objects.filter(pk=media.pk).exists()


@pytest.mark.django_db
def test_deleting_an_image_deletes_its_files_once_committed(
    manager_client: APIClient,
    tee: Product,
    media_root: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    media = media_services.add_media(product=tee, upload=upload(image_bytes("PNG", (500, 400))))
    media_services.make_thumbnails(media_id=media.pk)
    assert len(stored_files(media_root)) == 4

    with django_capture_on_commit_callbacks(execute=False) as pending:
        response = manager_client.delete(f"{PRODUCTS}/tee/media/{media.pk}")
        assert response.status_code == 204
        assert len(stored_files(media_root)) == 4  # not before the commit
    for callback in pending:
        callback()

    assert not ProductMedia.objects.exists()
    assert stored_files(media_root) == []


# --- URLs in the product payloads, end to end (tasks run eagerly on commit) ---------------------


@pytest.mark.django_db
def test_an_upload_shows_in_the_detail_and_the_list_once_thumbnailed(
    manager_client: APIClient,
    api_client: APIClient,
    tee: Product,
    media_root: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    assert api_client.get(f"{PRODUCTS}/tee").json()["media"] == []  # cached, empty
    assert api_client.get(PRODUCTS).json()["results"][0]["thumbnail"] is None

    with django_capture_on_commit_callbacks(execute=True):
        response = post_image(
            manager_client, "tee", {"image": upload(image_bytes("PNG", (800, 600))), "alt": "Tee"}
        )
    assert response.status_code == 201

    media = ProductMedia.objects.get()
    stem = media.image.name.removesuffix(".png")
    assert api_client.get(f"{PRODUCTS}/tee").json()["media"] == [
        {
            "id": media.pk,
            "url": f"/media/{media.image.name}",
            "alt": "Tee",
            "width": 800,
            "height": 600,
            "thumbnails": {size: f"/media/{stem}_{size}.webp" for size in ("160", "480", "960")},
        }
    ]
    assert api_client.get(PRODUCTS).json()["results"][0]["thumbnail"] == f"/media/{stem}_160.webp"
    served = api_client.get(f"/media/{stem}_160.webp")
    assert (served.status_code, served["Content-Type"]) == (200, "image/webp")
    assert served["X-Content-Type-Options"] == "nosniff"
    with Image.open(BytesIO(b"".join(served.streaming_content))) as thumbnail:
        assert thumbnail.size == (160, 120)


@pytest.mark.django_db
def test_the_list_costs_the_same_queries_with_images(
    manager_client: APIClient, django_assert_num_queries: Any
) -> None:
    for n in range(5):
        product = make_product(sku=f"m{n}")
        for _ in range(2):
            media = media_services.add_media(product=product, upload=upload(image_bytes()))
            media_services.make_thumbnails(media_id=media.pk)

    # user, roles, count, page (the first image's thumbnails are a subquery of the page)
    with django_assert_num_queries(4):
        response = manager_client.get(PRODUCTS)

    rows = response.json()["results"]
    assert len(rows) == 5
    thumbnail = re.compile(r"/media/products/\d+/[0-9a-f]{32}_160\.webp")
    assert all(thumbnail.fullmatch(row["thumbnail"]) for row in rows)


@pytest.mark.django_db
def test_any_storage_backend_serves_through_the_storage_api(
    settings: Any, tee: Product, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """Nothing reads or writes MEDIA_ROOT directly: an in-memory backend works the same."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    storage = media_services.media_storage()

    media = media_services.add_media(product=tee, upload=upload(image_bytes("JPEG", (640, 480))))
    media_services.make_thumbnails(media_id=media.pk)
    media.refresh_from_db()

    names = [media.image.name, *media.thumbnails.values()]
    assert all(storage.exists(name) for name in names)
    with Image.open(storage.open(media.thumbnails["480"])) as thumbnail:
        assert thumbnail.size == (480, 360)
    assert stored_files(media_root) == []
    with django_capture_on_commit_callbacks(execute=True):
        media_services.delete_media(media=media)
    assert not any(storage.exists(name) for name in names)


@pytest.mark.django_db
def test_a_polyglot_png_is_only_ever_served_as_an_image(
    manager_client: APIClient, api_client: APIClient, tee: Product
) -> None:
    """A real PNG with HTML after its end is a valid image; it is stored as `.png` and
    served as image/png with nosniff and a CSP that runs nothing, never as a page."""
    polyglot = image_bytes("PNG", (20, 20)) + HTML

    response = post_image(manager_client, "tee", {"image": upload(polyglot, "x.html", "text/html")})

    assert response.status_code == 201, response.content
    served = api_client.get(response.json()["url"])
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in served["Content-Security-Policy"]
