"""The pages for people (issue #7): ``/`` verification, ``/dashboard`` monthly rates,
``/exchanges`` an agency's inbox and outbox, and their ``/static/...`` assets.

The pages are static HTML with plain JavaScript that calls the ``/v1`` API from the
browser (the bearer token lives in the tab's sessionStorage only); the server keeps
nothing. Every answer here carries a strict Content-Security-Policy: scripts and styles
come from this origin only, nothing inline."""

from __future__ import annotations

from aiohttp import web

from .assets import AssetRegistry, Page, load_pages

__all__ = ["CSP", "SECURITY_HEADERS", "WEB", "WebFiles", "setup_pages"]

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=0, must-revalidate"
NO_CACHE = "no-cache"

# the URL of each page and its file under gateway/web/pages
_PAGES = {"/": "verify", "/dashboard": "dashboard", "/exchanges": "exchanges"}


class WebFiles:
    """The loaded assets and pages of one app."""

    def __init__(self, assets: AssetRegistry, pages: dict[str, Page]) -> None:
        self.assets = assets
        self.pages = pages

    @classmethod
    def load(cls) -> WebFiles:
        assets = AssetRegistry.load()
        return cls(assets, load_pages(assets))


WEB = web.AppKey("docgate_web_files", WebFiles)


def _not_modified(request: web.Request, etag: str) -> bool:
    wanted = request.if_none_match
    return bool(wanted) and any(e.value in (etag, "*") for e in wanted)


def _answer(
    request: web.Request, body: bytes, content_type: str, etag: str, cache: str
) -> web.Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache}
    if _not_modified(request, etag):
        response = web.Response(status=304, headers=headers)
    else:
        response = web.Response(body=body, headers=headers, content_type=content_type)
        if content_type.startswith("text/") or content_type.endswith("+xml"):
            response.charset = "utf-8"
    response.etag = etag
    return response


def _page_handler(name: str):
    async def page(request: web.Request) -> web.Response:
        found = request.app[WEB].pages[name]
        return _answer(request, found.body, "text/html", found.etag, NO_CACHE)

    page.__name__ = f"page_{name}"
    return page


async def static_asset(request: web.Request) -> web.Response:
    found = request.app[WEB].assets.lookup(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound(reason="no such static file")
    asset, hashed = found
    cache = IMMUTABLE if hashed else REVALIDATE
    return _answer(request, asset.body, asset.content_type, asset.etag, cache)


def setup_pages(app: web.Application, files: WebFiles | None = None) -> None:
    """Register the pages and their assets on ``app`` (files read now, once)."""
    app[WEB] = files or WebFiles.load()
    for path, name in _PAGES.items():
        app.router.add_get(path, _page_handler(name), name=f"page-{name}")
    app.router.add_get(r"/static/{name:[A-Za-z0-9_.-]+}", static_asset, name="static")
