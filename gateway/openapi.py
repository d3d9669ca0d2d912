"""The OpenAPI 3.1 document of the endpoints this service answers (API.md)."""

from __future__ import annotations

import functools
from typing import Any

from .openapi_exchanges import EXCHANGE_PATHS, EXCHANGE_SCHEMAS, problems
from .openapi_reports import REPORT_PATHS, REPORT_SCHEMAS

__all__ = ["openapi_document"]

_SIGN_OPTIONS = {
    "agency": {"type": "string", "pattern": r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$"},
    "level": {"type": "string", "enum": ["B-B", "B-T", "B-LT", "B-LTA"], "default": "B-LT"},
    "appearance": {
        "type": "string",
        "enum": ["agency", "copy", "appendix", "none"],
        "default": "agency",
    },
    "page": {"type": "integer", "description": "1-based; negative counts from the end"},
    "box": {"type": "string", "description": "x1,y1,x2,y2 in points"},
    "reason": {"type": "string", "maxLength": 200},
    "location": {"type": "string", "maxLength": 200},
    "number": {"type": "string", "maxLength": 200},
    "copy_form": {"type": "string", "enum": ["SAO Y", "SAO LỤC", "TRÍCH SAO"]},
}


_NULLABLE_STR = {"type": ["string", "null"]}
_SIGNATURE = {
    "type": "object",
    "required": [
        "field",
        "indication",
        "subindication",
        "intact",
        "trusted",
        "coverage",
        "modifications",
        "level",
        "signer",
        "signing_time",
        "timestamp_time",
        "messages",
    ],
    "properties": {
        "field": {"type": "string"},
        "kind": {"type": "string", "enum": ["signature", "document_timestamp"]},
        "indication": {"type": "string", "enum": ["TOTAL_PASSED", "INDETERMINATE", "TOTAL_FAILED"]},
        "subindication": _NULLABLE_STR,
        "intact": {"type": "boolean"},
        "trusted": {"type": "boolean"},
        "coverage": {"type": "string", "enum": ["ENTIRE_FILE", "ENTIRE_REVISION", "PARTIAL"]},
        "modifications": {
            "type": "string",
            "enum": ["NONE", "LTA_UPDATES", "FORM_FILLING", "ANNOTATIONS", "OTHER"],
        },
        "level": {"type": ["string", "null"], "enum": ["B-B", "B-T", "B-LT", "B-LTA", None]},
        "signer": {
            "type": ["object", "null"],
            "properties": {
                "common_name": _NULLABLE_STR,
                "organization": _NULLABLE_STR,
                "serial": _NULLABLE_STR,
                "sha256": _NULLABLE_STR,
            },
        },
        "signing_time": _NULLABLE_STR,
        "timestamp_time": _NULLABLE_STR,
        "messages": {"type": "array", "items": {"type": "string"}},
    },
}
_REPORT = {
    "type": "object",
    "required": ["valid", "document", "signatures", "summary"],
    "properties": {
        "valid": {"type": "boolean"},
        "document": {
            "type": "object",
            "properties": {
                "sha256": {"type": "string"},
                "size": {"type": "integer"},
                "revisions": {"type": "integer"},
            },
        },
        "signatures": {"type": "array", "items": _SIGNATURE},
        "messages": {"type": "array", "items": {"type": "string"}},
        "summary": {
            "type": "object",
            "properties": {"vi": {"type": "string"}, "en": {"type": "string"}},
        },
    },
}


@functools.cache
def openapi_document() -> dict[str, Any]:
    pdf = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "DocGate", "version": "1.0.0"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail", "code"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "code": {"type": "string"},
                    },
                },
                "SignOptions": {"type": "object", "properties": _SIGN_OPTIONS},
                "VerificationReport": _REPORT,
                **EXCHANGE_SCHEMAS,
                **REPORT_SCHEMAS,
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {
                "get": {
                    "security": [],
                    "responses": {"200": {"description": '{"status": "ok"}'}},
                }
            },
            "/readyz": {
                "get": {
                    "security": [],
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "names the failing checks"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "security": [],
                    "responses": {"200": {"description": "Prometheus text format"}},
                }
            },
            "/openapi.json": {
                "get": {"security": [], "responses": {"200": {"description": "this document"}}}
            },
            "/v1/trust/roots": {
                "get": {
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "PEM bundle of the trust anchors",
                            "content": {"application/x-pem-file": {}},
                        },
                        **problems(429),
                    },
                }
            },
            "/v1/verify": {
                "post": {
                    "summary": "Verify the signatures of a PDF (open; rate-limited per address)",
                    "security": [{}, {"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            **pdf,
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                }
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the verification report",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/VerificationReport"}
                                }
                            },
                        },
                        **problems(401, 408, 413, 415, 422, 429, 503),
                    },
                }
            },
            **EXCHANGE_PATHS,
            **REPORT_PATHS,
            "/v1/sign": {
                "post": {
                    "summary": "Sign a PDF with PAdES (ETSI.CAdES.detached)",
                    "parameters": [
                        {"name": name, "in": "query", "required": False, "schema": schema}
                        for name, schema in _SIGN_OPTIONS.items()
                    ]
                    + [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 200},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            **pdf,
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {
                                        "file": {"type": "string", "format": "binary"},
                                        "options": {"$ref": "#/components/schemas/SignOptions"},
                                    },
                                }
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the signed document",
                            "headers": {
                                "DocGate-Level": {"schema": {"type": "string"}},
                                "DocGate-Record": {"schema": {"type": "string"}},
                                "Repr-Digest": {"schema": {"type": "string"}},
                            },
                            "content": pdf,
                        },
                        **problems(400, 401, 403, 404, 408, 413, 415, 422, 503),
                    },
                }
            },
        },
    }
