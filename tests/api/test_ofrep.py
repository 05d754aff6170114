"""OFREP routes (adapters/api/ofrep.py) and the kill switch's rules (bot/flags.py), at the HTTP
boundary, every answer validated against the OFREP OpenAPI document (tests/api/ofrep_contract.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from adapters.api.ofrep import FLAGS, flusher
from bot.clock import FixedClock
from bot.errors import NotFound, UserError
from bot.flags import NEVER_READ, Flags
from bot.ports import Actor
from storage.db import session_scope
from storage.models import AuditEvent, Escalation, FlagRead, Pilot
from tests.api import ofrep_contract as contract
from tests.api.conftest import ANA, Api

ROOT = Actor("console", "root", "Root")  # an admin (PILOTBOT_ADMINS in the fixture)
BOB = Actor("console", "bob", "Bob")  # neither owner nor admin
ONE = "/ofrep/v1/evaluate/flags/{}"
BULK = "/ofrep/v1/evaluate/flags"


def flags_of(api: Api) -> Flags:
    return api.client.server.app[FLAGS]


async def evaluate(api: Api, key: str, token: str | None, body: Any = None, raw: bytes | None = None) -> Any:
    headers = api.auth(token) if token is not None else {}
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body if body is not None else {}}
    r = await api.client.post(ONE.format(key), headers=headers, **kwargs)
    doc = await r.json()
    contract.check(contract.SINGLE, r.status, doc)
    return r.status, doc


async def bulk(api: Api, token: str, etag: str | None = None) -> Any:
    headers = api.auth(token) | ({"If-None-Match": etag} if etag else {})
    r = await api.client.post(BULK, headers=headers, json={"context": {"targetingKey": "svc"}})
    doc = await r.json() if r.status != 304 else None
    contract.check(contract.BULK, r.status, doc, r.headers)
    return r.status, doc, r.headers.get("ETag")


def read_rows(api: Api) -> list[FlagRead]:
    with session_scope(api.core.engine) as s:
        return list(s.exec(select(FlagRead)))


async def test_flag_reads_true_then_false_after_kill_then_true_after_restore(api: Api) -> None:
    status, doc = await evaluate(api, "legal-intake", api.admin)
    assert status == 200
    assert (doc["key"], doc["value"], doc["reason"], doc["variant"]) == ("legal-intake", True, "STATIC", "on")

    flags = flags_of(api)
    flags.kill(ANA, "legal-intake", "quoted wrong refund amounts")
    status, doc = await evaluate(api, "legal-intake", api.admin)
    assert (doc["value"], doc["reason"], doc["variant"]) == (False, "DISABLED", "off")
    assert doc["metadata"]["reason"] == "quoted wrong refund amounts"
    assert doc["metadata"]["changedBy"] == "console:ana"
    assert all(isinstance(v, str | int | float | bool) for v in doc["metadata"].values())

    flags.restore(ANA, "legal-intake")
    status, doc = await evaluate(api, "legal-intake", api.admin)
    assert (doc["value"], doc["reason"], doc["variant"]) == (True, "STATIC", "on")


@pytest.mark.parametrize("body", [None, {}, {"context": {}}, {"context": {"targetingKey": "u1", "plan": "pro"}}])
async def test_any_evaluation_context_shape_is_accepted(api: Api, body: Any) -> None:
    if body is None:
        r = await api.client.post(ONE.format("support-drafts"), headers=api.auth(api.admin))
        status, doc = r.status, await r.json()
        contract.check(contract.SINGLE, status, doc)
    else:
        status, doc = await evaluate(api, "support-drafts", api.admin, body)
    assert status == 200 and doc["value"] is True


async def test_unknown_key_is_flag_not_found(api: Api) -> None:
    status, doc = await evaluate(api, "legal-intak", api.admin)
    assert status == 404
    assert doc["errorCode"] == "FLAG_NOT_FOUND" and doc["key"] == "legal-intak"
    assert "legal-intak" in doc["errorDetails"]


async def test_tokens_401_and_403(api: Api) -> None:
    status, doc = await evaluate(api, "legal-intake", None)
    assert status == 401 and "Bearer" in doc["errorDetails"]
    status, doc = await evaluate(api, "legal-intake", "pb_not-a-token")
    assert status == 401
    status, doc = await evaluate(api, "support-drafts", api.legal)  # scoped to legal-intake
    assert status == 403 and "legal-intake" in doc["errorDetails"]
    status, doc = await evaluate(api, "no-such-pilot", api.legal)  # scope first: no existence leak
    assert status == 403
    status, doc = await evaluate(api, "legal-intake", api.legal)
    assert status == 200
    api.tokens.revoke("ci-legal")
    status, _ = await evaluate(api, "legal-intake", api.legal)
    assert status == 401
    r = await api.client.post(BULK, headers=api.auth("pb_wrong"))
    assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")


async def test_bad_bodies_are_400_with_an_ofrep_error_code(api: Api) -> None:
    status, doc = await evaluate(api, "legal-intake", api.admin, raw=b"{not json")
    assert status == 400 and doc["errorCode"] == "PARSE_ERROR"
    status, doc = await evaluate(api, "legal-intake", api.admin, raw=b"[1]")
    assert status == 400 and doc["errorCode"] == "PARSE_ERROR"
    status, doc = await evaluate(api, "legal-intake", api.admin, {"context": "user-1"})
    assert status == 400 and doc["errorCode"] == "INVALID_CONTEXT"
    r = await api.client.post(BULK, headers=api.auth(api.admin), data=b"\xff")
    doc = await r.json()
    assert r.status == 400 and doc["errorCode"] == "PARSE_ERROR"
    contract.check(contract.BULK, r.status, doc)
    assert read_rows(api) == [] and len(flags_of(api).reads) == 0  # a refused read is no evidence


async def test_wrong_method_is_json_not_a_traceback(api: Api) -> None:
    r = await api.client.get(ONE.format("legal-intake"), headers=api.auth(api.admin))
    assert r.status == 405 and "POST" in (await r.json())["errorDetails"]


async def test_bulk_etag_304_until_something_changes(api: Api) -> None:
    status, doc, etag = await bulk(api, api.admin)
    assert status == 200 and etag
    assert [f["key"] for f in doc["flags"]] == ["legal-intake", "support-drafts"]
    assert (await bulk(api, api.admin, etag))[0] == 304
    assert (await bulk(api, api.admin, f'W/{etag}, "other"'))[0] == 304

    flags_of(api).kill(ANA, "support-drafts", "drafts leak ticket ids")
    status, doc, etag2 = await bulk(api, api.admin, etag)
    assert status == 200 and etag2 != etag
    assert {f["key"]: f["value"] for f in doc["flags"]} == {"legal-intake": True, "support-drafts": False}
    assert (await bulk(api, api.admin, etag2))[0] == 304

    api.core.router.handle("new doc-summaries Document summaries", ANA)  # a new pilot is a new flag
    status, doc, etag3 = await bulk(api, api.admin, etag2)
    assert status == 200 and etag3 not in (etag, etag2) and len(doc["flags"]) == 3

    flags_of(api).restore(ANA, "support-drafts")
    status, _, etag4 = await bulk(api, api.admin, etag3)
    assert status == 200 and etag4 != etag3


async def test_bulk_of_a_scoped_token_is_its_pilot_only(api: Api) -> None:
    status, doc, etag = await bulk(api, api.legal)
    assert status == 200 and [f["key"] for f in doc["flags"]] == ["legal-intake"]
    _, _, all_etag = await bulk(api, api.admin)
    assert etag != all_etag
    flags_of(api).kill(ROOT, "support-drafts", "not the scoped pilot")
    assert (await bulk(api, api.legal, etag))[0] == 304  # another pilot's flip is not its change


async def test_retired_pilot_reads_false(api: Api) -> None:
    with session_scope(api.core.engine) as s:
        s.execute(sa.update(Pilot).where(Pilot.slug == "legal-intake").values(stage="retired"))  # type: ignore[arg-type]
        s.commit()
    status, doc = await evaluate(api, "legal-intake", api.admin)
    assert (doc["value"], doc["reason"], doc["metadata"]["reason"]) == (False, "DISABLED", "retired")
    with pytest.raises(UserError, match="retired"):
        flags_of(api).restore(ROOT, "legal-intake")


def test_kill_is_for_the_owner_or_an_admin_and_audited(api: Api) -> None:
    flags = flags_of(api)
    with pytest.raises(UserError, match=r"owner of `legal-intake` \(@ana\) or an admin"):
        flags.kill(BOB, "legal-intake", "I think it is wrong")
    with pytest.raises(UserError, match="Say why"):
        flags.kill(ANA, "legal-intake", "   ")
    with pytest.raises(NotFound, match="did you mean `legal-intake`"):
        flags.kill(ANA, "legal-intak", "typo")
    with session_scope(api.core.engine) as s:
        pilot = s.exec(select(Pilot).where(Pilot.slug == "legal-intake")).one()
        assert pilot.flag_on and pilot.flag_version == 0  # nothing written by a refusal
        assert not list(s.exec(select(AuditEvent).where(AuditEvent.action.in_(["kill", "restore"]))))  # type: ignore[attr-defined]

    out = flags.kill(ROOT, "legal-intake", "misses must-not-miss fields")
    assert not out.on and "misses must-not-miss fields" in out.text
    with pytest.raises(UserError, match="already off"):
        flags.kill(ANA, "legal-intake", "again")
    with pytest.raises(UserError, match=r"owner of `legal-intake` \(@ana\) or an admin can change it"):
        flags.restore(BOB, "legal-intake")
    flags.restore(ANA, "legal-intake")
    with pytest.raises(UserError, match="already on"):
        flags.restore(ANA, "legal-intake")
    with session_scope(api.core.engine) as s:
        events = list(s.exec(select(AuditEvent).where(AuditEvent.action.in_(["kill", "restore"]))))  # type: ignore[attr-defined]
        assert [(e.actor, e.action) for e in events] == [("console:root", "kill"), ("console:ana", "restore")]
        assert events[0].after == {"flag_on": False, "reason": "misses must-not-miss fields"}
        pilot = s.exec(select(Pilot).where(Pilot.slug == "legal-intake")).one()
        assert pilot.flag_on and pilot.flag_version == 2 and pilot.flag_changed_by == "console:ana"
        notices = list(s.exec(select(Escalation).order_by(Escalation.id)))  # type: ignore[arg-type]
        assert [(n.kind, n.dedupe_key) for n in notices] == [
            ("flag_killed", f"flag:{pilot.id}:1"),
            ("flag_restored", f"flag:{pilot.id}:2"),
        ]  # one per flip, in the flip's own transaction; none for the refused ones
        assert notices[0].facts is not None and notices[0].facts["actor_id"] == "root"
        assert notices[0].facts["reason"] == "misses must-not-miss fields"


async def test_kill_says_when_production_last_read_the_flag(api: Api, clock: FixedClock) -> None:
    flags = flags_of(api)
    out = flags.kill(ANA, "support-drafts", "first kill")
    assert out.last_read == NEVER_READ
    flags.restore(ANA, "support-drafts")

    await evaluate(api, "support-drafts", api.admin)  # read; not yet flushed
    clock.advance(timedelta(seconds=40))
    assert flags.kill(ANA, "support-drafts", "second").last_read == "last read 40 s ago by token `ci-all`"
    flags.restore(ANA, "support-drafts")

    flags.flush_reads()
    clock.advance(timedelta(days=2))
    line = flags.kill(ANA, "support-drafts", "third").last_read
    assert line.startswith("last read 2 days ago by token `ci-all`") and "24 h" in line


async def test_reads_are_coalesced_in_memory_and_flushed_as_one_row_per_token_and_pilot(
    api: Api, clock: FixedClock
) -> None:
    flags = flags_of(api)
    for _ in range(25):
        await evaluate(api, "legal-intake", api.admin)
        await evaluate(api, "legal-intake", api.legal)
        clock.advance(timedelta(seconds=1))
    await bulk(api, api.admin)
    assert read_rows(api) == []  # reads wrote nothing
    assert len(flags.reads) == 3  # (ci-all, legal), (ci-legal, legal), (ci-all, bulk)
    assert flags.flush_reads() > 0
    rows = {(r.token_name, r.pilot_id): r.read_at for r in read_rows(api)}
    assert len(rows) == 3 and flags.flush_reads() == 0  # nothing pending: no statement at all

    clock.advance(timedelta(minutes=2))
    await evaluate(api, "legal-intake", api.admin)
    flags.flush_reads()
    after = {(r.token_name, r.pilot_id): r.read_at for r in read_rows(api)}
    assert len(after) == 3 and max(after.values()) == clock.now()


async def test_wiring_line_for_the_path_item(api: Api, clock: FixedClock) -> None:
    flags = flags_of(api)

    def wiring() -> str | None:  # read as `status <slug>` reads it: beside the report, one connection
        return flags.services.pilot_report_and("support-drafts", flags.wiring_on)[1]

    assert wiring() == "not wired"
    await bulk(api, api.admin)  # an unscoped bulk read covers every pilot
    flags.flush_reads()
    clock.advance(timedelta(minutes=2))
    assert wiring() == "wired: read by `ci-all` 2 min ago"
    clock.advance(timedelta(hours=25))
    assert wiring() == "not wired"


async def test_the_server_flushes_reads_on_shutdown(api: Api) -> None:
    flags = flags_of(api)
    ctx = flusher(flags, 3600)(api.client.server.app)
    await ctx.__anext__()
    await evaluate(api, "legal-intake", api.admin)
    with pytest.raises(StopAsyncIteration):
        await ctx.__anext__()
    assert [r.token_name for r in read_rows(api)] == ["ci-all"]


async def test_flush_and_etag_on_every_database(api_any_db: Api, clock: FixedClock) -> None:
    api = api_any_db
    flags = flags_of(api)
    _, _, etag = await bulk(api, api.admin)
    await evaluate(api, "legal-intake", api.legal)
    flags.flush_reads()
    clock.advance(timedelta(seconds=5))
    await bulk(api, api.admin, etag)
    await evaluate(api, "legal-intake", api.legal)
    flags.flush_reads()
    assert sorted((r.token_name, r.pilot_id is None, r.read_at) for r in read_rows(api)) == [
        ("ci-all", True, clock.now()),
        ("ci-legal", False, clock.now()),
    ]
    flags.kill(ANA, "legal-intake", "stop")
    assert (await bulk(api, api.admin, etag))[0] == 200


def test_the_correction_to_the_ofrep_document_is_still_needed() -> None:
    """If the OFREP document fixes codeDefaultFlag, this fails: drop the correction in ofrep_contract."""
    answer = {"key": "k", "value": True, "reason": "STATIC", "variant": "on", "metadata": {"reason": "x"}}
    raw = contract.component_errors("serverEvaluationSuccess", answer, contract.raw_document())
    assert raw and "valid under each of" in raw[0]
    assert contract.component_errors("serverEvaluationSuccess", answer) == []
    assert contract.component_errors("serverEvaluationSuccess", {**answer, "value": "true"}) == []  # stringFlag
    assert contract.component_errors("serverEvaluationSuccess", {**answer, "metadata": {"a": [1]}}) != []


async def test_reads_check_the_token_every_time_and_touch_it_once_a_minute(api: Api, clock: FixedClock) -> None:
    def last_used() -> object:
        return next(t.last_used_at for t in api.tokens.list() if t.name == "ci-all")

    await evaluate(api, "legal-intake", api.admin)
    first = last_used()
    assert first == clock.now()
    clock.advance(timedelta(seconds=30))
    await evaluate(api, "legal-intake", api.admin)
    assert last_used() == first  # no write within the minute
    clock.advance(timedelta(seconds=31))
    await evaluate(api, "legal-intake", api.admin)
    assert last_used() == clock.now()
    api.tokens.revoke("ci-all")
    assert (await evaluate(api, "legal-intake", api.admin))[0] == 401  # effective at once, no cache
