"""The real OpenFeature clients against the running server, as a production system reads its kill switch.

`openfeature-sdk` with `openfeature-provider-ofrep` (HTTP via requests) talks to the whole web app
on a real TCP port; the SDK is synchronous, so each evaluation runs in a worker thread while the
server answers on the test's event loop. The kill and restore go through bot/flags.py (the chat
commands call the same use cases). The bulk route is read with a plain HTTP client, the way the
client-side providers poll it, since the Python provider is a server-side one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from openfeature import api as openfeature
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason

from adapters.api.ofrep import FLAGS
from bot.flags import Flags
from tests.api import ofrep_contract as contract
from tests.api.conftest import ANA, Api


@pytest.fixture
def domains() -> Iterator[list[str]]:
    used: list[str] = []
    yield used
    openfeature.shutdown()  # every provider this test set up; the API is process-global


def sdk_client(api: Api, token: str, domains: list[str]) -> OpenFeatureClient:
    domain = f"pilotbot-{uuid.uuid4().hex[:8]}"
    domains.append(domain)
    base = str(api.client.make_url("/"))
    provider = OFREPProvider(base, headers_factory=lambda: {"Authorization": f"Bearer {token}"}, timeout=10)
    openfeature.set_provider(provider, domain=domain)
    return openfeature.get_client(domain)


async def read(client: OpenFeatureClient, key: str, default: bool = True) -> FlagEvaluationDetails[bool]:
    return await asyncio.to_thread(client.get_boolean_details, key, default)


async def test_production_reads_the_kill_switch_through_the_openfeature_sdk(api: Api, domains: list[str]) -> None:
    prod = sdk_client(api, api.admin, domains)
    flags: Flags = api.client.server.app[FLAGS]

    on = await read(prod, "legal-intake", default=False)
    assert (on.value, on.reason, on.variant, on.error_code) == (True, Reason.STATIC, "on", None)

    out = flags.kill(ANA, "legal-intake", "misses must-not-miss fields")
    assert out.last_read.startswith("last read 0 s ago by token `ci-all`")
    off = await read(prod, "legal-intake", default=True)
    assert (off.value, off.reason, off.variant, off.error_code) == (False, Reason.DISABLED, "off", None)
    assert off.flag_metadata["reason"] == "misses must-not-miss fields"
    assert off.flag_metadata["changedBy"] == "console:ana"

    flags.restore(ANA, "legal-intake")
    again = await read(prod, "legal-intake", default=False)
    assert (again.value, again.reason, again.error_code) == (True, Reason.STATIC, None)

    missing = await read(prod, "legal-intak", default=True)
    assert missing.error_code == ErrorCode.FLAG_NOT_FOUND and missing.value is True  # the code default
    assert "legal-intak" in (missing.error_message or "")

    wrong = sdk_client(api, "pb_wrong-token", domains)
    denied = await read(wrong, "legal-intake", default=True)
    assert denied.error_code == ErrorCode.GENERAL and denied.error_message == "unauthorized"
    assert denied.value is True and denied.reason == Reason.ERROR

    scoped = sdk_client(api, api.legal, domains)
    forbidden = await read(scoped, "support-drafts", default=True)
    assert forbidden.error_code == ErrorCode.GENERAL and forbidden.error_message == "forbidden"
    assert (await read(scoped, "legal-intake", default=False)).value is True


async def test_bulk_polling_answers_304_until_a_flag_changes(api: Api) -> None:
    flags: Flags = api.client.server.app[FLAGS]
    url, headers = "/ofrep/v1/evaluate/flags", api.auth(api.admin)
    first = await api.client.post(url, headers=headers, json={"context": {"targetingKey": "svc-1"}})
    body = await first.json()
    contract.check(contract.BULK, first.status, body, first.headers)
    etag = first.headers["ETag"]
    for _ in range(3):
        r = await api.client.post(url, headers=headers | {"If-None-Match": etag}, json={})
        assert r.status == 304 and r.headers["ETag"] == etag and await r.read() == b""
    flags.kill(ANA, "support-drafts", "leaks ticket ids")
    changed = await api.client.post(url, headers=headers | {"If-None-Match": etag}, json={})
    doc = await changed.json()
    contract.check(contract.BULK, changed.status, doc, changed.headers)
    assert changed.status == 200 and changed.headers["ETag"] != etag
    off = next(f for f in doc["flags"] if f["key"] == "support-drafts")
    assert (off["value"], off["metadata"]["reason"]) == (False, "leaks ticket ids")
