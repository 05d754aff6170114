"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in test_schemathesis: JSONL bodies are sent as text."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> dict[str, Any]:
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": (value if isinstance(value, str) else str(value)).encode("utf-8", "surrogatepass")}
