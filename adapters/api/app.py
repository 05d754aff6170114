"""Routes of `/api/v1` as an aiohttp sub-application with its own auth and error middleware.

Every route, reads included, needs `Authorization: Bearer <token>`. A handler translates JSON into
service arguments and the outcome back into JSON; the rules stay in bot/.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientConnectionResetError, web

from adapters import lanes
from adapters.api import ofrep
from adapters.api import payloads as pl
from adapters.api.openapi import openapi_document
from adapters.metrics import METRICS_KEY
from bot import commands as c
from bot.core import Core
from bot.errors import NotFound, UserError
from bot.evalscore import EvalFileError, format_of, score_text
from bot.ports import Actor
from bot.reports import PortfolioEntry
from bot.tokens import TokenInfo, TokenService, bearer
from bot.views import INTERNAL_ERROR
from storage.models import Source

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_BODY = 1024 * 1024
MAX_ERRORS = 50  # listed in an error body; the rest are counted (a 600 KB file once answered 14 MB)
READS = frozenset({"GET", "HEAD", "OPTIONS"})
CORE: web.AppKey[Core] = web.AppKey("api_core", Core)
TOKENS: web.AppKey[TokenService] = web.AppKey("api_tokens", TokenService)
TOKEN_INFO: web.RequestKey[TokenInfo] = web.RequestKey("api_token", TokenInfo)  # the verified token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="pilotbot"'
    return web.json_response({"error": message, **extra}, status=status, headers=headers or None)


def file_errors(e: EvalFileError) -> dict[str, Any]:
    """The first MAX_ERRORS malformed rows, and how many more there were."""
    shown = [{"line": n, "message": m[:300]} for n, m in e.errors[:MAX_ERRORS]]
    return {"errors": shown, "more_errors": e.total - len(shown)}


class ClientGone(Exception):
    """The client closed the connection before its body arrived: nobody to answer."""


def _outcome_label(status: int) -> str:
    return "ok" if status < 400 else ("refused" if status < 500 else "error")


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error becomes JSON `{"error": "<one sentence>"}`; no traceback reaches the client."""
    start = time.perf_counter()
    try:
        response = await handler(request)
    except ApiError as e:
        response = error(e.status, e.message, **e.extra)
    except EvalFileError as e:
        response = error(422, e.sentence[:2000], **file_errors(e))
    except ClientGone:
        log.info("api: %s %s: the client closed the connection mid-body", request.method, request.path)
        response = error(400, "The connection closed before the body arrived.")
    except NotFound as e:
        response = error(404, e.sentence)
    except UserError as e:
        response = error(422, e.sentence)
    except web.HTTPRequestEntityTooLarge:
        response = error(413, "The body is larger than 1 MiB.")
    except web.HTTPMethodNotAllowed as e:
        allowed = ", ".join(sorted(e.allowed_methods))
        response = error(405, f"{request.method[:20]} is not allowed here; use {allowed}.", headers={"Allow": allowed})
    except web.HTTPException as e:
        text = {404: "No such route; GET /api/v1/openapi.json lists them."}
        response = error(e.status, text.get(e.status, e.reason or "Request refused."))
    except Exception:
        log.exception("api: %s %s failed", request.method, request.path)
        response = error(500, INTERNAL_ERROR)
    metrics = request.config_dict.get(METRICS_KEY)
    if metrics is not None:
        metrics.observe_command("api", request.path, _outcome_label(response.status), time.perf_counter() - start)
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = bearer(request.headers.get("Authorization"))
    if token is None:
        raise ApiError(401, "This API needs a token: send `Authorization: Bearer <token>` (`pilotbot token create`).")
    info = await asyncio.to_thread(request.app[TOKENS].verify, token)
    if info is None:
        raise ApiError(401, "The token is unknown or revoked; create one with `pilotbot token create <name>`.")
    if info.read_only and request.method not in READS:
        raise ApiError(403, f"The token `{info.name}` is read-only; writes need a token made without --read-only.")
    request[TOKEN_INFO] = info
    return await handler(request)


def _token(request: web.Request) -> TokenInfo:
    return request[TOKEN_INFO]


def _actor(request: web.Request) -> Actor:
    name = _token(request).name
    return Actor("api", name, name)


def _slug(request: web.Request) -> str:
    """The path's pilot, checked against the token's scope (403) before anything is read."""
    raw = request.match_info["slug"]
    slug = pl.slug_of(raw)
    info = _token(request)
    if info.pilot_slug is not None and slug != info.pilot_slug:
        raise ApiError(403, f"This token is scoped to `{info.pilot_slug}` and cannot access `{raw[:60]}`.")
    if slug is None:
        raise ApiError(404, f"No pilot `{raw[:60]}`.")
    return slug


