"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in test_schemathesis: case files go out as text.

Schemathesis 4 serializers return the body's bytes (None: no body). The old style returned
`{"data": ...}`, which schemathesis 4 wraps once more, so requests form-encoded the dict and the
server never saw a valid JSONL file; test_schemathesis asserts valid ones now arrive.
"""

from __future__ import annotations

from typing import Any

import schemathesis


def _text(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else str(value)).encode("utf-8", "surrogatepass")


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    return _text(value)


@schemathesis.serializer("text/csv")
def csv(ctx: Any, value: Any) -> bytes:
    return _text(value)
