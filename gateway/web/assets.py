"""The static assets and HTML pages of the web UI, read once when the app is built.

Each asset is served under a URL carrying the first 16 hex digits of its SHA-256
(``/static/card.3f2a….js``), cached for a year as ``immutable``; the pages name assets
through ``{{static:card.js}}`` placeholders, replaced by those URLs, so a changed file is
a new URL and no browser keeps a stale one. The plain name (``/static/card.js``) is served
too, revalidated on every use. Everything carries a strong ETag and answers
``If-None-Match`` with 304."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["Asset", "AssetRegistry", "Page", "load_pages"]

_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".html": "text/html",
}
_PLACEHOLDER = re.compile(r"\{\{static:([A-Za-z0-9_.-]+)\}\}")
_PART = re.compile(r"^[ \t]*\{\{part:([a-z_]+)\}\}\n", re.MULTILINE)
_CURRENT = re.compile(r"\{\{current:([a-z_]+)\}\}")
_HASHED = re.compile(r"^(?P<stem>[A-Za-z0-9_-]+)\.(?P<digest>[0-9a-f]{16})(?P<suffix>\.[a-z]+)$")


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


@dataclass(frozen=True)
class Asset:
    """One static file: its bytes, media type and content digest."""

    name: str
    body: bytes
    content_type: str
    digest: str

    @property
    def url(self) -> str:
        stem, _, suffix = self.name.rpartition(".")
        return f"/static/{stem}.{self.digest}.{suffix}"

    @property
    def etag(self) -> str:
        return self.digest


@dataclass(frozen=True)
class Page:
    """One HTML page with its asset placeholders resolved."""

    name: str
    body: bytes
    digest: str

    @property
    def etag(self) -> str:
        return self.digest


class AssetRegistry:
    """The files of ``gateway/web/static``, looked up by plain or hashed name."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        self._assets = assets

    @classmethod
    def load(cls, package: str = "gateway.web") -> AssetRegistry:
        folder = resources.files(package).joinpath("static")
        assets: dict[str, Asset] = {}
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            suffix = "." + entry.name.rpartition(".")[2]
            if not entry.is_file() or suffix not in _TYPES:
                continue
            body = entry.read_bytes()
            assets[entry.name] = Asset(entry.name, body, _TYPES[suffix], _digest(body))
        return cls(assets)

    def names(self) -> list[str]:
        return sorted(self._assets)

    def get(self, name: str) -> Asset:
        return self._assets[name]

    def lookup(self, requested: str) -> tuple[Asset, bool] | None:
        """The asset a ``/static/<requested>`` URL names and whether the URL is the
        hashed (immutable) form; None when there is no such asset or the digest is stale."""
        if requested in self._assets:
            return self._assets[requested], False
        match = _HASHED.match(requested)
        if match is None:
            return None
        asset = self._assets.get(match["stem"] + match["suffix"])
        if asset is None or asset.digest != match["digest"]:
            return None
        return asset, True

    def render(self, html: str) -> str:
        """``html`` with each ``{{static:name}}`` replaced by that asset's hashed URL."""

        def url(match: re.Match) -> str:
            return self._assets[match[1]].url  # KeyError: a page names a missing asset

        return _PLACEHOLDER.sub(url, html)


def _html_files(package: str, folder: str) -> dict[str, str]:
    """``folder``'s ``*.html`` files of ``package``, by stem."""
    found = {}
    for entry in sorted(resources.files(package).joinpath(folder).iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".html"):
            found[entry.name.removesuffix(".html")] = entry.read_text(encoding="utf-8")
    return found


def _assemble(html: str, stem: str, parts: dict[str, str]) -> str:
    """``html`` with each ``{{part:name}}`` line replaced by ``parts/name.html`` (the
    header and the login box the pages share), and in it ``{{current:stem}}`` marking
    the navigation link of this page (``aria-current``)."""
    html = _PART.sub(lambda m: parts[m[1]], html)  # KeyError: a page names a missing part
    return _CURRENT.sub(lambda m: 'aria-current="page" ' if m[1] == stem else "", html)


def load_pages(assets: AssetRegistry, package: str = "gateway.web") -> dict[str, Page]:
    """The pages of ``gateway/web/pages`` by file stem, parts and placeholders resolved."""
    parts = _html_files(package, "parts")
    pages: dict[str, Page] = {}
    for stem, html in _html_files(package, "pages").items():
        body = assets.render(_assemble(html, stem, parts)).encode()
        pages[stem] = Page(stem, body, _digest(body))
    return pages