async def _body_bytes(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "The body is larger than 1 MiB.")
    try:
        return await request.read()
    except (ClientConnectionResetError, ConnectionResetError) as e:
        raise ClientGone() from e


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json accepts NaN and Infinity; JSON does not


async def _json_object(request: web.Request) -> dict[str, Any]:
    raw = await _body_bytes(request)
    if not raw.strip():
        raise ApiError(400, "The body is empty; send a JSON object.")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return body


def _core(request: web.Request) -> Core:
    return request.app[CORE]


# ---- routes ----


API_STATES = ("at-risk", "ready", "production", "retired")
MAX_PAGE = 1_000_000


def _list_query(request: web.Request) -> tuple[str | None, str | None, int]:
    """?state=, ?owner= and ?page=, or a 400 saying how to write them."""
    q = request.query
    unknown = sorted(set(q) - {"state", "owner", "page"})
    if unknown:
        raise ApiError(400, f"Unknown query parameter `{unknown[0][:40]}`; use state, owner and page.")
    state = q.get("state")
    if state is not None and state not in API_STATES:
        raise ApiError(400, f"state must be one of {', '.join(API_STATES)}, e.g. ?state=at-risk.")
    owner = q.get("owner")
    if owner is not None and (":" not in owner or len(owner) > 200):
        raise ApiError(400, "owner is a platform and user id, e.g. ?owner=slack:U0123.")
    raw = q.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(400, "page must be a whole number from 1, e.g. ?page=2.")
    return state, owner, int(raw)


async def list_pilots(request: web.Request) -> web.Response:
    state, owner, page = _list_query(request)
    scope = _token(request).pilot_slug
    if scope is not None:  # one pilot's report, not the whole portfolio filtered down to it
        report = await asyncio.to_thread(_core(request).services.pilot_report, scope)
        return web.json_response(pl.portfolio_doc([PortfolioEntry(report.pilot, report.gaps)]))
    result = await lanes.portfolio(_core(request).services.portfolio_page, state, page, owner)
    return web.json_response(pl.portfolio_page_doc(result))


async def portfolio_trend(request: web.Request) -> web.Response:
    if _token(request).pilot_slug is not None:
        raise ApiError(403, "A token for one pilot cannot read the portfolio trend.")
    raw = request.query.get("weeks", "12")
    if not raw.isdigit() or not 1 <= int(raw) <= 104:
        raise ApiError(400, "weeks must be a whole number from 1 to 104, e.g. ?weeks=12.")
    weeks = await lanes.portfolio(_core(request).services.trend, int(raw))
    return web.json_response(pl.trend_doc(weeks))


async def get_pilot(request: web.Request) -> web.Response:
    slug = _slug(request)
    report = await asyncio.to_thread(_core(request).services.pilot_report, slug)
    return web.json_response(pl.report_doc(report))


async def post_eval(request: web.Request) -> web.Response:
    slug = _slug(request)
    await asyncio.to_thread(_core(request).services.require_pilot, slug)  # 404 before reading the body
    body = pl.eval_body(await _json_object(request))
    out = await asyncio.to_thread(
        _core(request).services.record_eval, _actor(request), slug, body.score, body.cases, body.version, Source.api
    )
    doc = {
        "pilot": slug,
        "score": body.score,
        "cases": body.cases,
        "version": body.version,
        "read_as_fraction": body.read_as_fraction,
        **pl.eval_outcome_doc(out),
    }
    return web.json_response(doc, status=201)


async def post_measurement(request: web.Request) -> web.Response:
    slug = _slug(request)
    await asyncio.to_thread(_core(request).services.require_pilot, slug)  # 404 before reading the body
    body = pl.measurement_body(await _json_object(request))
    out = await asyncio.to_thread(
        _core(request).services.record_measurement,
        _actor(request),
        slug,
        body.metric,
        body.value,
        body.unit,
        Source.api,
    )
    doc = {"pilot": slug, "metric": body.metric, "value": body.value, **pl.outcome_doc(out)}
    return web.json_response(doc, status=201)


