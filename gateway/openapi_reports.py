"""The OpenAPI paths and schemas of the monthly electronic-exchange report (API.md
"Reports")."""

from __future__ import annotations

from typing import Any

from .openapi_exchanges import problems

__all__ = ["REPORT_PATHS", "REPORT_SCHEMAS"]

_RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_COUNT = {"type": "integer", "minimum": 0}
_MONTH = {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"}

REPORT_SCHEMAS: dict[str, Any] = {
    "EExchangeReport": {
        "type": "object",
        "required": ["month", "revision", "generated_at", "provisional", "target", "agencies"],
        "properties": {
            "month": _MONTH,
            "revision": {"type": "integer", "minimum": 1},
            "generated_at": {"type": "string", "format": "date-time"},
            "provisional": {"type": "boolean", "description": "run before the month closed"},
            "target": {"type": "number"},
            "agencies": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "agency": {"type": "string"},
                        "name": {"type": "string"},
                        "sent_electronic": _COUNT,
                        "sent_paper": _COUNT,
                        "received_electronic": _COUNT,
                        "received_paper": _COUNT,
                        "signed_valid": _COUNT,
                        "e_rate": _RATE,
                        "e_rate_sent": _RATE,
                        "e_rate_received": _RATE,
                        "signed_rate": _RATE,
                        "on_time_rate": _RATE,
                        "below_target": {"type": ["boolean", "null"]},
                    },
                },
            },
        },
    },
}

_REPORT = {"$ref": "#/components/schemas/EExchangeReport"}

REPORT_PATHS: dict[str, Any] = {
    "/v1/reports/e-exchange": {
        "get": {
            "summary": "A month's stored report (admin, auditor: every agency; an agency: its row)",
            "parameters": [
                {"name": "month", "in": "query", "required": True, "schema": _MONTH},
                {"name": "agency", "in": "query", "schema": {"type": "string"}},
                {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}},
                {"name": "revision", "in": "query", "schema": {"type": "integer"}},
            ],
            "responses": {
                "200": {
                    "description": "the latest (or the asked) revision",
                    "content": {
                        "application/json": {"schema": _REPORT},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **problems(401, 403, 404, 422),
            },
        }
    },
    "/v1/reports/e-exchange/{month}/run": {
        "post": {
            "summary": "Compute the month now as its next revision (admin)",
            "parameters": [{"name": "month", "in": "path", "required": True, "schema": _MONTH}],
            "responses": {
                "201": {
                    "description": "the new revision",
                    "content": {"application/json": {"schema": _REPORT}},
                },
                **problems(401, 403, 409, 422),
            },
        }
    },
    "/v1/reports/e-exchange/{month}.pdf": {
        "get": {
            "summary": "The month's report as a PDF signed at B-LT by the gateway (admin, auditor)",
            "parameters": [
                {"name": "month", "in": "path", "required": True, "schema": _MONTH},
                {"name": "revision", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            ],
            "responses": {
                "200": {"description": "signed PDF", "content": {"application/pdf": {}}},
                **problems(401, 403, 404, 422, 503),
            },
        }
    },
}
