"""The web UI: verification page, rates dashboard and exchanges page (static HTML, CSS
and plain JavaScript served by the gateway; see ``routes``)."""

from .routes import CSP, setup_pages

__all__ = ["CSP", "setup_pages"]