async def post_eval_cases(request: web.Request) -> web.Response:
    slug = _slug(request)
    await asyncio.to_thread(_core(request).services.require_pilot, slug)  # 404 before reading the body
    fmt = format_of(content_type=request.headers.get("Content-Type", ""))
    if fmt is None:
        raise ApiError(
            415,
            "Send labelled cases as JSONL (Content-Type: application/x-ndjson), CSV (text/csv) "
            "or JUnit XML (application/xml).",
        )
    version = request.query.get("version", "").strip() or None
    if version is not None:
        version = pl.version_of(version)  # one length rule (bot/limits.py), 422 otherwise
    raw = await _body_bytes(request)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "The body is not UTF-8 text.") from None
    scored = await asyncio.to_thread(score_text, text, fmt)
    out = await asyncio.to_thread(
        _core(request).services.record_eval,
        _actor(request),
        slug,
        scored.score,
        scored.cases,
        version,
        Source.api,
        scored.field_accuracy,
        scored.results,
    )
    doc = {"pilot": slug, "version": version, **pl.scored_doc(scored), **pl.eval_outcome_doc(out)}
    return web.json_response(doc, status=201)


async def get_cases(request: web.Request) -> web.Response:
    slug = _slug(request)
    pilot, hist = await asyncio.to_thread(_core(request).services.cases, slug)
    return web.json_response(pl.cases_doc(pilot.slug, hist))


# ---- the lifecycle and corrections (SPEC §8) ----


async def _optional_object(request: web.Request) -> dict[str, Any]:
    """An optional JSON object body: empty means `{}` (a plain ship, a void without a reason)."""
    if request.content_length == 0 or not request.can_read_body:
        return {}
    return await _json_object(request)


def _metric(request: web.Request) -> str:
    raw = request.match_info["metric"]
    key = raw.lower()
    if not c.METRIC_RE.fullmatch(key):
        raise ApiError(404, f"No metric `{raw[:60]}`.")
    return key


async def post_ship(request: web.Request) -> web.Response:
    slug = _slug(request)
    await asyncio.to_thread(_core(request).services.require_pilot, slug)  # 404 before reading the body
    override = pl.text_field(await _optional_object(request), "override", ("override",))
    out = await asyncio.to_thread(_core(request).services.ship, _actor(request), slug, override)
    return web.json_response({"pilot": slug, "stage": out.pilot.stage if out.pilot else None, **pl.outcome_doc(out)})


async def _void(request: web.Request, what: str) -> web.Response:
    """`void` over REST: the latest eval run, a metric's latest measurement, or the metric itself."""
    slug = _slug(request)
    key = _metric(request) if what != "eval" else None
    services = _core(request).services
    await asyncio.to_thread(services.require_pilot, slug)  # 404 before reading the body
    reason = pl.text_field(await _optional_object(request), "reason", ("reason",))
    actor = _actor(request)
    if key is None:
        out = await asyncio.to_thread(services.void_eval, actor, slug, reason)
    else:
        use_case = services.void_measurement if what == "measure" else services.void_baseline
        out = await asyncio.to_thread(use_case, actor, slug, key, reason)
    return web.json_response({"pilot": slug, **({"metric": key} if key else {}), **pl.outcome_doc(out)})


async def post_void_eval(request: web.Request) -> web.Response:
    return await _void(request, "eval")


async def post_void_measurement(request: web.Request) -> web.Response:
    return await _void(request, "measure")


async def post_void_metric(request: web.Request) -> web.Response:
    return await _void(request, "baseline")


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def build_api_app(core: Core) -> web.Application:
    api = web.Application(client_max_size=MAX_BODY, middlewares=[errors_and_metrics, authenticate])
    api[CORE] = core
    api[TOKENS] = TokenService(core.engine, core.clock)
    api.router.add_get("/pilots", list_pilots)
    api.router.add_get("/pilots/{slug}", get_pilot)
    api.router.add_get("/portfolio/trend", portfolio_trend)
    api.router.add_post("/pilots/{slug}/evals", post_eval)
    api.router.add_post("/pilots/{slug}/evals/cases", post_eval_cases)
    api.router.add_post("/pilots/{slug}/measurements", post_measurement)
    api.router.add_get("/pilots/{slug}/cases", get_cases)
    api.router.add_post("/pilots/{slug}/ship", post_ship)
    api.router.add_post("/pilots/{slug}/evals/latest/void", post_void_eval)
    api.router.add_post("/pilots/{slug}/metrics/{metric}/measurements/latest/void", post_void_measurement)
    api.router.add_post("/pilots/{slug}/metrics/{metric}/void", post_void_metric)
    api.router.add_get("/openapi.json", openapi)
    return api


def mount(app: web.Application, core: Core) -> None:
    """Always mounted: the API needs nothing but the database (tokens live there)."""
    app.add_subapp(PREFIX, build_api_app(core))
    ofrep.mount(app, core)  # /ofrep/v1: the kill-switch flags (SPEC §9)
