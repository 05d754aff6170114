"""Signed Slack requests run once: the timestamp header is checked, and a replay is dropped.

Slack signs `v0:{timestamp}:{body}`, and Bolt's RequestVerification accepts a signature for five
minutes either side of its timestamp, so a copied request could be sent again and again inside
that window. `ReplayGuard` runs after Bolt has verified the signature (only genuine signatures are
remembered, so forged ones cannot flood it) and keeps each one until its window has passed.

Why memory and not the database: a Slack request is signed for one delivery to one URL, and a
replay needs a copy of a signed request (TLS to this server broken, or a logging proxy in the
path). Against that copy this guard limits each replica to one execution; with N replicas behind
one URL the worst case is N executions of a command the user was allowed to run anyway, inside
five minutes, every one of them audited. The duplicates that happen without an attacker (a proxy
or client retrying the same bytes) reach the same process and are caught here. A shared table
would add a database write to every Slack request for that remaining case, so the cache stays
per process, bounded by `size` (about 30 signed requests a second for the whole window).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

WINDOW = 5 * 60  # seconds either side of the timestamp, as slack_sdk's SignatureVerifier
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"


def timestamp_ok(value: str | None) -> bool:
    """A missing header is Bolt's to refuse (401); one that is not a whole number made its
    verifier raise (500 and a traceback), so it is refused here with the same 401."""
    return value is None or (value.isascii() and value.isdigit() and len(value) <= 12)


class ReplayGuard(AsyncMiddleware):
    """Bolt middleware: the first request with a given signature runs; later copies get an empty 200.

    An empty 200 rather than 401: the first copy already did the work, and Slack stops
    retrying an event once it sees a 2xx.
    """

    def __init__(self, size: int = 10_000, now: Callable[[], float] = time.time) -> None:
        self.size = size
        self.now = now
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature -> when it stops being valid

    def first_time(self, signature: str, timestamp: str) -> bool:
        now = self.now()
        # Arrival order is close to expiry order (timestamps are within the window when they
        # arrive), so pruning from the oldest end suffices; `size` bounds whatever is left.
        while self._seen and next(iter(self._seen.values())) < now:
            self._seen.popitem(last=False)
        if signature in self._seen:
            return False
        self._seen[signature] = int(timestamp) + WINDOW + 1
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        signature = req.headers.get(SIGNATURE_HEADER.lower(), [""])[0]
        timestamp = req.headers.get(TIMESTAMP_HEADER.lower(), [""])[0]
        if req.mode == "socket_mode" or not signature or not timestamp.isdigit():
            return await next()  # Socket Mode is not signed; unsigned HTTP never got past verification
        if self.first_time(signature, timestamp):
            return await next()
        log.info("slack: dropped a replayed request (timestamp %s)", timestamp)
        return BoltResponse(status=200, body="")
