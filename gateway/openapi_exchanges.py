"""OpenAPI paths of the archive: exchanges, inbox/outbox, statuses, evidence, agencies,
audit (API.md "Exchanges", "Agencies")."""

from __future__ import annotations

from typing import Any

__all__ = ["EXCHANGE_PATHS", "EXCHANGE_SCHEMAS", "problems"]

_CODE = {"type": "string", "pattern": r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$"}
_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def problems(*statuses: int) -> dict[str, Any]:
    """problem+json answers for these statuses (shared by every OpenAPI path)."""
    return {
        str(s): {
            "description": "problem+json",
            "content": {"application/problem+json": {"schema": _PROBLEM}},
        }
        for s in statuses
    }


def _json(ref: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
_PAGE_PARAMS = [
    {"name": "status", "in": "query", "schema": {"type": "string"}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]

EXCHANGE_SCHEMAS: dict[str, Any] = {
    "Envelope": {
        "type": "object",
        "required": ["from", "to", "channel", "direction", "document"],
        "properties": {
            "from": _CODE,
            "to": {"type": "array", "items": _CODE, "uniqueItems": True},
            "channel": {"type": "string", "enum": ["electronic", "paper"]},
            "direction": {"type": "string", "enum": ["outgoing", "incoming"]},
            "document": {
                "type": "object",
                "required": ["subject"],
                "properties": {
                    "number": {"type": "string"},
                    "notation": {"type": "string"},
                    "type": {"type": "string"},
                    "subject": {"type": "string", "maxLength": 500},
                    "promulgated_at": {"type": "string", "format": "date"},
                    "due_date": {"type": "string", "format": "date"},
                    "secret": {"type": "boolean"},
                },
            },
            "sign": {"type": "boolean"},
            "level": {"type": "string", "enum": ["B-B", "B-T", "B-LT", "B-LTA"]},
            "exchanged_at": {"type": "string", "format": "date-time", "description": "paper only"},
        },
    },
    "ExchangeCreated": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "document_sha256": {"type": ["string", "null"]},
            "recipients": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"agency": _CODE, "status": {"type": ["string", "null"]}},
                },
            },
            "created_at": {"type": "string", "format": "date-time"},
            "duplicate_of": {"type": ["string", "null"]},
        },
    },
    "Page": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "object"}},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "Agency": {
        "type": "object",
        "required": ["code", "name"],
        "properties": {
            "code": _CODE,
            "name": {"type": "string"},
            "parent": {"type": ["string", "null"]},
        },
    },
}

EXCHANGE_PATHS: dict[str, Any] = {
    "/v1/exchanges": {
        "post": {
            "summary": "Sign (or verify) and send a document, or register a paper one",
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "schema": {"type": "string", "maxLength": 200},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["envelope"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "envelope": {"$ref": "#/components/schemas/Envelope"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": _json("#/components/schemas/ExchangeCreated", "created"),
                "200": _json(
                    "#/components/schemas/ExchangeCreated",
                    "the first answer to this Idempotency-Key",
                ),
                **problems(401, 403, 413, 415, 422, 503),
            },
        }
    },
    "/v1/inbox": {
        "get": {
            "parameters": _PAGE_PARAMS,
            "responses": {"200": _json("#/components/schemas/Page"), **problems(401, 403, 422)},
        }
    },
    "/v1/outbox": {
        "get": {
            "parameters": _PAGE_PARAMS,
            "responses": {"200": _json("#/components/schemas/Page"), **problems(401, 403, 422)},
        }
    },
    "/v1/exchanges/{id}": {
        "get": {
            "parameters": _ID,
            "responses": {
                "200": {"description": "envelope, statuses, verification, delivery"},
                **problems(401, 403, 404),
            },
        }
    },
    "/v1/exchanges/{id}/document": {
        "get": {
            "parameters": _ID,
            "responses": {
                "200": {"description": "the archived PDF", "content": {"application/pdf": {}}},
                **problems(401, 403, 404),
            },
        }
    },
    "/v1/exchanges/{id}/status": {
        "post": {
            "parameters": _ID,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["code"],
                            "properties": {
                                "code": {
                                    "type": "string",
                                    "enum": ["01", "02", "03", "04", "05", "06", "13", "15", "16"],
                                },
                                "note": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {"description": "the new statuses"},
                **problems(401, 403, 404, 409, 422),
            },
        }
    },
    "/v1/exchanges/{id}/evidence": {
        "get": {
            "summary": "Offline-checkable evidence ZIP (admin, auditor)",
            "parameters": _ID,
            "responses": {
                "200": {"description": "ZIP", "content": {"application/zip": {}}},
                **problems(401, 403, 404),
            },
        }
    },
    "/v1/agencies": {
        "get": {"responses": {"200": {"description": '{"agencies": [...]}'}, **problems(401)}},
        "post": {
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Agency"}}
                },
            },
            "responses": {
                "201": _json("#/components/schemas/Agency", "created"),
                **problems(401, 403, 409, 422),
            },
        },
    },
    "/v1/audit/verify": {
        "get": {
            "summary": "Re-compute the audit hash chain (admin, auditor)",
            "responses": {"200": {"description": "the verdict"}, **problems(401, 403)},
        }
    },
}
