"""/api/docs and /api/redoc load only pinned assets from this origin, so they work offline.

The assets are collected the way `make run` and the Docker image collect them
(collectstatic into STATIC_ROOT) and served through the whole middleware stack (WhiteNoise
reads STATIC_ROOT when the middleware is built, hence a fresh Client per test).
Whether the pages really render in a browser is the Playwright test's to check.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db  # the end of each request closes stale connections

DOCS_PAGES = ["/api/docs", "/api/redoc"]
CONTENT_TYPES = {
    ".js": {"text/javascript", "application/javascript"},
    ".css": {"text/css"},
    ".png": {"image/png"},
}
# CSP sources that name no host: keywords, hashes and the data:/blob: schemes.
HOSTLESS_SOURCE = re.compile(r"'(self|none|unsafe-inline|sha256-[A-Za-z0-9+/=]+)'|data:|blob:")


class AssetLinks(HTMLParser):
    """The URLs of a page's <script src> and <link href> (stylesheets, icons, preconnects)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") if tag == "script" else attributes.get("href")
        if tag in {"script", "link"} and url:
            self.urls.append(url)


def asset_urls(html: bytes) -> list[str]:
    parser = AssetLinks()
    parser.feed(html.decode())
    return parser.urls


@pytest.fixture(scope="module")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """STATIC_ROOT as collectstatic leaves it for production, less the compressed copies
    (WhiteNoise's brotli pass over the docs' bundles is half a minute of CPU; it changes
    how a file is encoded, never which files are served)."""
    root = tmp_path_factory.mktemp("staticfiles")
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=root, STORAGES=storages):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@pytest.fixture
def served(settings: Any, static_root: Path) -> Client:
    settings.STATIC_ROOT = static_root
    return Client()


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_the_docs_reference_only_same_origin_pinned_assets(served: Client, page: str) -> None:
    response = served.get(page)
    urls = asset_urls(response.content)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert any(url.endswith(".js") for url in urls)
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme, url
        assert not parts.netloc, url
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
    assert b"@latest" not in response.content
    assert b"http://" not in response.content
    assert b"https://" not in response.content


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_every_asset_the_docs_reference_is_served(
    served: Client, static_root: Path, page: str
) -> None:
    urls = asset_urls(served.get(page).content)

    for url in urls:
        response = served.get(url)
        body = b"".join(response.streaming_content)
        response.close()
        content_type = response["Content-Type"].split(";")[0].strip()

        assert response.status_code == 200, url
        assert content_type in CONTENT_TYPES[Path(url).suffix], (url, content_type)
        assert body == (static_root / url.removeprefix("/static/")).read_bytes(), url


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_the_docs_policy_names_no_host(served: Client, page: str) -> None:
    policy = served.get(page)["Content-Security-Policy"]
    sources = [source for directive in policy.split(";") for source in directive.split()[1:]]

    assert sources
    for source in sources:
        assert HOSTLESS_SOURCE.fullmatch(source), source
    for cdn in ("jsdelivr", "googleapis", "gstatic"):
        assert cdn not in policy
