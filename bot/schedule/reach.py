"""Where the bot can reach someone proactively: stored conversation references.

Chat adapters (Teams) serialise their platform reference to a plain dict and save it under
keys such as `user:<id>` or `channel:<id>`; notifiers read it back. No platform SDK here. A
notifier that finds none raises `bot.ports.Unreachable`; the escalation channel is then told
(bot/schedule/plan.py `plan_owner_unreachable`, worded in messages.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from storage import repo
from storage.db import session_scope

log = logging.getLogger(__name__)


class ConversationRefs:
    """Save/refresh and look up serialised references; each call is one short unit of work."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def save(self, platform: str, refs: Iterable[tuple[str, dict[str, Any]]]) -> None:
        items = list(refs)
        if not items:
            return
        for attempt in (1, 2):
            try:
                with session_scope(self.engine) as s:
                    now = self.clock.now()
                    for key, reference in items:
                        repo.save_conversation_ref(s, platform, key, reference, now)
                    s.commit()
                return
            except IntegrityError:
                # Two requests inserted the same key at once; the second attempt updates it.
                if attempt == 2:
                    raise
                log.info("conversation reference raced on insert; retrying as an update")

    def get(self, platform: str, *keys: str) -> dict[str, Any] | None:
        """The first stored reference among `keys`, or None."""
        with session_scope(self.engine) as s:
            for key in keys:
                row = repo.conversation_ref(s, platform, key)
                if row is not None:
                    return dict(row.reference)
        return None
