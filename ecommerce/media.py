"""Serving uploaded images from the local filesystem storage: MEDIA_ROOT at MEDIA_URL.

Used only when the default storage is Django's FileSystemStorage, MEDIA_URL is a path on
this site and MEDIA_SERVE_LOCAL is on (`make run`, embedded mode, a single host); other
backends hand out their own URLs, and a web server or CDN in front may serve MEDIA_ROOT
instead. Django's `static.serve` is documented as unfit for production; this view is
narrow instead: GET and HEAD only; image types only, the content type taken from the
extension (which the app chose from the image's bytes, not the uploader's name); regular
files under MEDIA_ROOT only, symlinks resolved, no hidden files, no directory listing;
`nosniff`; cached for a year, since stored names are random and never rewritten.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.http import FileResponse, Http404, HttpRequest
from django.urls import URLPattern, re_path
from django.views.decorators.http import require_safe

CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
# Letters, digits, `_`, `-`, `.` and `/`; each segment is checked again by the view.
PATH_PATTERN = r"(?P<path>[A-Za-z0-9_./-]{1,255})"
CACHE_CONTROL = "public, max-age=31536000, immutable"


def _file_under_root(path: str) -> Path | None:
    segments = path.split("/")
    if any(not segment or segment.startswith(".") for segment in segments):
        return None  # empty, `.`, `..` and hidden names
    root = Path(settings.MEDIA_ROOT).resolve()
    try:
        target = root.joinpath(*segments).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


@require_safe
def serve(request: HttpRequest, path: str) -> FileResponse:
    """One stored image. Raises Http404 for anything else."""
    content_type = CONTENT_TYPES.get(PurePosixPath(path).suffix.lower())
    target = _file_under_root(path) if content_type else None
    if target is None:
        raise Http404("No such media file.")
    response = FileResponse(target.open("rb"), content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = CACHE_CONTROL
    return response


def serves_locally() -> bool:
    """Whether this app serves MEDIA_URL itself (see the module docstring)."""
    url = settings.MEDIA_URL
    return (
        settings.MEDIA_SERVE_LOCAL
        and isinstance(storages["default"], FileSystemStorage)
        and url.startswith("/")
        and not url.startswith("//")
        and url != "/"
    )


def urlpatterns() -> list[URLPattern]:
    """The media route, when this app serves media; none otherwise."""
    if not serves_locally():
        return []
    prefix = settings.MEDIA_URL.strip("/")
    return [re_path(rf"^{re.escape(prefix)}/{PATH_PATTERN}$", serve, name="media")]
