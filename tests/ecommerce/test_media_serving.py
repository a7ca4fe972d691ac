"""Serving MEDIA_ROOT at MEDIA_URL (ecommerce/media.py): stored images only, nothing else."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from ecommerce import media

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32  # the bytes are not judged here: the name is


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    (root / "products" / "7").mkdir(parents=True)
    (root / "products" / "7" / "a1.png").write_bytes(PNG)
    (root / "products" / "7" / "a1_160.webp").write_bytes(b"RIFF....WEBP")
    (root / "products" / "7" / "page.html").write_text("<script>alert(1)</script>")
    (root / "products" / "7" / ".hidden.png").write_bytes(PNG)
    (root / "products" / "7" / "dir.png").mkdir()
    settings.MEDIA_ROOT = root
    return root


def test_a_stored_image_is_served_with_its_type_nosniff_and_a_long_cache(media_root: Path) -> None:
    response = Client().get("/media/products/7/a1.png")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert Client().get("/media/products/7/a1_160.webp")["Content-Type"] == "image/webp"


def test_head_is_answered_and_writes_are_not_allowed(media_root: Path) -> None:
    assert Client().head("/media/products/7/a1.png").status_code == 200
    assert Client().post("/media/products/7/a1.png").status_code == 405
    assert Client().delete("/media/products/7/a1.png").status_code == 405
    assert (media_root / "products" / "7" / "a1.png").exists()


@pytest.mark.parametrize(
    "path",
    [
        "/media/products/7/page.html",  # not an image type
        "/media/products/7/.hidden.png",
        "/media/products/7/dir.png",  # a directory
        "/media/products/7/",  # no listing
        "/media/products/",
        "/media/products/7/missing.png",
        "/media/products/7/../7/a1.png",
        "/media/products//7/a1.png",
        "/media/products/7/%2e%2e/%2e%2e/%2e%2e/etc/passwd.png",
        "/media/..%2f..%2fsettings.png",
    ],
)
def test_anything_but_a_stored_image_is_a_404(media_root: Path, path: str) -> None:
    response = Client().get(path)

    assert response.status_code == 404
    assert b"alert" not in response.content  # Django's own 404 page (not an API path)


def test_a_symlink_out_of_media_root_is_not_followed(media_root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG)
    os.symlink(secret, media_root / "products" / "7" / "link.png")

    assert Client().get("/media/products/7/link.png").status_code == 404


def test_media_is_served_only_from_the_local_filesystem_storage(settings: Any) -> None:
    assert media.serves_locally()
    assert [p.name for p in media.urlpatterns()] == ["media"]

    settings.MEDIA_SERVE_LOCAL = False
    assert media.urlpatterns() == []

    settings.MEDIA_SERVE_LOCAL = True
    settings.MEDIA_URL = "https://cdn.example.com/media/"
    assert media.urlpatterns() == []

    settings.MEDIA_URL = "/media/"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    assert media.urlpatterns() == []
