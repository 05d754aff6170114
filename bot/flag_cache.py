"""What the OFREP hot path answers from memory: flag rows and API tokens as last read, trusted for
`FRESH_FOR` of monotonic time.

Production polls a flag far more often than anyone changes one. Reading two rows per poll made each
evaluation a worker-thread hop plus two statements, a fifth of what the bare aiohttp handler serves
(bench/flags.py). Here a poll is answered on the event loop from dicts, and the database is asked
at most once per `FRESH_FOR` whether anything moved (`storage.flags.change_marks`: the flip
generation, the newest pilot id and the tokens' count/revocations, one statement). Any movement
drops everything it may cover; the next poll of each key reads its row again.

How stale an answer can be:
- a pilot or token written in this process (a flip, a stage, a new pilot, a revocation): not at all;
  a flush that wrote one arranges for its commit to bump `LOCAL`, and every cache treats itself as
  stale (`note_local_change`);
- the same made by another process (a CLI, another replica), or a token revoked by `pilotbot token
  revoke`: at most `FRESH_FOR`. Against an SDK that itself polls every few seconds, that is noise.
Unknown keys and unknown tokens are never cached (each such request reads the database), so a
caller cannot fill memory with misses.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage import flags as store
from storage.flags import ChangeMarks, FlagRow, TokenRow
from storage.models import ApiToken, Pilot

FRESH_FOR = 1.0  # seconds; see the module docstring for what it bounds

_local = itertools.count(1)
LOCAL = [0]  # bumped after every commit in this process that moved a flag, a stage or a token


def _bump(_session: Session) -> None:
    LOCAL[0] = next(_local)


def note_local_change(session: Session) -> None:
    """Call inside a transaction that moves a flag, a stage or a token: once it commits, every
    FlagCache of this process re-reads before answering."""
    sa.event.listen(session, "after_commit", _bump, once=True)


def bump_local() -> None:
    """For writes outside an ORM session (they commit before this is called)."""
    LOCAL[0] = next(_local)


def _after_flush(session: Session, _context: object) -> None:
    # Any pilot or token written by any session of this process (a new pilot is a new flag, a
    # stage is in the metadata, a revoked token must stop working): cheaper to over-invalidate
    # than to list every column that matters.
    for obj in itertools.chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, Pilot | ApiToken):
            note_local_change(session)
            return


sa.event.listen(Session, "after_flush", _after_flush)


class FlagCache:
    def __init__(self, fresh_for: float = FRESH_FOR, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.fresh_for = fresh_for
        self._now = monotonic
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._local_seen = -1
        self.marks: ChangeMarks | None = None
        self._flags: dict[str, FlagRow] = {}
        self._tokens: dict[str, TokenRow] = {}

    def fresh(self) -> bool:
        return self._local_seen == LOCAL[0] and self._now() - self._checked < self.fresh_for

    def refresh(self, conn: sa.Connection) -> None:
        """Re-read the change marks (in a worker thread); drop what moved."""
        local = LOCAL[0]
        marks = store.change_marks(conn)
        with self._lock:
            if self.marks is None or marks.flags != self.marks.flags:
                self._flags = {}
            if self.marks is None or marks.tokens != self.marks.tokens:
                self._tokens = {}
            self.marks = marks
            self._checked = self._now()
            self._local_seen = local

    def flag(self, slug: str) -> FlagRow | None:
        return self._flags.get(slug) if self.fresh() else None

    def token(self, token_hash: str) -> TokenRow | None:
        return self._tokens.get(token_hash) if self.fresh() else None

    # `seen` is `self.marks` as it was before the row was read: a row read before a refresh that
    # dropped the dicts must not come back after it (it could be older than the marks).
    def keep_flag(self, row: FlagRow, seen: ChangeMarks | None) -> None:
        with self._lock:
            if seen is not None and seen is self.marks:
                self._flags[row.slug] = row

    def keep_token(self, token_hash: str, row: TokenRow, seen: ChangeMarks | None) -> None:
        with self._lock:
            if seen is not None and seen is self.marks:
                self._tokens[token_hash] = row
