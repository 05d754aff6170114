"""Bot Framework signing keys, fetched without blocking the event loop, and strict token checks.

botframework-connector's `JwtTokenExtractor` asks `_OpenIdMetadata` for the key that signed a
token; that class fetches the OpenID metadata and the JWKS with `requests.get` and no timeout, on
the thread that validates the token, which is the event loop. A network that accepts the
connection and never answers therefore stalls every route of the server, the scheduler included.
`install()` replaces the extractor's metadata factory with `SigningKeys`: aiohttp with a total
timeout, one fetch in flight, keys cached for a day, a refresh for an unknown key id at most every
`UNKNOWN_KID_REFRESH` seconds, and a short pause after a failure so a dead network answers fast.

The library also fails unknown key ids, `alg: none` and HS256 tokens with IndexError,
AttributeError or a bare Exception (a 500); `StrictAuthentication` turns every validation
failure into the PermissionError that CloudAdapter answers with 401. `KeysUnavailable` (the keys
could not be fetched at all) stays distinct: the route answers 503, the token was not judged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botframework.connector.auth import JwtTokenExtractor
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 5.0  # seconds for metadata + JWKS together
MAX_AGE = 24 * 3600  # the library's own refresh interval
UNKNOWN_KID_REFRESH = 300  # Microsoft rolls keys rarely; a flood of made-up kids must not hammer it
FAILURE_PAUSE = 15.0  # after a failed fetch, answer 503 at once instead of waiting again


class KeysUnavailable(Exception):
    """The signing keys could not be fetched: the token cannot be judged right now."""


@dataclass(frozen=True)
class SigningKey:
    """What `JwtTokenExtractor._validate_token` reads from the metadata object's answer."""

    public_key: Any
    endorsements: list[str]


class SigningKeys:
    """The keys behind one OpenID metadata URL (the extractor's `open_id_metadata`)."""

    def __init__(self, url: str, timeout: float | None = None, now: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.timeout = FETCH_TIMEOUT if timeout is None else timeout
        self.now = now
        self.keys: dict[str, dict[str, Any]] = {}
        self.fetched_at: float | None = None
        self.failed_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None

    async def get(self, key_id: str | None) -> SigningKey:
        if not key_id or not isinstance(key_id, str):
            raise PermissionError("the token names no signing key")
        now = self.now()
        if self.fetched_at is None or now - self.fetched_at > MAX_AGE:
            await self.refresh(required=not self.keys)
        elif key_id not in self.keys and now - self.fetched_at > UNKNOWN_KID_REFRESH:
            await self.refresh(required=False)
        jwk = self.keys.get(key_id)
        if jwk is None:
            raise PermissionError("the token was signed with an unknown key")
        try:
            public_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        except (InvalidKeyError, ValueError, TypeError, KeyError) as e:
            raise PermissionError(f"the signing key {key_id[:40]} is not an RSA key") from e
        endorsements = jwk.get("endorsements")
        return SigningKey(public_key, list(endorsements) if isinstance(endorsements, list) else [])

    async def refresh(self, required: bool) -> None:
        """One fetch at a time; with keys in hand a failure keeps them, without it is KeysUnavailable."""
        if self.failed_at is not None and self.now() - self.failed_at < FAILURE_PAUSE:
            if required:
                raise KeysUnavailable(f"the signing keys at {self.url} could not be fetched a moment ago")
            return
        loop = asyncio.get_running_loop()
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._inflight = loop.create_task(self._fetch())
        try:
            await asyncio.shield(task)
        except KeysUnavailable:
            if required:
                raise

    async def _fetch(self) -> None:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                metadata = await _json(session, self.url)
                keys = (await _json(session, str(metadata["jwks_uri"])))["keys"]
            self.keys = {k["kid"]: k for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str)}
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as e:
            self.failed_at = self.now()
            log.warning("teams: could not fetch the signing keys from %s: %s", self.url, str(e)[:200] or type(e))
            raise KeysUnavailable(f"the signing keys at {self.url} could not be fetched") from e
        self.fetched_at, self.failed_at = self.now(), None


async def _json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        resp.raise_for_status()
        return await resp.json(content_type=None)


_KEYS: dict[str, SigningKeys] = {}


def signing_keys(metadata_url: str) -> SigningKeys:
    """Replaces `JwtTokenExtractor.get_open_id_metadata`: one `SigningKeys` per URL, per process."""
    keys = _KEYS.get(metadata_url)
    if keys is None:
        keys = _KEYS.setdefault(metadata_url, SigningKeys(metadata_url))
    return keys


def install() -> None:
    """Routes every token check of botframework-connector (channel, emulator, skills, government,
    enterprise) through `signing_keys`; idempotent."""
    JwtTokenExtractor.get_open_id_metadata = staticmethod(signing_keys)  # type: ignore[method-assign]


class StrictAuthentication(ConfigurationBotFrameworkAuthentication):
    """Any failure to validate a token is a PermissionError (401), never a 500 with a traceback."""

    async def authenticate_request(self, activity: Any, auth_header: str) -> Any:
        try:
            return await super().authenticate_request(activity, auth_header)
        except (PermissionError, KeysUnavailable):
            raise
        except Exception as e:
            raise PermissionError(f"invalid Bot Framework token: {type(e).__name__}") from e

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str) -> Any:
        try:
            return await super().authenticate_streaming_request(auth_header, channel_id_header)
        except (PermissionError, KeysUnavailable):
            raise
        except Exception as e:
            raise PermissionError(f"invalid Bot Framework token: {type(e).__name__}") from e
