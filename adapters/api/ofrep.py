"""OFREP routes: the kill-switch flags (bot/flags.py) served to any OpenFeature SDK over HTTP (SPEC §9).

`POST /ofrep/v1/evaluate/flags/{key}` evaluates one pilot's flag (key = slug) and the bulk
`POST /ofrep/v1/evaluate/flags` every flag the token may read, with an `ETag` so a poller's
`If-None-Match` gets 304 until something changes. Shapes follow the OFREP OpenAPI document
(`schemas/ofrep-openapi.yaml`); the tests validate every answer against it. Authentication is the
`/api/v1` bearer token (bot/tokens.py): 401 without or with a wrong one, 403 when a pilot-scoped
token asks for another key. The body is the evaluation context; flags here are not targeted, so
it is only checked for shape (empty, `{}` or `{"context": {...}}`).

A request whose token and flag are in the flag cache (bot/flag_cache.py: fresh for a second,
dropped at once by a change in this process) is answered on the event loop; otherwise one hop to
a worker thread verifies the token and reads the flag together, refilling the cache. The read
evidence is recorded in memory (bot/flags.ReadLog) and flushed by a background task every
`FLUSH_EVERY`, and once more on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Connection

from adapters.metrics import METRICS_KEY
from bot.core import Core
from bot.flags import FLUSH_EVERY, Flags, Verdict, etag_of
from bot.tokens import TokenInfo, bearer
from bot.views import INTERNAL_ERROR
from storage.flags import FlagRow

log = logging.getLogger(__name__)

PREFIX = "/ofrep/v1"
MAX_BODY = 64 * 1024
BULK_CACHE_SIZE = 8
FLAGS: web.AppKey[Flags] = web.AppKey("ofrep_flags", Flags)
STATE_KEY: web.AppKey[OfrepState] = web.AppKey("ofrep_state")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class OfrepState:
    flags: Flags
    bulk_bodies: OrderedDict[tuple[str | None, str], bytes]  # (scope, ETag) -> rendered body
    lock: threading.Lock  # worker threads share bulk_bodies


class Refused(Exception):
    """An answer other than 200: its status and OFREP body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("errorDetails", ""))
        self.status = status
        self.body = body


