"""Product images on a real Celery worker with the real broker: an upload through the API
publishes its event on commit, the worker makes the thumbnails into the same storage and
records them, the cached payloads show their URLs, and the files are served.

The eager tests in tests/catalog/test_media.py prove the logic; this proves the wiring: the
outbox handler registered in the worker, the task on the `default` queue, the storage
shared through MEDIA_ROOT, and the cache invalidated across processes.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from apps.catalog.media import MAKE_THUMBNAILS_TASK, MEDIA_ADDED
from apps.catalog.models import ProductMedia
from ecommerce.api.permissions import Role
from ecommerce.celery import app
from ecommerce.outbox.models import OutboxMessage
from tests.catalog.factories import make_product
from tests.integration.helpers import logged, wait_until
from tests.integration.processes import Broker, CeleryWorker, Workers
from tests.users.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PRODUCTS = "/api/products"


@pytest.fixture(scope="module")
def media_dir(integration_dir: Path) -> Path:
    """One MEDIA_ROOT for this module's worker and this process (a worker restart costs)."""
    root = integration_dir / "media"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture
def media_worker(
    workers: Workers, publishing: Broker, media_dir: Path, settings: Any
) -> CeleryWorker:
    """The shared worker, storing into the same MEDIA_ROOT as this process."""
    settings.MEDIA_ROOT = media_dir
    return workers.running(MEDIA_ROOT=str(media_dir))


def jpeg(size: tuple[int, int]) -> bytes:
    buffer = BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def stored(root: Path) -> dict[str, int]:
    """Every stored file with its modification time (ns)."""
    return {
        str(path.relative_to(root)): path.stat().st_mtime_ns
        for path in root.rglob("*")
        if path.is_file()
    }


def test_the_worker_makes_the_thumbnails_and_the_payloads_show_them(
    media_worker: CeleryWorker,
    media_dir: Path,
    client_for: Callable[[Any], APIClient],
    api_client: APIClient,
) -> None:
    make_product(sku="poster", stock=2)
    manager = client_for(UserFactory(roles=[Role.CATALOG_MANAGER]))
    before = set(stored(media_dir))
    # The public detail is cached now, without media: the upload must retire it.
    assert api_client.get(f"{PRODUCTS}/poster").json()["media"] == []

    response = manager.post(
        f"{PRODUCTS}/poster/media",
        {"image": SimpleUploadedFile("poster.jpg", jpeg((1500, 1000))), "alt": "Poster"},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    media = ProductMedia.objects.get(pk=response.json()["id"])

    def thumbnailed() -> ProductMedia | None:
        media.refresh_from_db()
        return media if len(media.thumbnails) == 3 else None

    wait_until(thumbnailed, what="thumbnails recorded", worker=media_worker)
    stem = media.image.name.removesuffix(".jpg")
    assert media.thumbnails == {size: f"{stem}_{size}.webp" for size in ("160", "480", "960")}
    assert set(stored(media_dir)) - before == {media.image.name, *media.thumbnails.values()}
    for size, name in media.thumbnails.items():
        with Image.open(media_dir / name) as thumbnail:
            assert (thumbnail.format, max(thumbnail.size)) == ("WEBP", int(size))
    # The task returns after that commit; then its outbox message is marked completed.
    wait_until(
        lambda: OutboxMessage.objects.filter(
            topic=MEDIA_ADDED, payload={"media_id": media.pk}, completed_at__isnull=False
        ).exists(),
        what="the event's message completed",
        worker=media_worker,
    )
    assert logged(media_worker, "product_thumbnails_made", media_id=media.pk)

    # The worker's commit retired the cached detail and list pages.
    detail = api_client.get(f"{PRODUCTS}/poster").json()
    assert detail["media"] == [
        {
            "id": media.pk,
            "url": f"/media/{media.image.name}",
            "alt": "Poster",
            "width": 1500,
            "height": 1000,
            "thumbnails": {size: f"/media/{name}" for size, name in media.thumbnails.items()},
        }
    ]
    row = next(r for r in api_client.get(PRODUCTS).json()["results"] if r["sku"] == "poster")
    assert row["thumbnail"] == f"/media/{stem}_160.webp"
    served = api_client.get(row["thumbnail"])
    assert (served.status_code, served["Content-Type"]) == (200, "image/webp")
    with Image.open(BytesIO(b"".join(served.streaming_content))) as thumbnail:
        assert thumbnail.size == (160, 107)

    # A second delivery of the event changes nothing.
    files = stored(media_dir)
    mark = len(media_worker.log())
    app.send_task(MAKE_THUMBNAILS_TASK, kwargs={"media_id": media.pk}, queue="default")
    wait_until(
        lambda: thumbnail_runs(media_worker, since=mark),
        what="the second thumbnail run",
        worker=media_worker,
    )
    assert stored(media_dir) == files
    assert not logged(media_worker, "product_thumbnails_made", since=mark)

    # Deleting the image deletes its four files once committed.
    assert manager.delete(f"{PRODUCTS}/poster/media/{media.pk}").status_code == 204
    assert set(stored(media_dir)) == before
    assert api_client.get(f"{PRODUCTS}/poster").json()["media"] == []


def thumbnail_runs(worker: CeleryWorker, *, since: int) -> list[str]:
    """What the worker's thumbnail task runs returned, from the `since`-th log line on."""
    return [
        str(line["event"]).rsplit(": ", 1)[-1].strip("'")
        for line in worker.log(since=since)
        if str(line.get("event", "")).startswith(f"Task {MAKE_THUMBNAILS_TASK}[")
        and " succeeded in " in str(line.get("event", ""))
    ]
