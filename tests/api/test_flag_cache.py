"""The OFREP routes answer polls from memory (bot/flag_cache.py) and are never stale for a change made
in this process, and at most FRESH_FOR for one made elsewhere (a CLI, another replica)."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.api.ofrep import FLAGS
from bot.flag_cache import FlagCache
from bot.flags import Flags
from storage import flags as store
from storage.models import Pilot
from tests.api import ofrep_contract as contract
from tests.api.conftest import ANA, Api

ONE = "/ofrep/v1/evaluate/flags/{}"
BULK = "/ofrep/v1/evaluate/flags"


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cu, sql, *_: seen.append(sql))
    return seen


async def value(api: Api, key: str, token: str) -> tuple[int, object]:
    r = await api.client.post(ONE.format(key), headers=api.auth(token), json={})
    doc = await r.json()
    contract.check(contract.SINGLE, r.status, doc)
    return r.status, doc.get("value")


async def warm(api: Api, key: str, token: str) -> None:
    """The first poll touches the token's last_used_at (a write, which drops the cache); the next
    ones fill it."""
    for _ in range(3):
        assert await value(api, key, token) == (200, True)


def flags_of(api: Api, ticks: Ticks) -> Flags:
    flags = api.client.server.app[FLAGS]
    flags.cache = FlagCache(monotonic=ticks)
    return flags


async def test_a_warm_poll_reads_nothing_from_the_database(api: Api) -> None:
    flags_of(api, Ticks())
    await warm(api, "legal-intake", api.admin)
    r = await api.client.post(BULK, headers=api.auth(api.admin), json={})  # renders the bulk body once
    seen = statements(api.core.engine)
    for _ in range(5):
        assert await value(api, "legal-intake", api.admin) == (200, True)
    r = await api.client.post(BULK, headers=api.auth(api.admin), json={})
    etag = r.headers["ETag"]
    r = await api.client.post(BULK, headers=api.auth(api.admin) | {"If-None-Match": etag}, json={})
    assert r.status == 304
    assert seen == []


async def test_a_kill_in_this_process_is_served_at_once(api: Api) -> None:
    ticks = Ticks()
    flags = flags_of(api, ticks)
    assert await value(api, "legal-intake", api.admin) == (200, True)
    flags.kill(ANA, "legal-intake", "quoted wrong refund amounts")
    assert await value(api, "legal-intake", api.admin) == (200, False)  # no time has passed
    api.core.router.handle("restore legal-intake", ANA)
    assert await value(api, "legal-intake", api.admin) == (200, True)


async def test_a_revocation_in_this_process_refuses_the_next_poll(api: Api) -> None:
    flags_of(api, Ticks())
    assert await value(api, "legal-intake", api.legal) == (200, True)
    api.tokens.revoke("ci-legal")
    assert (await value(api, "legal-intake", api.legal))[0] == 401


async def test_a_change_made_elsewhere_is_served_within_fresh_for(api: Api) -> None:
    """A flip written by another process (here: plain SQL, which no session hook sees)."""
    ticks = Ticks()
    flags_of(api, ticks)
    await warm(api, "legal-intake", api.admin)
    pilot: sa.Table = Pilot.__table__  # type: ignore[attr-defined]
    with api.core.engine.begin() as conn:
        gen = store.bump_generation(conn)
        conn.execute(pilot.update().where(pilot.c.slug == "legal-intake").values(flag_on=False, flag_version=gen))
    assert await value(api, "legal-intake", api.admin) == (200, True)  # still inside FRESH_FOR
    ticks.t += 1.01
    assert await value(api, "legal-intake", api.admin) == (200, False)


async def test_a_token_revoked_elsewhere_stops_within_fresh_for(api: Api) -> None:
    ticks = Ticks()
    flags_of(api, ticks)
    assert await value(api, "legal-intake", api.legal) == (200, True)
    token: sa.Table = sa.Table("api_token", sa.MetaData(), autoload_with=api.core.engine)
    with api.core.engine.begin() as conn:
        conn.execute(token.update().where(token.c.name == "ci-legal").values(revoked_at=sa.func.now()))
    ticks.t += 1.01
    assert (await value(api, "legal-intake", api.legal))[0] == 401


def test_a_row_read_before_a_refresh_is_not_kept_after_it(api: Api) -> None:
    ticks = Ticks()
    cache = FlagCache(monotonic=ticks)
    with api.core.engine.connect() as conn:
        cache.refresh(conn)
        seen = cache.marks
        old = store.flag_row(conn, "legal-intake")
    assert old is not None
    with api.core.engine.begin() as conn:
        store.bump_generation(conn)
    ticks.t += 2
    with api.core.engine.connect() as conn:
        cache.refresh(conn)  # the marks moved: the dicts were dropped
    cache.keep_flag(old, seen)  # a slow reader coming back with the row it read before
    assert cache.flag("legal-intake") is None
