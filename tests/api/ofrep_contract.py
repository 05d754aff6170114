"""Validates OFREP answers against the OFREP OpenAPI document itself, read from the shared schemas
directory (never copied into the repository): `OFREP_OPENAPI` names the file, else it is looked for
as `shared/schemas/ofrep-openapi.yaml` above the repository.

One correction is applied to the loaded document, and a test keeps it honest: `codeDefaultFlag` is
`{"type": "object", "properties": {}}`, which every object matches, so under JSON Schema's `oneOf` a
success carrying a `value` matches both its typed branch and `codeDefaultFlag`, and no answer with a
value could ever validate. The document's own words say what it means ("This schema has no `value`
property"), so the validator adds `not: {required: [value]}` to it.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

URI = "urn:ofrep-openapi"
SINGLE = "/ofrep/v1/evaluate/flags/{key}"
BULK = "/ofrep/v1/evaluate/flags"


def document_path() -> Path:
    env = os.environ.get("OFREP_OPENAPI")
    if env:
        return Path(env)
    for parent in [*Path(__file__).resolve().parents, Path("/work")]:  # /work: a clone made elsewhere
        candidate = parent / "shared" / "schemas" / "ofrep-openapi.yaml"
        if candidate.is_file():
            return candidate
    pytest.fail("The OFREP OpenAPI document was not found; set OFREP_OPENAPI to its path.")


@functools.cache
def raw_document() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(document_path().read_text(encoding="utf-8"))
    return doc


@functools.cache
def document() -> dict[str, Any]:
    doc = copy.deepcopy(raw_document())
    doc["components"]["schemas"]["codeDefaultFlag"]["not"] = {"required": ["value"]}
    return doc


def errors(schema: dict[str, Any], instance: Any, doc: dict[str, Any] | None = None) -> list[str]:
    registry = Registry().with_resource(URI, Resource(contents=doc or document(), specification=DRAFT202012))
    resolved = _rebase(schema)
    validator = jsonschema.Draft202012Validator(resolved, registry=registry)
    return [e.message for e in validator.iter_errors(instance)]


def _rebase(schema: Any) -> Any:
    """Point the document's local `#/components/...` refs at the registered document."""
    if isinstance(schema, dict):
        return {k: (URI + v if k == "$ref" and v.startswith("#") else _rebase(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_rebase(v) for v in schema]
    return schema


def component_errors(name: str, instance: Any, doc: dict[str, Any] | None = None) -> list[str]:
    return errors({"$ref": f"#/components/schemas/{name}"}, instance, doc)


def check(route: str, status: int, body: Any, headers: Any = None) -> None:
    """The status is one the document lists for the route and, where it defines a body, the body fits it."""
    responses = document()["paths"][route]["post"]["responses"]
    assert str(status) in responses, f"{status} is not an answer of {route} in the OFREP document"
    spec = responses[str(status)]
    content = spec.get("content")
    if content is not None:
        schema = content["application/json"]["schema"]
        problems = errors(schema, body)
        assert problems == [], (status, body, problems)
    for name in spec.get("headers", {}):
        if status == 200 and name == "ETag":
            assert headers is not None and headers.get("ETag"), "a bulk 200 carries an ETag"
