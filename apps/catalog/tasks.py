"""Catalog tasks: ids in, a service call."""

from __future__ import annotations

from celery import shared_task

from apps.catalog import media
from apps.catalog.exceptions import ImageTooManyPixels, InvalidImage
from ecommerce.observability.logging import get_logger

logger = get_logger(__name__)


@shared_task(name=media.MAKE_THUMBNAILS_TASK, acks_late=True, soft_time_limit=60, time_limit=90)
def make_thumbnails_task(media_id: int) -> str:
    """Make an image's thumbnails (the handler of `catalog.media_added`).

    An image that was deleted meanwhile needs none. A stored file Pillow cannot read will
    not improve on a retry: logged, and the message completed. Storage and database
    errors propagate, so the outbox delivers the event again.
    """
    try:
        made = media.make_thumbnails(media_id=media_id)
    except (InvalidImage, ImageTooManyPixels) as exc:
        logger.error("product_thumbnails_failed", media_id=media_id, error=exc.detail)
        return "unreadable"
    return "gone" if made is None else "made"
