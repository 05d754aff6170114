"""The published schema of `/api/v1` (OpenAPI 3.0.3), written by hand next to the routes."""

from __future__ import annotations

from typing import Any

SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,39}$", "example": "legal-intake"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


COMMON_ERRORS = {
    "401": _error("No token, or an unknown or revoked one."),
    "403": _error("The token is scoped to another pilot."),
}
PILOT_ERRORS = {**COMMON_ERRORS, "404": _error("No such pilot.")}
WRITE_ERRORS = {
    **PILOT_ERRORS,
    "403": _error("The token is scoped to another pilot, or it is read-only (`--read-only`)."),
    "400": _error("The body is not a JSON object."),
    "413": _error("The body is larger than 1 MiB."),
    "422": _error("A field is missing, of the wrong type or out of range; or the service refused the change."),
}
SLUG_PARAM = {"name": "slug", "in": "path", "required": True, "schema": SLUG, "description": "The pilot's slug."}
METRIC_PARAM = {
    "name": "metric",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$", "example": "handle_time"},
    "description": "The metric's key.",
}

NULLABLE_STR = {"type": "string", "nullable": True}
NULLABLE_NUM = {"type": "number", "nullable": True}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "One sentence: what was wrong and how to fix it."},
            "errors": {
                "type": "array",
                "description": "Malformed rows of a labelled file, by line number (the first 50).",
                "items": {
                    "type": "object",
                    "properties": {"line": {"type": "integer"}, "message": {"type": "string"}},
                },
            },
            "more_errors": {"type": "integer", "description": "Malformed rows not listed in `errors`."},
        },
    },
    "Gap": {
        "type": "object",
        "required": ["gap", "label", "state", "reason"],
        "properties": {
            "gap": {"type": "string", "enum": ["baseline", "owner", "quality", "path"]},
            "label": {"type": "string"},
            "state": {"type": "string", "enum": ["closed", "at_risk", "open"]},
            "reason": {"type": "string"},
        },
    },
    "PortfolioPilot": {
        "type": "object",
        "required": ["slug", "name", "stage", "ready", "gaps", "next_step"],
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "stage": {"type": "string"},
            "owner": NULLABLE_STR,
            "ready": {"type": "boolean"},
            "gaps": {"type": "array", "items": _ref("Gap"), "minItems": 4, "maxItems": 4},
            "next_step": {"type": "string"},
        },
    },
    "Portfolio": {
        "type": "object",
        "required": ["summary", "ready", "total", "pilots"],
        "properties": {
            "summary": {"type": "string", "example": "1 of 3 pilots ready to ship (33%)"},
            "ready": {"type": "integer"},
            "total": {"type": "integer"},
            "pilots": {"type": "array", "items": _ref("PortfolioPilot")},
            "production": {"type": "integer"},
            "page": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 1},
            "matching": {"type": "integer", "description": "Pilots the filter selects, on every page."},
        },
    },
    "Trend": {
        "type": "object",
        "required": ["weeks"],
        "properties": {
            "weeks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["week", "ready", "closed"],
                    "properties": {
                        "week": {"type": "string", "example": "2026-W48"},
                        "ready": {"type": "integer", "description": "Pilots ready to ship at the week's end."},
                        "closed": {
                            "type": "object",
                            "description": "Per gap, pilots with it closed at the week's end.",
                            "additionalProperties": {"type": "integer"},
                        },
                    },
                },
            }
        },
    },
    "Metric": {
        "type": "object",
        "required": ["key", "unit", "direction", "baseline", "baseline_at", "improvement"],
        "properties": {
            "key": {"type": "string"},
            "unit": {"type": "string"},
            "direction": {"type": "string", "enum": ["lower", "higher"]},
            "baseline": {"type": "number"},
            "baseline_at": {"type": "string", "format": "date"},
            "latest": NULLABLE_NUM,
            "latest_at": {"type": "string", "format": "date-time", "nullable": True},
            "improvement": {"type": "string", "example": "handle_time 14 → 9 min (−36%, better)"},
            "verdict": {"type": "string", "nullable": True, "enum": ["better", "worse", "no change", None]},
        },
    },
    "PilotReport": {
        "type": "object",
        "required": ["slug", "name", "stage", "ready", "gaps", "metrics", "latest_eval", "path", "next_steps"],
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "stage": {"type": "string"},
            "go_live": {"type": "string", "format": "date", "nullable": True},
            "owner": {
                "type": "object",
                "nullable": True,
                "properties": {"platform": {"type": "string"}, "id": {"type": "string"}, "name": NULLABLE_STR},
            },
            "escalation_channel": {
                "type": "object",
                "nullable": True,
                "properties": {"platform": NULLABLE_STR, "id": {"type": "string"}, "name": NULLABLE_STR},
            },
            "ready": {"type": "boolean", "description": "All four gaps closed."},
            "gaps": {"type": "array", "items": _ref("Gap"), "minItems": 4, "maxItems": 4},
            "gate": {
                "type": "object",
                "nullable": True,
                "description": "The ship gate (SPEC §8): met, or each unmet condition.",
                "properties": {
                    "met": {"type": "boolean"},
                    "unmet": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"code": {"type": "string"}, "sentence": {"type": "string"}},
                        },
                    },
                },
            },
            "override": {
                "type": "object",
                "nullable": True,
                "description": "The admin override this production pilot shipped with.",
                "properties": {
                    "by": {"type": "string"},
                    "reason": NULLABLE_STR,
                    "unmet": {"type": "array", "items": {"type": "string"}},
                },
            },
            "metrics": {"type": "array", "items": _ref("Metric")},
            "eval_policy": {
                "type": "object",
                "nullable": True,
                "properties": {
                    "threshold": {"type": "number"},
                    "min_cases": {"type": "integer"},
                    "drop_alert": {"type": "number"},
                },
            },
            "latest_eval": {
                "type": "object",
                "nullable": True,
                "properties": {
                    "score": {"type": "number"},
                    "cases": {"type": "integer"},
                    "version": NULLABLE_STR,
                    "run_at": {"type": "string", "format": "date-time"},
                    "source": {"type": "string"},
                    "field_scores": {"type": "object", "nullable": True, "additionalProperties": {"type": "number"}},
                    "clears_bar": {"type": "boolean", "nullable": True},
                },
            },
            "path": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"item": {"type": "string"}, "state": {"type": "string"}, "note": NULLABLE_STR},
                },
            },
            "next_steps": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Gate": {
        "type": "object",
        "required": ["passed", "reasons"],
        "description": "The CI gate: does the run clear the pilot's bar with enough cases? Fail the build on false.",
        "properties": {"passed": {"type": "boolean"}, "reasons": {"type": "array", "items": {"type": "string"}}},
    },
    "FlippedCase": {
        "type": "object",
        "required": ["id", "failing_fields"],
        "properties": {"id": {"type": "string"}, "failing_fields": {"type": "array", "items": {"type": "string"}}},
    },
    "Flips": {
        "type": "object",
        "nullable": True,
        "description": "Cases that regressed or were fixed against the previous labelled run (first 10 of each); "
        "null for a bare score.",
        "required": ["compared", "regressed", "regressed_total", "fixed", "fixed_total", "text"],
        "properties": {
            "compared": {"type": "boolean", "description": "False when there is no earlier labelled run."},
            "regressed": {"type": "array", "maxItems": 10, "items": _ref("FlippedCase")},
            "regressed_total": {"type": "integer"},
            "fixed": {"type": "array", "maxItems": 10, "items": _ref("FlippedCase")},
            "fixed_total": {"type": "integer"},
            "text": {"type": "string"},
        },
    },
    "Cases": {
        "type": "object",
        "required": ["pilot", "runs", "flaky", "always_failing", "lines"],
        "properties": {
            "pilot": {"type": "string"},
            "runs": {"type": "integer", "description": "Labelled runs looked at (the last 10 at most)."},
            "flaky": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "changes", "runs", "passed_last"],
                    "properties": {
                        "id": {"type": "string"},
                        "changes": {"type": "integer"},
                        "runs": {"type": "integer"},
                        "passed_last": {"type": "boolean"},
                    },
                },
            },
            "always_failing": {"type": "array", "items": {"type": "string"}},
            "lines": {"type": "array", "items": {"type": "string"}},
        },
    },
    "EvalIn": {
        "type": "object",
        "required": ["score", "cases"],
        "additionalProperties": False,
        "properties": {
            "score": {
                "type": "number",
                "minimum": 0,
                "maximum": 100,
                "description": "Percent; a number between 0 and 1 is read as a fraction, as in chat.",
                "example": 96.2,
            },
            "cases": {"type": "integer", "minimum": 1, "maximum": 10000000, "example": 150},
            "version": {"type": "string", "maxLength": 200, "example": "prompt-v7"},
        },
    },
    "MeasurementIn": {
        "type": "object",
        "required": ["metric", "value"],
        "additionalProperties": False,
        "properties": {
            "metric": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$", "example": "handle_time"},
            "value": {"type": "number", "example": 9},
            "unit": {"type": "string", "maxLength": 32, "description": "Must match the metric's unit when given."},
        },
    },
    "ShipIn": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "override": {
                "type": "string",
                "maxLength": 500,
                "description": "Ship past the unmet gate conditions with this reason (admin tokens and API tokens).",
            }
        },
    },
    "VoidIn": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"reason": {"type": "string", "maxLength": 500, "description": "Why it is withdrawn."}},
    },
    "LifecycleResult": {
        "type": "object",
        "required": ["pilot", "message", "lines", "alerts"],
        "properties": {
            "pilot": {"type": "string"},
            "stage": {"type": "string", "nullable": True},
            "metric": {"type": "string"},
            "message": {"type": "string"},
            "lines": {"type": "array", "items": {"type": "string"}},
            "alerts": {"type": "array", "items": {"type": "string"}},
        },
    },
    "WriteResult": {
        "type": "object",
        "required": ["pilot", "message", "lines", "alerts"],
        "properties": {
            "pilot": {"type": "string"},
            "message": {"type": "string"},
            "lines": {"type": "array", "items": {"type": "string"}},
            "alerts": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Escalations queued for the owner and the escalation channel.",
            },
            "score": {"type": "number"},
            "cases": {"type": "integer"},
            "version": NULLABLE_STR,
            "read_as_fraction": {"type": "boolean"},
            "metric": {"type": "string"},
            "value": {"type": "number"},
            "gate": _ref("Gate"),
            "flips": _ref("Flips"),
        },
    },
    "ScoredEval": {
        "type": "object",
        "required": [
            "pilot",
            "score",
            "cases",
            "passed",
            "field_accuracy",
            "failing",
            "failing_total",
            "message",
            "gate",
            "flips",
        ],
        "properties": {
            "pilot": {"type": "string"},
            "version": NULLABLE_STR,
            "score": {"type": "number", "description": "Percent of cases passing every must-not-miss field."},
            "cases": {"type": "integer"},
            "passed": {"type": "integer"},
            "field_accuracy": {"type": "object", "additionalProperties": {"type": "number"}},
            "failing_total": {"type": "integer"},
            "failing": {
                "type": "array",
                "maxItems": 10,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "line": {"type": "integer"},
                        "misses": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"field": {"type": "string"}, "expected": {}, "actual": {}},
                            },
                        },
                    },
                },
            },
            "message": {"type": "string"},
            "lines": {"type": "array", "items": {"type": "string"}},
            "alerts": {"type": "array", "items": {"type": "string"}},
            "gate": _ref("Gate"),
            "flips": _ref("Flips"),
        },
    },
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "pilotbot API",
            "version": "1",
            "description": "Gap reports of AI pilots, and eval results and measurements pushed from CI. "
            "Every route needs `Authorization: Bearer <token>` (`pilotbot token create <name> [--pilot <slug>]`).",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            "/pilots": {
                "get": {
                    "operationId": "listPilots",
                    "summary": "The portfolio riskiest first, 25 a page: four gap states, header counts of all.",
                    "parameters": [
                        {
                            "name": "page",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000000},
                        },
                        {
                            "name": "state",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["at-risk", "ready", "production", "retired"]},
                        },
                        {
                            "name": "owner",
                            "in": "query",
                            "required": False,
                            "description": "The owner's platform and user id, e.g. slack:U0123.",
                            "schema": {"type": "string", "pattern": "^[a-z]+:.+$", "maxLength": 200},
                        },
                    ],
                    "responses": {
                        "200": _ok("The portfolio.", "Portfolio"),
                        "400": _error("A query parameter is not valid."),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/portfolio/trend": {
                "get": {
                    "operationId": "portfolioTrend",
                    "summary": "Per week: pilots ready to ship and each gap's closed count (from the gap history).",
                    "parameters": [
                        {
                            "name": "weeks",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 104},
                        }
                    ],
                    "responses": {
                        "200": _ok("The weekly counts.", "Trend"),
                        "400": _error("A query parameter is not valid."),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/pilots/{slug}": {
                "get": {
                    "operationId": "getPilot",
                    "summary": "One pilot's gap report: four gaps with reasons, metrics vs baseline, latest eval.",
                    "parameters": [SLUG_PARAM],
                    "responses": {"200": _ok("The gap report.", "PilotReport"), **PILOT_ERRORS},
                }
            },
            "/pilots/{slug}/evals": {
                "post": {
                    "operationId": "recordEval",
                    "summary": "Record an eval run; pings the owner and escalation channel as in chat.",
                    "parameters": [SLUG_PARAM],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("EvalIn")}}},
                    "responses": {"201": _ok("Recorded.", "WriteResult"), **WRITE_ERRORS},
                }
            },
            "/pilots/{slug}/evals/cases": {
                "post": {
                    "operationId": "scoreEvalCases",
                    "summary": "Score labelled cases (JSONL, CSV or JUnit XML) and record the run with every "
                    "case's result; answers the CI gate and the cases that flipped against the previous run.",
                    "parameters": [
                        SLUG_PARAM,
                        {
                            "name": "version",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 200},
                            "description": "Model or prompt version of this run.",
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-ndjson": {
                                "schema": {"type": "string"},
                                "example": '{"id": "c1", "expected": {"party": "Acme", "amount": 1200}, '
                                '"actual": {"party": "acme ", "amount": "1200.0"}, '
                                '"must_not_miss": ["party", "amount"]}\n',
                            },
                            "text/csv": {
                                "schema": {"type": "string"},
                                "example": "id,field,expected,actual,must_not_miss\nc1,party,Acme,acme ,true\n",
                            },
                            "application/xml": {
                                "schema": {"type": "string"},
                                "example": '<testsuites><testsuite name="evals"><testcase name="c1"/>'
                                "</testsuite></testsuites>",
                            },
                        },
                    },
                    "responses": {
                        "201": _ok("Scored and recorded.", "ScoredEval"),
                        **WRITE_ERRORS,
                        "415": _error("Neither JSONL, CSV nor JUnit XML."),
                    },
                }
            },
            "/pilots/{slug}/cases": {
                "get": {
                    "operationId": "getCases",
                    "summary": "Flaky and always-failing cases over the pilot's last 10 labelled runs.",
                    "parameters": [SLUG_PARAM],
                    "responses": {"200": _ok("The case history.", "Cases"), **PILOT_ERRORS},
                }
            },
            "/pilots/{slug}/measurements": {
                "post": {
                    "operationId": "recordMeasurement",
                    "summary": "Record this week's value of a metric (its baseline must exist).",
                    "parameters": [SLUG_PARAM],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("MeasurementIn")}},
                    },
                    "responses": {"201": _ok("Recorded.", "WriteResult"), **WRITE_ERRORS},
                }
            },
            "/pilots/{slug}/ship": {
                "post": {
                    "operationId": "shipPilot",
                    "summary": "Move the pilot to production through the ship gate (422 lists every unmet condition).",
                    "parameters": [SLUG_PARAM],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref("ShipIn")}},
                    },
                    "responses": {"200": _ok("Shipped.", "LifecycleResult"), **WRITE_ERRORS},
                }
            },
            "/pilots/{slug}/evals/latest/void": {
                "post": {
                    "operationId": "voidLatestEval",
                    "summary": "Withdraw the latest eval run (kept, marked void); the previous run is latest again.",
                    "parameters": [SLUG_PARAM],
                    "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("VoidIn")}}},
                    "responses": {"200": _ok("Withdrawn.", "LifecycleResult"), **WRITE_ERRORS},
                }
            },
            "/pilots/{slug}/metrics/{metric}/measurements/latest/void": {
                "post": {
                    "operationId": "voidLatestMeasurement",
                    "summary": "Withdraw the metric's latest measurement (kept, marked void).",
                    "parameters": [SLUG_PARAM, METRIC_PARAM],
                    "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("VoidIn")}}},
                    "responses": {"200": _ok("Withdrawn.", "LifecycleResult"), **WRITE_ERRORS},
                }
            },
            "/pilots/{slug}/metrics/{metric}/void": {
                "post": {
                    "operationId": "voidMetric",
                    "summary": "Withdraw the metric: its baseline and every measurement (kept, marked void).",
                    "parameters": [SLUG_PARAM, METRIC_PARAM],
                    "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("VoidIn")}}},
                    "responses": {"200": _ok("Withdrawn.", "LifecycleResult"), **WRITE_ERRORS},
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {
                        "200": {"description": "OpenAPI 3.0 document.", "content": {"application/json": {}}},
                        **COMMON_ERRORS,
                    },
                }
            },
        },
    }
