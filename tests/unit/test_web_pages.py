"""The web pages and their assets (gateway/web): headers, caching and content types,
through aiohttp's test client on an app holding only the pages."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from gateway.web import CSP, setup_pages
from gateway.web.assets import AssetRegistry, load_pages

PAGES = ("/", "/dashboard", "/exchanges")


@pytest.fixture
async def client(aiohttp_client):
    app = web.Application()
    setup_pages(app)
    return await aiohttp_client(app)


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


@pytest.mark.parametrize("path", PAGES)
async def test_pages_carry_the_security_headers(client, path):
    answer = await client.get(path)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.headers["Content-Security-Policy"] == CSP
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ):
        assert directive in CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Cache-Control"] == "no-cache"
    html = await answer.text()
    assert '<html lang="vi">' in html
    assert "{{static:" not in html
    # nothing inline: no script bodies, no style attributes or elements, no handlers
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html)
    assets = _assets(html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)


async def test_page_etag_answers_304(client):
    first = await client.get("/dashboard")
    etag = first.headers["ETag"]
    again = await client.get("/dashboard", headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag
    assert again.headers["Content-Security-Policy"] == CSP
    other = await client.get("/dashboard", headers={"If-None-Match": '"stale"'})
    assert other.status == 200


async def test_hashed_assets_are_immutable_and_typed(client):
    html = await (await client.get("/")).text()
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for url in _assets(html):
        answer = await client.get(url)
        assert answer.status == 200, url
        suffix = url[url.rindex(".") :]
        assert answer.headers["Content-Type"].split(";")[0] == types[suffix]
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        etag = answer.headers["ETag"]
        assert url.split(".")[-2] == etag.strip('"')  # the digest in the URL is the ETag
        cached = await client.get(url, headers={"If-None-Match": etag})
        assert cached.status == 304 and await cached.read() == b""


async def test_plain_asset_names_revalidate_and_stale_digests_are_404(client):
    plain = await client.get("/static/card.js")
    assert plain.status == 200
    assert plain.headers["Cache-Control"] == "public, max-age=0, must-revalidate"
    assert (await client.get("/static/card.0000000000000000.js")).status == 404
    assert (await client.get("/static/nothing.js")).status == 404
    assert (await client.get("/static/..%2Fassets.py")).status == 404
    head = await client.head("/static/app.css")
    assert head.status == 200


def test_every_page_names_existing_assets_and_the_registry_is_complete():
    assets = AssetRegistry.load()
    assert {"app.css", "i18n.js", "dom.js", "api.js", "card.js", "icon.svg"} <= set(assets.names())
    pages = load_pages(assets)
    assert set(pages) == {"verify", "dashboard", "exchanges"}
    for page in pages.values():
        html = page.body.decode()
        for url in _assets(html):
            assert assets.lookup(url.removeprefix("/static/")) is not None, url
        # the shared scripts come first, in order; card.js is shared by / and /exchanges
        order = [u.split("/")[-1].split(".")[0] for u in _assets(html) if u.endswith(".js")]
        assert order[:3] == ["i18n", "dom", "api"]
    assert "card" in pages["verify"].body.decode() and "card" in pages["exchanges"].body.decode()


def test_pages_share_one_header_marking_their_own_link():
    pages = load_pages(AssetRegistry.load())
    urls = {"verify": "/", "dashboard": "/dashboard", "exchanges": "/exchanges"}
    for stem, page in pages.items():
        html = page.body.decode()
        assert "{{" not in html  # every part and placeholder resolved
        assert html.count('class="site-header"') == 1
        assert html.count('aria-current="page"') == 1
        assert f'<a href="{urls[stem]}" aria-current="page"' in html
    for stem in ("dashboard", "exchanges"):  # the token login box, shared
        assert pages[stem].body.decode().count('id="login-form"') == 1
    assert 'id="login-form"' not in pages["verify"].body.decode()  # no token needed there