def _respond(status: int, body: dict[str, Any]) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="pilotbot"'} if status == 401 else None
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def ofrep_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal is OFREP JSON; no traceback reaches the client."""
    start = time.perf_counter()
    try:
        response = await handler(request)
    except Refused as e:
        response = _respond(e.status, e.body)
    except web.HTTPException as e:
        text = {404: "No such route; OFREP routes are POST /ofrep/v1/evaluate/flags[/{key}].", 405: "Use POST."}
        response = _respond(e.status, {"errorDetails": text.get(e.status, e.reason or "Request refused.")})
    except Exception:
        log.exception("ofrep: %s %s failed", request.method, request.path)
        response = _respond(500, {"errorDetails": INTERNAL_ERROR})
    metrics = request.config_dict.get(METRICS_KEY)
    if metrics is not None:
        outcome = "ok" if response.status < 400 else ("refused" if response.status < 500 else "error")
        metrics.observe_command("ofrep", "evaluate", outcome, time.perf_counter() - start)
    return response


def verdict_doc(v: Verdict) -> dict[str, Any]:
    return {"key": v.key, "value": v.value, "reason": v.reason, "variant": v.variant, "metadata": v.metadata}


def _failure(key: str | None, code: str, details: str) -> dict[str, Any]:
    return (
        {"key": key, "errorCode": code, "errorDetails": details}
        if key is not None
        else {
            "errorCode": code,
            "errorDetails": details,
        }
    )


async def _check_context(request: web.Request, key: str | None) -> None:
    """400 unless the body is empty, `{}` or `{"context": {...}}` (the context itself is not used)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Refused(400, _failure(key, "PARSE_ERROR", "The body is larger than 64 KiB."))
    raw = await request.read()
    if not raw.strip():
        return
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused(400, _failure(key, "PARSE_ERROR", "The body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise Refused(400, _failure(key, "PARSE_ERROR", 'The body must be a JSON object: {"context": {...}}.'))
    if "context" in body and not isinstance(body["context"], dict):
        raise Refused(400, _failure(key, "INVALID_CONTEXT", '`context` must be an object: {"context": {...}}.'))


def _secret(request: web.Request) -> str:
    token = bearer(request.headers.get("Authorization"))
    if token is None:
        raise Refused(401, {"errorDetails": "Send `Authorization: Bearer <token>` (`pilotbot token create <name>`)."})
    return token


def _verify(state: OfrepState, secret: str, conn: Connection | None = None) -> TokenInfo:
    info = state.flags.authorize(secret, conn)
    if info is None:
        raise Refused(
            401, {"errorDetails": "The token is unknown or revoked; `pilotbot token create <name>` makes one."}
        )
    return info


def _evaluate_one(state: OfrepState, secret: str, key: str) -> dict[str, Any]:
    """In a worker thread, on one connection: verify the token, check its scope, read the flag."""
    with state.flags.engine.connect() as conn:
        info = _verify(state, secret, conn)
        slug = key.lower()
        if not info.may_access(slug):
            raise Refused(403, {"errorDetails": f"This token may read `{info.pilot_slug}` only, not `{key[:60]}`."})
        verdict = state.flags.evaluate(slug, info.name, conn)
    if verdict is None:
        raise Refused(404, _failure(key, "FLAG_NOT_FOUND", f"No pilot `{key[:60]}`, so no flag by that key."))
    return {**verdict_doc(verdict), "key": key}


def _one_from_memory(state: OfrepState, secret: str, key: str) -> dict[str, Any] | None:
    """On the event loop: the answer when the token and the flag are cached and fresh, else None."""
    info = state.flags.cached_token(secret)
    if info is None:
        return None
    slug = key.lower()
    if not info.may_access(slug):
        raise Refused(403, {"errorDetails": f"This token may read `{info.pilot_slug}` only, not `{key[:60]}`."})
    verdict = state.flags.cached_verdict(slug, info.name)
    return None if verdict is None else {**verdict_doc(verdict), "key": key}


async def evaluate_flag(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    secret = _secret(request)
    await _check_context(request, key)
    state = request.app[STATE_KEY]
    doc = _one_from_memory(state, secret, key)
    if doc is None:
        doc = await asyncio.to_thread(_evaluate_one, state, secret, key)
    return web.json_response(doc, dumps=_dumps)


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return any(t == "*" or t.removeprefix("W/") == etag for t in tags)


def _bulk_from_memory(state: OfrepState, secret: str, if_none_match: str | None) -> tuple[str, bytes | None] | None:
    """On the event loop: (ETag, body or None for 304) from the cache, else None (ask the database)."""
    flags = state.flags
    info = flags.cached_token(secret)
    marks = flags.cache.marks
    if info is None or marks is None:
        return None
    scope = info.pilot_slug
    rows: list[FlagRow] | None = None
    if scope is None:
        etag = etag_of(None, marks.flags)
    else:
        row = flags.cached_flag(scope)
        if row is None:
            return None
        rows = [row]
        etag = etag_of(scope, (row.id, row.flag_version, row.flag_on, row.stage))
    if _etag_matches(if_none_match, etag):
        flags.record_bulk(info.name, scope, rows)
        return etag, None
    with state.lock:
        cached = state.bulk_bodies.get((scope, etag))
    if cached is None:
        return None
    flags.record_bulk(info.name, scope, rows)
    return etag, cached


def _evaluate_bulk(state: OfrepState, secret: str, if_none_match: str | None) -> tuple[str, bytes | None]:
    """In a worker thread: (ETag, body), body None for 304. The rendered body is cached per ETag."""
    with state.flags.engine.connect() as conn:
        info = _verify(state, secret, conn)
        scope = info.pilot_slug
        etag = state.flags.bulk_etag(scope, conn)
    if _etag_matches(if_none_match, etag):
        state.flags.record_bulk(info.name, scope)
        return etag, None
    with state.lock:
        cached = state.bulk_bodies.get((scope, etag))
    if cached is not None:
        state.flags.record_bulk(info.name, scope)
        return etag, cached
    etag, verdicts = state.flags.evaluate_all(info.name, scope)
    body = json.dumps({"flags": [verdict_doc(v) for v in verdicts]}, separators=(",", ":")).encode("utf-8")
    with state.lock:
        state.bulk_bodies[(scope, etag)] = body
        while len(state.bulk_bodies) > BULK_CACHE_SIZE:
            state.bulk_bodies.popitem(last=False)
    return etag, body


async def evaluate_flags(request: web.Request) -> web.Response:
    secret = _secret(request)
    await _check_context(request, None)
    state, if_none_match = request.app[STATE_KEY], request.headers.get("If-None-Match")
    answer = _bulk_from_memory(state, secret, if_none_match)
    if answer is None:
        answer = await asyncio.to_thread(_evaluate_bulk, state, secret, if_none_match)
    etag, body = answer
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if body is None:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


def build_ofrep_app(core: Core, flags: Flags) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[ofrep_errors])
    app[STATE_KEY] = OfrepState(flags, OrderedDict(), threading.Lock())
    app.router.add_post("/evaluate/flags/{key}", evaluate_flag)
    app.router.add_post("/evaluate/flags", evaluate_flags)
    return app


async def _flush(flags: Flags) -> None:
    try:
        await asyncio.to_thread(flags.flush_reads)
    except Exception:
        log.exception("ofrep: flushing flag reads failed; kept for the next flush")


def flusher(flags: Flags, every: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context writing the coalesced read evidence every `every` seconds and on shutdown."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(every)
                await _flush(flags)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await _flush(flags)

    return run


def mount(app: web.Application, core: Core) -> None:
    """Always mounted with the REST API: it needs nothing but the database. `app[FLAGS]` is the one
    Flags instance of the process, so chat commands can share its unflushed read evidence."""
    flags = core.flags
    app[FLAGS] = flags
    app.add_subapp(PREFIX, build_ofrep_app(core, flags))
    app.cleanup_ctx.append(flusher(flags, FLUSH_EVERY.total_seconds()))
