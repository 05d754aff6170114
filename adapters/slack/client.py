"""The one place an AsyncWebClient is built: base URL from settings, and retry handlers."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.config import Settings

RATE_LIMIT_RETRIES = 3  # each waits Retry-After (+ <1 s jitter, slack_sdk's own)
SERVER_ERROR_RETRIES = 2  # 500/503, exponential backoff
CONNECTION_RETRIES = 2

log = logging.getLogger(__name__)


def retry_handlers() -> list[AsyncRetryHandler]:
    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.5)
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        AsyncServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES, interval_calculator=backoff),
        AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES, interval_calculator=backoff),
    ]


def make_slack_client(settings: Settings, timeout: int = 30) -> AsyncWebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token, base_url=settings.slack_api_url, timeout=timeout, retry_handlers=retry_handlers()
    )


class ResponseUrls:
    """Posts to interaction response_urls over one shared aiohttp session (Bolt's `respond` opens a
    new session, hence a new connection, per call), with the same retry handlers."""

    def __init__(self, timeout: int = 30) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def send(self, url: str, **kwargs: Any) -> int:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        client = AsyncWebhookClient(url, timeout=self.timeout, session=self._session, retry_handlers=retry_handlers())
        resp = await client.send(**kwargs)
        if resp.status_code != 200:
            log.warning("response_url answered %s: %s", resp.status_code, resp.body[:200])
        return resp.status_code

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
