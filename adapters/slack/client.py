"""The one place an AsyncWebClient is built: base URL from settings, retry handlers, and pacing.

Every Web API call the bot makes (commands, App Home, notifier, check-ins) goes through
`PacedWebClient.api_call`: it takes a slot from the workspace's `Pacer` (adapters/slack/pacing.py)
first, and a 429 is retried here, after the Pacer has held back every sender of that method for
the `Retry-After` (slack_sdk's own 429 handler would make only the caller that got it wait).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.pacing import CHANNEL_LIMITS, METHOD_LIMITS, Pacer, scaled_limits
from bot.config import Settings

RATE_LIMIT_RETRIES = 3  # each after the Retry-After, which holds every sender of the method back
SERVER_ERROR_RETRIES = 2  # 500/503, exponential backoff
CONNECTION_RETRIES = 2

log = logging.getLogger(__name__)


def retry_handlers(rate_limits: bool = True) -> list[AsyncRetryHandler]:
    """slack_sdk's handlers; `rate_limits=False` leaves 429s to PacedWebClient."""
    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.5)
    handlers: list[AsyncRetryHandler] = [
        AsyncServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES, interval_calculator=backoff),
        AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES, interval_calculator=backoff),
    ]
    if rate_limits:
        handlers.insert(0, AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES))
    return handlers


def retry_after(headers: Mapping[str, Any] | None) -> float:
    """Seconds from a 429's Retry-After (aiohttp headers or slack_sdk's lists of values); 1 s when
    it is missing or unreadable, as slack_sdk does."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                break
    return 1.0


def _channel_of(kwargs: Mapping[str, Any]) -> str | None:
    for part in ("json", "data", "params"):
        args = kwargs.get(part)
        if isinstance(args, Mapping) and args.get("channel"):
            return str(args["channel"])
    return None


class PacedWebClient(AsyncWebClient):
    """An AsyncWebClient whose every call waits for its slot in `pacer`, and whose 429s are
    retried (up to RATE_LIMIT_RETRIES) once the pacer's global hold for that method is over."""

    def __init__(self, *args: Any, pacer: Pacer | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("retry_handlers", retry_handlers(rate_limits=False))
        super().__init__(*args, **kwargs)
        self.pacer = pacer or Pacer()

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:  # type: ignore[override]
        channel = _channel_of(kwargs)
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            await self.pacer.acquire(api_method, channel)
            try:
                return await super().api_call(api_method, **kwargs)
            except SlackApiError as e:
                if e.response is None or e.response.status_code != 429 or attempt == RATE_LIMIT_RETRIES:
                    raise
                wait = retry_after(e.response.headers)
                log.info("slack: %s answered 429, every %s call waits %.1f s", api_method, api_method, wait)
                self.pacer.throttled(api_method, wait)
        raise AssertionError("unreachable")  # the loop returns or raises


# Slack's limits belong to the app's token in a workspace, not to one client object: the Bolt
# app's client and the scheduler's notifier client of one process share one Pacer. (Two replicas
# each pace to the full limit; the 429s they then get are still honoured.)
_PACERS: dict[tuple[str, str, float], Pacer] = {}


def workspace_pacer(settings: Settings) -> Pacer:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    key = (settings.slack_api_url, token, settings.slack_rate_limit_factor)
    pacer = _PACERS.get(key)
    if pacer is None:
        factor = settings.slack_rate_limit_factor
        pacer = _PACERS[key] = Pacer(scaled_limits(METHOD_LIMITS, factor), scaled_limits(CHANNEL_LIMITS, factor))
    return pacer


def make_slack_client(settings: Settings, timeout: int = 30, pacer: Pacer | None = None) -> PacedWebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return PacedWebClient(
        token=token, base_url=settings.slack_api_url, timeout=timeout, pacer=pacer or workspace_pacer(settings)
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
