"""Product images: judged by their bytes, stored through Django's storage API, thumbnailed
after commit by a Celery task.

An upload is copied into a spooled temporary file while its bytes are counted (never more
than MEDIA_MAX_BYTES is read, and at most SPOOL_MEMORY_BYTES of it in memory), opened by
Pillow restricted to JPEG, PNG, WebP and GIF, refused above MEDIA_MAX_PIXELS from its
header alone (before any decoding: a decompression bomb is a small file), verified, then
opened again and decoded whole (verify() does not see a truncated JPEG). The file is
stored under a random name whose extension is the detected type, never the client's.

Nothing half-written remains: the file is stored before its row is written and deleted
again if that write fails; a media's files are deleted only once its row's deletion has
committed. The row's creation publishes MEDIA_ADDED through the outbox, whose handler
(`make_thumbnails_task`) makes THUMBNAIL_SIZES thumbnails and records them, idempotently.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.db import transaction
from django.db.models import Max
from PIL import Image, ImageOps

from apps.catalog.cache import invalidate_products_on_commit
from apps.catalog.exceptions import ImageTooLarge, ImageTooManyPixels, InvalidImage, MediaNotFound
from apps.catalog.models import Product, ProductMedia
from ecommerce import outbox
from ecommerce.observability.logging import get_logger

if TYPE_CHECKING:
    from django.http import HttpRequest

    from apps.users.models import User

logger = get_logger(__name__)

# Outbox topic published when an image is added; payload `{"media_id": <pk>}`.
MEDIA_ADDED = "catalog.media_added"
MAKE_THUMBNAILS_TASK = "catalog.make_thumbnails"

# The image types accepted, as Pillow names them: content type and stored file extension.
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
}
# An upload stays in memory up to this size, then goes to a temporary file on disk.
SPOOL_MEMORY_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024
THUMBNAIL_FORMAT = "WEBP"
THUMBNAIL_EXTENSION = "webp"
THUMBNAIL_QUALITY = 82


@dataclass(frozen=True)
class ImageInfo:
    """What the bytes of an accepted image say about it."""

    content_type: str
    extension: str
    width: int
    height: int
    size_bytes: int


def media_storage() -> Storage:
    """The storage product images live in (STORAGES["default"], through the model field)."""
    storage: Storage = ProductMedia._meta.get_field("image").storage  # type: ignore[attr-defined]
    return storage


# --- Reading uploads ------------------------------------------------------------------------


def spool(upload: IO[bytes] | File) -> tempfile.SpooledTemporaryFile[bytes]:
    """Copy an upload into a spooled temporary file, refusing it once it passes the cap.

    Reads CHUNK_BYTES at a time, so no more than MEDIA_MAX_BYTES plus one chunk is ever
    read, whatever size the upload claims. The caller closes the copy.
    Raises ImageTooLarge.
    """
    limit = settings.MEDIA_MAX_BYTES
    declared = getattr(upload, "size", None)
    if isinstance(declared, int) and declared > limit:
        raise ImageTooLarge(max_bytes=limit)
    # Returned open: the caller closes it.
    copy = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    try:
        if getattr(upload, "seekable", lambda: False)():
            upload.seek(0)
        total = 0
        while chunk := upload.read(CHUNK_BYTES):
            total += len(chunk)
            if total > limit:
                raise ImageTooLarge(max_bytes=limit)
            copy.write(chunk)
    except BaseException:
        copy.close()
        raise
    copy.seek(0)
    return copy


def _check_pixels(image: Image.Image) -> None:
    width, height = image.size
    if width * height > settings.MEDIA_MAX_PIXELS:
        raise ImageTooManyPixels(max_pixels=settings.MEDIA_MAX_PIXELS)


@contextmanager
def opened_image(file: IO[bytes]) -> Iterator[Image.Image]:
    """Open an image of an accepted type, its pixels checked from the header, not decoded.

    Pillow's own decompression-bomb check (Image.MAX_IMAGE_PIXELS) stays on as a second
    line; its warning is an error here. Raises InvalidImage, ImageTooManyPixels.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            file.seek(0)
            image = Image.open(file, formats=tuple(FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooManyPixels(max_pixels=settings.MEDIA_MAX_PIXELS) from None
        except Exception:  # UnidentifiedImageError, or whatever a corrupt header raises
            raise InvalidImage("The file is not a JPEG, PNG, WebP or GIF image.") from None
        with image:
            _check_pixels(image)
            yield image


def inspect_image(file: IO[bytes], *, size_bytes: int) -> ImageInfo:
    """Judge an image by its bytes: type, dimensions, structure and every pixel decoded.

    Raises InvalidImage, ImageTooManyPixels.
    """
    with opened_image(file) as image:
        kind, size = image.format, image.size
        try:
            image.verify()
        except Exception:
            raise InvalidImage("The image is corrupt.") from None
    # verify() leaves the image unusable and does not decode pixel data: decode it anew.
    with opened_image(file) as image:
        if (image.format, image.size) != (kind, size):
            raise InvalidImage("The image is corrupt.")
        try:
            if kind == "JPEG":
                # Every byte is still decoded, at 1/8 scale: 1/64 of the memory.
                image.draft(image.mode, (max(1, size[0] // 8), max(1, size[1] // 8)))
            image.load()
        except Exception:  # a truncated or corrupt stream: Pillow raises many kinds
            raise InvalidImage("The image is truncated or corrupt.") from None
    content_type, extension = FORMATS[str(kind)]
    width, height = size
    if not width or not height:
        raise InvalidImage("The image has no pixels.")
    return ImageInfo(content_type, extension, width, height, size_bytes)


class CappedUploadHandler(FileUploadHandler):
    """Receives a multipart request's files into spooled temporary files, refusing the
    request as soon as its files hold more than MEDIA_MAX_BYTES in all, so neither memory
    nor disk ever holds more than that for one request. A request announcing more than
    the cap plus the form fields' own cap is refused before anything is read.
    """

    chunk_size = CHUNK_BYTES

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit: int = settings.MEDIA_MAX_BYTES
        self.received = 0
        self.file: tempfile.SpooledTemporaryFile[bytes] | None = None

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        if content_length > self.limit + (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0):
            raise ImageTooLarge(max_bytes=self.limit)

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        # Closed by the request once answered, or by upload_interrupted / the refusal.
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115

    def _current(self) -> tempfile.SpooledTemporaryFile[bytes]:
        if self.file is None:  # Django calls new_file before any data
            raise RuntimeError("receive_data_chunk before new_file")
        return self.file

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        file = self._current()
        self.received += len(raw_data)
        if self.received > self.limit:
            file.close()
            raise ImageTooLarge(max_bytes=self.limit)
        file.write(raw_data)

    def file_complete(self, file_size: int) -> UploadedFile:
        file = self._current()
        file.seek(0)
        return UploadedFile(
            file=file,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )

    def upload_interrupted(self) -> None:
        if self.file is not None:
            self.file.close()


# --- Services -------------------------------------------------------------------------------


def _delete_stored(storage: Storage, names: Iterable[str]) -> None:
    """Delete files, logging (not raising) a failure: the caller's outcome is settled."""
    for name in names:
        try:
            storage.delete(name)
        except Exception as exc:  # a backend's own error types: S3, GCS, ...
            logger.warning(
                "product_media_file_not_deleted", name=name, error=f"{type(exc).__name__}: {exc}"
            )


def add_media(
    *, product: Product, upload: IO[bytes] | File, alt: str = "", actor: User | None = None
) -> ProductMedia:
    """Validate an image by its content, store it and add it to the end of the product's
    gallery; its thumbnails are made after commit (MEDIA_ADDED).

    The file is stored first, then the row is written in its own transaction with the
    outbox message; if that transaction fails the file is deleted again, and if storing
    fails no row is written. Called inside a caller's transaction, a rollback of that
    transaction after this returns leaves the file unreferenced (never a row without its
    file): the API calls it outside any transaction.
    Raises ImageTooLarge, ImageTooManyPixels, InvalidImage.
    """
    with spool(upload) as copy:
        size_bytes = copy.seek(0, 2)
        info = inspect_image(copy, size_bytes=size_bytes)
        media = ProductMedia(
            product=product,
            alt=alt,
            content_type=info.content_type,
            width=info.width,
            height=info.height,
            size_bytes=info.size_bytes,
        )
        copy.seek(0)
        # upload_to gives the random name; only the detected type's extension is ours.
        media.image.save(f"image.{info.extension}", File(copy), save=False)
    storage = media.image.storage
    try:
        with transaction.atomic():
            last = ProductMedia.objects.filter(product=product).aggregate(last=Max("sort_order"))
            media.sort_order = 0 if last["last"] is None else last["last"] + 1
            media.save()
            outbox.publish(MEDIA_ADDED, {"media_id": media.pk})
            invalidate_products_on_commit([product.pk])
    except BaseException:
        _delete_stored(storage, [media.image.name])
        raise
    logger.info(
        "product_media_added",
        product_id=product.pk,
        media_id=media.pk,
        content_type=info.content_type,
        size_bytes=info.size_bytes,
        actor_id=getattr(actor, "pk", None),
    )
    return media


def get_media(*, product: Product, media_id: int) -> ProductMedia:
    """One image of `product`. Raises MediaNotFound."""
    media = ProductMedia.objects.filter(product=product, pk=media_id).first()
    if media is None:
        raise MediaNotFound(media_id=media_id)
    return media


def update_media(
    *, media: ProductMedia, alt: str | None = None, sort_order: int | None = None
) -> ProductMedia:
    """Change an image's alternative text or place in the gallery."""
    changes = {
        name: value
        for name, value in (("alt", alt), ("sort_order", sort_order))
        if value is not None
    }
    if not changes:
        return media
    with transaction.atomic():
        for name, value in changes.items():
            setattr(media, name, value)
        media.save(update_fields=[*changes, "updated_at"])
        invalidate_products_on_commit([media.product_id])
    return media


def delete_media(*, media: ProductMedia) -> None:
    """Delete an image; its file and thumbnails are deleted once the deletion commits.

    Takes the row's lock, so a thumbnail run in progress finishes first and its files are
    deleted too. Raises MediaNotFound when it is already gone.
    """
    storage = media.image.storage
    with transaction.atomic():
        locked = ProductMedia.objects.select_for_update().filter(pk=media.pk).first()
        if locked is None:
            raise MediaNotFound(media_id=media.pk)
        names = [locked.image.name, *locked.thumbnails.values()]
        locked.delete()
        invalidate_products_on_commit([locked.product_id])
        transaction.on_commit(lambda: _delete_stored(storage, names))
    logger.info("product_media_deleted", product_id=locked.product_id, media_id=media.pk)


# --- Thumbnails -----------------------------------------------------------------------------


def thumbnail_name(image_name: str, size: int) -> str:
    """`products/7/ab12.jpg` -> `products/7/ab12_160.webp`: one fixed name per size, so a
    run that died before recording its files is overwritten, not duplicated."""
    path = PurePosixPath(image_name)
    return str(path.with_name(f"{path.stem}_{size}.{THUMBNAIL_EXTENSION}"))


def _frame(image: Image.Image) -> Image.Image:
    """The first frame, turned as its EXIF orientation says, in RGB or RGBA."""
    image.seek(0)
    upright = ImageOps.exif_transpose(image)
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    return upright.convert("RGBA" if has_alpha else "RGB")


def _encoded(image: Image.Image) -> bytes:
    buffer = BytesIO()
    image.save(buffer, THUMBNAIL_FORMAT, quality=THUMBNAIL_QUALITY, method=4)
    return buffer.getvalue()


def make_thumbnails(*, media_id: int) -> ProductMedia | None:
    """Make and record the THUMBNAIL_SIZES thumbnails of one image (longest side, never
    enlarged). Idempotent: an image whose thumbnails are recorded is left alone.

    Holds the media row's lock while it works, so a second delivery waits and then finds
    the work done, and a deletion waits and then deletes these files too. Files written
    by a run whose transaction failed are deleted, or overwritten by the next run (fixed
    names). Returns None for a media that no longer exists.
    Raises InvalidImage, ImageTooManyPixels for a stored file Pillow cannot read; a
    storage error propagates (the outbox delivers the event again).
    """
    sizes = sorted(settings.THUMBNAIL_SIZES, reverse=True)
    with transaction.atomic():
        media = ProductMedia.objects.select_for_update().filter(pk=media_id).first()
        if media is None:
            return None
        if {str(size) for size in sizes} <= media.thumbnails.keys():
            return media
        storage = media.image.storage
        saved: dict[str, str] = {}
        try:
            with storage.open(media.image.name, "rb") as stored, opened_image(stored) as image:
                try:
                    frame = _frame(image)
                except Exception:
                    raise InvalidImage("The stored image cannot be decoded.") from None
                for size in sizes:  # largest first: each is made from the one before
                    frame = frame.copy()
                    frame.thumbnail((size, size), Image.Resampling.LANCZOS)
                    name = thumbnail_name(media.image.name, size)
                    if storage.exists(name):
                        storage.delete(name)
                    saved[str(size)] = storage.save(name, ContentFile(_encoded(frame)))
            stale = set(media.thumbnails.values()) - set(saved.values())
            media.thumbnails = dict(sorted(saved.items(), key=lambda item: int(item[0])))
            media.save(update_fields=["thumbnails", "updated_at"])
            invalidate_products_on_commit([media.product_id])
            transaction.on_commit(lambda: _delete_stored(storage, stale))
        except BaseException:
            _delete_stored(storage, saved.values())
            raise
    logger.info("product_thumbnails_made", media_id=media_id, sizes=sorted(map(int, saved)))
    return media
