"""Bot Framework tokens against a LOCAL OpenID metadata/JWKS server (threads, so a blocked event
loop cannot hide behind it): forged tokens are 401 with nothing executed, and a metadata server
that never answers stalls no other route."""

from __future__ import annotations

import asyncio
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from botframework.connector.auth import ChannelValidation
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr

from adapters.server import build_web_app
from adapters.teams import openid
from bot.config import Settings
from bot.core import Core, build_core
from tests.slack.conftest import SIGNING_SECRET, slack_settings
from tests.slack.fake_slack import FakeSlack
from tests.slack.payloads import sign, slash_body
from tests.teams import payloads as p
from tests.teams.fake_connector import FakeConnector

APP_ID = "00000000-0000-4000-8000-0000000000b0"
KID = "known-kid"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OpenIdServer:
    """/openid -> {"jwks_uri"}; /jwks -> the known public key; counts the metadata fetches."""

    def __init__(self) -> None:
        jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
        jwks = {"keys": [{**jwk, "kid": KID, "use": "sig", "endorsements": ["msteams"]}]}
        owner = self
        self.hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                owner.hits.append(self.path)
                body = {"/openid": {"jwks_uri": f"{owner.url}/jwks"}, "/jwks": jwks}.get(self.path)
                data = json.dumps(body).encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SilentServer:
    """Accepts connections and never answers (a dead network path); lets go after `hold` seconds."""

    def __init__(self, hold: float) -> None:
        self.accepted = threading.Event()
        self.connections = 0
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.connections += 1
                owner.accepted.set()
                time.sleep(hold)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/openid"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def openid_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenIdServer]:
    server = OpenIdServer()
    # The library's own switch for where channel tokens' keys come from (public cloud by default).
    monkeypatch.setattr(ChannelValidation, "open_id_metadata_endpoint", f"{server.url}/openid")
    yield server
    server.close()


def auth_settings(base: Settings) -> Settings:
    return base.model_copy(
        update={
            "microsoft_app_id": APP_ID,
            "microsoft_app_password": SecretStr("not-a-real-secret"),
            "microsoft_app_tenant_id": p.TENANT,
            "microsoft_app_type": "SingleTenant",
        }
    )


def claims(service_url: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "https://api.botframework.com",
        "aud": APP_ID,
        "serviceurl": service_url,
        "nbf": now - 60,
        "exp": now + 3600,
    }


def forged(how: str, service_url: str) -> str:
    body = claims(service_url)
    if how == "unknown key":  # well formed, the known kid, signed by someone else's key
        return jwt.encode(body, OTHER_KEY, algorithm="RS256", headers={"kid": KID})
    if how == "unknown kid":
        return jwt.encode(body, KEY, algorithm="RS256", headers={"kid": "made-up-kid"})
    if how == "alg none":
        return jwt.encode(body, None, algorithm="none")
    if how == "alg none with kid":
        return jwt.encode(body, None, algorithm="none", headers={"kid": KID})
    if how == "HS256":
        return jwt.encode(body, "a-guessed-shared-secret-of-32-bytes-or-more", algorithm="HS256", headers={"kid": KID})
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["unknown key", "unknown kid", "alg none", "alg none with kid", "HS256"])
async def test_a_forged_token_is_401_and_nothing_runs(
    how: str, core: Core, connector: FakeConnector, openid_server: OpenIdServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_web_app(build_core(auth_settings(core.settings), core.clock, core.engine, migrate=False))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        token = forged(how, connector.url)
        activity = p.personal(connector.url, "new forged-pilot Forged")
        resp = await asyncio.wait_for(
            c.post("/api/messages", json=activity, headers={"Authorization": f"Bearer {token}"}), 10
        )
        assert resp.status == 401
        assert await resp.json() == {"error": "missing or invalid Bot Framework token"}
    assert connector.calls == []
    assert core.services.portfolio() == []
    assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]


async def test_made_up_key_ids_do_not_refetch_the_keys(
    core: Core, connector: FakeConnector, openid_server: OpenIdServer
) -> None:
    app = build_web_app(build_core(auth_settings(core.settings), core.clock, core.engine, migrate=False))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        for _ in range(5):
            token = forged("unknown kid", connector.url)
            resp = await c.post(
                "/api/messages", json=p.personal(connector.url, "status"), headers={"Authorization": f"Bearer {token}"}
            )
            assert resp.status == 401
    assert openid_server.hits == ["/openid", "/jwks"]  # fetched once, cached


async def test_the_local_keys_verify_a_token_signed_with_them(openid_server: OpenIdServer) -> None:
    """The control for the refusals above: the key the server publishes is found and checks out."""
    keys = openid.SigningKeys(f"{openid_server.url}/openid")
    key = await keys.get(KID)
    assert key.endorsements == ["msteams"]
    token = jwt.encode(claims("https://smba.example/"), KEY, algorithm="RS256", headers={"kid": KID})
    assert jwt.decode(token, key.public_key, algorithms=["RS256"], audience=APP_ID)["aud"] == APP_ID
    with pytest.raises(PermissionError):
        await keys.get("made-up-kid")


async def test_a_metadata_server_that_never_answers_stalls_no_other_route(
    core: Core, connector: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    silent = SilentServer(hold=6)
    fake = await FakeSlack().start()
    monkeypatch.setattr(ChannelValidation, "open_id_metadata_endpoint", silent.url)
    monkeypatch.setattr(openid, "FETCH_TIMEOUT", 2.0)
    settings = auth_settings(slack_settings(core.settings.database_url, fake.api_url))
    app = build_web_app(build_core(settings, core.clock, core.engine, migrate=False))
    try:
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
            token = jwt.encode(claims(connector.url), KEY, algorithm="RS256", headers={"kid": KID})
            headers = {"Authorization": f"Bearer {token}"}
            teams = asyncio.ensure_future(
                c.post("/api/messages", json=p.personal(connector.url, "status"), headers=headers)
            )
            assert await asyncio.to_thread(silent.accepted.wait, 10)  # the key fetch hangs now

            health = await asyncio.wait_for(c.get("/healthz"), 10)
            assert health.status == 200
            body = slash_body("help", response_url=fake.response_url())
            slack_headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, SIGNING_SECRET)}
            slack = await asyncio.wait_for(c.post("/slack/events", data=body.encode(), headers=slack_headers), 10)
            assert slack.status == 200 and "pilotbot commands" in await slack.text()
            assert not teams.done()  # both answered while the Teams request still waits for the keys

            resp = await asyncio.wait_for(teams, 10)
            assert resp.status == 503  # the token was not judged: the keys could not be fetched
            again = await asyncio.wait_for(
                c.post("/api/messages", json=p.personal(connector.url, "status"), headers=headers), 10
            )
            assert again.status == 503
        assert silent.connections == 1  # after a failure the next request does not wait again
        assert connector.calls == []
    finally:
        await fake.stop()
        silent.close()
