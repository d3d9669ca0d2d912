"""problem+json (RFC 9457): the one place errors become HTTP answers.

Handlers and services raise ``Problem`` or a ``signing.errors.SigningError``; the
middleware below turns them into ``application/problem+json`` with a stable ``code``.
It is the only code that catches ``Exception``: it logs the trace and answers a bare
500 that reveals nothing.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from exchange.agencies import AgencyError
from exchange.exchanges import ExchangeError
from signing.errors import SigningError

__all__ = ["Problem", "problem_middleware", "problem_response"]

log = logging.getLogger("docgate.http")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem_response(
    status: int, code: str, detail: str, title: str | None = None, **extra: object
) -> web.Response:
    body = {
        "type": f"https://docgate.invalid/problems/{code}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="docgate"'} if status == 401 else None
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/problem+json",
        headers=headers,
    )


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    400: "bad_request",
}


@web.middleware
async def problem_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as exc:
        return problem_response(exc.status, exc.code, exc.detail, **exc.extra)
    except (ExchangeError, AgencyError) as exc:
        extra = {"field": exc.field} if exc.field else {}
        if exc.status >= 500:
            log.error("archive error %s: %s", exc.code, exc.detail)
        return problem_response(exc.status, exc.code, exc.detail, **extra)
    except SigningError as exc:
        if exc.status >= 500:
            log.warning("signing error %s: %s", exc.code, exc.detail)
        return problem_response(exc.status, exc.code, exc.detail, exc.title)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        detail = exc.reason or _TITLES.get(exc.status, "error")
        if exc.status == 413:
            detail = "the request body is larger than the configured limit"
        return problem_response(exc.status, code, detail)
    except Exception:  # the only catch-all: log the trace, reveal nothing
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "internal_error", "an internal error occurred; it was logged")
