from __future__ import annotations

import hashlib

import pytest
from sqlmodel import select

from bot.clock import FixedClock
from bot.core import Core
from bot.errors import UserError
from bot.tokens import TokenService, bearer
from storage.db import session_scope
from storage.models import ApiToken, AuditEvent
from tests.api.conftest import seed


def test_create_stores_only_a_hash_and_verifies(core: Core, clock: FixedClock) -> None:
    seed(core)
    svc = TokenService(core.engine, clock)
    secret, info = svc.create("ci-legal", "Legal-Intake")
    assert info.pilot_slug == "legal-intake" and len(secret) > 40
    with session_scope(core.engine) as s:
        row = s.exec(select(ApiToken)).one()
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in repr(row.model_dump())
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "token_create")).one()
        assert audit.after == {"token": "ci-legal", "pilot": "legal-intake", "read_only": False}
    got = svc.verify(secret)
    assert got is not None and got.name == "ci-legal" and got.may_access("legal-intake")
    assert not got.may_access("support-drafts")
    assert svc.verify(secret + "x") is None and svc.verify("") is None and svc.verify(None) is None


def test_revoke_is_immediate_and_list_shows_state(core: Core, clock: FixedClock) -> None:
    seed(core)
    svc = TokenService(core.engine, clock)
    a, _ = svc.create("a")
    b, _ = svc.create("b", "support-drafts")
    svc.revoke("a")
    assert svc.verify(a) is None and svc.verify(b) is not None
    listed = {t.name: t for t in svc.list()}
    assert not listed["a"].active and listed["b"].active and listed["b"].pilot_slug == "support-drafts"
    svc.revoke("a")  # idempotent


@pytest.mark.parametrize(
    ("name", "pilot", "fragment"),
    [("bad name", None, "not a valid token name"), ("x", "nope", "No pilot `nope`"), ("dup", None, "already exists")],
)
def test_refusals(core: Core, clock: FixedClock, name: str, pilot: str | None, fragment: str) -> None:
    seed(core)
    svc = TokenService(core.engine, clock)
    svc.create("dup")
    with pytest.raises(UserError, match=fragment):
        svc.create(name, pilot)


def test_revoke_unknown(core: Core, clock: FixedClock) -> None:
    with pytest.raises(UserError, match="No token named"):
        TokenService(core.engine, clock).revoke("ghost")


@pytest.mark.parametrize(
    ("header", "token"),
    [(None, None), ("", None), ("Bearer", None), ("Basic abc", None), ("Bearer abc", "abc"), ("bearer  abc ", "abc")],
)
def test_bearer(header: str | None, token: str | None) -> None:
    assert bearer(header) == token
